package pebble

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/liveim/liveim/storage"
)

// Options configures Open. The zero value gives the defaults.
type Options struct {
	// NoSync skips the fsync after each write. The default (false) syncs
	// every write to disk before it returns, so an acknowledged write
	// survives a machine crash. Set it for tests and benchmarks, or when
	// losing the last writes on a crash is acceptable.
	NoSync bool
	// CacheSize is the block cache size in bytes; 0 uses Pebble's default
	// (8 MiB).
	CacheSize int64
	// Logger receives Pebble's own log lines: errors at Error, the rest at
	// Debug. Default: discarded.
	Logger *slog.Logger
	// MustExist refuses to create a database: Open fails unless dir holds
	// one (its manifest included). Default: create one when dir has none.
	MustExist bool
}

// lockStripes is how many per-group locks serialize message writes.
const lockStripes = 64

// Store is a storage.Store backed by a Pebble database. Create it with Open.
type Store struct {
	db    *pebbledb.DB
	write *pebbledb.WriteOptions

	mu     sync.RWMutex // guards closed; held shared by every call
	closed bool

	idMu    sync.Mutex              // serializes ID's read and first write
	groupMu [lockStripes]sync.Mutex // per-group record read, compare, write (CreateGroup, PutGroup, DeleteGroup)
	msgMu   [lockStripes]sync.Mutex // per-group message read-modify-write
	// topSeq holds, per stripe of msgMu and guarded by its lock, a seqnum
	// at or above every message stored of a group (appID + "\x00" +
	// groupID), learned at the group's first append since Open. An append
	// above it cannot overwrite anything, so it skips the read for an
	// earlier copy of its seqnum: that read missed for nearly every append
	// and searched the tables of every level (a fifth of a busy server's
	// CPU, BenchmarkAppendMessageWithHistory).
	topSeq [lockStripes]map[string]int64
}

// maxTopSeqs bounds the groups a stripe of Store.topSeq remembers; it is
// cleared when full (the next appends of its groups read once more).
const maxTopSeqs = 1 << 14

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the Pebble database in dir.
func Open(dir string, opts Options) (*Store, error) {
	po := &pebbledb.Options{Logger: pebbleLogger{opts.Logger}, ErrorIfNotExists: opts.MustExist}
	if opts.CacheSize > 0 {
		c := pebbledb.NewCache(opts.CacheSize)
		defer c.Unref() // the DB keeps its own reference
		po.Cache = c
	}
	db, err := pebbledb.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("storage/pebble: open %s: %w", dir, err)
	}
	s := &Store{db: db, write: pebbledb.Sync}
	if opts.NoSync {
		s.write = pebbledb.NoSync
	}
	return s, nil
}

// System names the database for telemetry (storage.System): "pebble",
// which OpenTelemetry's db.system.name has no value for.
func (s *Store) System() string { return "pebble" }

// ID returns the database's identity, a random string written the first
// time a database is opened by this version or later: a data directory
// records it to notice when its store is replaced.
func (s *Store) ID(ctx context.Context) (string, error) {
	if err := s.begin(ctx); err != nil {
		return "", err
	}
	defer s.end()
	s.idMu.Lock()
	defer s.idMu.Unlock()
	var id string
	found, err := s.getJSON([]byte(idKey), &id)
	if err != nil {
		return "", fmt.Errorf("storage/pebble: read id: %w", err)
	}
	if found && id != "" {
		return id, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	if err := s.db.Set([]byte(idKey), mustJSON(id), pebbledb.Sync); err != nil {
		return "", fmt.Errorf("storage/pebble: write id: %w", err)
	}
	return id, nil
}

// Close releases the database. It waits for in-flight calls; later calls
// return storage.ErrClosed. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage/pebble: close: %w", err)
	}
	return nil
}

// begin checks ctx and the closed flag and takes the shared close guard;
// on success the caller must call s.end.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

func (s *Store) end() { s.mu.RUnlock() }

// groupLock returns the mutex serializing message writes of one group.
func (s *Store) groupLock(appID, groupID string) *sync.Mutex {
	return &s.msgMu[stripe(appID, groupID)]
}

// topSeqOf returns the remembered top seqnum of a group, learning it from
// the database at first; the caller holds the group's groupLock.
func (s *Store) topSeqOf(appID, groupID string) (int64, error) {
	st := stripe(appID, groupID)
	if top, ok := s.topSeq[st][appID+"\x00"+groupID]; ok {
		return top, nil
	}
	top, err := s.lastSeq(appID, groupID)
	if err != nil {
		return 0, err
	}
	s.setTopSeq(appID, groupID, top)
	return top, nil
}

// setTopSeq records top as the group's top seqnum; the caller holds the
// group's groupLock.
func (s *Store) setTopSeq(appID, groupID string, top int64) {
	st := stripe(appID, groupID)
	if s.topSeq[st] == nil || len(s.topSeq[st]) >= maxTopSeqs {
		s.topSeq[st] = make(map[string]int64)
	}
	s.topSeq[st][appID+"\x00"+groupID] = top
}

// recordLock returns the mutex serializing the read, compare and write of
// one group's record. Groups write in parallel, so their syncs share the
// WAL's group commit: one store-wide lock made every group's state write
// wait for the others' fsyncs (6 ms a write at 1,000 groups).
func (s *Store) recordLock(appID, groupID string) *sync.Mutex {
	return &s.groupMu[stripe(appID, groupID)]
}

func stripe(appID, groupID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(appID))
	h.Write([]byte{'/'})
	h.Write([]byte(groupID))
	return h.Sum32() % lockStripes
}

