package storagetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/liveim/liveim/storage"
)

func testConcurrentWriters(t *testing.T, s storage.Store) {
	const writers, perWriter = 8, 40
	for _, tc := range []struct {
		name string
		// group and seq give writer w's i-th message (i counts from 0).
		group func(w int) string
		seq   func(w, i int) int64
		// want lists each group's expected seqnums.
		want map[string][]int64
	}{
		{
			name:  "different groups",
			group: func(w int) string { return fmt.Sprintf("g-%d", w) },
			seq:   func(w, i int) int64 { return int64(i + 1) },
			want:  perGroup(writers, seqRange(1, perWriter)),
		},
		{
			name:  "one group disjoint seqs",
			group: func(int) string { return "shared" },
			seq:   func(w, i int) int64 { return int64(i*writers + w + 1) },
			want:  map[string][]int64{"shared": seqRange(1, writers*perWriter)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := "app-" + fmt.Sprint(len(tc.want))
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWriter {
						if err := s.AppendMessage(t.Context(), msg(app, tc.group(w), tc.seq(w, i))); err != nil {
							t.Errorf("AppendMessage: %v", err)
							return
						}
					}
				}()
			}
			// A reader runs alongside the writers; pages must stay ordered.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWriter {
					q := storage.MessageQuery{AppID: app, GroupID: tc.group(0), Desc: true, Limit: 10}
					page, err := s.ListMessages(t.Context(), q)
					if err != nil {
						t.Errorf("ListMessages: %v", err)
						return
					}
					for i := 1; i < len(page.Messages); i++ {
						if page.Messages[i].Seq >= page.Messages[i-1].Seq {
							t.Errorf("DESC page out of order: %v", seqs(page.Messages))
							return
						}
					}
				}
			}()
			wg.Wait()
			if t.Failed() {
				return
			}
			for group, want := range tc.want {
				got := listAll(t, s, storage.MessageQuery{AppID: app, GroupID: group, Limit: 50})
				wantSeqs(t, group, got, want)
				if seq := mustLastSeq(t, s, app, group); seq != want[len(want)-1] {
					t.Fatalf("LastSeq(%s) = %d, want %d", group, seq, want[len(want)-1])
				}
			}
		})
	}
}

// perGroup maps g-0 .. g-(n-1) to want.
func perGroup(n int, want []int64) map[string][]int64 {
	m := make(map[string][]int64, n)
	for i := range n {
		m[fmt.Sprintf("g-%d", i)] = want
	}
	return m
}

func testClosed(t *testing.T, s storage.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
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
		{"AppendMessage", func() error { return s.AppendMessage(ctx, msg("a", "g", 1)) }},
		{"LastSeq", func() error { _, err := s.LastSeq(ctx, "a", "g"); return err }},
		{"ListMessages", func() error {
			_, err := s.ListMessages(ctx, storage.MessageQuery{AppID: "a", GroupID: "g", Limit: 1})
			return err
		}},
		{"GetMessage", func() error { _, err := s.GetMessage(ctx, "a", "g", "msg-1"); return err }},
		{"DeleteMessage", func() error { _, err := s.DeleteMessage(ctx, "a", "g", "msg-1", 1); return err }},
		{"SaveMembers", func() error {
			return s.SaveMembers(ctx, "a", "g", []storage.Member{{UserID: "u"}}, []string{"v"})
		}},
		{"SaveMembers empty", func() error { return s.SaveMembers(ctx, "a", "g", nil, nil) }},
		{"ListMembers", func() error { _, err := s.ListMembers(ctx, "a", "g"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" after Close", tc.call(), storage.ErrClosed)
		})
	}
}
