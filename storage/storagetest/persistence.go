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
		ID: "app", Key: "secret", CreatedAtMs: 123, RetentionDays: 3,
		BlockedWords: []string{"spam", "scam"}, AuditURL: "http://audit.example/hook",
		AuditFailOpen: true, MaxGroups: 10,
	}
	group := storage.Group{
		AppID: "app", ID: "g", Name: "room", Creator: "u1", Admins: []string{"u1"},
		MuteAll: true, MutedUsers: []string{"u2"}, PV: 7, MsgAmount: map[int32]int64{1: 9},
	}
	other := storage.Group{AppID: "app", ID: "g2", Name: "other"}

	s := open(t, dir)
	ctx := t.Context()
	if err := s.PutApp(ctx, app); err != nil {
		t.Fatalf("PutApp: %v", err)
	}
	mustCreateGroup(t, s, storage.Group{AppID: "app", ID: "g", Name: "before put"})
	if err := s.PutGroup(ctx, group); err != nil {
		t.Fatalf("PutGroup: %v", err)
	}
	mustCreateGroup(t, s, other)
	appendRange(t, s, "app", "g", 1, 9)
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-9"); err != nil {
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
			got, err := s.GetGroup(ctx, want.AppID, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("GetGroup(%s) = %+v, %v; want %+v", want.ID, got, err, want)
			}
		}
		if n, err := s.CountGroups(ctx, "app"); err != nil || n != 2 {
			t.Fatalf("CountGroups = %d, %v; want 2", n, err)
		}
		if _, created, err := s.CreateGroup(ctx, other); err != nil || created {
			t.Fatalf("CreateGroup(existing) after reopen: created=%v err=%v", created, err)
		}
	})
	t.Run("messages", func(t *testing.T) {
		q := storage.MessageQuery{AppID: "app", GroupID: "g", Limit: 4, Desc: true}
		wantSeqs(t, "list", listAll(t, s, q), seqRange(8, 1))
		if seq := mustLastSeq(t, s, "app", "g"); seq != 9 {
			t.Fatalf("LastSeq = %d, want 9", seq)
		}
		_, err := s.DeleteMessage(ctx, "app", "g", "msg-9")
		wantErr(t, "DeleteMessage(deleted before reopen)", err, storage.ErrNotFound)
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
