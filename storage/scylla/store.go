package scylla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// Store is a storage.Store on ScyllaDB (or Apache Cassandra) through
// gocql. Create it with Open.
type Store struct {
	cfg     Config
	session *gocql.Session
	log     *slog.Logger
	bucket  int64 // BucketWidth in ms

	mu     sync.RWMutex // guards closed; held shared by every call
	closed bool

	cacheMu   sync.Mutex       // leaf lock
	buckets   map[string]int64 // app/group -> last bucket recorded in message_buckets
	retention map[string]retentionEntry
	epochs    map[string]memberEpoch // app/group -> its member set (members.go)
	seen      map[string]groupSeen   // app/group -> a version's closed flag (counts.go)
	counting  map[string]bool        // apps whose open-group counter was started
	listed    map[string]bool        // apps whose listing was copied into buckets (listing.go)
	mark      gocql.UUID             // this store, in the counter and listing starts it makes

	listStartMu sync.Mutex // one listing start at a time (listing.go)

	memberLocks memberLocks
}

type retentionEntry struct {
	ttl     int // seconds, 0 = none
	expires time.Time
}

var _ storage.Store = (*Store)(nil)

// System names the database for telemetry (storage.System):
// "cassandra", OpenTelemetry's db.system.name for the CQL databases'
// clients; the conventions have no value of ScyllaDB's own.
func (s *Store) System() string { return "cassandra" }

// Open connects to the cluster, applies the schema (idempotently) and
// returns the store.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cons, _ := gocql.ParseConsistencyWrapper(cfg.Consistency)
	serial, _ := gocql.ParseConsistencyWrapper(cfg.SerialConsistency)
	cluster, err := cfg.cluster()
	if err != nil {
		return nil, err
	}
	cluster.Consistency = cons
	cluster.Logger = driverLogger{logger.With("component", "gocql")}
	cluster.SerialConsistency = gocql.SerialConsistency(serial)
	cluster.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	if err := applySchema(ctx, cluster, cfg); err != nil {
		return nil, err
	}
	// A token-aware policy belongs to one session, so it is set only now,
	// for the session the store keeps.
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	cluster.Keyspace = cfg.Keyspace
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("scylla: connect: %w", err)
	}
	return &Store{
		cfg:         cfg,
		session:     session,
		log:         logger.With("component", "scylla"),
		bucket:      cfg.BucketWidth.Milliseconds(),
		buckets:     make(map[string]int64),
		retention:   make(map[string]retentionEntry),
		epochs:      make(map[string]memberEpoch),
		seen:        make(map[string]groupSeen),
		counting:    make(map[string]bool),
		listed:      make(map[string]bool),
		mark:        gocql.TimeUUID(),
		memberLocks: memberLocks{seed: maphash.MakeSeed()},
	}, nil
}

// driverLogger passes what gocql logs (connection trouble, the warnings
// the CQL server attaches to a reply, such as a read that stepped over
// many tombstones) to the store's logger, as warnings.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) { l.log.Warn(strings.TrimSpace(fmt.Sprint(v...))) }
func (l driverLogger) Printf(format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l driverLogger) Println(v ...any) { l.log.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }

// Close releases the session. It waits for calls in flight; later calls
// return storage.ErrClosed. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.session.Close()
	}
	return nil
}

// begin takes the shared close guard; the caller must call s.end.
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

// query returns an idempotent query bound to ctx. Every write liveim makes
// is idempotent (keyed upserts and marks), so the driver may retry it.
func (s *Store) query(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return s.session.Query(stmt, args...).WithContext(ctx).Idempotent(true)
}

// once returns a query bound to ctx that the driver tries once: a write
// applied twice would not leave what applying it once does (a counter's
// addition, a compare-and-set whose change is read afresh). The driver's
// retry policy retries any query, idempotent or not, so marking it so is
// not enough.
func (s *Store) once(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return s.session.Query(stmt, args...).WithContext(ctx).RetryPolicy(&gocql.SimpleRetryPolicy{NumRetries: 0})
}

// PutApp creates or replaces an app.
func (s *Store) PutApp(ctx context.Context, app storage.App) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	b, err := json.Marshal(app)
	if err != nil {
		return err
	}
	if err := s.query(ctx, `INSERT INTO apps (app_id, data) VALUES (?, ?)`, app.ID, string(b)).Exec(); err != nil {
		return fmt.Errorf("scylla: put app %s: %w", app.ID, err)
	}
	s.cacheMu.Lock()
	delete(s.retention, app.ID)
	s.cacheMu.Unlock()
	return nil
}

