package scylla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// A group's members, and why they move between partitions.
//
// A live room's viewers come and go all day, and every leave deletes a
// member row. A deleted row stays as a tombstone for gc_grace_seconds
// (ten days by default), and a read steps over the tombstones of every
// row it scans: Cassandra refuses a read past 100,000 of them
// (tombstone_failure_threshold), ScyllaDB slows down. A router reads a
// group's members whenever it loads the group, after a failover or a
// restart, so a room that saw 100,000 leaves in one partition could not
// be loaded for ten days (TestMembersChurn).
//
// So a group's member set lives in the partition of its epoch
// (group_members), and member_epochs names the current epoch, counts the
// rows deleted in it, and records the set's size when the epoch began.
// Once the deletions reach max(memberRotateMin, that size / 2), the set
// moves to the next epoch: every change then goes to both partitions,
// each SaveMembers copies memberCopyStep more rows (so a router's worker
// never waits for a whole room's copy), and after the last step
// member_epochs points at the new partition and the old one is dropped
// with a single partition tombstone. A read then steps over at most
// memberRotateMin tombstones, or fewer than one per live row in a big
// room, and the copies cost about two row writes per leave while a
// room's size holds.
//
// Only the router owning a group writes its members, and it reads them
// (ListMembers, which reads the epoch afresh) whenever it takes the group
// on, so the epoch a store caches is current. Writes a stale owner makes
// during a hand-over may land in an epoch already rewritten, and are
// lost: presence records, which that hand-over loses anyway.

// memberRotateMin is the fewest deletions an epoch takes before its set
// is rewritten: small rooms are rewritten rarely, and a read steps over
// at most this many tombstones.
const memberRotateMin = 20_000

// memberChunk is how many rows one batch writes when a set is rewritten:
// a whole big room in one mutation would pass the CQL server's limit on
// a mutation's size.
const memberChunk = 1_000

// memberCopyStep is how many rows each SaveMembers copies while a set
// moves to a new epoch: what the router's worker waits for is bounded by
// one step, not by the room's size.
const memberCopyStep = 4_000

// memberWriters is how many of a rewrite's batches are in flight at once.
const memberWriters = 8

// memberLocks serialize the member calls of a group within a store, so a
// rewrite cannot lose a write made beside it. A router makes one group's
// calls one at a time anyway (its worker), so they never wait for each
// other there, only for a rewrite of another group on the same stripe.
type memberLocks struct {
	seed    maphash.Seed
	stripes [64]sync.Mutex
}

func (l *memberLocks) lock(appID, groupID string) func() {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(appID)
	h.WriteByte(0)
	h.WriteString(groupID)
	mu := &l.stripes[h.Sum64()%uint64(len(l.stripes))]
	mu.Lock()
	return mu.Unlock
}

// maxEpochsCached bounds the epochs a store remembers; past it they are
// forgotten and read again when needed.
const maxEpochsCached = 100_000

// memberEpoch is a group's member_epochs row, and the move to the next
// epoch when one is under way.
type memberEpoch struct {
	epoch   int64 // the group_members partition holding the set
	removed int64 // rows deleted in it
	live    int64 // the set's size when the epoch began

	// A move to epoch+1: every change goes to both partitions, and each
	// SaveMembers copies the next memberCopyStep rows after copied.
	moving      bool
	copied      string // the last user ID copied, in CQL's order
	copiedRows  int64
	nextRemoved int64 // rows deleted in the next partition meanwhile
}

// due reports whether the set must move to a new epoch.
func (e memberEpoch) due() bool { return !e.moving && e.removed >= max(memberRotateMin, e.live/2) }

// SaveMembers writes a group's member changes into its current epoch, in
// one single-partition batch applied atomically (and into the next one
// while the set moves), then starts or goes on moving the set to a new
// epoch if its deletions call for it.
func (s *Store) SaveMembers(ctx context.Context, appID, groupID string, upserts []storage.Member, removes []string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if len(upserts) == 0 && len(removes) == 0 {
		return nil
	}
	for _, m := range upserts {
		if m.UserID == "" {
			return errors.New("scylla: save members: empty user ID")
		}
	}
	defer s.memberLocks.lock(appID, groupID)()
	e, ok := s.cachedEpoch(appID, groupID)
	if !ok {
		var err error
		if e, err = s.loadEpoch(ctx, appID, groupID); err != nil {
			return fmt.Errorf("scylla: save members %s/%s: %w", appID, groupID, err)
		}
	}
	e, err := s.saveMembers(ctx, appID, groupID, e, upserts, removes)
	if err != nil {
		s.forgetEpoch(appID, groupID) // read it again before the next write
		return fmt.Errorf("scylla: save members %s/%s: %w", appID, groupID, err)
	}
	s.cacheEpoch(appID, groupID, e)
	return nil
}

