package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/liveim/liveim/storage"
)

// testListApps: every app, by ID, with all its settings.
func testListApps(t *testing.T, s storage.Store) {
	ctx := t.Context()
	want := []storage.App{
		{ID: "b-app", Key: "k2", CallbackURL: "https://cb.example/x", CallbackEvents: []string{"message", "join"},
			GatewayURLs: []string{"wss://live.example/ws"}, RoomRate: 50, PreviousKey: "k1", PreviousKeyUntilMs: 1_700_000_000_000},
		{ID: "a-app", Key: "k1", Disabled: true},
	}
	for _, a := range want {
		if err := s.PutApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListApps = %+v, want %+v", got, want)
	}
}

// testListGroups: an app's groups by ID, in pages, by status, apart from
// other apps' (one of them a prefix of the other's ID).
func testListGroups(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var open, closed []string
	for i := range 7 {
		g := mustCreateGroup(t, s, storage.Group{AppID: "a", ID: fmt.Sprintf("g%02d", i), Name: "n"})
		if i%3 == 0 {
			g.Closed = true
			if _, err := s.PutGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
			closed = append(closed, g.ID)
		} else {
			open = append(open, g.ID)
		}
	}
	mustCreateGroup(t, s, storage.Group{AppID: "ab", ID: "g00"})
	all := append(slices.Clone(open), closed...)
	slices.Sort(all)
	for _, tc := range []struct {
		name   string
		status storage.GroupStatus
		limit  int
		want   []string
	}{
		{"all, pages of 3", storage.AnyGroup, 3, all},
		{"all at once", storage.AnyGroup, 100, all},
		{"open, pages of 2", storage.OpenGroups, 2, open},
		{"closed, pages of 1", storage.ClosedGroups, 1, closed},
	} {
		t.Run(tc.name, func(t *testing.T) { wantListing(t, s, "a", tc.status, tc.limit, tc.want) })
	}
	// Many groups, some deleted: every page in ID order, whatever the
	// store spreads them over.
	var many, manyOpen, manyClosed []string
	for i := range 90 {
		id := fmt.Sprintf("m%03d", i*37%90)
		g := mustCreateGroup(t, s, storage.Group{AppID: "m", ID: id, Name: "n"})
		switch {
		case i%9 == 4:
			if err := s.DeleteGroup(ctx, "m", id); err != nil {
				t.Fatal(err)
			}
			continue
		case i%4 == 0:
			g.Closed = true
			if _, err := s.PutGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
			manyClosed = append(manyClosed, id)
		default:
			manyOpen = append(manyOpen, id)
		}
		many = append(many, id)
	}
	slices.Sort(many)
	slices.Sort(manyOpen)
	slices.Sort(manyClosed)
	for _, limit := range []int{1, 7, 100} {
		t.Run(fmt.Sprintf("many, pages of %d", limit), func(t *testing.T) {
			wantListing(t, s, "m", storage.AnyGroup, limit, many)
			wantListing(t, s, "m", storage.OpenGroups, limit, manyOpen)
			wantListing(t, s, "m", storage.ClosedGroups, limit, manyClosed)
		})
	}
	if _, err := s.ListGroups(ctx, storage.GroupQuery{AppID: "a"}); !errors.Is(err, storage.ErrInvalidQuery) {
		t.Fatalf("limit 0: %v", err)
	}
}

// testDeleteGroup: a deleted group is gone with its members, history and
// deletions; its ID is free and other groups are untouched.
func testDeleteGroup(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g"})
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "keep"})
	appendRange(t, s, "app", "g", 1, 5)
	appendRange(t, s, "app", "keep", 1, 3)
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-2", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMembers(ctx, "app", "g", []storage.Member{{UserID: "u", JoinTimeMs: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(ctx, "app", "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetGroup(ctx, "app", "g"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetGroup after delete: %v", err)
	}
	if n, err := s.CountGroups(ctx, "app"); err != nil || n != 1 {
		t.Fatalf("CountGroups = %d, %v; want 1", n, err)
	}
	if err := s.DeleteGroup(ctx, "app", "g"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting again: %v", err)
	}
	// The ID is free: a new group of that ID has no past.
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g"})
	page, err := s.ListMessages(ctx, storage.MessageQuery{AppID: "app", GroupID: "g", Limit: 10})
	if err != nil || len(page.Messages) != 0 {
		t.Fatalf("history of the new group: %v, %v", page.Messages, err)
	}
	if last, err := s.LastSeq(ctx, "app", "g"); err != nil || last != 0 {
		t.Fatalf("LastSeq of the new group: %d, %v", last, err)
	}
	if _, err := s.GetMessage(ctx, "app", "g", "msg-3"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a message of the deleted group: %v", err)
	}
	if dels, err := s.ListDeletions(ctx, "app", "g", 0, 10); err != nil || len(dels) != 0 {
		t.Fatalf("deletions of the new group: %v, %v", dels, err)
	}
	if ms, err := s.ListMembers(ctx, "app", "g"); err != nil || len(ms) != 0 {
		t.Fatalf("members of the new group: %v, %v", ms, err)
	}
	if page, err := s.ListMessages(ctx, storage.MessageQuery{AppID: "app", GroupID: "keep", Limit: 10}); err != nil || len(page.Messages) != 3 {
		t.Fatalf("the other group's history: %d, %v", len(page.Messages), err)
	}
}

// wantListing pages through an app's groups of status, limit at a time,
// and wants the IDs of want, in that order.
func wantListing(t *testing.T, s storage.Store, appID string, status storage.GroupStatus, limit int, want []string) {
	t.Helper()
	var got []string
	q := storage.GroupQuery{AppID: appID, Status: status, Limit: limit}
	for pages := 0; ; pages++ {
		if pages > len(want)+1 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListGroups(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Groups) > limit {
			t.Fatalf("a page of %d, limit %d", len(page.Groups), limit)
		}
		for _, g := range page.Groups {
			got = append(got, g.ID)
			if g.AppID != appID || g.Name != "n" || g.Version == 0 {
				t.Fatalf("group %+v", g)
			}
		}
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListGroups(%s, status %v, pages of %d) = %v, want %v", appID, status, limit, got, want)
	}
}

// testUpdateApp: concurrent changes of an app all land (none lost to
// another's write), a change's error is returned and stores nothing, and
// an unknown app is ErrNotFound.
func testUpdateApp(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if err := s.PutApp(ctx, storage.App{ID: "app", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := s.UpdateApp(ctx, "app", func(a *storage.App) error {
				a.BlockedWords = append(a.BlockedWords, fmt.Sprintf("w%d", i))
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetApp(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.BlockedWords) != writers || got.Key != "k" {
		t.Fatalf("after %d concurrent changes: %+v", writers, got)
	}
	refused := errors.New("refused")
	if _, err := s.UpdateApp(ctx, "app", func(a *storage.App) error { a.Key = "other"; return refused }); err != refused {
		t.Fatalf("a change that fails: %v, want its error", err)
	}
	if got, _ := s.GetApp(ctx, "app"); got.Key != "k" {
		t.Fatalf("a failed change was stored: key %q", got.Key)
	}
	if _, err := s.UpdateApp(ctx, "nope", func(*storage.App) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an unknown app: %v", err)
	}
}