// appUpdateTries bounds how often UpdateApp reads and applies its change
// again when other writes keep coming between.
const appUpdateTries = 16

// UpdateApp applies change to the app and writes it with a lightweight
// transaction on the text it read (IF data = ?), again from a fresh read
// when another write came between.
func (s *Store) UpdateApp(ctx context.Context, appID string, change func(*storage.App) error) (storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return storage.App{}, err
	}
	defer s.end()
	for range appUpdateTries {
		var data string
		err := s.query(ctx, `SELECT data FROM apps WHERE app_id = ?`, appID).Scan(&data)
		if errors.Is(err, gocql.ErrNotFound) {
			return storage.App{}, fmt.Errorf("app %s: %w", appID, storage.ErrNotFound)
		}
		if err != nil {
			return storage.App{}, fmt.Errorf("scylla: update app %s: %w", appID, err)
		}
		var app storage.App
		if err := json.Unmarshal([]byte(data), &app); err != nil {
			return storage.App{}, fmt.Errorf("scylla: update app %s: %w", appID, err)
		}
		if err := change(&app); err != nil {
			return storage.App{}, err
		}
		b, err := json.Marshal(app)
		if err != nil {
			return storage.App{}, err
		}
		// Not retried by the driver: a retry of a write that applied but
		// timed out would find the text changed and apply change twice
		// (a second key rotation); the caller is told instead.
		applied, err := s.once(ctx, `UPDATE apps SET data = ? WHERE app_id = ? IF data = ?`, string(b), appID, data).MapScanCAS(map[string]any{})
		if err != nil {
			return storage.App{}, fmt.Errorf("scylla: update app %s: %w", appID, err)
		}
		if applied {
			s.cacheMu.Lock()
			delete(s.retention, appID)
			s.cacheMu.Unlock()
			return app, nil
		}
	}
	return storage.App{}, fmt.Errorf("scylla: update app %s: written by others %d times in a row: %w", appID, appUpdateTries, storage.ErrConflict)
}

// GetApp returns the app, or storage.ErrNotFound.
func (s *Store) GetApp(ctx context.Context, appID string) (storage.App, error) {
	if err := s.begin(ctx); err != nil {
		return storage.App{}, err
	}
	defer s.end()
	return s.getApp(ctx, appID)
}

func (s *Store) getApp(ctx context.Context, appID string) (storage.App, error) {
	var data string
	err := s.query(ctx, `SELECT data FROM apps WHERE app_id = ?`, appID).Scan(&data)
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.App{}, fmt.Errorf("app %s: %w", appID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("scylla: get app %s: %w", appID, err)
	}
	var app storage.App
	if err := json.Unmarshal([]byte(data), &app); err != nil {
		return storage.App{}, fmt.Errorf("scylla: decode app %s: %w", appID, err)
	}
	return app, nil
}

// CreateGroup stores g with Version 1 unless the group exists
// (lightweight transaction, so concurrent creates make exactly one).
func (s *Store) CreateGroup(ctx context.Context, g storage.Group) (storage.Group, bool, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Group{}, false, err
	}
	defer s.end()
	g.Version = 1
	data, err := groupData(g)
	if err != nil {
		return storage.Group{}, false, err
	}
	prev := map[string]any{}
	applied, err := s.query(ctx, `INSERT INTO groups (app_id, group_id, data, version) VALUES (?, ?, ?, 1) IF NOT EXISTS`,
		g.AppID, g.ID, data).MapScanCAS(prev)
	if err != nil {
		return storage.Group{}, false, fmt.Errorf("scylla: create group %s/%s: %w", g.AppID, g.ID, err)
	}
	existing := g
	if !applied {
		if existing, err = decodeGroup(g.AppID, g.ID, prev["data"], prev["version"]); err != nil {
			return storage.Group{}, false, err
		}
	}
	s.noteGroup(existing)
	// Started before the listing below, which a first count reads.
	counted := applied && !g.Closed && s.startCountBeside(ctx, g.AppID)
	// The writes that follow the group's are independent: at once.
	wg, wctx := errgroup.WithContext(ctx)
	if counted {
		wg.Go(func() error { s.addOpen(ctx, g.AppID, 1); return nil }) // not cancelled by a sibling: the group exists
	}
	if applied {
		// A new group's member set starts empty in epoch 1, so its first
		// load need not look for a record of an earlier version.
		wg.Go(func() error {
			e := memberEpoch{epoch: 1}
			if err := s.query(wctx, `INSERT INTO member_epochs (app_id, group_id, epoch, removed, live) VALUES (?, ?, 1, 0, 0)`, g.AppID, g.ID).Exec(); err != nil {
				return err
			}
			s.cacheEpoch(g.AppID, g.ID, e)
			return nil
		})
	}
	// Listed whether this call or an earlier one created it (an earlier
	// create may have failed between the two writes).
	wg.Go(func() error { return s.listGroup(wctx, existing) })
	if err := wg.Wait(); err != nil {
		return storage.Group{}, false, fmt.Errorf("scylla: create group %s/%s: %w", g.AppID, g.ID, err)
	}
	return existing, applied, nil
}

