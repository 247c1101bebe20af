package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/liveim/liveim/storage"
)

func testApps(t *testing.T, s storage.Store) {
	ctx := t.Context()
	apps := []storage.App{
		{ID: "app-1", Key: "key-1", CreatedAtMs: 1_700_000_000_000},
		{ID: "app-10", Key: "key-10", CreatedAtMs: 1_700_000_000_001, RetentionDays: 7},
		{
			ID: "app-full", Key: "key-full", CreatedAtMs: 1_700_000_000_002, RetentionDays: 1,
			BlockedWords: []string{"spam", "Bad Word", "ünïcode"}, AuditURL: "http://audit.example/hook?x=1&y=2",
			AuditFailOpen: true, MaxGroups: 500,
		},
		{
			ID: "app-audit", Key: "key-audit", BlockedWords: []string{"x"},
			AuditURL: "https://audit.example/", MaxGroups: 1,
		},
	}
	for _, a := range apps {
		if err := s.PutApp(ctx, a); err != nil {
			t.Fatalf("PutApp(%s): %v", a.ID, err)
		}
	}
	replaced := apps[0]
	replaced.Key, replaced.RetentionDays = "key-1b", 30
	replaced.BlockedWords, replaced.AuditURL, replaced.MaxGroups = []string{"new"}, "http://a/", 3
	// Replacing an app with zero values clears the new fields.
	cleared := storage.App{ID: "app-audit", Key: "key-audit-2"}
	for _, a := range []storage.App{replaced, cleared} {
		if err := s.PutApp(ctx, a); err != nil {
			t.Fatalf("PutApp(replace %s): %v", a.ID, err)
		}
	}
	for _, tc := range []struct {
		name string
		id   string
		want storage.App
		err  error
	}{
		{"replaced", "app-1", replaced, nil},
		{"second", "app-10", apps[1], nil},
		{"all fields", "app-full", apps[2], nil},
		{"replaced with zero fields", "app-audit", cleared, nil},
		{"missing", "app-2", storage.App{}, storage.ErrNotFound},
		{"prefix of existing", "app", storage.App{}, storage.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetApp(ctx, tc.id)
			wantErr(t, "GetApp", err, tc.err)
			if tc.err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("GetApp(%s) = %+v, want %+v", tc.id, got, tc.want)
			}
		})
	}
}

func testCreateGroup(t *testing.T, s storage.Store) {
	ctx := t.Context()
	// The Version passed in is ignored: a new group starts at 1.
	first := mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "first", Creator: "u1", CreateTimeMs: 1, Version: 7})
	wantGroup(t, s, "after create", first)
	second := first
	second.Name, second.Creator, second.Version = "second", "u2", 0
	existing, created, err := s.CreateGroup(ctx, second)
	if err != nil {
		t.Fatalf("CreateGroup(again): %v", err)
	}
	if created {
		t.Fatal("CreateGroup(again): created=true for an existing group")
	}
	if !reflect.DeepEqual(existing, first) {
		t.Fatalf("CreateGroup(again) existing = %+v, want %+v", existing, first)
	}
	wantGroup(t, s, "after second create", first)

	// An existing group keeps its version: CreateGroup neither resets nor
	// bumps it.
	put := first
	put.Name = "put"
	put = mustPutGroup(t, s, put)
	existing, created, err = s.CreateGroup(ctx, second)
	if err != nil || created {
		t.Fatalf("CreateGroup(after put): created=%v err=%v", created, err)
	}
	if !reflect.DeepEqual(existing, put) {
		t.Fatalf("CreateGroup(after put) existing = %+v, want %+v (version %d)", existing, put, put.Version)
	}
	wantGroup(t, s, "after create of a put group", put)
}

