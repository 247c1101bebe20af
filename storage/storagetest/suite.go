// Package storagetest is a conformance suite for storage.Store
// implementations. It exercises a real store (no mocks) through the
// storage.Store interface only.
//
// Use it from an implementation's tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t testing.TB) storage.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// newStore must return a fresh, empty store independent of every other
// store it returned, and arrange for it to be closed when t ends. The suite
// may call Close itself, so that cleanup must tolerate a second Close.
package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/liveim/liveim/storage"
)

// Run runs the conformance suite against stores made by newStore, one fresh
// store per subtest.
func Run(t *testing.T, newStore func(t testing.TB) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Apps", testApps},
		{"CreateGroup", testCreateGroup},
		{"CreateGroupConcurrent", testCreateGroupConcurrent},
		{"GroupRoundTrip", testGroupRoundTrip},
		{"GroupNotFound", testGroupNotFound},
		{"GroupVersions", testGroupVersions},
		{"PutGroupConcurrent", testPutGroupConcurrent},
		{"CountGroups", testCountGroups},
		{"ListApps", testListApps},
		{"ListGroups", testListGroups},
		{"UpdateApp", testUpdateApp},
		{"DeleteGroup", testDeleteGroup},
		{"GroupsIsolatedAcrossApps", testGroupsIsolatedAcrossApps},
		{"ListOrder", testListOrder},
		{"Paging", testPaging},
		{"PagingWhileAppending", testPagingWhileAppending},
		{"Filters", testFilters},
		{"InvalidQuery", testInvalidQuery},
		{"Delete", testDelete},
		{"ListDeletions", testListDeletions},
		{"GetMessage", testGetMessage},
		{"IdempotentAppend", testIdempotentAppend},
		{"LastSeq", testLastSeq},
		{"ConcurrentWriters", testConcurrentWriters},
		{"MessagesIsolated", testMessagesIsolated},
		{"Members", testMembers},
		{"MembersIsolated", testMembersIsolated},
		{"MembersMany", testMembersMany},
		{"MembersConcurrent", testMembersConcurrent},
		{"MembersChurn", testMembersChurn},
		{"Retention", testRetention},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// msg returns a deterministic message for seq in the given group.
func msg(appID, groupID string, seq int64) storage.Message {
	return storage.Message{
		AppID:       appID,
		GroupID:     groupID,
		ID:          fmt.Sprintf("msg-%d", seq),
		Seq:         seq,
		Type:        1,
		SenderID:    "user-1",
		SenderExt:   "ext",
		Data:        fmt.Sprintf("payload %d of %s/%s", seq, appID, groupID),
		TimestampMs: 1_000 + seq,
	}
}

// appendMsgs appends msgs in order, failing t on error.
func appendMsgs(t testing.TB, s storage.Store, msgs ...storage.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := s.AppendMessage(t.Context(), m); err != nil {
			t.Fatalf("AppendMessage(%s/%s seq %d): %v", m.AppID, m.GroupID, m.Seq, err)
		}
	}
}

// appendRange appends msg(appID, groupID, seq) for seq in [from, to].
func appendRange(t testing.TB, s storage.Store, appID, groupID string, from, to int64) []storage.Message {
	t.Helper()
	var msgs []storage.Message
	for seq := from; seq <= to; seq++ {
		msgs = append(msgs, msg(appID, groupID, seq))
	}
	appendMsgs(t, s, msgs...)
	return msgs
}

// listPage runs one ListMessages call, failing t on error or an oversized
// page.
func listPage(t testing.TB, s storage.Store, q storage.MessageQuery) storage.MessagePage {
	t.Helper()
	page, err := s.ListMessages(t.Context(), q)
	if err != nil {
		t.Fatalf("ListMessages(%+v): %v", q, err)
	}
	if len(page.Messages) > q.Limit {
		t.Fatalf("ListMessages(%+v): %d messages, limit %d", q, len(page.Messages), q.Limit)
	}
	return page
}

// listAll follows page tokens from q until the last page and returns every
// message in order.
func listAll(t testing.TB, s storage.Store, q storage.MessageQuery) []storage.Message {
	t.Helper()
	var all []storage.Message
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatalf("ListMessages(%+v): page tokens never end", q)
		}
		page := listPage(t, s, q)
		all = append(all, page.Messages...)
		if page.NextPageToken == "" {
			return all
		}
		if len(page.Messages) == 0 {
			t.Fatalf("ListMessages(%+v): empty page with next token %q", q, page.NextPageToken)
		}
		q.PageToken = page.NextPageToken
	}
}

// seqs returns the seqnums of msgs.
func seqs(msgs []storage.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// seqRange returns from..to inclusive, counting down if from > to.
func seqRange(from, to int64) []int64 {
	var out []int64
	if from <= to {
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
		return out
	}
	for s := from; s >= to; s-- {
		out = append(out, s)
	}
	return out
}

// wantSeqs fails t unless msgs have exactly the seqnums want, in order.
func wantSeqs(t testing.TB, what string, msgs []storage.Message, want []int64) {
	t.Helper()
	if got := seqs(msgs); !slices.Equal(got, want) {
		t.Fatalf("%s: got seqs %v, want %v", what, got, want)
	}
}

// wantErr fails t unless errors.Is(err, target).
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// mustCreateGroup creates g, failing t unless it was newly created, and
// returns g as stored: with Version 1.
func mustCreateGroup(t testing.TB, s storage.Store, g storage.Group) storage.Group {
	t.Helper()
	got, created, err := s.CreateGroup(t.Context(), g)
	if err != nil {
		t.Fatalf("CreateGroup(%s/%s): %v", g.AppID, g.ID, err)
	}
	if !created {
		t.Fatalf("CreateGroup(%s/%s): created=false for a new group", g.AppID, g.ID)
	}
	g.Version = 1
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("CreateGroup(%s/%s) = %+v, want %+v (Version 1)", g.AppID, g.ID, got, g)
	}
	return g
}

// mustPutGroup writes g with PutGroup, failing t unless it succeeds with
// version g.Version+1, and returns g as stored.
func mustPutGroup(t testing.TB, s storage.Store, g storage.Group) storage.Group {
	t.Helper()
	v, err := s.PutGroup(t.Context(), g)
	if err != nil {
		t.Fatalf("PutGroup(%s/%s version %d): %v", g.AppID, g.ID, g.Version, err)
	}
	if v != g.Version+1 {
		t.Fatalf("PutGroup(%s/%s version %d) = version %d, want %d", g.AppID, g.ID, g.Version, v, g.Version+1)
	}
	g.Version = v
	return g
}

// wantGroup fails t unless GetGroup returns exactly want.
func wantGroup(t testing.TB, s storage.Store, what string, want storage.Group) {
	t.Helper()
	got, err := s.GetGroup(t.Context(), want.AppID, want.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: GetGroup(%s/%s) = %+v, %v; want %+v", what, want.AppID, want.ID, got, err, want)
	}
}

// mustLastSeq returns LastSeq for the group, failing t on error.
func mustLastSeq(t testing.TB, s storage.Store, appID, groupID string) int64 {
	t.Helper()
	seq, err := s.LastSeq(t.Context(), appID, groupID)
	if err != nil {
		t.Fatalf("LastSeq(%s/%s): %v", appID, groupID, err)
	}
	return seq
}
