//go:build linux

package ceiling

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// supported reports why liveim ceiling cannot run here: it can.
func supported() error { return nil }

const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeEvents = readEvents | unix.EPOLLOUT
	// readChunk is the most a poller reads from one socket at a time.
	readChunk = 64 << 10
)

// pollee is a socket on a poller. onRead runs on the poller's goroutine
// when the socket is readable; it reports false when the socket is done
// (the peer closed it, or it failed), and the poller then drops it.
type pollee interface {
	base() *sock
	onRead(buf []byte) bool
}

// poller is one epoll loop: its goroutine reads every socket registered
// on it, so an idle socket costs no goroutine, and one read buffer serves
// them all.
type poller struct {
	epfd int
	buf  []byte

	mu  sync.Mutex // guards fds
	fds map[int32]pollee

	done chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("ceiling: epoll: %w", err)
	}
	return &poller{epfd: epfd, buf: make([]byte, 2*readChunk), fds: make(map[int32]pollee), done: make(chan struct{})}, nil
}

// add registers p for reads.
func (l *poller) add(p pollee) error {
	s := p.base()
	s.loop = l
	l.mu.Lock()
	l.fds[int32(s.fd)] = p
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &unix.EpollEvent{Events: readEvents, Fd: int32(s.fd)}); err != nil {
		l.mu.Lock()
		delete(l.fds, int32(s.fd))
		l.mu.Unlock()
		return fmt.Errorf("ceiling: epoll add: %w", err)
	}
	return nil
}

// watchWrites turns EPOLLOUT on or off for fd.
func (l *poller) watchWrites(fd int, on bool) {
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(fd)}
	if on {
		ev.Events = writeEvents
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// drop forgets p and closes its socket. The fd leaves the map before it
// is closed, so a new socket reusing the number is never mistaken for it.
func (l *poller) drop(p pollee) {
	s := p.base()
	l.mu.Lock()
	if l.fds[int32(s.fd)] == p {
		delete(l.fds, int32(s.fd))
	}
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	s.close()
}

// run serves events until stop is closed, then closes every socket and
// the epoll instance.
func (l *poller) run(stop <-chan struct{}) {
	defer close(l.done)
	defer l.closeAll()
	events := make([]unix.EpollEvent, 256)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := unix.EpollWait(l.epfd, events, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			l.mu.Lock()
			p := l.fds[ev.Fd]
			l.mu.Unlock()
			if p != nil && !l.serve(p, ev.Events) {
				l.drop(p)
			}
		}
	}
}

// serve handles one event of p; false means p is done.
func (l *poller) serve(p pollee, events uint32) bool {
	if events&unix.EPOLLOUT != 0 && p.base().flush() != nil {
		return false
	}
	if events&(readEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		return p.onRead(l.buf)
	}
	return true
}

func (l *poller) closeAll() {
	l.mu.Lock()
	ps := make([]pollee, 0, len(l.fds))
	for _, p := range l.fds {
		ps = append(ps, p)
	}
	clear(l.fds)
	l.mu.Unlock()
	for _, p := range ps {
		p.base().close()
	}
	_ = unix.Close(l.epfd)
}

// sock is a non-blocking socket owned by a poller, with a write queue: a
// write the socket cannot take at once waits for EPOLLOUT. Writes may come
// from any goroutine; reads only from the poller's.
type sock struct {
	fd   int
	loop *poller

	mu      sync.Mutex // guards pending and closed
	pending []byte
	closed  bool

	partial []byte // bytes of an incomplete frame or line; poller goroutine only
}

// write writes b or queues what the socket cannot take; queued reports
// the latter. b is not retained.
func (s *sock) write(b []byte) (queued bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, unix.EBADF
	}
	if len(s.pending) > 0 {
		s.pending = append(s.pending, b...)
		return true, nil
	}
	n, err := unix.Write(s.fd, b)
	if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
		return false, err
	}
	n = max(n, 0)
	if n == len(b) {
		return false, nil
	}
	s.pending = append(s.pending, b[n:]...)
	s.loop.watchWrites(s.fd, true)
	return true, nil
}

// flush writes queued bytes when the socket can take them.
func (s *sock) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) > 0 && !s.closed {
		n, err := unix.Write(s.fd, s.pending)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return nil
		}
		if err != nil {
			return err
		}
		s.pending = s.pending[n:]
	}
	s.pending = nil
	if !s.closed {
		s.loop.watchWrites(s.fd, false)
	}
	return nil
}

// fill reads what the socket has, after the bytes kept from the last
// read, into buf. ok is false when the peer closed or the socket failed;
// data is empty when there was nothing to read.
func (s *sock) fill(buf []byte) (data []byte, ok bool) {
	n0 := copy(buf, s.partial)
	if n0 >= len(buf)-readChunk {
		return nil, false // a frame or line this large is not ours
	}
	n, err := unix.Read(s.fd, buf[n0:n0+readChunk])
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return nil, true
	case err != nil || n == 0:
		return nil, false
	}
	return buf[:n0+n], true
}

// keep saves the unparsed tail of the last read for the next.
func (s *sock) keep(rest []byte) { s.partial = append(s.partial[:0], rest...) }

// close closes the socket once.
func (s *sock) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.pending = nil
		_ = unix.Close(s.fd)
	}
}
