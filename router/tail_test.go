package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// TestTailBudget adds HIGH messages of many groups to one worker's tails
// at random, forgetting and loading groups again between, and checks
// after each step: the tails hold at most the budget; each tail holds
// every message after its from, in order; the count of bytes and entries
// is that of the tails; and the queue of entries stays bounded.
func TestTailBudget(t *testing.T) {
	r := &Router{cfg: Config{ResumeMemory: 64 << 10, Workers: 1}}
	w := newWorker(r)
	rnd := rand.New(rand.NewPCG(7, 7))
	type group struct {
		gs   *groupState
		sent []int64 // seqnums added since it was loaded
	}
	groups := make([]*group, 20)
	load := func(i int) {
		gs := &groupState{g: storage.Group{AppID: "app", ID: fmt.Sprint("g", i)}}
		if old := groups[i]; old != nil {
			gs.lastSeq = old.gs.lastSeq
		}
		gs.high.from = gs.lastSeq
		w.groups[groupKey("app", gs.g.ID)] = gs
		groups[i] = &group{gs: gs}
	}
	for i := range groups {
		load(i)
	}
	for step := range 50_000 {
		i := rnd.IntN(len(groups))
		g := groups[i]
		switch p := rnd.IntN(1000); {
		case p < 2:
			w.forget(g.gs)
			load(i)
		case p < 3:
			stale := g.gs
			w.forget(stale)
			load(i)
			stale.lastSeq++ // a send of the forgotten state finishing late
			w.addHigh(stale, &liveimpb.Message{Seqnum: stale.lastSeq}, nil, false)
		case p < 8 && g.gs.high.from > 20:
			// A stream read from k before the tail's start.
			from := g.gs.high.from
			after := from - 1 - int64(rnd.IntN(20))
			var seen []seenHigh
			var prepended []int64
			for seq := after + 1; seq <= from+int64(rnd.IntN(3)); seq++ {
				seen = append(seen, seenHigh{msg: &liveimpb.Message{Seqnum: seq, Data: strings.Repeat("y", rnd.IntN(2000))}})
				if seq <= from {
					prepended = append(prepended, seq)
				}
			}
			w.prependHigh(g.gs, after, tailMark{from: from, offers: g.gs.high.offers, deleteSeq: g.gs.g.DeleteSeq}, seen)
			var kept []int64
			for _, s := range g.sent {
				if s > from {
					kept = append(kept, s)
				}
			}
			g.sent = append(prepended, kept...)
		default:
			g.gs.lastSeq++
			m := &liveimpb.Message{Seqnum: g.gs.lastSeq, Data: strings.Repeat("x", rnd.IntN(2000))}
			w.addHigh(g.gs, m, nil, false)
			g.sent = append(g.sent, m.Seqnum)
		}
		bytes, live := 0, 0
		for _, g := range groups {
			tl := g.gs.high
			var want []int64
			for _, s := range g.sent {
				if s > tl.from {
					want = append(want, s)
				}
			}
			if len(want) != len(tl.entries) {
				t.Fatalf("step %d: %s holds %d messages after %d, want %d", step, g.gs.g.ID, len(tl.entries), tl.from, len(want))
			}
			for k, e := range tl.entries {
				if e.msg.Seqnum != want[k] || e.tail != &g.gs.high {
					t.Fatalf("step %d: %s entry %d is seqnum %d, want %d", step, g.gs.g.ID, k, e.msg.Seqnum, want[k])
				}
				bytes += e.size
				live++
			}
		}
		if bytes != w.tail.bytes || live != w.tail.live || bytes > w.tail.max {
			t.Fatalf("step %d: tails hold %d bytes in %d entries; counted %d in %d; budget %d", step, bytes, live, w.tail.bytes, w.tail.live, w.tail.max)
		}
		if n := len(w.tail.queue); n > 2*live+2*1024+1 {
			t.Fatalf("step %d: the queue holds %d entries for %d live", step, n, live)
		}
	}
}

// TestTailQueueOfForgottenGroups: groups that leave memory before the
// budget is reached leave their entries in the worker's queue; the queue
// still stays bounded by the entries alive.
func TestTailQueueOfForgottenGroups(t *testing.T) {
	w := newWorker(&Router{cfg: Config{ResumeMemory: 1 << 30, Workers: 1}})
	for round := range 2000 {
		gs := &groupState{g: storage.Group{AppID: "app", ID: fmt.Sprint("g", round)}}
		w.groups[groupKey("app", gs.g.ID)] = gs
		for seq := range int64(10) {
			w.addHigh(gs, &liveimpb.Message{Seqnum: seq + 1}, nil, false)
		}
		w.forget(gs)
		if w.tail.live != 0 || w.tail.bytes != 0 {
			t.Fatalf("round %d: %d entries of %d bytes counted with no group in memory", round, w.tail.live, w.tail.bytes)
		}
		if n := len(w.tail.queue) - w.tail.head; n > 1024+10 {
			t.Fatalf("round %d: the queue holds %d entries of forgotten groups", round, n)
		}
	}
}

