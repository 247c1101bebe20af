package scylla

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/liveim/liveim/storage"
)

// An app's open groups, counted.
//
// createGroup checks the app's group limit (443) with CountGroups, which
// used to read the app's whole app_groups partition, closed groups
// included: 146-184 ms for an app that has had 100,000 groups on the test
// server (BenchmarkCountGroups), growing with every group the app ever
// had; with the counter, 1.6-1.7 ms. And every deleted group leaves a
// tombstone there, so after 100,000 deletions within gc_grace_seconds
// Cassandra would refuse the read, and every createGroup of the app with
// it.
//
// So the store keeps a counter of each app's open groups (app_counters),
// changed by the writes that open or close a group: a create that made
// the group (+1 if open), a write that changed its closed flag (±1,
// behind the group's compare-and-set, so exactly one writer sees each
// change), a delete of an open group (-1). CountGroups reads the
// counter. The first count of an app (app_counter_starts, a lightweight
// transaction, so one store does it) adds what app_groups lists, for apps
// from before the counter.
//
// A counter is not exact the way a scan is: a process killed between a
// group's write and its counter's, or a counter update that timed out
// after it was applied, leaves it off by one. The limit is a quota, and
// the count was never atomic with the create it guards; being off by a
// few groups is the cost of counting in constant time.

// groupSeen is the closed flag of one version of a group, as this store
// last read or wrote it: versions are written once, so a version's flag
// never changes, and a write at that version knows what it changes.
type groupSeen struct {
	version int64
	closed  bool
}

// maxGroupsSeen bounds the groups a store remembers; past it they are
// forgotten and read again when needed.
const maxGroupsSeen = 100_000

func (s *Store) noteGroup(g storage.Group) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if len(s.seen) >= maxGroupsSeen {
		s.seen = make(map[string]groupSeen)
	}
	s.seen[g.AppID+"/"+g.ID] = groupSeen{version: g.Version, closed: g.Closed}
}

func (s *Store) forgetGroup(appID, groupID string) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	delete(s.seen, appID+"/"+groupID)
}

// closedAt returns whether the group was closed at version, reading it
// if this store has not seen that version; ok is false when the stored
// group is at another version (the write at version will not apply).
func (s *Store) closedAt(ctx context.Context, appID, groupID string, version int64) (closed, ok bool, err error) {
	s.cacheMu.Lock()
	seen, hit := s.seen[appID+"/"+groupID]
	s.cacheMu.Unlock()
	if hit && seen.version == version {
		return seen.closed, true, nil
	}
	g, err := s.getGroup(ctx, appID, groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return g.Closed, g.Version == version, nil
}

// openDelta is what a change of a group's closed flag to closed does to
// the app's open groups.
func openDelta(closed bool) int64 {
	if closed {
		return -1
	}
	return 1
}

// countOpen adds d to the app's open groups. A failure is logged, not
// returned: the group's own write, which it follows, is done.
func (s *Store) countOpen(ctx context.Context, appID string, d int64) {
	if d == 0 || !s.startCountBeside(ctx, appID) {
		return
	}
	s.addOpen(ctx, appID, d)
}

// startCountBeside is startCount for a write that goes on whatever
// happens: a failure is logged, and false means the change is not
// counted.
func (s *Store) startCountBeside(ctx context.Context, appID string) bool {
	if err := s.startCount(ctx, appID); err != nil {
		s.log.Warn("the app's count of open groups missed a change", "app_id", appID, "err", err)
		return false
	}
	return true
}

// addOpen adds d to the started counter of the app; a failure is logged.
func (s *Store) addOpen(ctx context.Context, appID string, d int64) {
	if err := s.addCounter(ctx, appID, d); err != nil {
		s.log.Warn("the app's count of open groups missed a change", "app_id", appID, "change", d, "err", err)
	}
}

// addCounter adds d to the app's counter. Not idempotent: the driver
// must not retry it (once; it used to, the query only left unmarked as
// idempotent, which this driver's retry policy does not look at).
func (s *Store) addCounter(ctx context.Context, appID string, d int64) error {
	return s.once(ctx, `UPDATE app_counters SET open_groups = open_groups + ? WHERE app_id = ?`, d, appID).Exec()
}

// startCount makes sure the app's counter has been started: by the
// first store to ask (a lightweight transaction), which adds the open
// groups app_groups lists. A list that cannot be read (tombstones of
// deleted groups) starts the counter at what it could count, with a
// warning.
func (s *Store) startCount(ctx context.Context, appID string) error {
	s.cacheMu.Lock()
	started := s.counting[appID]
	s.cacheMu.Unlock()
	if started {
		return nil
	}
	// The store's mark tells an insert the driver retried (one that timed
	// out), or this store's next try after adding the count failed, that
	// the start is its own.
	prev := map[string]any{}
	applied, err := s.query(ctx, `INSERT INTO app_counter_starts (app_id, started_at, starter) VALUES (?, ?, ?) IF NOT EXISTS`, appID, time.Now(), s.mark).
		MapScanCAS(prev)
	if err != nil {
		return err
	}
	if prior, ok := prev["starter"].(gocql.UUID); ok && prior == s.mark {
		applied = true
	}
	if applied {
		n, err := s.scanOpenGroups(ctx, appID)
		if err != nil {
			s.log.Warn("the app's groups could not all be counted; its count of open groups starts at what could", "app_id", appID, "counted", n, "err", err)
		}
		if n > 0 {
			if err := s.addCounter(ctx, appID, n); err != nil {
				return err
			}
		}
	}
	s.cacheMu.Lock()
	s.counting[appID] = true
	s.cacheMu.Unlock()
	return nil
}

// scanOpenGroups counts the open groups app_groups lists, the way
// CountGroups did before the counter.
func (s *Store) scanOpenGroups(ctx context.Context, appID string) (int64, error) {
	it := s.query(ctx, `SELECT closed FROM app_groups WHERE app_id = ?`, appID).PageSize(5000).Iter()
	var n int64
	var closed bool
	for it.Scan(&closed) {
		if !closed {
			n++
		}
	}
	return n, it.Close()
}

// CountGroups returns how many open groups the app has: its counter.
func (s *Store) CountGroups(ctx context.Context, appID string) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	if err := s.startCount(ctx, appID); err != nil {
		return 0, fmt.Errorf("scylla: count groups %s: %w", appID, err)
	}
	var n int64
	err := s.query(ctx, `SELECT open_groups FROM app_counters WHERE app_id = ?`, appID).Scan(&n)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return 0, fmt.Errorf("scylla: count groups %s: %w", appID, err)
	}
	return int(max(n, 0)), nil
}
