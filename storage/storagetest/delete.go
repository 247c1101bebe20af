package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/liveim/liveim/storage"
)

func testDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	msgs := appendRange(t, s, "app", "g", 1, 10)
	appendRange(t, s, "app", "other", 1, 3)

	got, err := s.DeleteMessage(ctx, "app", "g", "msg-5", 1)
	if err != nil {
		t.Fatalf("DeleteMessage(msg-5): %v", err)
	}
	if got != msgs[4] {
		t.Fatalf("DeleteMessage returned %+v, want %+v", got, msgs[4])
	}
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-10", 2); err != nil {
		t.Fatalf("DeleteMessage(msg-10): %v", err)
	}
	for _, tc := range []struct{ name, app, group, id string }{
		{"already deleted", "app", "g", "msg-5"},
		{"unknown id", "app", "g", "msg-11"},
		{"unknown group", "app", "nope", "msg-1"},
		{"other app", "app-2", "g", "msg-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.DeleteMessage(ctx, tc.app, tc.group, tc.id, 1)
			wantErr(t, "DeleteMessage", err, storage.ErrNotFound)
		})
	}

	// Re-appending a deleted message must not bring it back.
	appendMsgs(t, s, msgs[4])
	want := []int64{1, 2, 3, 4, 6, 7, 8, 9}
	for _, tc := range []struct {
		name  string
		q     storage.MessageQuery
		wantQ []int64
	}{
		{"asc", storage.MessageQuery{Limit: 2}, want},
		{"desc", storage.MessageQuery{Limit: 3, Desc: true}, seqsReversed(want)},
		{"before deleted", storage.MessageQuery{Limit: 1, Desc: true, BeforeSeq: 6}, []int64{4, 3, 2, 1}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			q := tc.q
			q.AppID, q.GroupID = "app", "g"
			wantSeqs(t, "after delete", listAll(t, s, q), tc.wantQ)
		})
	}
	if seq := mustLastSeq(t, s, "app", "g"); seq != 10 {
		t.Fatalf("LastSeq after deleting the last message = %d, want 10", seq)
	}
	q := storage.MessageQuery{AppID: "app", GroupID: "other", Limit: 10}
	wantSeqs(t, "other group untouched", listAll(t, s, q), []int64{1, 2, 3})
}

