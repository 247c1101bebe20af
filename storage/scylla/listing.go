package scylla

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// An app's groups, listed.
//
// ListGroups (the server API's GET /groups) pages through an app's
// groups by ID. They used to be listed in app_groups, one partition per
// app, and every deleted group left a tombstone there. A page steps over
// the tombstones between the rows it returns, so after 100,000 deletions
// within gc_grace_seconds (ten days) Cassandra refused the read
// (TestListGroupsPastDeletedGroups) and ScyllaDB slowed down: a live
// platform that opens and deletes a room per stream gets there at
// 10,000 streams a day. And every create, close and once-a-second save
// of an app's busy groups wrote into that one partition, so one replica
// set took the app's whole listing load.
//
// So the listing is spread over listBuckets partitions per app
// (app_group_list), a group's bucket a hash of its ID. A page reads
// every bucket from the page token on, all at once, and merges them by
// ID, so the order and the page tokens are as before. A read steps over
// the tombstones of one bucket, 1/listBuckets of the app's deletions:
// Cassandra's limit moves to 3.2 million deletions within
// gc_grace_seconds, about 320,000 a day. A page is 32 small reads in
// parallel instead of one, and the groups it returns are read 16 at a
// time instead of one after another: 12-15 ms a page of 100 on the test
// server, against 102-174 ms before (BenchmarkListGroups).
//
// Apps from before the buckets: the first listing of an app
// (app_list_starts, a lightweight transaction, so one store does it)
// copies what app_groups lists into the buckets, each row with its
// original write time, so what was written to the buckets meanwhile
// (newer) wins over the copy, and so does a deletion. app_groups is no
// longer written, only cleared of the groups deleted since.

// listBuckets is how many partitions an app's listing spreads over.
// Fixed forever: a group's bucket is found by hashing its ID.
const listBuckets = 32

// listBucket is the bucket of a group's listing row.
func listBucket(groupID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(groupID))
	return int(h.Sum32() % listBuckets)
}

// listGroup keeps a group's listing row, which ListGroups reads, in step
// with g.
func (s *Store) listGroup(ctx context.Context, g storage.Group) error {
	return s.query(ctx, `INSERT INTO app_group_list (app_id, bucket, group_id, closed) VALUES (?, ?, ?, ?)`,
		g.AppID, listBucket(g.ID), g.ID, g.Closed).Exec()
}

// unlistGroup removes a group's listing row, and its row in app_groups
// (written by liveim before the buckets), so a copy of that list made
// later cannot bring the group back.
func (s *Store) unlistGroup(ctx context.Context, appID, groupID string) error {
	if err := s.query(ctx, `DELETE FROM app_group_list WHERE app_id = ? AND bucket = ? AND group_id = ?`,
		appID, listBucket(groupID), groupID).Exec(); err != nil {
		return err
	}
	return s.query(ctx, `DELETE FROM app_groups WHERE app_id = ? AND group_id = ?`, appID, groupID).Exec()
}

// listRow is one group's listing row.
type listRow struct {
	id     string
	closed bool
}

// listCursor reads one bucket of a listing in ID order.
type listCursor struct {
	bucket int
	after  string    // the last ID read
	rows   []listRow // read, not merged yet
	done   bool      // read to its end
}

// listFetch is how many rows a cursor reads at a time for a page of
// limit: a bucket holds about 1/listBuckets of a page, and a cursor that
// runs dry before the page is full reads again.
func listFetch(limit int) int {
	return min(limit+1, 2*((limit+listBuckets-1)/listBuckets)+2)
}

