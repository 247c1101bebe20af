package ceiling

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/internal/sockfd"
)

// wsServer is the ws-server role: the least a gobwas/ws server can do.
// It upgrades connections with ws.Upgrade on the raw net.Conn, takes their
// sockets onto epoll loops, and either broadcasts (one frame per message,
// built once, written to every socket with unix.Write) or echoes every
// frame a client sends.
type wsServer struct {
	j     job
	ln    net.Listener
	loops []*poller
	stop  chan struct{}

	mu    sync.Mutex // guards conns
	conns []*serverConn

	alive  atomic.Int64 // sockets open
	sent   atomic.Int64 // messages broadcast
	queued atomic.Int64 // writes that found a socket full
	lagNs  atomic.Int64 // most a broadcast started behind schedule
	done   atomic.Bool  // the broadcast is over

	elapsedNs atomic.Int64 // how long the broadcast took
	start     sync.Once
}

// serverConn is one upgraded socket.
type serverConn struct {
	sock
	srv *wsServer
	out []byte // echo replies being written; poller goroutine only
}

func (c *serverConn) base() *sock { return &c.sock }

// startWSServer listens on a free loopback port and starts one epoll loop
// per CPU.
func startWSServer(j job) (role, status, error) {
	if j.Mode != modeBroadcast && j.Mode != modeEcho {
		return nil, status{}, fmt.Errorf("ceiling: ws-server: mode %q", j.Mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, status{}, fmt.Errorf("ceiling: ws-server: %w", err)
	}
	s := &wsServer{j: j, ln: ln, stop: make(chan struct{})}
	for range runtime.GOMAXPROCS(0) {
		l, err := newPoller()
		if err != nil {
			s.close()
			return nil, status{}, err
		}
		s.loops = append(s.loops, l)
		go l.run(s.stop)
	}
	go s.accept()
	return s, status{Addr: ln.Addr().String()}, nil
}

// accept upgrades connections until the listener closes.
func (s *wsServer) accept() {
	for i := 0; ; i++ {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.upgrade(conn, s.loops[i%len(s.loops)])
	}
}

// upgrade runs the WebSocket handshake on conn, then hands its socket to
// loop.
func (s *wsServer) upgrade(conn net.Conn, loop *poller) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ws.Upgrade(conn); err != nil {
		_ = conn.Close()
		return
	}
	fd, err := sockfd.Detach(conn)
	if err != nil {
		return
	}
	c := &serverConn{sock: sock{fd: fd}, srv: s}
	if err := loop.add(c); err != nil {
		c.close()
		return
	}
	s.alive.Add(1)
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

// onRead echoes every complete frame, or (broadcast) discards what
// clients send.
func (c *serverConn) onRead(buf []byte) bool {
	data, ok := c.fill(buf)
	if !ok {
		c.srv.alive.Add(-1)
		return false
	}
	if c.srv.j.Mode != modeEcho {
		return true
	}
	c.out = c.out[:0]
	for len(data) > 0 {
		f, used, err := parseFrame(data)
		if err != nil || f.op == opClose {
			c.srv.alive.Add(-1)
			return false
		}
		if used == 0 {
			break
		}
		c.out = appendFrame(c.out, f.op, f.payload, nil)
		data = data[used:]
	}
	c.keep(data)
	if len(c.out) > 0 {
		if queued, err := c.write(c.out); err != nil {
			c.srv.alive.Add(-1)
			return false
		} else if queued {
			c.srv.queued.Add(1)
		}
	}
	return true
}

func (s *wsServer) handle(cmd string) (status, error) {
	switch cmd {
	case cmdStart:
		if s.j.Mode != modeBroadcast {
			return status{}, fmt.Errorf("ceiling: ws-server: start in %s mode", s.j.Mode)
		}
		s.start.Do(func() { go s.broadcast() })
		return s.report(), nil
	case cmdReport:
		return s.report(), nil
	}
	return status{}, fmt.Errorf("ceiling: ws-server: unknown command %q", cmd)
}

func (s *wsServer) report() status {
	return status{
		Conns:    int(s.alive.Load()),
		Sent:     s.sent.Load(),
		Queued:   s.queued.Load(),
		MaxLagMs: float64(s.lagNs.Load()) / 1e6,
		Done:     s.done.Load(),
		Seconds:  float64(s.elapsedNs.Load()) / 1e9,
	}
}

// broadcast sends j.Messages frames to every socket, j.Rate a second,
// splitting the sockets into one shard per CPU written in parallel.
func (s *wsServer) broadcast() {
	defer s.done.Store(true)
	s.mu.Lock()
	shards := split(s.conns, runtime.GOMAXPROCS(0))
	s.mu.Unlock()
	payload := make([]byte, s.j.Payload)
	var frame []byte
	p, _ := pace(s.stop, s.j.Messages, s.j.Rate, func(stamp int64, lag time.Duration) error {
		// A new slice per message: a full socket's queue holds no
		// reference to it (write copies), but this keeps frames immutable.
		frame = appendFrame(frame[:0:0], opBinary, stampPayload(payload, stamp), nil)
		s.writeAll(shards, frame)
		s.sent.Add(1)
		if int64(lag) > s.lagNs.Load() {
			s.lagNs.Store(int64(lag))
		}
		return nil
	})
	s.elapsedNs.Store(int64(p.elapsed))
}

// writeAll writes frame to every socket of every shard, one goroutine per
// shard.
func (s *wsServer) writeAll(shards [][]*serverConn, frame []byte) {
	var wg sync.WaitGroup
	for _, shard := range shards {
		wg.Go(func() {
			var queued int64
			for _, c := range shard {
				if q, err := c.write(frame); err == nil && q {
					queued++
				}
			}
			if queued > 0 {
				s.queued.Add(queued)
			}
		})
	}
	wg.Wait()
}

// split cuts xs into at most n contiguous shards of near equal size.
func split[T any](xs []T, n int) [][]T {
	n = max(1, min(n, len(xs)))
	shards := make([][]T, 0, n)
	for i := range n {
		shards = append(shards, xs[i*len(xs)/n:(i+1)*len(xs)/n])
	}
	return shards
}

func (s *wsServer) close() {
	_ = s.ln.Close()
	close(s.stop)
	for _, l := range s.loops {
		<-l.done
	}
}