func seqsReversed(s []int64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func testIdempotentAppend(t *testing.T, s storage.Store) {
	msgs := appendRange(t, s, "app", "g", 1, 3)
	appendMsgs(t, s, msgs[1], msgs[1], msgs[2])
	q := storage.MessageQuery{AppID: "app", GroupID: "g", Limit: 10}
	page := listPage(t, s, q)
	if len(page.Messages) != 3 || page.Messages[0] != msgs[0] || page.Messages[1] != msgs[1] || page.Messages[2] != msgs[2] {
		t.Fatalf("after re-appends got %+v, want one copy each of %+v", page.Messages, msgs)
	}
	if seq := mustLastSeq(t, s, "app", "g"); seq != 3 {
		t.Fatalf("LastSeq = %d, want 3", seq)
	}
}

func testLastSeq(t *testing.T, s storage.Store) {
	for _, tc := range []struct {
		name   string
		append []int64
		want   int64
	}{
		{"empty", nil, 0},
		{"in order", []int64{1, 2, 3}, 3},
		{"out of order", []int64{5, 1, 3}, 5},
		{"byte boundaries", []int64{255, 256, 65535, 65536, 1 << 40}, 1 << 40},
	} {
		group := "g-" + strings.ReplaceAll(tc.name, " ", "-")
		t.Run(tc.name, func(t *testing.T) {
			for _, seq := range tc.append {
				appendMsgs(t, s, msg("app", group, seq))
			}
			if seq := mustLastSeq(t, s, "app", group); seq != tc.want {
				t.Fatalf("LastSeq = %d, want %d", seq, tc.want)
			}
		})
	}
}

func testMessagesIsolated(t *testing.T, s storage.Store) {
	// Group and app IDs that are prefixes of each other must not leak.
	groups := []struct {
		app, group string
		n          int64
	}{
		{"a", "g", 5}, {"a", "g-1", 3}, {"a", "g1", 2}, {"a-1", "g", 4}, {"b", "g", 7},
	}
	for _, g := range groups {
		appendRange(t, s, g.app, g.group, 1, g.n)
	}
	if _, err := s.DeleteMessage(t.Context(), "a", "g", "msg-2", 1); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	for _, g := range groups {
		t.Run(g.app+"/"+g.group, func(t *testing.T) {
			want := seqRange(1, g.n)
			if g.app == "a" && g.group == "g" {
				want = []int64{1, 3, 4, 5}
			}
			got := listAll(t, s, storage.MessageQuery{AppID: g.app, GroupID: g.group, Limit: 2})
			wantSeqs(t, "list", got, want)
			for _, m := range got {
				if m != msg(g.app, g.group, m.Seq) {
					t.Fatalf("got %+v, want it from %s/%s", m, g.app, g.group)
				}
			}
			if seq := mustLastSeq(t, s, g.app, g.group); seq != g.n {
				t.Fatalf("LastSeq = %d, want %d", seq, g.n)
			}
		})
	}
}

func testGetMessage(t *testing.T, s storage.Store) {
	ctx := t.Context()
	msgs := appendRange(t, s, "app", "g", 1, 5)
	others := appendRange(t, s, "app", "other", 1, 2)
	appendRange(t, s, "app-2", "g", 1, 1)
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-3", 1); err != nil {
		t.Fatalf("DeleteMessage(msg-3): %v", err)
	}
	// Re-appending seqnum 4 under a new ID replaces the old message.
	replaced := msg("app", "g", 4)
	replaced.ID, replaced.Data = "msg-4b", "replacement"
	appendMsgs(t, s, replaced)

	for _, tc := range []struct {
		name, app, group, id string
		want                 storage.Message
	}{
		{"first", "app", "g", "msg-1", msgs[0]},
		{"last", "app", "g", "msg-5", msgs[4]},
		{"replacement", "app", "g", "msg-4b", replaced},
		{"same ID in other group", "app", "other", "msg-2", others[1]},
		{"same ID in other app", "app-2", "g", "msg-1", msg("app-2", "g", 1)},
	} {
		t.Run("found "+tc.name, func(t *testing.T) {
			got, err := s.GetMessage(ctx, tc.app, tc.group, tc.id)
			if err != nil || got != tc.want {
				t.Fatalf("GetMessage(%s/%s/%s) = %+v, %v; want %+v", tc.app, tc.group, tc.id, got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, app, group, id string }{
		{"unknown id", "app", "g", "msg-6"},
		{"prefix of id", "app", "g", "msg-"},
		{"deleted", "app", "g", "msg-3"},
		{"replaced", "app", "g", "msg-4"},
		{"other group", "app", "other", "msg-5"},
		{"unknown group", "app", "nope", "msg-1"},
		{"other app", "app-2", "g", "msg-2"},
		{"group prefix", "app", "g-", "msg-1"},
	} {
		t.Run("not found "+tc.name, func(t *testing.T) {
			_, err := s.GetMessage(ctx, tc.app, tc.group, tc.id)
			wantErr(t, "GetMessage", err, storage.ErrNotFound)
		})
	}
	t.Run("deleted after get", func(t *testing.T) {
		if _, err := s.DeleteMessage(ctx, "app", "g", "msg-5", 1); err != nil {
			t.Fatalf("DeleteMessage(msg-5): %v", err)
		}
		_, err := s.GetMessage(ctx, "app", "g", "msg-5")
		wantErr(t, "GetMessage after delete", err, storage.ErrNotFound)
		// Re-appending a deleted message must not bring it back.
		appendMsgs(t, s, msgs[4])
		_, err = s.GetMessage(ctx, "app", "g", "msg-5")
		wantErr(t, "GetMessage after re-append", err, storage.ErrNotFound)
	})
}

// testListDeletions: a group's deletions after a number, in order,
// bounded by the limit, each naming its message; groups are apart.
func testListDeletions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	appendRange(t, s, "app", "g", 1, 10)
	appendRange(t, s, "app", "other", 1, 10)
	for i, id := range []string{"msg-7", "msg-2", "msg-9"} {
		if _, err := s.DeleteMessage(ctx, "app", "g", id, int64(i+1)); err != nil {
			t.Fatalf("DeleteMessage(%s): %v", id, err)
		}
	}
	if _, err := s.DeleteMessage(ctx, "app", "g", "msg-7", 4); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteMessage(ctx, "app", "other", "msg-3", 1); err != nil {
		t.Fatal(err)
	}
	d7, d2, d9 := storage.Deletion{Seq: 1, MessageSeq: 7, MessageID: "msg-7"}, storage.Deletion{Seq: 2, MessageSeq: 2, MessageID: "msg-2"},
		storage.Deletion{Seq: 3, MessageSeq: 9, MessageID: "msg-9"}
	for _, tc := range []struct {
		name  string
		after int64
		limit int
		want  []storage.Deletion
	}{
		{"all", 0, 10, []storage.Deletion{d7, d2, d9}},
		{"after the first", 1, 10, []storage.Deletion{d2, d9}},
		{"limited", 0, 2, []storage.Deletion{d7, d2}},
		{"none after the last", 3, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListDeletions(ctx, "app", "g", tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
				t.Fatalf("ListDeletions(after %d, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
			}
		})
	}
	if got, err := s.ListDeletions(ctx, "app", "nope", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("unknown group: %v, %v", got, err)
	}
	_, err := s.ListDeletions(ctx, "app", "g", 0, 0)
	wantErr(t, "ListDeletions(limit 0)", err, storage.ErrInvalidQuery)
}
