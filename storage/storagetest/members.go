package storagetest

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/liveim/liveim/storage"
)

// member returns a deterministic member with n sessions; tag varies the
// content so replaced records are told apart.
func member(userID, tag string, n int) storage.Member {
	m := storage.Member{UserID: userID, UserExt: "ext-" + tag, JoinTimeMs: int64(1_000 + len(tag)*7 + n)}
	for i := range n {
		m.Sessions = append(m.Sessions, storage.MemberSession{
			GatewayID: fmt.Sprintf("gw-%s-%d", tag, i),
			SessionID: fmt.Sprintf("sess-%s-%s-%d", userID, tag, i),
		})
	}
	return m
}

// mustSaveMembers calls SaveMembers, failing t on error.
func mustSaveMembers(t testing.TB, s storage.Store, appID, groupID string, upserts []storage.Member, removes []string) {
	t.Helper()
	if err := s.SaveMembers(t.Context(), appID, groupID, upserts, removes); err != nil {
		t.Fatalf("SaveMembers(%s/%s): %v", appID, groupID, err)
	}
}

// wantMembers fails t unless the group's members are exactly want, in any
// order.
func wantMembers(t testing.TB, s storage.Store, appID, groupID string, want ...storage.Member) {
	t.Helper()
	got, err := s.ListMembers(t.Context(), appID, groupID)
	if err != nil {
		t.Fatalf("ListMembers(%s/%s): %v", appID, groupID, err)
	}
	byUser := func(a, b storage.Member) int { return cmp.Compare(a.UserID, b.UserID) }
	got = slices.SortedFunc(slices.Values(got), byUser)
	want = slices.SortedFunc(slices.Values(want), byUser)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListMembers(%s/%s) =\n  %+v\nwant\n  %+v", appID, groupID, got, want)
	}
}

func testMembers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, bob := member("alice", "a", 1), member("bob", "b", 0)
	alice2 := member("alice", "a2", 2)
	carol, dave := member("carol", "c", 3), member("dave", "d", 1)

	// The steps build on each other, so they run in order and stop at the
	// first failure.
	steps := []struct {
		name    string
		upserts []storage.Member
		removes []string
		want    []storage.Member
	}{
		{"nil inputs on empty group", nil, nil, nil},
		{"empty inputs on empty group", []storage.Member{}, []string{}, nil},
		{"remove unknown on empty group", nil, []string{"nobody"}, nil},
		{"upsert", []storage.Member{alice, bob}, nil, []storage.Member{alice, bob}},
		{"upsert same again", []storage.Member{alice}, nil, []storage.Member{alice, bob}},
		{"replace with new sessions", []storage.Member{alice2}, nil, []storage.Member{alice2, bob}},
		{"empty inputs keep members", []storage.Member{}, []string{}, []storage.Member{alice2, bob}},
		{"remove", nil, []string{"bob"}, []storage.Member{alice2}},
		{"remove again", nil, []string{"bob"}, []storage.Member{alice2}},
		{"upsert and remove in one call", []storage.Member{carol, dave}, []string{"alice", "nobody"}, []storage.Member{carol, dave}},
		{"replace drops sessions", []storage.Member{member("carol", "c2", 0)}, nil, []storage.Member{member("carol", "c2", 0), dave}},
		{"remove all", nil, []string{"carol", "dave"}, nil},
		{"re-add after remove", []storage.Member{bob}, nil, []storage.Member{bob}},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			mustSaveMembers(t, s, "app", "g", st.upserts, st.removes)
			wantMembers(t, s, "app", "g", st.want...)
		}) {
			return
		}
	}

	t.Run("never-used group", func(t *testing.T) {
		wantMembers(t, s, "app", "never")
	})
	t.Run("group records untouched", func(t *testing.T) {
		// Members of a group that was never created do not make it exist.
		_, err := s.GetGroup(ctx, "app", "g")
		wantErr(t, "GetGroup of a group with only members", err, storage.ErrNotFound)
		if n, err := s.CountGroups(ctx, "app"); err != nil || n != 0 {
			t.Fatalf("CountGroups = %d, %v; want 0", n, err)
		}
		// Creating and replacing the group keeps its members.
		mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "n"})
		mustPutGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "n2", Closed: true, Version: 1})
		wantMembers(t, s, "app", "g", bob)
	})
	t.Run("results not aliased", func(t *testing.T) {
		in := member("erin", "e", 2)
		mustSaveMembers(t, s, "app", "alias", []storage.Member{in}, nil)
		in.Sessions[0].SessionID = "changed-after-save"
		got, err := s.ListMembers(ctx, "app", "alias")
		if err != nil || len(got) != 1 {
			t.Fatalf("ListMembers = %+v, %v; want one member", got, err)
		}
		got[0].Sessions[1].GatewayID = "changed-after-list"
		wantMembers(t, s, "app", "alias", member("erin", "e", 2))
	})
}

