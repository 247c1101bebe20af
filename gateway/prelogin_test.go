package gateway

import (
	"testing"
	"time"
)

// TestPreloginQueue: take returns the oldest connection past the grace
// that has not begun to log in, skipping (and keeping) one whose login is
// under way; connections that logged in or closed leave the queue, which
// does not keep their memory.
func TestPreloginQueue(t *testing.T) {
	now := time.Unix(1000, 0)
	old := now.Add(-2 * preloginGrace)
	var p prelogin
	inFlight := &conn{created: old}
	inFlight.loggingIn.Store(true)
	idle := &conn{created: old}
	young := &conn{created: now}
	for _, c := range []*conn{inFlight, idle, young} {
		p.add(c)
	}
	if got := p.take(now); got != idle {
		t.Fatalf("take: %p, want the idle connection %p", got, idle)
	}
	if got := p.take(now); got != nil {
		t.Fatalf("take: %p, want none (a login under way, a connection within the grace)", got)
	}
	inFlight.loggingIn.Store(false) // its login failed: it waits again
	if got := p.take(now); got != inFlight {
		t.Fatalf("take: %p, want the connection whose login failed %p", got, inFlight)
	}
	if got := p.take(now.Add(2 * preloginGrace)); got != young {
		t.Fatalf("take once the young one is past the grace: %p, want %p", got, young)
	}

	var q prelogin
	for range 1000 {
		c := &conn{created: old}
		c.released.Store(true)
		q.add(c)
	}
	loggedIn := &conn{created: old}
	loggedIn.sess.Store(&session{})
	q.add(loggedIn)
	q.prune()
	if len(q.q) != 0 || q.head != 0 {
		t.Fatalf("after pruning 1,001 finished connections: %d entries, head %d; want none", len(q.q), q.head)
	}
}