// ListGroups returns a page of an app's groups, by ID; the page token is
// the ID of the last group returned.
func (s *Store) ListGroups(ctx context.Context, q storage.GroupQuery) (storage.GroupPage, error) {
	if q.Limit < 1 {
		return storage.GroupPage{}, fmt.Errorf("scylla: list groups: limit %d: %w", q.Limit, storage.ErrInvalidQuery)
	}
	if err := s.begin(ctx); err != nil {
		return storage.GroupPage{}, err
	}
	defer s.end()
	if err := s.startListing(ctx, q.AppID); err != nil {
		return storage.GroupPage{}, fmt.Errorf("scylla: list groups of %s: %w", q.AppID, err)
	}
	cursors := make([]*listCursor, listBuckets)
	for b := range cursors {
		cursors[b] = &listCursor{bucket: b, after: q.PageToken}
	}
	fetch := listFetch(q.Limit)
	if q.Status != storage.AnyGroup {
		fetch = q.Limit + 1 // most rows may be filtered out
	}
	// next returns the next row of the status asked for, by ID.
	next := func() (listRow, bool, error) {
		for {
			if err := s.readCursors(ctx, q.AppID, cursors, fetch); err != nil {
				return listRow{}, false, err
			}
			var first *listCursor
			for _, c := range cursors {
				if len(c.rows) > 0 && (first == nil || c.rows[0].id < first.rows[0].id) {
					first = c
				}
			}
			if first == nil {
				return listRow{}, false, nil // every bucket read to its end
			}
			row := first.rows[0]
			first.rows = first.rows[1:]
			if (q.Status == storage.OpenGroups && row.closed) || (q.Status == storage.ClosedGroups && !row.closed) {
				continue
			}
			return row, true, nil
		}
	}
	var page storage.GroupPage
	for {
		var batch []listRow
		for len(page.Groups)+len(batch) < q.Limit {
			row, ok, err := next()
			if err != nil {
				return storage.GroupPage{}, fmt.Errorf("scylla: list groups of %s: %w", q.AppID, err)
			}
			if !ok {
				break
			}
			batch = append(batch, row)
		}
		full := len(page.Groups)+len(batch) == q.Limit
		groups, err := s.getGroups(ctx, q.AppID, batch)
		if err != nil {
			return storage.GroupPage{}, err
		}
		page.Groups = append(page.Groups, groups...)
		if !full {
			return page, nil // the list ended
		}
		if len(page.Groups) == q.Limit {
			if _, more, err := next(); err != nil {
				return storage.GroupPage{}, fmt.Errorf("scylla: list groups of %s: %w", q.AppID, err)
			} else if more {
				page.NextPageToken = page.Groups[q.Limit-1].ID
			}
			return page, nil
		}
		// Some were deleted between the two reads: fill the page on.
	}
}