func (s *Store) saveMembers(ctx context.Context, appID, groupID string, e memberEpoch, upserts []storage.Member, removes []string) (memberEpoch, error) {
	epochs := []int64{e.epoch}
	if e.moving {
		epochs = append(epochs, e.epoch+1)
	}
	for _, epoch := range epochs {
		b := s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		if err := addUpserts(b, appID, groupID, epoch, upserts); err != nil {
			return e, err
		}
		for _, u := range removes {
			b.Query(`DELETE FROM group_members WHERE app_id = ? AND group_id = ? AND epoch = ? AND user_id = ?`, appID, groupID, epoch, u)
		}
		if err := b.Exec(); err != nil {
			return e, err
		}
	}
	e.removed += int64(len(removes))
	if e.moving {
		e.nextRemoved += int64(len(removes))
	}
	if e.due() {
		// The next partition may hold what a move cut short left.
		if err := s.dropEpoch(ctx, appID, groupID, e.epoch+1); err != nil {
			return e, err
		}
		e.moving, e.copied, e.copiedRows, e.nextRemoved = true, "", 0, 0
	}
	if e.moving {
		return s.moveStep(ctx, appID, groupID, e)
	}
	if len(removes) > 0 {
		return e, s.query(ctx, `UPDATE member_epochs SET removed = ? WHERE app_id = ? AND group_id = ?`, e.removed, appID, groupID).Exec()
	}
	return e, nil
}

// moveStep copies the next memberCopyStep rows of the set into the next
// epoch. After the last, member_epochs points at the next epoch and the
// old partition is dropped. Changes made between steps went to both
// partitions (saveMembers): a row not copied yet is copied as it is then,
// and a copied row was changed in both.
func (s *Store) moveStep(ctx context.Context, appID, groupID string, e memberEpoch) (memberEpoch, error) {
	rows, err := scanMembers(s.query(ctx, `SELECT data FROM group_members WHERE app_id = ? AND group_id = ? AND epoch = ? AND user_id > ? LIMIT ?`,
		appID, groupID, e.epoch, e.copied, memberCopyStep))
	if err != nil {
		return e, err
	}
	if err := s.writeMembers(ctx, appID, groupID, e.epoch+1, rows); err != nil {
		return e, err
	}
	e.copiedRows += int64(len(rows))
	if len(rows) > 0 {
		e.copied = rows[len(rows)-1].UserID
	}
	if len(rows) == memberCopyStep {
		return e, s.query(ctx, `UPDATE member_epochs SET removed = ? WHERE app_id = ? AND group_id = ?`, e.removed, appID, groupID).Exec()
	}
	next := memberEpoch{epoch: e.epoch + 1, removed: e.nextRemoved, live: e.copiedRows}
	if err := s.query(ctx, `UPDATE member_epochs SET epoch = ?, removed = ?, live = ? WHERE app_id = ? AND group_id = ?`,
		next.epoch, next.removed, next.live, appID, groupID).Exec(); err != nil {
		return e, err
	}
	// The old partition, and the one before it, which a move cut short
	// after member_epochs was pointed on may have left.
	for _, old := range []int64{e.epoch, e.epoch - 1} {
		if old < 1 {
			continue
		}
		if err := s.dropEpoch(ctx, appID, groupID, old); err != nil {
			// The set has moved: a partition left behind costs only space.
			s.log.Warn("drop a member partition", "app_id", appID, "group_id", groupID, "epoch", old, "err", err)
		}
	}
	s.log.Debug("member set moved to a new epoch", "app_id", appID, "group_id", groupID, "epoch", next.epoch, "members", next.live)
	return next, nil
}

// ListMembers returns a group's members. It reads the group's epoch
// afresh: another router may have moved the set since this one last
// owned the group.
func (s *Store) ListMembers(ctx context.Context, appID, groupID string) ([]storage.Member, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	defer s.memberLocks.lock(appID, groupID)()
	e, err := s.loadEpoch(ctx, appID, groupID)
	if err != nil {
		return nil, fmt.Errorf("scylla: list members %s/%s: %w", appID, groupID, err)
	}
	out, err := s.readMembers(ctx, appID, groupID, e.epoch)
	if err != nil {
		return nil, fmt.Errorf("scylla: list members %s/%s: %w", appID, groupID, err)
	}
	s.cacheEpoch(appID, groupID, e)
	return out, nil
}

// loadEpoch reads a group's member epoch. A group without one, new or
// from before epochs, starts at epoch 1 with what its members partition
// holds.
func (s *Store) loadEpoch(ctx context.Context, appID, groupID string) (memberEpoch, error) {
	var e memberEpoch
	err := s.query(ctx, `SELECT epoch, removed, live FROM member_epochs WHERE app_id = ? AND group_id = ?`, appID, groupID).
		Scan(&e.epoch, &e.removed, &e.live)
	if !errors.Is(err, gocql.ErrNotFound) {
		return e, err
	}
	return s.adoptMembers(ctx, appID, groupID)
}

