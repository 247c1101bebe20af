package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/liveim/liveim/storage"
)

func testListOrder(t *testing.T, s storage.Store) {
	msgs := []storage.Message{}
	for _, seq := range []int64{3, 1, 255, 2, 256, 65536, 4} { // out of order, across byte boundaries
		msgs = append(msgs, msg("app", "g", seq))
	}
	appendMsgs(t, s, msgs...)
	asc := slices.Clone(msgs)
	slices.SortFunc(asc, func(a, b storage.Message) int { return int(a.Seq - b.Seq) })
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	for _, tc := range []struct {
		name string
		desc bool
		want []storage.Message
	}{{"asc", false, asc}, {"desc", true, desc}} {
		t.Run(tc.name, func(t *testing.T) {
			page := listPage(t, s, storage.MessageQuery{AppID: "app", GroupID: "g", Desc: tc.desc, Limit: 100})
			if !slices.Equal(page.Messages, tc.want) {
				t.Fatalf("ListMessages = %+v\nwant %+v", page.Messages, tc.want)
			}
			if page.NextPageToken != "" {
				t.Fatalf("NextPageToken = %q on the only page", page.NextPageToken)
			}
		})
	}
}

func testPaging(t *testing.T, s storage.Store) {
	const n = 20
	appendRange(t, s, "app", "g", 1, n)
	for _, tc := range []struct {
		name  string
		desc  bool
		limit int
	}{
		{"asc limit 1", false, 1}, {"asc limit 3", false, 3}, {"asc limit 5", false, 5},
		{"asc limit 20", false, 20}, {"asc limit 25", false, 25},
		{"desc limit 1", true, 1}, {"desc limit 3", true, 3}, {"desc limit 5", true, 5},
		{"desc limit 20", true, 20}, {"desc limit 25", true, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := seqRange(1, n)
			if tc.desc {
				want = seqRange(n, 1)
			}
			q := storage.MessageQuery{AppID: "app", GroupID: "g", Desc: tc.desc, Limit: tc.limit}
			wantSeqs(t, "all pages", listAll(t, s, q), want)
			first := listPage(t, s, q)
			if wantToken := tc.limit < n; (first.NextPageToken != "") != wantToken {
				t.Fatalf("first page token %q, want non-empty=%v", first.NextPageToken, wantToken)
			}
		})
	}
}

func testPagingWhileAppending(t *testing.T, s storage.Store) {
	for _, tc := range []struct {
		name string
		desc bool
		want []int64
	}{
		// Ascending paging picks up messages appended after the first page.
		{"asc", false, seqRange(1, 12)},
		// Descending paging continues below the first page and never sees
		// the newer messages.
		{"desc", true, seqRange(10, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := "g-" + tc.name
			appendRange(t, s, "app", group, 1, 10)
			q := storage.MessageQuery{AppID: "app", GroupID: group, Desc: tc.desc, Limit: 4}
			page := listPage(t, s, q)
			if page.NextPageToken == "" {
				t.Fatal("first page has no next token")
			}
			appendRange(t, s, "app", group, 11, 12)
			q.PageToken = page.NextPageToken
			got := append(page.Messages, listAll(t, s, q)...)
			wantSeqs(t, "pages across appends", got, tc.want)
		})
	}
}

func testFilters(t *testing.T, s storage.Store) {
	var msgs []storage.Message
	for seq := int64(1); seq <= 30; seq++ {
		m := msg("app", "g", seq)
		m.Type = int32(seq%3) + 1
		m.TimestampMs = 1_000 + 10*seq
		msgs = append(msgs, m)
	}
	appendMsgs(t, s, msgs...)
	q := func(mod func(*storage.MessageQuery)) storage.MessageQuery {
		q := storage.MessageQuery{AppID: "app", GroupID: "g"}
		mod(&q)
		return q
	}
	for _, tc := range []struct {
		name string
		q    storage.MessageQuery
	}{
		{"type asc", q(func(q *storage.MessageQuery) { q.Type = 2 })},
		{"type desc", q(func(q *storage.MessageQuery) { q.Type = 3; q.Desc = true })},
		{"no such type", q(func(q *storage.MessageQuery) { q.Type = 9 })},
		{"from inclusive", q(func(q *storage.MessageQuery) { q.FromMs = 1_100 })},
		{"to inclusive", q(func(q *storage.MessageQuery) { q.ToMs = 1_100 })},
		{"from and to inclusive", q(func(q *storage.MessageQuery) { q.FromMs, q.ToMs = 1_050, 1_150 })},
		{"from equals to", q(func(q *storage.MessageQuery) { q.FromMs, q.ToMs = 1_100, 1_100; q.Desc = true })},
		{"between timestamps", q(func(q *storage.MessageQuery) { q.FromMs, q.ToMs = 1_101, 1_109 })},
		{"from after to", q(func(q *storage.MessageQuery) { q.FromMs, q.ToMs = 1_200, 1_100 })},
		{"before asc", q(func(q *storage.MessageQuery) { q.BeforeSeq = 11 })},
		{"before desc", q(func(q *storage.MessageQuery) { q.BeforeSeq = 11; q.Desc = true })},
		{"before first", q(func(q *storage.MessageQuery) { q.BeforeSeq = 1 })},
		{"before past end", q(func(q *storage.MessageQuery) { q.BeforeSeq = 1_000; q.Desc = true })},
		{"combined desc", q(func(q *storage.MessageQuery) {
			q.Type, q.FromMs, q.ToMs, q.BeforeSeq, q.Desc = 1, 1_050, 1_250, 20, true
		})},
		{"combined asc", q(func(q *storage.MessageQuery) {
			q.Type, q.FromMs, q.BeforeSeq = 2, 1_040, 25
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := model(msgs, tc.q)
			for _, limit := range []int{1, 4, 100} {
				q := tc.q
				q.Limit = limit
				got := listAll(t, s, q)
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: got seqs %v, want %v", limit, seqs(got), seqs(want))
				}
			}
		})
	}
}

// model is the reference implementation of q's filters over msgs, which must
// be sorted by seqnum ascending and not deleted.
func model(msgs []storage.Message, q storage.MessageQuery) []storage.Message {
	var out []storage.Message
	for _, m := range msgs {
		if (q.Type == 0 || m.Type == q.Type) &&
			(q.FromMs == 0 || m.TimestampMs >= q.FromMs) &&
			(q.ToMs == 0 || m.TimestampMs <= q.ToMs) &&
			(q.BeforeSeq == 0 || m.Seq < q.BeforeSeq) {
			out = append(out, m)
		}
	}
	if q.Desc {
		slices.Reverse(out)
	}
	return out
}

func testInvalidQuery(t *testing.T, s storage.Store) {
	appendRange(t, s, "app", "g", 1, 3)
	for _, tc := range []struct {
		name  string
		limit int
		token string
	}{
		{"zero limit", 0, ""},
		{"negative limit", -1, ""},
		{"garbage token", 10, "not-a-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := storage.MessageQuery{AppID: "app", GroupID: "g", Limit: tc.limit, PageToken: tc.token}
			if page, err := s.ListMessages(t.Context(), q); !errors.Is(err, storage.ErrInvalidQuery) {
				t.Fatalf("ListMessages(%+v) = %+v, %v; want ErrInvalidQuery", q, page, err)
			}
		})
	}
}
