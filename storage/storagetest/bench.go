package storagetest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/storage"
)

// Benchmarks shared by every backend, so docs/benchmarks.md compares
// like with like. Each takes a fresh store.

func benchMessage(groupID string, seq int64) storage.Message {
	return storage.Message{
		AppID: "bench", GroupID: groupID, ID: fmt.Sprintf("%s-%d", groupID, seq), Seq: seq, Type: 10001,
		SenderID: "user-1", Data: "hello, this is a typical short chat message",
		TimestampMs: 1_700_000_000_000 + seq,
	}
}

// BenchAppend measures one writer appending to one group.
func BenchAppend(b *testing.B, s storage.Store) {
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		seq++
		if err := s.AppendMessage(b.Context(), benchMessage("room", seq)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchAppendWithHistory measures one writer appending round-robin to
// groups that already hold perGroup messages each, as a router appends
// to a server's rooms after a while: the store's history is no longer in
// memory, so what a write reads first (the backend's check for a delete
// of the same seqnum) reaches its files.
func BenchAppendWithHistory(b *testing.B, s storage.Store, groups, perGroup int) {
	ctx := b.Context()
	for seq := 1; seq <= perGroup; seq++ {
		for g := range groups {
			if err := s.AppendMessage(ctx, benchMessage(fmt.Sprintf("room-%d", g), int64(seq))); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		g, seq := i%groups, perGroup+1+i/groups
		if err := s.AppendMessage(ctx, benchMessage(fmt.Sprintf("room-%d", g), int64(seq))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchAppendParallel measures write throughput with GOMAXPROCS×parallel
// writers, each on its own group (as routers write many groups at once).
func BenchAppendParallel(b *testing.B, s storage.Store, parallel int) {
	b.ReportAllocs()
	b.SetParallelism(parallel)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		group := fmt.Sprintf("room-%d", next.Add(1))
		seq := int64(0)
		for pb.Next() {
			seq++
			if err := s.AppendMessage(b.Context(), benchMessage(group, seq)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchAppendOneGroupParallel measures appends to one group from parallel
// goroutines: a busy room, whose router has several of its messages at
// the store at once (router/sends.go).
func BenchAppendOneGroupParallel(b *testing.B, s storage.Store, parallel int) {
	b.ReportAllocs()
	b.SetParallelism(parallel)
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.AppendMessage(b.Context(), benchMessage("room", seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchPutGroupParallel measures group state writes (the router's
// once-a-second counter saves), each goroutine saving a group of its own:
// different groups must not wait for each other's writes.
func BenchPutGroupParallel(b *testing.B, s storage.Store, parallel int) {
	b.ReportAllocs()
	b.SetParallelism(parallel)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g, _, err := s.CreateGroup(b.Context(), storage.Group{AppID: "bench", ID: fmt.Sprintf("room-%d", next.Add(1)), MsgAmount: map[int32]int64{}})
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			g.PV++
			if g.Version, err = s.PutGroup(b.Context(), g); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchListDesc50 measures the newest-50 page of a group of n messages
// (listRecentMessage).
func BenchListDesc50(b *testing.B, s storage.Store, n int64) {
	for seq := int64(1); seq <= n; seq++ {
		if err := s.AppendMessage(b.Context(), benchMessage("room", seq)); err != nil {
			b.Fatal(err)
		}
	}
	q := storage.MessageQuery{AppID: "bench", GroupID: "room", Desc: true, Limit: 50}
	b.ReportAllocs()
	for b.Loop() {
		page, err := s.ListMessages(b.Context(), q)
		if err != nil || len(page.Messages) != 50 {
			b.Fatalf("ListMessages: %d messages, %v", len(page.Messages), err)
		}
	}
}

// BenchDeleteGroup measures deleting a group that holds n messages (each
// iteration first creates and fills one, untimed): a delete runs on the
// group's router worker, which serves other groups too.
func BenchDeleteGroup(b *testing.B, s storage.Store, n int) {
	ctx := b.Context()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprintf("doomed-%d", i)
		if _, _, err := s.CreateGroup(ctx, storage.Group{AppID: "bench", ID: id, Name: "doomed"}); err != nil {
			b.Fatal(err)
		}
		var g errgroup.Group
		g.SetLimit(32)
		for seq := int64(1); seq <= int64(n); seq++ {
			g.Go(func() error { return s.AppendMessage(ctx, benchMessage(id, seq)) })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.DeleteGroup(ctx, "bench", id); err != nil {
			b.Fatal(err)
		}
	}
}