func testMembersIsolated(t *testing.T, s storage.Store) {
	// Group and app IDs that are prefixes of each other must not leak; every
	// group has the same user IDs with different content.
	groups := []struct{ app, group string }{
		{"a", "g"}, {"a", "g-1"}, {"a", "g1"}, {"a-1", "g"}, {"b", "g"}, {"b", "g-1"},
	}
	users := []string{"u", "u-1", "u1"}
	want := map[string][]storage.Member{}
	for _, g := range groups {
		tag := g.app + "." + g.group
		var ms []storage.Member
		for i, u := range users {
			ms = append(ms, member(u, tag, i))
		}
		mustSaveMembers(t, s, g.app, g.group, ms, nil)
		want[tag] = ms
	}
	// Remove and replace in two of the groups only.
	mustSaveMembers(t, s, "a", "g", []storage.Member{member("u1", "new", 2)}, []string{"u"})
	want["a.g"] = []storage.Member{want["a.g"][1], member("u1", "new", 2)}
	mustSaveMembers(t, s, "b", "g-1", nil, users)
	want["b.g-1"] = nil

	for _, g := range groups {
		t.Run(g.app+"/"+g.group, func(t *testing.T) {
			wantMembers(t, s, g.app, g.group, want[g.app+"."+g.group]...)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		wantMembers(t, s, "a", "g-")
		wantMembers(t, s, "a-", "g")
		wantMembers(t, s, "c", "g")
	})
}

func testMembersMany(t *testing.T, s storage.Store) {
	const n = 2500
	var all []storage.Member
	var odd []string
	for i := range n {
		m := member(fmt.Sprintf("user-%d", i), "many", i%3)
		all = append(all, m)
		if i%2 == 1 {
			odd = append(odd, m.UserID)
		}
	}
	mustSaveMembers(t, s, "app", "big", all, nil)
	wantMembers(t, s, "app", "big", all...)
	mustSaveMembers(t, s, "app", "big", nil, odd)
	var even []storage.Member
	for i := 0; i < n; i += 2 {
		even = append(even, all[i])
	}
	wantMembers(t, s, "app", "big", even...)
}

func testMembersConcurrent(t *testing.T, s storage.Store) {
	const writers, perWriter = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Each writer adds its user i and removes its user i-1, and
				// a reader runs alongside.
				up := []storage.Member{member(fmt.Sprintf("w%d-u%d", w, i), "c", 1)}
				var rm []string
				if i > 0 {
					rm = []string{fmt.Sprintf("w%d-u%d", w, i-1)}
				}
				if err := s.SaveMembers(t.Context(), "app", "g", up, rm); err != nil {
					t.Errorf("SaveMembers: %v", err)
					return
				}
				if _, err := s.ListMembers(t.Context(), "app", "g"); err != nil {
					t.Errorf("ListMembers: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var want []storage.Member
	for w := range writers {
		want = append(want, member(fmt.Sprintf("w%d-u%d", w, perWriter-1), "c", 1))
	}
	wantMembers(t, s, "app", "g", want...)
}

// testMembersChurn: a live room's viewers come and go all day. After more
// leaves than a CQL server reads tombstones in one query (Cassandra
// refuses a read past 100,000), the group still lists exactly the members
// present, kept through whatever the store does to stay readable.
func testMembersChurn(t *testing.T, s storage.Store) {
	const rounds, viewers = 120, 1_000
	host, early := member("host", "h", 1), member("early", "e", 2)
	host2 := member("host", "h2", 3)
	late := member("late", "l", 1)
	mustSaveMembers(t, s, "app", "live", []storage.Member{host, early}, nil)
	want := []storage.Member{host, early}
	for r := range rounds {
		var come []storage.Member
		var gone []string
		for v := range viewers {
			m := member(fmt.Sprintf("viewer-%d-%d", r, v), "v", v%2)
			come = append(come, m)
			gone = append(gone, m.UserID)
		}
		mustSaveMembers(t, s, "app", "live", come, nil)
		switch r {
		case 40: // the host reconnects: new sessions, same member
			mustSaveMembers(t, s, "app", "live", []storage.Member{host2}, nil)
			want = []storage.Member{host2, early}
		case 70:
			mustSaveMembers(t, s, "app", "live", []storage.Member{late}, []string{"early"})
			want = []storage.Member{host2, late}
		}
		mustSaveMembers(t, s, "app", "live", nil, gone)
		if r == 60 {
			wantMembers(t, s, "app", "live", want...)
		}
	}
	wantMembers(t, s, "app", "live", want...)
}
