package scylla

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// unlist deletes the listing rows of ids as DeleteGroup does, in a
// batch per bucket: the tombstones of that many deleted groups.
func unlist(t testing.TB, s *Store, appID string, ids []string) {
	t.Helper()
	byBucket := make(map[int][]string)
	for _, id := range ids {
		byBucket[listBucket(id)] = append(byBucket[listBucket(id)], id)
	}
	for bucket, ids := range byBucket {
		for i := 0; i < len(ids); i += 1_000 {
			b := s.session.Batch(gocql.UnloggedBatch).WithContext(t.Context())
			for _, id := range ids[i:min(i+1_000, len(ids))] {
				b.Query(`DELETE FROM app_group_list WHERE app_id = ? AND bucket = ? AND group_id = ?`, appID, bucket, id)
			}
			if err := b.Exec(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestListGroupsPastDeletedGroups: an app that has deleted more groups
// than a read may step over the tombstones of (100,000 on Cassandra,
// within gc_grace_seconds) still lists the groups it has.
func TestListGroupsPastDeletedGroups(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	for _, id := range []string{"a", "z"} {
		if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	gone := make([]string, 101_000)
	for i := range gone {
		gone[i] = fmt.Sprintf("gone-%06d", i)
	}
	unlist(t, s, "app", gone)
	page, err := s.ListGroups(ctx, storage.GroupQuery{AppID: "app", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range page.Groups {
		got = append(got, g.ID)
	}
	if fmt.Sprint(got) != "[a z]" || page.NextPageToken != "" {
		t.Fatalf("ListGroups = %v, next %q; want [a z]", got, page.NextPageToken)
	}
}

// TestListGroupsFromEarlierVersion: an app whose groups an earlier
// liveim listed in app_groups has them copied into the buckets at its
// first listing, once; what was written to the buckets meanwhile (a
// close, newer than the old row) wins over the copy.
func TestListGroupsFromEarlierVersion(t *testing.T) {
	ks := randomKeyspace()
	s := openTest(t, ks)
	ctx := t.Context()
	// As liveim before the buckets left them: listed in app_groups only,
	// written a while ago.
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("old-%02d", i)
		oldGroup(t, s, "app", id, time.Now().Add(-time.Hour))
		want = append(want, id)
	}
	// Changed by this version before the app's first listing.
	g, err := s.GetGroup(ctx, "app", "old-07")
	if err != nil {
		t.Fatal(err)
	}
	g.Closed = true
	if _, err := s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "app", "old-08"); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == "old-08" })
	if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: "new"}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "new")

	wantIDs(t, s, "app", storage.AnyGroup, want)
	wantIDs(t, s, "app", storage.ClosedGroups, []string{"old-07"})
	var starter gocql.UUID
	if err := s.session.Query(`SELECT starter FROM app_list_starts WHERE app_id = ?`, "app").Scan(&starter); err != nil || starter != s.mark {
		t.Fatalf("app_list_starts: starter %v, %v; want this store's %v", starter, err, s.mark)
	}
	// Another store lists the same, without a copy of its own.
	other, err := Open(ctx, testConfig(cqlHosts(t), ks), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wantIDs(t, other, "app", storage.AnyGroup, want)
	if err := s.session.Query(`SELECT starter FROM app_list_starts WHERE app_id = ?`, "app").Scan(&starter); err != nil || starter != s.mark {
		t.Fatalf("app_list_starts after the second store: starter %v, %v; want the first store's", starter, err)
	}
}

// TestListGroupsTakesOverAStoppedCopy: a copy whose store stopped
// halfway is taken over once it has gone quiet for listCopyStale; one
// that is alive is waited for.
func TestListGroupsTakesOverAStoppedCopy(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := t.Context()
	oldGroup(t, s, "app", "g1", time.Now())
	gone := gocql.TimeUUID()
	start := func(at time.Time) {
		if err := s.session.Query(`INSERT INTO app_list_starts (app_id, started_at, starter, copied) VALUES (?, ?, ?, false)`, "app", at, gone).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	start(time.Now())
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := s.ListGroups(short, storage.GroupQuery{AppID: "app", Limit: 10}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListGroups beside a live copy = %v, want it to wait (deadline exceeded)", err)
	}
	start(time.Now().Add(-listCopyStale - time.Second))
	wantIDs(t, s, "app", storage.AnyGroup, []string{"g1"})
}

func wantIDs(t *testing.T, s *Store, appID string, status storage.GroupStatus, want []string) {
	t.Helper()
	page, err := s.ListGroups(t.Context(), storage.GroupQuery{AppID: appID, Status: status, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range page.Groups {
		got = append(got, g.ID)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListGroups(%s, status %v) = %v, want %v", appID, status, got, want)
	}
}

// oldGroup writes an open group as liveim before the listing buckets
// did, at: its row, and its row in app_groups.
func oldGroup(t *testing.T, s *Store, appID, groupID string, at time.Time) {
	t.Helper()
	data, err := groupData(storage.Group{AppID: appID, ID: groupID})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.session.Query(`INSERT INTO groups (app_id, group_id, data, version) VALUES (?, ?, ?, 1)`, appID, groupID, data).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := s.session.Query(`INSERT INTO app_groups (app_id, group_id, closed) VALUES (?, ?, false) USING TIMESTAMP ?`, appID, groupID, at.UnixMicro()).Exec(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkListGroups: a page of 100 of an app's 2,000 groups, from the
// middle of the list; and a page of its open ones, 1 in 20.
func BenchmarkListGroups(b *testing.B) {
	s := openBench(b)
	ctx := b.Context()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range 2_000 {
		g.Go(func() error {
			_, _, err := s.CreateGroup(ctx, storage.Group{AppID: "app", ID: fmt.Sprintf("g%05d", i), Closed: i%20 != 0})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		status storage.GroupStatus
	}{{"all", storage.AnyGroup}, {"open", storage.OpenGroups}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				page, err := s.ListGroups(ctx, storage.GroupQuery{AppID: "app", Status: bc.status, Limit: 100, PageToken: "g01000"})
				if err != nil || len(page.Groups) == 0 {
					b.Fatalf("page of %d, %v", len(page.Groups), err)
				}
			}
		})
	}
}
