//go:build linux

package gateway

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one epoll event loop. It owns the reads of its connections: only
// its goroutine reads a socket and parses frames, into one read buffer the
// loop shares among all its connections, so an idle connection holds
// neither a goroutine nor a buffer.
type loop struct {
	gw   *Gateway
	epfd int
	buf  []byte // the shared read buffer; only the loop goroutine uses it
	// swept holds the connections a sweep walks, reused from one sweep
	// to the next; only the loop goroutine uses it.
	swept []*conn

	mu    sync.Mutex // leaf lock: guards conns
	conns map[int]*epollIO

	stopped atomic.Bool
}

const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeEvents = readEvents | unix.EPOLLOUT
	// readChunk is how much a loop reads from one socket at a time.
	readChunk = 64 << 10
)

func newLoop(gw *Gateway) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &loop{
		gw:    gw,
		epfd:  epfd,
		buf:   make([]byte, gw.cfg.MaxFrameBytes+maxHeaderLen+readChunk),
		conns: make(map[int]*epollIO),
	}, nil
}

// add registers c for reads. c must not be in any loop yet.
func (l *loop) add(c *epollIO) error {
	l.mu.Lock()
	l.conns[c.fd] = c
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.mu.Lock()
		delete(l.conns, c.fd)
		l.mu.Unlock()
		return err
	}
	return nil
}

// unwatch stops epoll events for c, whose fd is about to be closed.
// Called with conn.mu held; it takes no lock.
func (l *loop) unwatch(c *epollIO) {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
}

// forget drops a closed c from the fd table. Its fd number may already
// belong to a new socket: that entry stays.
func (l *loop) forget(c *epollIO) {
	l.mu.Lock()
	if l.conns[c.fd] == c {
		delete(l.conns, c.fd)
	}
	l.mu.Unlock()
}

// watchWrites turns EPOLLOUT on or off for c. Called with conn.mu held.
func (l *loop) watchWrites(c *epollIO, on bool) {
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(c.fd)}
	if on {
		ev.Events = writeEvents
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

// run waits for events until stop, sweeping idle connections once a
// second.
func (l *loop) run() {
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for !l.stopped.Load() {
		n, err := unix.EpollWait(l.epfd, events, 250)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.gw.log.Error("epoll wait", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			ev := events[i]
			l.mu.Lock()
			c := l.conns[int(ev.Fd)]
			l.mu.Unlock()
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.flush()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.readFrom(c)
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			l.sweep(now)
		}
	}
}

// readFrom reads what c's socket holds, handles every complete frame and
// keeps the bytes of an incomplete one. A client that sends half a frame
// costs one read; nothing waits for the rest.
func (l *loop) readFrom(e *epollIO) {
	c := e.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	n0 := copy(l.buf, e.partial)
	n, err := unix.Read(e.fd, l.buf[n0:])
	c.mu.Unlock()
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return
	case err != nil || n == 0:
		c.closeNow()
		return
	}
	c.touch()
	data := l.buf[:n0+n]
	used := c.handleBytes(data)
	if used < 0 {
		e.partial = nil
		return
	}
	if rest := data[used:]; len(rest) > 0 {
		e.partial = append(e.partial[:0], rest...)
	} else {
		e.partial = nil
	}
}

// sweep runs the timers of every connection (conn.sweep).
func (l *loop) sweep(now time.Time) {
	l.swept = l.snapshot(l.swept[:0])
	for _, c := range l.swept {
		c.sweep(now)
	}
	clear(l.swept) // closed connections are not kept until the next sweep
}

// snapshot appends the loop's connections to buf.
func (l *loop) snapshot(buf []*conn) []*conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.conns {
		buf = append(buf, e.c)
	}
	return buf
}

func (l *loop) stop() {
	l.stopped.Store(true)
}

func (l *loop) close() {
	_ = unix.Close(l.epfd)
}
