package ceiling

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveim/liveim/bench/latency"
)

// dialers is how many clients a worker connects at once.
const dialers = 32

// clients is the nats-clients and ws-clients role: Count sockets, read
// by one epoll loop per CPU, counting deliveries and their latency.
type clients struct {
	j       job
	loops   []*poller
	tallies []*tally // one per loop
	stop    chan struct{}

	mu      sync.Mutex // guards echoers, started, stopped
	echoers []*wsClient
	started time.Time
	stopped time.Time
	running atomic.Bool // echo clients send their next frame
}

// tally is what one loop's sockets received.
type tally struct {
	mu       sync.Mutex
	received int64 // messages, or echoes
	sent     int64 // echo frames sent
	probed   int   // sockets that saw a probe
	lastNs   int64 // time of the last receipt
	hist     latency.Hist
}

// delivered counts a fan-out message received at now; a probe marks the
// socket as reachable instead. t.mu must be held.
func (t *tally) delivered(payload []byte, now int64, probed *bool) {
	stamp, probe := parseStamp(payload)
	if probe {
		if !*probed {
			*probed = true
			t.probed++
		}
		return
	}
	t.received++
	t.lastNs = max(t.lastNs, now)
	t.hist.Add(max(now-stamp, 0))
}

// startClients connects j.Count clients and starts reading them.
func startClients(j job) (role, status, error) {
	if len(j.Addrs) == 0 || j.SourceAddrs <= 0 {
		return nil, status{}, errors.New("ceiling: clients: no addresses")
	}
	c := &clients{j: j, stop: make(chan struct{})}
	for range runtime.GOMAXPROCS(0) {
		l, err := newPoller()
		if err != nil {
			c.close()
			return nil, status{}, err
		}
		c.loops = append(c.loops, l)
		c.tallies = append(c.tallies, &tally{hist: latency.New()})
		go l.run(c.stop)
	}
	return c, c.connect(), nil
}

// connect connects every client, dialers at a time, and reports how it
// went.
func (c *clients) connect() status {
	start := time.Now()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= c.j.Count {
					return
				}
				if err := c.connectOne(i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	st := status{Connected: c.j.Count - int(failed.Load()), Errors: int(failed.Load()), Seconds: time.Since(start).Seconds()}
	if e, ok := firstErr.Load().(string); ok {
		st.FirstError = e
	}
	return st
}

// connectOne connects client i of this worker and hands it to a loop.
func (c *clients) connectOne(i int) error {
	n := c.j.First + i
	addr := c.j.Addrs[n%len(c.j.Addrs)]
	src := net.IPv4(127, 0, 0, byte(2+n%c.j.SourceAddrs))
	loop, t := c.loops[i%len(c.loops)], c.tallies[i%len(c.loops)]
	if c.j.Role == roleNATSClients {
		fd, rest, err := dialNATS(addr, src)
		if err != nil {
			return err
		}
		return loop.add(&natsSub{sock: sock{fd: fd, partial: rest}, t: t})
	}
	fd, rest, err := dialWS(addr, src)
	if err != nil {
		return err
	}
	wc := &wsClient{sock: sock{fd: fd, partial: rest}, t: t, cl: c}
	if c.j.Mode == modeEcho {
		key := [4]byte{byte(n), byte(n >> 8), 0x5a, 0xa5}
		wc.frame = appendFrame(nil, opBinary, bytes.Repeat([]byte{'e'}, c.j.Payload), &key)
		c.mu.Lock()
		c.echoers = append(c.echoers, wc)
		c.mu.Unlock()
	}
	return loop.add(wc)
}

func (c *clients) handle(cmd string) (status, error) {
	switch cmd {
	case cmdReport:
		return c.report(), nil
	case cmdReset:
		for _, t := range c.tallies {
			t.mu.Lock()
			t.received, t.sent, t.lastNs = 0, 0, 0
			t.hist.Reset()
			t.mu.Unlock()
		}
		return c.report(), nil
	case cmdStart:
		c.startEcho()
		return c.report(), nil
	case cmdStop:
		c.mu.Lock()
		c.running.Store(false)
		c.stopped = time.Now()
		c.mu.Unlock()
		return c.report(), nil
	}
	return status{}, fmt.Errorf("ceiling: clients: unknown command %q", cmd)
}

// startEcho has every echo client send its first frame; each echo it gets
// back then sends the next, until stop.
func (c *clients) startEcho() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = time.Now()
	c.running.Store(true)
	for _, e := range c.echoers {
		e.t.mu.Lock()
		e.t.sent++
		e.sentAt.Store(time.Now().UnixNano())
		_, _ = e.write(e.frame)
		e.t.mu.Unlock()
	}
}

// report sums the loops' tallies.
func (c *clients) report() status {
	st := status{Hist: latency.New()}
	for _, t := range c.tallies {
		t.mu.Lock()
		st.Received += t.received
		st.Sent += t.sent
		st.Probed += t.probed
		st.LastNs = max(st.LastNs, t.lastNs)
		st.Hist.Merge(t.hist)
		t.mu.Unlock()
	}
	c.mu.Lock()
	if !c.started.IsZero() {
		end := c.stopped
		if end.IsZero() {
			end = time.Now()
		}
		st.Seconds = end.Sub(c.started).Seconds()
	}
	c.mu.Unlock()
	return st
}

func (c *clients) close() {
	close(c.stop)
	for _, l := range c.loops {
		<-l.done
	}
}

// natsSub is a raw core-NATS subscriber: one connection, one
// subscription.
type natsSub struct {
	sock
	t      *tally
	probed bool
}

func (s *natsSub) base() *sock { return &s.sock }

// onRead counts every MSG and answers server PINGs.
func (s *natsSub) onRead(buf []byte) bool {
	data, ok := s.fill(buf)
	if !ok || len(data) == 0 {
		return ok
	}
	now := time.Now().UnixNano()
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	for {
		op, payload, used, err := natsOp(data)
		if err != nil || op == opErr {
			return false
		}
		if used == 0 {
			break
		}
		data = data[used:]
		switch op {
		case opMsg:
			s.t.delivered(payload, now, &s.probed)
		case opPing:
			if _, err := s.write(natsPong); err != nil {
				return false
			}
		}
	}
	s.keep(data)
	return true
}

// wsClient is a WebSocket client: a fan-out member, or an echo client
// that keeps one frame in flight.
type wsClient struct {
	sock
	t      *tally
	cl     *clients
	probed bool
	frame  []byte       // echo: the masked frame it sends
	sentAt atomic.Int64 // echo: when the frame in flight was sent
}

func (w *wsClient) base() *sock { return &w.sock }

// onRead counts every frame: a fan-out delivery, or an echo, answered
// with the next frame while the run lasts.
func (w *wsClient) onRead(buf []byte) bool {
	data, ok := w.fill(buf)
	if !ok || len(data) == 0 {
		return ok
	}
	now := time.Now().UnixNano()
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	for {
		f, used, err := parseFrame(data)
		if err != nil || f.op == opClose {
			return false
		}
		if used == 0 {
			break
		}
		data = data[used:]
		if w.frame == nil {
			w.t.delivered(f.payload, now, &w.probed)
			continue
		}
		w.t.received++
		w.t.lastNs = now
		w.t.hist.Add(max(now-w.sentAt.Load(), 0))
		if w.cl.running.Load() {
			w.t.sent++
			w.sentAt.Store(now)
			if _, err := w.write(w.frame); err != nil {
				return false
			}
		}
	}
	w.keep(data)
	return true
}
