//go:build linux

package bench

import (
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/internal/sockfd"
)

// supported reports why liveim bench cannot run here: it can.
func supported() error { return nil }

func newFanoutReader() (*fanoutReader, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &fanoutReader{epfd: epfd, conns: make(map[int32]*memberConn), hist: latency.New()}, nil
}

// add takes over conn's socket (a duplicate fd; conn is closed), where
// user is logged in.
func (r *fanoutReader) add(conn net.Conn, user int) error {
	fd, err := sockfd.Detach(conn)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.conns[int32(fd)] = &memberConn{fd: fd, user: user}
	r.mu.Unlock()
	return unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// run reads until stop is closed. With interval > 0 it waits for events
// at most once per interval, so the frames that arrived meanwhile are
// read in one read per socket: fewer, larger reads, for up to interval
// of added latency.
func (r *fanoutReader) run(stop <-chan struct{}, interval time.Duration) {
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 256<<10)
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if interval > 0 {
			time.Sleep(time.Until(last.Add(interval)))
			last = time.Now()
		}
		n, err := unix.EpollWait(r.epfd, events, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for i := 0; i < n; i++ {
			r.mu.Lock()
			c := r.conns[events[i].Fd]
			r.mu.Unlock()
			if c != nil {
				r.read(c, buf)
			}
		}
	}
}

func (r *fanoutReader) read(c *memberConn, buf []byte) {
	n0 := copy(buf, c.partial)
	n, err := unix.Read(c.fd, buf[n0:])
	if n <= 0 || err != nil {
		return
	}
	r.consume(c, buf[:n0+n])
}

// writeFD writes b to a socket the reader owns.
func writeFD(fd int, b []byte) (int, error) { return unix.Write(fd, b) }
