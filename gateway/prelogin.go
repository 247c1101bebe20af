package gateway

import (
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// preloginGrace is how long a WebSocket may go without beginning to log in
// before a full gateway may close it to make room for a new client.
const preloginGrace = time.Second

// prelogin queues the WebSockets in the order they were adopted, until
// they log in or close. A gateway at Config.MaxConns closes the oldest of
// them that has not begun to log in within preloginGrace to make room for a
// new client instead of answering it 503: a socket that never logs in
// holds its slot until Config.LoginTimeout, so addresses that each stay
// under their caps could otherwise keep a gateway full of sockets that
// will never log in. A real client sends its login right after the
// upgrade; a logged-in session is never closed for room.
type prelogin struct {
	mu   sync.Mutex // leaf lock
	q    []*conn    // adoption order; q[:head] are gone, nil marks one taken out
	head int
}

func (p *prelogin) add(c *conn) {
	p.mu.Lock()
	p.q = append(p.q, c)
	p.mu.Unlock()
}

// loggedInOrGone reports whether c has left the queue's concern: logged
// in or closed (nil: taken out).
func loggedInOrGone(c *conn) bool { return c == nil || c.sess.Load() != nil || c.released.Load() }

// pruneLocked drops the entries at the head that are done, and compacts
// the queue once most of it is.
func (p *prelogin) pruneLocked() {
	for p.head < len(p.q) && loggedInOrGone(p.q[p.head]) {
		p.q[p.head] = nil
		p.head++
	}
	if p.head > 64 && p.head > len(p.q)/2 {
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
}

// prune forgets the connections that logged in or closed; the gateway
// calls it on its ticker so the queue holds only connections not yet
// logged in.
func (p *prelogin) prune() {
	p.mu.Lock()
	p.pruneLocked()
	p.mu.Unlock()
}

// take removes and returns the oldest connection adopted before now less
// preloginGrace that has not begun to log in, or nil. Connections whose
// login is under way stay: a login that fails leaves them waiting again.
func (p *prelogin) take(now time.Time) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	for i := p.head; i < len(p.q); i++ {
		c := p.q[i]
		if loggedInOrGone(c) {
			continue
		}
		if now.Sub(c.created) < preloginGrace {
			return nil // the rest are younger
		}
		if !c.loggingIn.Load() {
			p.q[i] = nil
			return c
		}
	}
	return nil
}

// evict closes the oldest connection that has not begun to log in within
// preloginGrace, as a login timeout, and reports whether there was one.
func (p *prelogin) evict(now time.Time) bool {
	for {
		c := p.take(now)
		if c == nil {
			return false
		}
		c.mu.Lock()
		gone := c.closed || c.closing
		c.mu.Unlock()
		if gone {
			continue
		}
		c.closeWith(ws.StatusPolicyViolation, "login timeout", nil)
		c.closeNow() // its file now, not after a close handshake it may never answer
		return true
	}
}