func testCreateGroupConcurrent(t *testing.T, s storage.Store) {
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []storage.Group
		seen    []storage.Group
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := storage.Group{AppID: "app", ID: "race", Name: string(rune('a' + i))}
			existing, created, err := s.CreateGroup(t.Context(), g)
			if err != nil {
				t.Errorf("CreateGroup: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if created {
				g.Version = 1
				winners = append(winners, g)
			} else {
				seen = append(seen, existing)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent CreateGroup calls created the group, want exactly 1", len(winners), n)
	}
	for _, g := range seen {
		if !reflect.DeepEqual(g, winners[0]) {
			t.Fatalf("losing CreateGroup got existing %+v, want the winner %+v", g, winners[0])
		}
	}
	wantGroup(t, s, "after the race", winners[0])
}

func testGroupRoundTrip(t *testing.T, s storage.Store) {
	for _, tc := range []struct {
		name   string
		create storage.Group
		put    storage.Group
	}{
		{
			name:   "minimal",
			create: storage.Group{AppID: "app", ID: "min"},
			put:    storage.Group{AppID: "app", ID: "min", Name: "renamed"},
		},
		{
			name:   "full state",
			create: storage.Group{AppID: "app", ID: "full", Name: "n", Meta: `{"k":"v"}`, Creator: "u1", CreateTimeMs: 42},
			put: storage.Group{
				AppID: "app", ID: "full", Name: "n2", Meta: `{"k":"w"}`, Creator: "u1",
				Admins: []string{"u1", "u2"}, CreateTimeMs: 42, Closed: true, MuteAll: true,
				MutedUsers: []string{"u3"}, WhiteUsers: []string{"u4", "u5"}, PV: 99,
				MsgAmount: map[int32]int64{1: 10, 2: 20, -1: 3}, SeqReserved: 1_000,
			},
		},
		{
			name: "clear slices and maps",
			create: storage.Group{
				AppID: "app", ID: "clear", Admins: []string{"a"}, MutedUsers: []string{"m"},
				MsgAmount: map[int32]int64{1: 1}, SeqReserved: 5,
			},
			put: storage.Group{AppID: "app", ID: "clear", Name: "cleared"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created := mustCreateGroup(t, s, tc.create)
			wantGroup(t, s, "after create", created)
			put := tc.put
			put.Version = created.Version
			wantGroup(t, s, "after put", mustPutGroup(t, s, put))
		})
	}
}

func testGroupNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g-1"})
	for _, tc := range []struct{ name, app, group string }{
		{"unknown group", "app", "g-2"},
		{"prefix of existing", "app", "g"},
		{"other app", "app-2", "g-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GetGroup(ctx, tc.app, tc.group)
			wantErr(t, "GetGroup", err, storage.ErrNotFound)
			// Not found wins over any version: there is nothing to conflict
			// with.
			for _, version := range []int64{0, 1, 2} {
				v, err := s.PutGroup(ctx, storage.Group{AppID: tc.app, ID: tc.group, Name: "x", Version: version})
				wantErr(t, fmt.Sprintf("PutGroup(version %d)", version), err, storage.ErrNotFound)
				if v != 0 {
					t.Fatalf("failed PutGroup returned version %d, want 0", v)
				}
			}
			_, err = s.GetGroup(ctx, tc.app, tc.group)
			wantErr(t, "GetGroup after failed PutGroup", err, storage.ErrNotFound)
		})
	}
}

func testGroupVersions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "v1"})

	// Writing with the current version succeeds and bumps it, each time.
	read, err := s.GetGroup(ctx, "app", "g")
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	old := read // a reader that falls behind
	for i, name := range []string{"v2", "v3", "v4"} {
		read.Name = name
		read.PV = int64(i)
		read = mustPutGroup(t, s, read)
		if read.Version != int64(i+2) {
			t.Fatalf("after put %d: version %d, want %d", i+1, read.Version, i+2)
		}
		wantGroup(t, s, "after put "+name, read)
	}

	// A write with a stale version (or any other version but the stored
	// one) is refused and changes nothing.
	for _, tc := range []struct {
		name    string
		version int64
	}{
		{"old read", old.Version},
		{"one behind", read.Version - 1},
		{"zero", 0},
		{"ahead", read.Version + 1},
		{"negative", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stale := old
			stale.Name, stale.Closed, stale.Admins, stale.Version = "stale", true, []string{"x"}, tc.version
			v, err := s.PutGroup(ctx, stale)
			wantErr(t, "PutGroup(stale)", err, storage.ErrConflict)
			if errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("PutGroup(stale) error %v is also ErrNotFound", err)
			}
			if v != 0 {
				t.Fatalf("failed PutGroup returned version %d, want 0", v)
			}
			wantGroup(t, s, "after stale PutGroup", read)
		})
	}

	// The refused writer re-reads and retries with the version it got.
	fresh, err := s.GetGroup(ctx, "app", "g")
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	fresh.Name = "retried"
	fresh = mustPutGroup(t, s, fresh)
	wantGroup(t, s, "after retry", fresh)

	// Versions are per group: another group starts at 1 and moves alone.
	other := mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g2"})
	other = mustPutGroup(t, s, other)
	wantGroup(t, s, "other group", other)
	if other.Version != 2 {
		t.Fatalf("other group version %d, want 2", other.Version)
	}
	wantGroup(t, s, "first group after other's put", fresh)
}