// TestPrependHigh: a stream read that reached back to where a tail
// starts makes the tail start where the read did, noStorage and all, at
// the front of the worker's queue (the first to go past the budget); a
// read noted before the tail, the group's re-offers or its deletions
// changed, or of a group since forgotten, changes nothing.
func TestPrependHigh(t *testing.T) {
	w := newWorker(&Router{cfg: Config{ResumeMemory: 1 << 30, Workers: 1}})
	load := func() *groupState {
		gs := &groupState{g: storage.Group{AppID: "app", ID: "room"}, high: highTail{from: 100}}
		w.groups[groupKey("app", "room")] = gs
		return gs
	}
	gs := load()
	msg := func(seq int64) *liveimpb.Message { return &liveimpb.Message{Seqnum: seq, Timestamp: seq} }
	for seq := int64(101); seq <= 110; seq++ {
		w.addHigh(gs, msg(seq), nil, false)
	}
	var seen []seenHigh
	for seq := int64(81); seq <= 100; seq++ { // a read from 80 that went past 100
		seen = append(seen, seenHigh{msg: msg(seq), noStorage: seq%2 == 0})
	}
	mark := tailMark{from: gs.high.from, offers: gs.high.offers, deleteSeq: gs.g.DeleteSeq}
	seqsOf := func(v tailView) (out []int64) {
		for _, m := range v.msgs {
			out = append(out, m.Seqnum)
		}
		return out
	}

	unordered := slices.Clone(seen)
	unordered[3], unordered[4] = unordered[4], unordered[3]
	w.prependHigh(gs, 80, mark, unordered)
	stale := mark
	stale.offers--
	w.prependHigh(gs, 80, stale, seen)
	gs.g.DeleteSeq++
	w.prependHigh(gs, 80, mark, seen)
	gs.g.DeleteSeq--
	if _, ok := gs.high.view(85, 0, 100, 1<<20); ok || gs.high.from != 100 {
		t.Fatalf("a read out of order, or noted before a re-offer or a deletion, was taken: from %d", gs.high.from)
	}

	w.prependHigh(gs, 80, mark, seen)
	v, ok := gs.high.view(85, 95, 100, 1<<20) // a member there since 95
	if !ok || gs.high.from != 80 {
		t.Fatalf("after the prepend: from %d, view ok %v", gs.high.from, ok)
	}
	var want []int64
	for seq := int64(86); seq <= 110; seq++ {
		if seq > 100 || seq%2 == 1 || seq >= 95 {
			want = append(want, seq)
		}
	}
	if got := seqsOf(v); !slices.Equal(got, want) {
		t.Fatalf("resume after 85 for a member since 95: %v, want %v", got, want)
	}
	if w.tail.live != 30 || w.tail.queue[w.tail.head].msg.Seqnum != 81 {
		t.Fatalf("%d entries, the queue's front %d: want 30, 81 first", w.tail.live, w.tail.queue[w.tail.head].msg.Seqnum)
	}
	// Past the budget the prepended go first.
	w.tail.max = w.tail.bytes - 1
	w.trimTail()
	if gs.high.from != 81 || len(gs.high.entries) != 29 {
		t.Fatalf("past the budget: from %d, %d entries; want 81, 29", gs.high.from, len(gs.high.entries))
	}

	w.forget(gs)
	again := load()
	w.prependHigh(gs, 0, tailMark{from: gs.high.from}, seen)
	if again.high.from != 100 || len(again.high.entries) != 0 {
		t.Fatal("a read of a forgotten state changed the group loaded since")
	}
}

// TestOfferedOutsideTheTail: a message offered to the stream again that
// the tail does not hold, though it claims every message after its start
// (a send of the router's own, trimmed by the budget, given up and
// retried), makes the tail start after it; one it holds gets its new
// offer; one from before its start changes nothing.
func TestOfferedOutsideTheTail(t *testing.T) {
	w := newWorker(&Router{cfg: Config{ResumeMemory: 1 << 30, Workers: 1}})
	gs := &groupState{g: storage.Group{AppID: "app", ID: "room"}, high: highTail{from: 2}}
	w.groups[groupKey("app", "room")] = gs
	for _, seq := range []int64{3, 4, 6, 8} {
		w.addHigh(gs, &liveimpb.Message{Seqnum: seq}, nil, false)
	}
	again := &highAck{done: make(chan struct{})}
	w.offered(gs, 4, again)
	w.offered(gs, 1, again)
	if gs.high.from != 2 || len(gs.high.entries) != 4 || gs.high.entries[1].ack != again {
		t.Fatalf("after offers of a held message and one of before the start: from %d, %d entries", gs.high.from, len(gs.high.entries))
	}
	w.offered(gs, 7, again) // not held: 6 and 8 were, 7 was trimmed
	if gs.high.from != 7 || len(gs.high.entries) != 1 || gs.high.entries[0].msg.Seqnum != 8 {
		t.Fatalf("after an offer of 7, which the tail lacks: from %d, %d entries", gs.high.from, len(gs.high.entries))
	}
	if w.tail.live != 1 || w.tail.bytes != gs.high.entries[0].size {
		t.Fatalf("counted %d entries of %d bytes, want 1 of %d", w.tail.live, w.tail.bytes, gs.high.entries[0].size)
	}
	if _, ok := gs.high.view(5, 0, 100, 1<<20); ok {
		t.Fatal("a resume after 5 is answered from memory, which lacks 7")
	}
}
