//go:build linux

package gateway

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/liveim/liveim/internal/sockfd"
)

// haveEpoll: IOEpoll is the default, where no TLS is asked for.
const haveEpoll = true

// epoll is the engine of IOEpoll: Config.Loops event loops (loop.go).
type epoll struct {
	gw    *Gateway
	loops []*loop
	next  atomic.Uint64 // round robin over loops
}

func newEpoll(g *Gateway) (engine, error) {
	e := &epoll{gw: g}
	for range g.cfg.Loops {
		l, err := newLoop(g)
		if err != nil {
			e.close()
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// adopt moves a socket from Go's netpoller to one of the loops: it
// duplicates the fd, closes the net.Conn and registers the duplicate.
func (e *epoll) adopt(nc net.Conn, ip netip.Addr, origin string, buffered []byte) (*conn, error) {
	fd, err := sockfd.Detach(nc)
	if err != nil {
		e.gw.perIP.release(ip)
		return nil, err
	}
	l := e.loops[e.next.Add(1)%uint64(len(e.loops))]
	c := newConn(e.gw, ip, origin)
	eio := &epollIO{c: c, loop: l, fd: fd}
	c.io = eio
	if len(buffered) > 0 {
		// Frames sent right behind the upgrade request: handle them before
		// the loop can see the socket, so this goroutine is their only
		// reader.
		used := c.handleBytes(buffered)
		if used < 0 {
			return c, nil
		}
		eio.partial = append(eio.partial, buffered[used:]...)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c, nil
	}
	if err := l.add(eio); err != nil {
		c.closeNow()
		return nil, err
	}
	return c, nil
}

func (e *epoll) run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, l := range e.loops {
		wg.Go(l.run)
	}
	<-stop
	for _, l := range e.loops {
		l.stop()
	}
	wg.Wait()
}

func (e *epoll) conns() []*conn {
	var out []*conn
	for _, l := range e.loops {
		out = l.snapshot(out)
	}
	return out
}

func (e *epoll) close() {
	for _, l := range e.loops {
		l.close()
	}
}

// epollIO is the socket of a conn on a loop: a non-blocking fd. Every use
// of the fd happens under conn.mu with conn.closed false, so a closed fd
// number, perhaps reused by a new socket, is never touched.
type epollIO struct {
	c       *conn
	loop    *loop
	fd      int
	partial []byte // loop only: the bytes of an incomplete frame
}

// write writes frame at once when nothing is queued; what the socket
// does not take is queued and written on EPOLLOUT (flush).
func (e *epollIO) write(frame []byte) bool {
	c := e.c
	if c.outBytes == 0 {
		n, err := unix.Write(e.fd, frame)
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return false
		}
		if n == len(frame) {
			return true
		}
		if n > 0 {
			frame = frame[n:]
		}
		e.loop.watchWrites(e, true)
	}
	c.queueLocked(frame)
	return true
}

func (e *epollIO) closing() {
	if e.c.outBytes == 0 {
		_ = unix.Shutdown(e.fd, unix.SHUT_WR)
	} // else flush does, once the queue is written
}

func (e *epollIO) close() {
	e.loop.unwatch(e)
	_ = unix.Close(e.fd)
	e.c.outq, e.c.outBytes = nil, 0
}

func (e *epollIO) forget() { e.loop.forget(e) }

// flush writes queued frames, as many as the socket takes in one writev
// each, when the socket can take more (EPOLLOUT).
func (e *epollIO) flush() {
	c := e.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	for len(c.outq) > 0 {
		iov := c.outq
		if len(iov) > maxIOV {
			iov = iov[:maxIOV]
		}
		n, err := unix.Writev(e.fd, iov)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			c.mu.Unlock()
			return
		}
		if err != nil {
			c.mu.Unlock()
			c.closeNow()
			return
		}
		c.wroteLocked(n)
	}
	e.loop.watchWrites(e, false)
	if c.closing {
		_ = unix.Shutdown(e.fd, unix.SHUT_WR)
	}
	c.mu.Unlock()
}