// getJSON decodes the value at key into v; found is false if key is absent.
func (s *Store) getJSON(key []byte, v any) (found bool, err error) {
	val, closer, err := s.db.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(val, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// setJSON stores the JSON encoding of v at key.
func (s *Store) setJSON(key []byte, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Set(key, val, s.write)
}

// PutApp creates or replaces an app.
func (s *Store) PutApp(ctx context.Context, app storage.App) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	mu := s.recordLock(app.ID, "\x00app")
	mu.Lock()
	defer mu.Unlock()
	if err := s.setJSON(appKey(app.ID), app); err != nil {
		return fmt.Errorf("storage/pebble: put app %s: %w", app.ID, err)
	}
	return nil
}

// UpdateApp applies change to the app under its record lock: the
// embedded store has one process, so no other write comes between.
func (s *Store) UpdateApp(ctx context.Context, appID string, change func(*storage.App) error) (storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return storage.App{}, err
	}
	defer s.end()
	mu := s.recordLock(appID, "\x00app")
	mu.Lock()
	defer mu.Unlock()
	var app storage.App
	found, err := s.getJSON(appKey(appID), &app)
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/pebble: update app %s: %w", appID, err)
	}
	if !found {
		return storage.App{}, fmt.Errorf("app %s: %w", appID, storage.ErrNotFound)
	}
	if err := change(&app); err != nil {
		return storage.App{}, err
	}
	if err := s.setJSON(appKey(appID), app); err != nil {
		return storage.App{}, fmt.Errorf("storage/pebble: update app %s: %w", appID, err)
	}
	return app, nil
}

// GetApp returns the app, or storage.ErrNotFound.
func (s *Store) GetApp(ctx context.Context, appID string) (storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return storage.App{}, err
	}
	defer s.end()
	var app storage.App
	found, err := s.getJSON(appKey(appID), &app)
	if err != nil {
		return storage.App{}, fmt.Errorf("storage/pebble: get app %s: %w", appID, err)
	}
	if !found {
		return storage.App{}, fmt.Errorf("app %s: %w", appID, storage.ErrNotFound)
	}
	return app, nil
}

// CreateGroup stores g with Version 1 (whatever g.Version says) unless the
// group already exists, in which case it returns the existing group, with
// its own version, and created=false.
func (s *Store) CreateGroup(ctx context.Context, g storage.Group) (storage.Group, bool, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Group{}, false, err
	}
	defer s.end()
	gmu := s.recordLock(g.AppID, g.ID)
	gmu.Lock()
	defer gmu.Unlock()
	key := groupKey(g.AppID, g.ID)
	var existing storage.Group
	found, err := s.getJSON(key, &existing)
	if err != nil {
		return storage.Group{}, false, fmt.Errorf("storage/pebble: create group %s/%s: %w", g.AppID, g.ID, err)
	}
	if found {
		return existing, false, nil
	}
	g.Version = 1
	if err := s.putGroupLocked(g); err != nil {
		return storage.Group{}, false, fmt.Errorf("storage/pebble: create group %s/%s: %w", g.AppID, g.ID, err)
	}
	return g, true, nil
}

// GetGroup returns the group, or storage.ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, appID, groupID string) (storage.Group, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Group{}, err
	}
	defer s.end()
	var g storage.Group
	found, err := s.getJSON(groupKey(appID, groupID), &g)
	if err != nil {
		return storage.Group{}, fmt.Errorf("storage/pebble: get group %s/%s: %w", appID, groupID, err)
	}
	if !found {
		return storage.Group{}, fmt.Errorf("group %s/%s: %w", appID, groupID, storage.ErrNotFound)
	}
	return g, nil
}

// PutGroup replaces an existing group's state if its stored Version equals
// g.Version, storing it with Version+1, which it returns. A stale g.Version
// is storage.ErrConflict and leaves the group as it was; a group never
// created is storage.ErrNotFound.
func (s *Store) PutGroup(ctx context.Context, g storage.Group) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	gmu := s.recordLock(g.AppID, g.ID)
	gmu.Lock()
	defer gmu.Unlock()
	key := groupKey(g.AppID, g.ID)
	var cur storage.Group
	found, err := s.getJSON(key, &cur)
	if err != nil {
		return 0, fmt.Errorf("storage/pebble: put group %s/%s: %w", g.AppID, g.ID, err)
	}
	if !found {
		return 0, fmt.Errorf("group %s/%s: %w", g.AppID, g.ID, storage.ErrNotFound)
	}
	if cur.Version != g.Version {
		return 0, fmt.Errorf("group %s/%s: version %d, stored %d: %w",
			g.AppID, g.ID, g.Version, cur.Version, storage.ErrConflict)
	}
	g.Version = cur.Version + 1
	if err := s.putGroupLocked(g); err != nil {
		return 0, fmt.Errorf("storage/pebble: put group %s/%s: %w", g.AppID, g.ID, err)
	}
	return g.Version, nil
}

// putGroupLocked writes g and its open mark in one batch. g's record lock
// must be held.
func (s *Store) putGroupLocked(g storage.Group) error {
	val, err := json.Marshal(g)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(groupKey(g.AppID, g.ID), val, nil)
	if g.Closed {
		_ = b.Delete(openKey(g.AppID, g.ID), nil)
	} else {
		_ = b.Set(openKey(g.AppID, g.ID), nil, nil)
	}
	return b.Commit(s.write)
}

// CountGroups returns how many open groups the app has.
func (s *Store) CountGroups(ctx context.Context, appID string) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	prefix := openGroupsOf(appID)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("storage/pebble: count groups %s: %w", appID, err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("storage/pebble: count groups %s: %w", appID, err)
	}
	return n, nil
}

func mustJSON(v string) []byte {
	b, _ := json.Marshal(v) // a string always marshals
	return b
}