// adoptMembers gives a group its first epoch, holding the members its
// row in the members table of earlier liveim versions lists, and drops
// that row. If the replicas fail to read it (Cassandra's answer to the
// tombstones this design avoids), the group starts with no member
// recorded: its members' gateways still serve them, and they are
// recorded again as they come back. Any other error (a timeout, no
// replica up) fails the load, to be tried again.
func (s *Store) adoptMembers(ctx context.Context, appID, groupID string) (memberEpoch, error) {
	old, readErr := scanMembers(s.query(ctx, `SELECT data FROM members WHERE app_id = ? AND group_id = ?`, appID, groupID))
	var unreadable *gocql.RequestErrReadFailure
	if readErr != nil && !errors.As(readErr, &unreadable) {
		return memberEpoch{}, readErr
	}
	if readErr != nil {
		s.log.Warn("the members of a group recorded by an earlier liveim could not be read; the group starts with none recorded",
			"app_id", appID, "group_id", groupID, "err", readErr)
		old = nil
	}
	e := memberEpoch{epoch: 1, live: int64(len(old))}
	if err := s.fillEpoch(ctx, appID, groupID, e.epoch, old); err != nil {
		return e, err
	}
	if err := s.query(ctx, `INSERT INTO member_epochs (app_id, group_id, epoch, removed, live) VALUES (?, ?, ?, 0, ?)`,
		appID, groupID, e.epoch, e.live).Exec(); err != nil {
		return e, err
	}
	if len(old) > 0 || readErr != nil {
		if err := s.query(ctx, `DELETE FROM members WHERE app_id = ? AND group_id = ?`, appID, groupID).Exec(); err != nil {
			return e, err
		}
	}
	return e, nil
}

// fillEpoch empties epoch's partition, which something cut short may
// have left half written, and writes set into it.
func (s *Store) fillEpoch(ctx context.Context, appID, groupID string, epoch int64, set []storage.Member) error {
	if err := s.dropEpoch(ctx, appID, groupID, epoch); err != nil {
		return err
	}
	return s.writeMembers(ctx, appID, groupID, epoch, set)
}

// writeMembers writes set into epoch's partition: memberChunk rows a
// batch, memberWriters batches at once.
func (s *Store) writeMembers(ctx context.Context, appID, groupID string, epoch int64, set []storage.Member) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(memberWriters)
	for chunk := range slices.Chunk(set, memberChunk) {
		g.Go(func() error {
			b := s.session.Batch(gocql.UnloggedBatch).WithContext(gctx)
			if err := addUpserts(b, appID, groupID, epoch, chunk); err != nil {
				return err
			}
			return b.Exec()
		})
	}
	return g.Wait()
}

// dropEpoch deletes an epoch's partition of a group's members, with one
// partition tombstone.
func (s *Store) dropEpoch(ctx context.Context, appID, groupID string, epoch int64) error {
	return s.query(ctx, `DELETE FROM group_members WHERE app_id = ? AND group_id = ? AND epoch = ?`, appID, groupID, epoch).Exec()
}

// addUpserts adds the writes of members to b.
func addUpserts(b *gocql.Batch, appID, groupID string, epoch int64, members []storage.Member) error {
	for _, m := range members {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		b.Query(`INSERT INTO group_members (app_id, group_id, epoch, user_id, data) VALUES (?, ?, ?, ?, ?)`, appID, groupID, epoch, m.UserID, string(data))
	}
	return nil
}

// readMembers returns the members of a group's epoch.
func (s *Store) readMembers(ctx context.Context, appID, groupID string, epoch int64) ([]storage.Member, error) {
	return scanMembers(s.query(ctx, `SELECT data FROM group_members WHERE app_id = ? AND group_id = ? AND epoch = ?`, appID, groupID, epoch))
}

// scanMembers returns the members q's rows hold.
func scanMembers(q *gocql.Query) ([]storage.Member, error) {
	it := q.PageSize(1000).Iter()
	out := []storage.Member{}
	var data string
	for it.Scan(&data) {
		var m storage.Member
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("decode member: %w", err)
		}
		out = append(out, m)
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) cachedEpoch(appID, groupID string) (memberEpoch, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	e, ok := s.epochs[appID+"/"+groupID]
	return e, ok
}

func (s *Store) cacheEpoch(appID, groupID string, e memberEpoch) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if len(s.epochs) >= maxEpochsCached {
		s.epochs = make(map[string]memberEpoch)
	}
	s.epochs[appID+"/"+groupID] = e
}

func (s *Store) forgetEpoch(appID, groupID string) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	delete(s.epochs, appID+"/"+groupID)
}

// deleteMembers drops a group's member set, its epoch and its row in the
// members table of earlier versions (DeleteGroup).
func (s *Store) deleteMembers(ctx context.Context, appID, groupID string) error {
	defer s.memberLocks.lock(appID, groupID)()
	var epoch int64
	err := s.query(ctx, `SELECT epoch FROM member_epochs WHERE app_id = ? AND group_id = ?`, appID, groupID).Scan(&epoch)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return err
	}
	if err == nil {
		if err := s.dropEpoch(ctx, appID, groupID, epoch); err != nil {
			return err
		}
	}
	for _, stmt := range []string{
		`DELETE FROM member_epochs WHERE app_id = ? AND group_id = ?`,
		`DELETE FROM members WHERE app_id = ? AND group_id = ?`,
	} {
		if err := s.query(ctx, stmt, appID, groupID).Exec(); err != nil {
			return err
		}
	}
	s.forgetEpoch(appID, groupID)
	return nil
}
