package pebble_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
	"github.com/liveim/liveim/storage/storagetest"
)

func open(t testing.TB, dir string, opts pebble.Options) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return open(t, t.TempDir(), pebble.Options{NoSync: true})
	})
}

func TestConformanceSync(t *testing.T) {
	if testing.Short() {
		t.Skip("fsync on every write is slow")
	}
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return open(t, t.TempDir(), pebble.Options{})
	})
}

func TestPersistence(t *testing.T) {
	storagetest.RunPersistence(t, func(t testing.TB, dir string) storage.Store {
		return open(t, dir, pebble.Options{CacheSize: 1 << 20})
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts pebble.Options
	}{{"sync", pebble.Options{}}, {"nosync", pebble.Options{NoSync: true}}} {
		b.Run(bc.name, func(b *testing.B) { storagetest.BenchAppend(b, open(b, b.TempDir(), bc.opts)) })
	}
}

// BenchmarkAppendMessageWithHistory: 1,000 groups of 200 messages
// before the timed appends (without fsync, which would hide the reads).
func BenchmarkAppendMessageWithHistory(b *testing.B) {
	storagetest.BenchAppendWithHistory(b, open(b, b.TempDir(), pebble.Options{NoSync: true}), 1000, 200)
}

func BenchmarkAppendMessageParallel(b *testing.B) {
	storagetest.BenchAppendParallel(b, open(b, b.TempDir(), pebble.Options{}), 16)
}

func BenchmarkAppendOneGroupParallel(b *testing.B) {
	storagetest.BenchAppendOneGroupParallel(b, open(b, b.TempDir(), pebble.Options{}), 16)
}

func BenchmarkPutGroupParallel(b *testing.B) {
	storagetest.BenchPutGroupParallel(b, open(b, b.TempDir(), pebble.Options{}), 16)
}

func BenchmarkListMessagesDesc50(b *testing.B) {
	storagetest.BenchListDesc50(b, open(b, b.TempDir(), pebble.Options{NoSync: true}), 10_000)
}

func TestSaveMembersSemantics(t *testing.T) {
	s := open(t, t.TempDir(), pebble.Options{NoSync: true})
	ctx := t.Context()
	alice := storage.Member{UserID: "alice", JoinTimeMs: 1, Sessions: []storage.MemberSession{{GatewayID: "gw", SessionID: "s1"}}}
	bob := storage.Member{UserID: "bob", JoinTimeMs: 2}
	if err := s.SaveMembers(ctx, "app", "g", []storage.Member{alice, bob}, nil); err != nil {
		t.Fatalf("SaveMembers: %v", err)
	}
	list := func() []storage.Member {
		t.Helper()
		ms, err := s.ListMembers(ctx, "app", "g")
		if err != nil {
			t.Fatalf("ListMembers: %v", err)
		}
		return ms
	}

	// An empty user ID is refused and nothing of the call is written.
	for _, tc := range []struct {
		name    string
		upserts []storage.Member
		removes []string
	}{
		{"upsert", []storage.Member{{UserID: "carol"}, {}}, []string{"alice"}},
		{"remove", []storage.Member{{UserID: "carol"}}, []string{"alice", ""}},
	} {
		if err := s.SaveMembers(ctx, "app", "g", tc.upserts, tc.removes); err == nil {
			t.Fatalf("SaveMembers with empty user ID (%s): no error", tc.name)
		}
		if got := list(); !reflect.DeepEqual(got, []storage.Member{alice, bob}) {
			t.Fatalf("after refused SaveMembers (%s): %+v, want alice and bob untouched", tc.name, got)
		}
	}

	// Upserts apply before removes, in order: the last upsert of a user
	// wins, and a user both upserted and removed ends up removed.
	alice2 := alice
	alice2.JoinTimeMs = 9
	carol := storage.Member{UserID: "carol"}
	if err := s.SaveMembers(ctx, "app", "g", []storage.Member{alice, alice2, bob, carol}, []string{"bob"}); err != nil {
		t.Fatalf("SaveMembers: %v", err)
	}
	// Sorted by user ID, though callers must not rely on it.
	if got := list(); !reflect.DeepEqual(got, []storage.Member{alice2, carol}) {
		t.Fatalf("ListMembers = %+v, want alice (last upsert) and carol", got)
	}
}

func TestCanceledContext(t *testing.T) {
	s := open(t, t.TempDir(), pebble.Options{NoSync: true})
	if err := s.SaveMembers(t.Context(), "a", "g", []storage.Member{{UserID: "u"}}, nil); err != nil {
		t.Fatalf("SaveMembers: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"PutApp", func() error { return s.PutApp(ctx, storage.App{ID: "a"}) }},
		{"GetApp", func() error { _, err := s.GetApp(ctx, "a"); return err }},
		{"CreateGroup", func() error { _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "a", ID: "g"}); return err }},
		{"GetGroup", func() error { _, err := s.GetGroup(ctx, "a", "g"); return err }},
		{"PutGroup", func() error { _, err := s.PutGroup(ctx, storage.Group{AppID: "a", ID: "g"}); return err }},
		{"CountGroups", func() error { _, err := s.CountGroups(ctx, "a"); return err }},
		{"AppendMessage", func() error {
			return s.AppendMessage(ctx, storage.Message{AppID: "a", GroupID: "g", ID: "m", Seq: 1})
		}},
		{"LastSeq", func() error { _, err := s.LastSeq(ctx, "a", "g"); return err }},
		{"ListMessages", func() error {
			_, err := s.ListMessages(ctx, storage.MessageQuery{AppID: "a", GroupID: "g", Limit: 1})
			return err
		}},
		{"GetMessage", func() error { _, err := s.GetMessage(ctx, "a", "g", "m"); return err }},
		{"DeleteMessage", func() error { _, err := s.DeleteMessage(ctx, "a", "g", "m", 1); return err }},
		{"SaveMembers", func() error { return s.SaveMembers(ctx, "a", "g", nil, []string{"u"}) }},
		{"ListMembers", func() error { _, err := s.ListMembers(ctx, "a", "g"); return err }},
	} {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with canceled context: %v, want context.Canceled", tc.name, err)
		}
	}
	if ms, err := s.ListMembers(t.Context(), "a", "g"); err != nil || len(ms) != 1 {
		t.Fatalf("ListMembers = %+v, %v; want the member a canceled SaveMembers left alone", ms, err)
	}
}

func BenchmarkDeleteGroup2000(b *testing.B) {
	storagetest.BenchDeleteGroup(b, open(b, b.TempDir(), pebble.Options{}), 2000)
}