func testPutGroupConcurrent(t *testing.T, s storage.Store) {
	const writers, rounds = 8, 10
	ctx := t.Context()
	cur := mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "race", Name: "start"})
	for round := range rounds {
		// Every writer read the same version; exactly one may write.
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			winners   []storage.Group
			conflicts int
		)
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := cur
				g.Name = fmt.Sprintf("round %d writer %d", round, w)
				g.PV = int64(w)
				<-start
				v, err := s.PutGroup(ctx, g)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					g.Version = v
					winners = append(winners, g)
				case errors.Is(err, storage.ErrConflict):
					conflicts++
				default:
					t.Errorf("PutGroup: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		if len(winners) != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d of %d writers of version %d succeeded and %d conflicted; want exactly 1 and %d",
				round, len(winners), writers, cur.Version, conflicts, writers-1)
		}
		if want := cur.Version + 1; winners[0].Version != want {
			t.Fatalf("round %d: winner got version %d, want %d", round, winners[0].Version, want)
		}
		wantGroup(t, s, fmt.Sprintf("round %d", round), winners[0])
		cur = winners[0]
	}
}

func testCountGroups(t *testing.T, s storage.Store) {
	ctx := t.Context()
	groups := map[string][]string{
		"a":   {"g1", "g2", "g3"},
		"ab":  {"g1"}, // "a" is a prefix of "ab": must not be counted for "a"
		"a-b": {"g1", "g2"},
	}
	for app, ids := range groups {
		for _, id := range ids {
			mustCreateGroup(t, s, storage.Group{AppID: app, ID: id})
		}
	}
	// Re-creating an existing group must not change the count.
	if _, created, err := s.CreateGroup(ctx, storage.Group{AppID: "a", ID: "g1"}); err != nil || created {
		t.Fatalf("CreateGroup(existing) created=%v err=%v", created, err)
	}
	for _, tc := range []struct {
		app  string
		want int
	}{{"a", 3}, {"ab", 1}, {"a-b", 2}, {"none", 0}} {
		t.Run(tc.app, func(t *testing.T) {
			n, err := s.CountGroups(ctx, tc.app)
			if err != nil || n != tc.want {
				t.Fatalf("CountGroups(%s) = %d, %v; want %d", tc.app, n, err, tc.want)
			}
		})
	}
	// A closed group leaves the count; reopened, it is back.
	count := func(want int) {
		t.Helper()
		if n, err := s.CountGroups(ctx, "a"); err != nil || n != want {
			t.Fatalf("CountGroups(a) = %d, %v; want %d", n, err, want)
		}
	}
	g, err := s.GetGroup(ctx, "a", "g2")
	if err != nil {
		t.Fatal(err)
	}
	g.Closed = true
	if g.Version, err = s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	count(2)
	if _, created, err := s.CreateGroup(ctx, storage.Group{AppID: "a", ID: "g2"}); err != nil || created {
		t.Fatalf("CreateGroup(closed) created=%v err=%v", created, err)
	}
	count(2) // creating a closed group again does not reopen it
	g.Closed = false
	if g.Version, err = s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	count(3)
	// A write that leaves the flag as it was changes nothing.
	g.Name = "renamed"
	if g.Version, err = s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	count(3)
	// Deleting an open group frees its place; a closed one had none.
	if err := s.DeleteGroup(ctx, "a", "g1"); err != nil {
		t.Fatal(err)
	}
	count(2)
	g.Closed = true
	if g.Version, err = s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	count(1)
	if err := s.DeleteGroup(ctx, "a", "g2"); err != nil {
		t.Fatal(err)
	}
	count(1)
}

func testGroupsIsolatedAcrossApps(t *testing.T, s storage.Store) {
	ctx := t.Context()
	g1 := mustCreateGroup(t, s, storage.Group{AppID: "app-1", ID: "room", Name: "one", Admins: []string{"x"}})
	g2 := mustCreateGroup(t, s, storage.Group{AppID: "app-2", ID: "room", Name: "two", PV: 5})
	g1.Name = "one-b"
	g1 = mustPutGroup(t, s, g1)
	for _, want := range []storage.Group{g1, g2} {
		wantGroup(t, s, "isolated", want)
	}
	// g2 is still at version 1, whatever app-1's room went through.
	stale := g2
	stale.Version = g1.Version
	_, err := s.PutGroup(ctx, stale)
	wantErr(t, "PutGroup(app-2 room with app-1 room's version)", err, storage.ErrConflict)
	mustPutGroup(t, s, g2)
}