// getGroups reads the groups of rows, several at once, in their order;
// a group deleted since its row was read is left out.
func (s *Store) getGroups(ctx context.Context, appID string, rows []listRow) ([]storage.Group, error) {
	got := make([]storage.Group, len(rows))
	found := make([]bool, len(rows))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, r := range rows {
		g.Go(func() error {
			grp, err := s.getGroup(gctx, appID, r.id)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			got[i], found[i] = grp, err == nil
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := got[:0]
	for i := range got {
		if found[i] {
			out = append(out, got[i])
		}
	}
	return out, nil
}

// readCursors reads the next rows of every cursor that has none left
// and is not done, all at once.
func (s *Store) readCursors(ctx context.Context, appID string, cursors []*listCursor, fetch int) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range cursors {
		if len(c.rows) > 0 || c.done {
			continue
		}
		g.Go(func() error {
			it := s.query(gctx, `SELECT group_id, closed FROM app_group_list WHERE app_id = ? AND bucket = ? AND group_id > ? LIMIT ?`,
				appID, c.bucket, c.after, fetch).Iter()
			var r listRow
			for it.Scan(&r.id, &r.closed) {
				c.rows = append(c.rows, r)
			}
			if err := it.Close(); err != nil {
				return err
			}
			c.done = len(c.rows) < fetch
			if len(c.rows) > 0 {
				c.after = c.rows[len(c.rows)-1].id
			}
			return nil
		})
	}
	return g.Wait()
}

// listCopyStale is how long a copy of an app's list may go without a
// sign of life before another store takes it over; the copier renews
// its start at every listCopyPage rows.
const listCopyStale = 2 * time.Minute

// listCopyPage is how many rows of app_groups a copy reads at a time.
const listCopyPage = 1_000

// startListing makes sure an app's listing has been copied from
// app_groups, the list of liveim before the buckets: by the first store
// to ask (a lightweight transaction); the others wait for it, or take
// the copy over when its copier has stopped. An app made since has an
// empty app_groups and is started at once.
func (s *Store) startListing(ctx context.Context, appID string) error {
	s.cacheMu.Lock()
	started := s.listed[appID]
	s.cacheMu.Unlock()
	if started {
		return nil
	}
	// One start at a time in this store: a second caller finds it done.
	s.listStartMu.Lock()
	defer s.listStartMu.Unlock()
	for {
		var copied bool
		var startedAt time.Time
		var starter gocql.UUID
		err := s.query(ctx, `SELECT copied, started_at, starter FROM app_list_starts WHERE app_id = ?`, appID).
			Scan(&copied, &startedAt, &starter)
		switch {
		case err == nil && copied:
			s.cacheMu.Lock()
			s.listed[appID] = true
			s.cacheMu.Unlock()
			return nil
		case errors.Is(err, gocql.ErrNotFound):
			prev := map[string]any{}
			applied, err := s.query(ctx, `INSERT INTO app_list_starts (app_id, started_at, starter, copied) VALUES (?, ?, ?, false) IF NOT EXISTS`,
				appID, time.Now(), s.mark).MapScanCAS(prev)
			if err != nil {
				return err
			}
			if prior, ok := prev["starter"].(gocql.UUID); ok && prior == s.mark {
				applied = true // the driver's retry of this store's insert
			}
			if applied {
				if err := s.copyListing(ctx, appID); err != nil {
					return err
				}
			}
		case err != nil:
			return err
		case starter == s.mark || time.Since(startedAt) > listCopyStale:
			// This store's own earlier try, or a copier that stopped: the
			// copy is idempotent.
			if err := s.query(ctx, `UPDATE app_list_starts SET started_at = ?, starter = ? WHERE app_id = ?`, time.Now(), s.mark, appID).
				Exec(); err != nil {
				return err
			}
			if err := s.copyListing(ctx, appID); err != nil {
				return err
			}
		default:
			select { // another store is copying
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// copyListing copies app_groups' rows of an app into its buckets, each
// with the write time it has there, then marks the copy done. A list
// that cannot be read (the tombstones this file is about) fails the
// copy, and with it the app's listings, as they failed before; see
// docs/deploy.md, "Upgrading a ScyllaDB keyspace".
func (s *Store) copyListing(ctx context.Context, appID string) error {
	it := s.query(ctx, `SELECT group_id, closed, WRITETIME(closed) FROM app_groups WHERE app_id = ?`, appID).
		PageSize(listCopyPage).Iter()
	var rows []listRow
	var stamps []int64
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		batches := make(map[int]*gocql.Batch)
		for i, r := range rows {
			b := listBucket(r.id)
			if batches[b] == nil {
				batches[b] = s.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
			}
			batches[b].Query(`INSERT INTO app_group_list (app_id, bucket, group_id, closed) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
				appID, b, r.id, r.closed, max(stamps[i], 1))
		}
		for _, b := range batches {
			if err := b.Exec(); err != nil {
				return err
			}
		}
		rows, stamps = rows[:0], stamps[:0]
		return s.query(ctx, `UPDATE app_list_starts SET started_at = ? WHERE app_id = ?`, time.Now(), appID).Exec()
	}
	var r listRow
	var stamp int64
	copiedRows := 0
	for it.Scan(&r.id, &r.closed, &stamp) {
		rows = append(rows, r)
		stamps = append(stamps, stamp)
		copiedRows++
		if len(rows) == listCopyPage {
			if err := flush(); err != nil {
				_ = it.Close()
				return fmt.Errorf("copy app_groups: %w", err)
			}
		}
	}
	if err := it.Close(); err != nil {
		if strings.Contains(err.Error(), "TOMBSTONES") {
			s.log.Error("the app's groups from before the listing buckets could not be read; see docs/deploy.md, \"Upgrading a ScyllaDB keyspace\"",
				"app_id", appID, "read", copiedRows, "err", err)
		}
		return fmt.Errorf("copy app_groups: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("copy app_groups: %w", err)
	}
	if err := s.query(ctx, `UPDATE app_list_starts SET copied = true WHERE app_id = ?`, appID).Exec(); err != nil {
		return err
	}
	if copiedRows > 0 {
		s.log.Info("the app's groups were copied into the listing buckets", "app_id", appID, "groups", copiedRows)
	}
	s.cacheMu.Lock()
	s.listed[appID] = true
	s.cacheMu.Unlock()
	return nil
}
