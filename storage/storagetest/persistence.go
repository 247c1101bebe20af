package storagetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/liveim/liveim/storage"
)

// RunPersistence checks that a store's state survives Close and reopening.
// open must open (creating if needed) the store kept in dir and arrange for
// it to be closed when t ends; the suite closes it itself before reopening,
// so that cleanup must tolerate a second Close.
func RunPersistence(t *testing.T, open func(t testing.TB, dir string) storage.Store) {
	dir := t.TempDir()
	app := storage.App{
		ID: "app", Key: "secret", CreatedAtMs: 123, // no retention: the fixture messages are dated 1970
		BlockedWords: []string{"spam", "scam"}, AuditURL: "http://audit.example/hook",
		AuditFailOpen: true, MaxGroups: 10,
	}
	group := storage.Group{
		AppID: "app", ID: "g", Name: "room", Creator: "u1", Admins: []string{"u1"},
		MuteAll: true, MutedUsers: []string{"u2"}, PV: 7, MsgAmount: map[int32]int64{1: 9},
		SeqReserved: 100,
	}

	s := open(t, dir)
	ctx := t.Context()
	if err := s.PutApp(ctx, app); err != nil {
		t.Fatalf("PutApp: %v", err)
	}
	// g goes through two writes (version 3), g2 through none (version 1).
	group.Version = mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "before put"}).Version
	group = mustPutGroup(t, s, group)
	group.SeqReserved = 200
	group = mustPutGroup(t, s, group)
	other := mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g2", Name: "other"})
	appendRange(t, s, "app", "g", 1, 9)
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-9", 1); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	alice, bob, carol := member("alice", "a", 2), member("bob", "b", 0), member("carol", "c", 1)
	mustSaveMembers(t, s, "app", "g", []storage.Member{alice, bob}, nil)
	mustSaveMembers(t, s, "app", "g", []storage.Member{carol, member("alice", "a2", 1)}, []string{"bob"})
	mustSaveMembers(t, s, "app", "g2", []storage.Member{bob}, nil)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, dir)
	t.Run("app", func(t *testing.T) {
		got, err := s.GetApp(ctx, "app")
		if err != nil || !reflect.DeepEqual(got, app) {
			t.Fatalf("GetApp = %+v, %v; want %+v", got, err, app)
		}
	})
	t.Run("groups", func(t *testing.T) {
		for _, want := range []storage.Group{group, other} {
			wantGroup(t, s, "after reopen", want)
		}
		if n, err := s.CountGroups(ctx, "app"); err != nil || n != 2 {
			t.Fatalf("CountGroups = %d, %v; want 2", n, err)
		}
		again := group
		again.Name, again.Version = "again", 0
		existing, created, err := s.CreateGroup(ctx, again)
		if err != nil || created || !reflect.DeepEqual(existing, group) {
			t.Fatalf("CreateGroup(existing) after reopen = %+v, created=%v, %v; want %+v", existing, created, err, group)
		}
	})
	t.Run("group versions", func(t *testing.T) {
		// The version carried on: a write with a version from before the
		// last write is still stale, and the current one still works.
		stale := group
		stale.Name, stale.Version = "stale", group.Version-1
		_, err := s.PutGroup(ctx, stale)
		wantErr(t, "PutGroup(stale version) after reopen", err, storage.ErrConflict)
		wantGroup(t, s, "after stale PutGroup", group)
		next := group
		next.Name = "after reopen"
		wantGroup(t, s, "after PutGroup", mustPutGroup(t, s, next))
		wantGroup(t, s, "untouched group", other)
	})
	t.Run("messages", func(t *testing.T) {
		q := storage.MessageQuery{AppID: "app", GroupID: "g", Limit: 4, Desc: true}
		wantSeqs(t, "list", listAll(t, s, q), seqRange(8, 1))
		if seq := mustLastSeq(t, s, "app", "g"); seq != 9 {
			t.Fatalf("LastSeq = %d, want 9", seq)
		}
		_, err := s.DeleteMessage(ctx, "app", "g", "msg-9", 1)
		wantErr(t, "DeleteMessage(deleted before reopen)", err, storage.ErrNotFound)
		// The first append after reopening, a retry of the deleted
		// message, must not bring it back.
		appendRange(t, s, "app", "g", 9, 9)
		appendRange(t, s, "app", "g", 10, 10)
		q.Desc = false
		wantSeqs(t, "list after append", listAll(t, s, q), append(seqRange(1, 8), 10))
	})
	t.Run("get message", func(t *testing.T) {
		for _, seq := range []int64{1, 8, 10} {
			got, err := s.GetMessage(ctx, "app", "g", fmt.Sprintf("msg-%d", seq))
			if want := msg("app", "g", seq); err != nil || got != want {
				t.Fatalf("GetMessage(msg-%d) = %+v, %v; want %+v", seq, got, err, want)
			}
		}
		_, err := s.GetMessage(ctx, "app", "g", "msg-9")
		wantErr(t, "GetMessage(deleted before reopen)", err, storage.ErrNotFound)
	})
	t.Run("members", func(t *testing.T) {
		wantMembers(t, s, "app", "g", member("alice", "a2", 1), carol)
		wantMembers(t, s, "app", "g2", bob)
		mustSaveMembers(t, s, "app", "g", []storage.Member{bob}, []string{"carol"})
		wantMembers(t, s, "app", "g", member("alice", "a2", 1), bob)
	})
}
