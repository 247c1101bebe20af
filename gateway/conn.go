package gateway

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/proto/liveimpb"
)

// conn is one WebSocket connection, on either I/O path (io.go).
//
// Reads and frame handling run on one goroutine at a time: the
// connection's epoll loop, or its reader goroutine on the portable path
// (and, before an epoll conn joins its loop, the upgrading goroutine).
// Writes come from any goroutine: they queue under mu, and c.io moves the
// queue to the socket. The queue's bound, dropping, the slow-consumer
// rule and every close decision are here, the same on both paths.
// mu is a leaf lock: nothing else is locked while it is held.
type conn struct {
	gw *Gateway
	io connIO // the socket: set before anyone else sees the conn

	mu      sync.Mutex
	closed  bool   // the socket is closed
	closing bool   // a close frame went out; waiting for the peer
	reason  string // why the connection ends (disconnectReason); set once
	// outq holds the frames not yet handed to the socket: not yet written
	// (epoll; outq[0] may be partly written), or not yet taken by the
	// writer goroutine (portable). outBytes is their size, which
	// Config.OutboundQueueBytes bounds.
	outq     [][]byte
	outBytes int
	// dropSince is when the queue last began dropping NORMAL events
	// (Unix nanoseconds); 0 once it drains.
	dropSince int64
	// groups are the groups joined through this connection: a slice, as
	// most connections are in one room (a map would cost 10 times more;
	// Config.MaxGroupsPerSession bounds the scans).
	groups []string
	// joins are the joins sent to the router and not answered (nil when
	// none); with groups they are held to Config.MaxGroupsPerSession.
	joins *joinsInFlight

	origin string     // the upgrade request's Origin header; set before the conn is read
	ip     netip.Addr // the client's address; its ipLimits slot is released with the conn

	created   time.Time
	lastRead  atomic.Int64 // unix nanoseconds of the last frame
	sess      atomic.Pointer[session]
	loggingIn atomic.Bool
	// refreshing is set while a token refresh waits for a router, off
	// the loop; a second one meanwhile is refused.
	refreshing atomic.Bool
	released   atomic.Bool // release has run: the gateway is done with it
	teardown   sync.Once
}

// newConn returns a connection of ip, counted in the gateway's
// connections and connects (Metrics.opened) until it is released, on
// either I/O path; the caller sets c.io.
func newConn(gw *Gateway, ip netip.Addr, origin string) *conn {
	c := &conn{gw: gw, ip: ip, origin: origin, created: time.Now()}
	c.touch()
	gw.metrics.opened()
	gw.prelogin.add(c)
	return c
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// send queues a complete frame for the socket. frame is shared and never
// modified. A droppable (NORMAL) frame is dropped when the queue is full;
// any other frame on a full queue, or a queue that stays full past
// Config.SlowConsumerTimeout, closes the connection as a slow consumer,
// with a reconnect hint: HIGH events are then recovered by the client's
// resume.
func (c *conn) send(frame []byte, droppable bool) bool {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return false
	}
	if c.outBytes+len(frame) > c.gw.cfg.OutboundQueueBytes {
		chronic := false
		if droppable {
			now := time.Now().UnixNano()
			if c.dropSince == 0 {
				c.dropSince = now
			}
			chronic = now-c.dropSince > int64(c.gw.cfg.SlowConsumerTimeout)
		}
		c.mu.Unlock()
		if droppable {
			c.gw.metrics.dropped.Add(1)
			if !chronic {
				return false
			}
		}
		c.gw.metrics.slowClosed.Add(1)
		c.gw.log.Warn("closing slow consumer", "ip", c.ip, "chronic", chronic)
		c.closeWith(ws.StatusPolicyViolation, "slow consumer", &liveimpb.DisconnectEvent{Reason: "slow consumer", Reconnect: true})
		return false
	}
	ok := c.io.write(frame)
	c.mu.Unlock()
	if !ok {
		c.closeNow()
	}
	return ok
}

// queueLocked appends frame to the queue. c.mu must be held.
func (c *conn) queueLocked(frame []byte) {
	c.outq = append(c.outq, frame)
	c.outBytes += len(frame)
}

// wroteLocked takes n bytes the socket took off the front of the queue
// and reports whether the queue is now empty; an empty queue ends a run
// of drops (dropSince). c.mu must be held.
func (c *conn) wroteLocked(n int) bool {
	c.outBytes -= n
	for n > 0 {
		if n >= len(c.outq[0]) {
			n -= len(c.outq[0])
			c.outq[0] = nil
			c.outq = c.outq[1:]
		} else {
			c.outq[0] = c.outq[0][n:]
			n = 0
		}
	}
	if len(c.outq) > 0 {
		return false
	}
	c.outq, c.dropSince = nil, 0
	return true
}

// closeWith ends the session politely: an optional DisconnectEvent, a
// close frame with status, then a half close once they are written; the
// socket is closed when the peer answers or after a grace period.
func (c *conn) closeWith(status ws.StatusCode, reason string, ev *liveimpb.DisconnectEvent) {
	var evFrame []byte
	if ev != nil {
		evFrame = encodeServerFrame(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{
			Event: &liveimpb.Event{Body: &liveimpb.Event_Disconnect{Disconnect: ev}},
		}})
	}
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	ok := true
	if evFrame != nil {
		ok = c.io.write(evFrame)
	}
	ok = ok && c.io.write(closeFrame(status, reason))
	c.closing = true
	c.reason = disconnectReason(reason)
	if ok {
		c.io.closing()
	}
	c.mu.Unlock()
	if !ok {
		c.closeNow()
		return
	}
	c.release()
	time.AfterFunc(closeGrace, c.closeNow)
}

