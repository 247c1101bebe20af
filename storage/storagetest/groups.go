package storagetest

import (
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
	first := storage.Group{AppID: "app", ID: "g", Name: "first", Creator: "u1", CreateTimeMs: 1}
	mustCreateGroup(t, s, first)
	second := first
	second.Name, second.Creator = "second", "u2"
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
	got, err := s.GetGroup(ctx, "app", "g")
	if err != nil {
		t.Fatalf("GetGroup: %v", err)
	}
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("GetGroup = %+v, want the first group %+v", got, first)
	}
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
	got, err := s.GetGroup(t.Context(), "app", "race")
	if err != nil || !reflect.DeepEqual(got, winners[0]) {
		t.Fatalf("GetGroup = %+v, %v; want the winner %+v", got, err, winners[0])
	}
}

func testGroupRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
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
				MsgAmount: map[int32]int64{1: 10, 2: 20, -1: 3},
			},
		},
		{
			name: "clear slices and maps",
			create: storage.Group{
				AppID: "app", ID: "clear", Admins: []string{"a"}, MutedUsers: []string{"m"},
				MsgAmount: map[int32]int64{1: 1},
			},
			put: storage.Group{AppID: "app", ID: "clear", Name: "cleared"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustCreateGroup(t, s, tc.create)
			got, err := s.GetGroup(ctx, tc.create.AppID, tc.create.ID)
			if err != nil || !reflect.DeepEqual(got, tc.create) {
				t.Fatalf("GetGroup after create = %+v, %v; want %+v", got, err, tc.create)
			}
			if err := s.PutGroup(ctx, tc.put); err != nil {
				t.Fatalf("PutGroup: %v", err)
			}
			got, err = s.GetGroup(ctx, tc.put.AppID, tc.put.ID)
			if err != nil || !reflect.DeepEqual(got, tc.put) {
				t.Fatalf("GetGroup after put = %+v, %v; want %+v", got, err, tc.put)
			}
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
			err = s.PutGroup(ctx, storage.Group{AppID: tc.app, ID: tc.group, Name: "x"})
			wantErr(t, "PutGroup", err, storage.ErrNotFound)
			_, err = s.GetGroup(ctx, tc.app, tc.group)
			wantErr(t, "GetGroup after failed PutGroup", err, storage.ErrNotFound)
		})
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
}

func testGroupsIsolatedAcrossApps(t *testing.T, s storage.Store) {
	ctx := t.Context()
	g1 := storage.Group{AppID: "app-1", ID: "room", Name: "one", Admins: []string{"x"}}
	g2 := storage.Group{AppID: "app-2", ID: "room", Name: "two", PV: 5}
	mustCreateGroup(t, s, g1)
	mustCreateGroup(t, s, g2)
	g1.Name = "one-b"
	if err := s.PutGroup(ctx, g1); err != nil {
		t.Fatalf("PutGroup: %v", err)
	}
	for _, want := range []storage.Group{g1, g2} {
		got, err := s.GetGroup(ctx, want.AppID, want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetGroup(%s/%s) = %+v, %v; want %+v", want.AppID, want.ID, got, err, want)
		}
	}
}
