package gateway

import (
	"testing"
	"time"
)

// TestRPCTable: requests are matched by token once, and those past their
// deadline come back from expired exactly once.
func TestRPCTable(t *testing.T) {
	tb := rpcTable{m: make(map[uint64]*pendingRPC)}
	now := time.Unix(1000, 0)
	early := tb.add(&pendingRPC{id: 1, deadline: now.Add(time.Second)})
	late := tb.add(&pendingRPC{id: 2, deadline: now.Add(time.Minute)})
	if early == late {
		t.Fatal("two requests share a token")
	}
	if got := tb.expired(now); len(got) != 0 {
		t.Fatalf("%d expired before any deadline", len(got))
	}
	got := tb.expired(now.Add(2 * time.Second))
	if len(got) != 1 || got[0].id != 1 {
		t.Fatalf("expired %v, want request 1", got)
	}
	if tb.take(early) != nil {
		t.Fatal("an expired request was still taken by its reply")
	}
	if p := tb.take(late); p == nil || p.id != 2 {
		t.Fatalf("take = %v", p)
	}
	if tb.take(late) != nil {
		t.Fatal("a reply was matched twice")
	}
}