// closeGrace is how long a closing connection waits for the peer's
// close frame before its socket is closed.
const closeGrace = 2 * time.Second

// closeNow closes the socket at once and releases the session.
func (c *conn) closeNow() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == "" {
		c.reason = reasonConnectionLost
	}
	c.io.close()
	c.mu.Unlock()
	c.io.forget() // after c.mu: every lock stays a leaf
	c.release()
}

// release drops the session's subscriptions and group memberships, once.
func (c *conn) release() {
	c.teardown.Do(func() {
		c.released.Store(true)
		c.gw.perIP.release(c.ip)
		c.mu.Lock()
		groups, reason := c.groups, c.reason
		c.groups = nil
		c.mu.Unlock()
		c.gw.metrics.closed(reason)
		s := c.sess.Load()
		if s == nil {
			return
		}
		for _, g := range groups {
			c.gw.rooms.leave(roomKey(s.appID, g), c)
			c.gw.notifyLeave(s, g)
		}
		c.gw.sessions.remove(s.userKey, c)
		c.gw.presenceEvent(s, callback.UserOffline)
	})
}

// sweep runs c's timers at now: a connection that never logged in or went
// silent is closed; a session is told shortly before its token expires
// (TokenExpiringEvent, the SDK's tokenexpired) and closed once it has
// expired without a refresh.
func (c *conn) sweep(now time.Time) {
	s := c.sess.Load()
	if s == nil {
		if !c.loggingIn.Load() && now.Sub(c.created) > c.gw.cfg.LoginTimeout {
			c.closeWith(ws.StatusPolicyViolation, "login timeout", nil)
		}
		return
	}
	if now.UnixNano()-c.lastRead.Load() > int64(s.heartbeat) {
		c.closeWith(ws.StatusGoingAway, "heartbeat timeout", &liveimpb.DisconnectEvent{Code: liveimpb.DisconnectCode_DISCONNECT_CODE_TIMEOUT, Reason: "heartbeat timeout", Reconnect: true})
		return
	}
	exp := s.expiry.Load()
	switch {
	case now.Unix() >= exp:
		// Reconnect: a client whose app hands it a new token logs in again.
		c.closeWith(closeUnauthorized, "token expired", &liveimpb.DisconnectEvent{
			Code: liveimpb.DisconnectCode_DISCONNECT_CODE_TOKEN_EXPIRED, Reason: "token expired", Reconnect: true,
		})
	case now.Unix() >= s.noticeAt.Load() && s.warned.Swap(exp) != exp:
		c.send(encodeServerFrame(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
			Body: &liveimpb.Event_TokenExpiring{TokenExpiring: &liveimpb.TokenExpiringEvent{ExpireAt: exp}},
		}}}), false)
	}
}

// joined reports whether the connection joined groupID.
// joiningOrIn reports whether the connection is in groupID or has a join
// of it in flight.
func (c *conn) joiningOrIn(groupID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.groups, groupID) || c.joins != nil && slices.Contains(c.joins.groups, groupID)
}

func (c *conn) joined(groupID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.groups, groupID)
}

// joinsInFlight are a connection's joins sent to the router and not
// answered.
type joinsInFlight struct {
	groups []string // the group of each
	// kicked are groups a kick notice came for while a join of theirs was
	// in flight. The notice and the join's answer reach the gateway by
	// different paths, so the answer may come second though the router
	// joined first: such a join is refused, or the kicked (and perhaps
	// banned) user would stay in the room here.
	kicked []string
}

// reserveJoin counts a join of groupID in flight against max, the most
// groups the connection may be in; it reports false when the connection
// is at max. Every reservation ends with endJoin.
func (c *conn) reserveJoin(groupID string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	inFlight := 0
	if c.joins != nil {
		inFlight = len(c.joins.groups)
	}
	if !slices.Contains(c.groups, groupID) && len(c.groups)+inFlight >= max {
		return false
	}
	if c.joins == nil {
		c.joins = &joinsInFlight{}
	}
	c.joins.groups = append(c.joins.groups, groupID)
	return true
}

// endJoin ends a reservation of reserveJoin; kicked reports whether a
// kick notice for groupID came while the join was in flight.
func (c *conn) endJoin(groupID string) (kicked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.joins
	if j == nil {
		return false
	}
	if i := slices.Index(j.groups, groupID); i >= 0 {
		j.groups = slices.Delete(j.groups, i, i+1)
	}
	kicked = slices.Contains(j.kicked, groupID)
	if kicked && !slices.Contains(j.groups, groupID) {
		j.kicked = slices.DeleteFunc(j.kicked, func(g string) bool { return g == groupID })
	}
	if len(j.groups) == 0 {
		c.joins = nil
	}
	return kicked
}

// kickJoins marks the connection's joins of groupID in flight as
// kicked (endJoin).
func (c *conn) kickJoins(groupID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j := c.joins; j != nil && slices.Contains(j.groups, groupID) && !slices.Contains(j.kicked, groupID) {
		j.kicked = append(j.kicked, groupID)
	}
}

// leaveRoom forgets a joined group here and takes the connection out of
// the room's members.
func (c *conn) leaveRoom(appID, groupID string) {
	c.setJoined(groupID, false)
	c.gw.rooms.leave(roomKey(appID, groupID), c)
}

// setJoined records or forgets a joined group; it reports false when the
// connection is already gone.
func (c *conn) setJoined(groupID string, on bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return false
	}
	i := slices.Index(c.groups, groupID)
	switch {
	case on && i < 0:
		c.groups = append(c.groups, groupID)
	case !on && i >= 0:
		c.groups = slices.Delete(c.groups, i, i+1)
	}
	return true
}