// GetGroup returns the group, or storage.ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, appID, groupID string) (storage.Group, error) {
	if err := s.begin(ctx); err != nil {
		return storage.Group{}, err
	}
	defer s.end()
	return s.getGroup(ctx, appID, groupID)
}

func (s *Store) getGroup(ctx context.Context, appID, groupID string) (storage.Group, error) {
	var data string
	var version int64
	err := s.query(ctx, `SELECT data, version FROM groups WHERE app_id = ? AND group_id = ?`, appID, groupID).
		SerialConsistency(gocql.LocalSerial).Scan(&data, &version)
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.Group{}, fmt.Errorf("group %s/%s: %w", appID, groupID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Group{}, fmt.Errorf("scylla: get group %s/%s: %w", appID, groupID, err)
	}
	g, err := decodeGroup(appID, groupID, data, version)
	if err == nil {
		s.noteGroup(g)
	}
	return g, err
}

// PutGroup replaces the group if its stored version is g.Version
// (lightweight transaction) and returns the new version.
func (s *Store) PutGroup(ctx context.Context, g storage.Group) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	data, err := groupData(g)
	if err != nil {
		return 0, err
	}
	wasClosed, atVersion, err := s.closedAt(ctx, g.AppID, g.ID, g.Version)
	if err != nil {
		return 0, fmt.Errorf("scylla: put group %s/%s: %w", g.AppID, g.ID, err)
	}
	prev := map[string]any{}
	applied, err := s.query(ctx, `UPDATE groups SET data = ?, version = ? WHERE app_id = ? AND group_id = ? IF version = ?`,
		data, g.Version+1, g.AppID, g.ID, g.Version).MapScanCAS(prev)
	if err != nil {
		return 0, fmt.Errorf("scylla: put group %s/%s: %w", g.AppID, g.ID, err)
	}
	if applied {
		next := g
		next.Version++
		s.noteGroup(next)
		if atVersion && wasClosed != g.Closed {
			s.countOpen(ctx, g.AppID, openDelta(g.Closed))
		}
		if err := s.listGroup(ctx, g); err != nil {
			return 0, fmt.Errorf("scylla: put group %s/%s: list it: %w", g.AppID, g.ID, err)
		}
		return g.Version + 1, nil
	}
	if v, ok := prev["version"].(int64); ok && v != 0 {
		return 0, fmt.Errorf("group %s/%s at version %d, not %d: %w", g.AppID, g.ID, v, g.Version, storage.ErrConflict)
	}
	return 0, fmt.Errorf("group %s/%s: %w", g.AppID, g.ID, storage.ErrNotFound)
}

// groupData encodes a group without its version, which has a column.
func groupData(g storage.Group) (string, error) {
	g.Version = 0
	b, err := json.Marshal(g)
	return string(b), err
}

func decodeGroup(appID, groupID string, data, version any) (storage.Group, error) {
	d, _ := data.(string)
	v, _ := version.(int64)
	var g storage.Group
	if err := json.Unmarshal([]byte(d), &g); err != nil {
		return storage.Group{}, fmt.Errorf("scylla: decode group %s/%s: %w", appID, groupID, err)
	}
	g.Version = v
	return g, nil
}

// ttlOf returns the message TTL of an app in seconds (its retention), 0
// when it keeps history forever; cached for a minute.
func (s *Store) ttlOf(ctx context.Context, appID string) (int, error) {
	now := time.Now()
	s.cacheMu.Lock()
	e, ok := s.retention[appID]
	s.cacheMu.Unlock()
	if ok && now.Before(e.expires) {
		return e.ttl, nil
	}
	ttl := 0
	app, err := s.getApp(ctx, appID)
	switch {
	case err == nil:
		ttl = app.RetentionDays * 86400
	case !errors.Is(err, storage.ErrNotFound):
		return 0, err
	}
	s.cacheMu.Lock()
	s.retention[appID] = retentionEntry{ttl: ttl, expires: now.Add(time.Minute)}
	s.cacheMu.Unlock()
	return ttl, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
