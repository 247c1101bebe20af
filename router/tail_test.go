package router

import (
	"fmt"
	"math/rand/v2"
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
