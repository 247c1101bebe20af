package gateway

import (
	"errors"
	"net"
	"net/netip"
)

// The I/O paths of Config.IO. Both serve the same protocol through the
// same code (conn, handle.go, session.go, frame.go); they differ only in
// how a socket is read and written after its upgrade.
const (
	// IOEpoll: Config.Loops epoll event loops own the sockets (Linux
	// only). An idle connection holds no goroutine and no read buffer.
	IOEpoll = "epoll"
	// IOPortable: one goroutine per connection reads its net.Conn, and a
	// writer goroutine runs while the connection has frames queued. Any
	// OS, and any net.Conn, so also in-process TLS.
	IOPortable = "portable"
)

// maxIOV is the most frames one vectored write takes.
const maxIOV = 1024

// errNoEpoll is the error of IOEpoll where there is no epoll.
var errNoEpoll = errors.New("gateway: --io epoll needs Linux; use --io portable")

// connIO is the socket half of a conn: what differs between the I/O
// paths for one connection. Each method is called with conn.mu held,
// except forget.
type connIO interface {
	// write writes frame, or appends it to the conn's queue
	// (conn.queueLocked) and sees that the queue gets written. It
	// reports false when the socket failed.
	write(frame []byte) bool
	// closing is called once a close frame is queued: the socket is
	// half-closed (FIN) when everything queued has been written.
	closing()
	// close closes the socket and drops the queue: no frame is queued
	// after it. What the socket took before is not lost: on epoll that is
	// what write(2) put in the kernel, and on the portable path a writer
	// that is running may finish the queue for a moment first.
	close()
	// forget drops the closed connection from its engine. conn.mu is not
	// held: the engine's lock and conn.mu are both leaves.
	forget()
}

// engine runs the sockets of upgraded connections: the epoll loops
// (epoll.go, Linux) or the portable goroutines (portable.go).
type engine interface {
	// adopt takes over an upgraded connection from ip with the upgrade's
	// Origin header. buffered holds bytes the client sent behind the
	// upgrade request, which are handled first (they may close it). The
	// connection holds ip's slot (ipLimits) until it is released; if adopt
	// fails it has released the slot and closed nc.
	adopt(nc net.Conn, ip netip.Addr, origin string, buffered []byte) (*conn, error)
	// run serves the engine's connections until stop is closed, then
	// returns once its goroutines have ended.
	run(stop <-chan struct{})
	// conns returns the engine's open connections: what Run's shutdown
	// and the drain (drain.go, openConns) close.
	conns() []*conn
	// close releases what the engine holds; run has returned.
	close()
}

// newEngine returns the engine of Config.IO (WithDefaults set it).
func (g *Gateway) newEngine() (engine, error) {
	if g.cfg.IO == IOEpoll {
		return newEpoll(g)
	}
	return newPortable(g), nil
}
