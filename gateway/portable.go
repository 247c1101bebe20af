package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/proto/liveimpb"
)

// portable is the engine of IOPortable. Each connection has a reader
// goroutine blocked in its net.Conn's Read (Go's netpoller does the
// waiting), and a writer goroutine only while frames are queued; once a
// second one goroutine runs every connection's timers (conn.sweep), as an
// epoll loop does for its own.
type portable struct {
	gw   *Gateway
	bufw sync.Pool // *bufio.Writer: TLS writers gather frames into 16 KiB records
	// goroutines counts readers and writers. A writer starts only for an
	// open connection, whose reader is still counted, so Add never races
	// with the Wait of run.
	goroutines sync.WaitGroup

	mu      sync.Mutex // leaf lock: guards set and stopped
	set     map[*conn]struct{}
	stopped bool // run ended: adopt refuses connections
}

func newPortable(g *Gateway) *portable {
	return &portable{
		gw:   g,
		set:  make(map[*conn]struct{}),
		bufw: sync.Pool{New: func() any { return bufio.NewWriterSize(nil, portableWriteBuf) }},
	}
}

var errStopping = errors.New("gateway: stopping")

func (p *portable) adopt(nc net.Conn, ip netip.Addr, origin string, buffered []byte) (*conn, error) {
	// net/http leaves the request's deadlines on a hijacked connection;
	// from here on the gateway's own timers (login, heartbeat, slow
	// consumer, close grace) bound it.
	_ = nc.SetDeadline(time.Time{})
	raw, isTLS := nc, false
	if tc, ok := nc.(*tls.Conn); ok {
		raw, isTLS = tc.NetConn(), true
	}
	p.mu.Lock()
	if p.stopped {
		// Refused as the epoll path refuses a socket it cannot detach:
		// never counted as a connection (Metrics.opened), so neither a
		// connect nor a disconnect.
		p.mu.Unlock()
		_ = raw.Close()
		p.gw.perIP.release(ip)
		return nil, errStopping
	}
	c := newConn(p.gw, ip, origin)
	nio := &netIO{c: c, eng: p, nc: nc, raw: raw, tls: isTLS}
	c.io = nio
	p.set[c] = struct{}{}
	p.goroutines.Add(1)
	p.mu.Unlock()
	go nio.read(buffered)
	return c, nil
}

func (p *portable) run(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var buf []*conn
	for {
		select {
		case now := <-t.C:
			buf = p.snapshot(buf[:0])
			for _, c := range buf {
				c.sweep(now)
			}
			clear(buf)
		case <-stop:
			p.mu.Lock()
			p.stopped = true
			p.mu.Unlock()
			// Run closed every connection it saw; these came in since, and
			// are closed as Run closes its own: told to reconnect, and
			// counted as a shutdown (disconnectReason).
			for _, c := range p.conns() {
				c.closeWith(ws.StatusGoingAway, shutdownText, &liveimpb.DisconnectEvent{Reason: shutdownText, Reconnect: true})
				c.closeNow()
			}
			p.goroutines.Wait()
			return
		}
	}
}

func (p *portable) conns() []*conn { return p.snapshot(nil) }

// snapshot appends the open connections to buf.
func (p *portable) snapshot(buf []*conn) []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.set {
		buf = append(buf, c)
	}
	return buf
}

func (p *portable) close() {}

// Buffers of portable connections: a connection reads into
// portableReadBuf bytes, grows its buffer to hold an incomplete frame (up
// to Config.MaxFrameBytes and a header) and goes back to the small one
// once a buffer above portableKeepBuf is empty. TLS writers gather frames
// into records of portableWriteBuf.
const (
	portableReadBuf  = 4 << 10
	portableKeepBuf  = 16 << 10
	portableWriteBuf = 16 << 10
)

// netIO is the socket of a conn on the portable path.
type netIO struct {
	c   *conn
	eng *portable
	nc  net.Conn // frames are read from and written to nc
	raw net.Conn // the connection under nc (nc itself without TLS); close closes it
	tls bool     // nc is a *tls.Conn

	// writing: a writer goroutine runs. linger: the conn closed while it
	// ran; it writes the rest of the queue, then closes the socket.
	// conn.mu guards both.
	writing, linger bool
}

// write queues frame for the writer goroutine, starting it if needed.
// The writer, not the caller, blocks on a slow socket.
func (n *netIO) write(frame []byte) bool {
	n.c.queueLocked(frame)
	n.startWriter()
	return true
}

func (n *netIO) startWriter() {
	if n.writing {
		return
	}
	n.writing = true
	n.eng.goroutines.Add(1)
	go n.writeQueue()
}

// closing: the writer half-closes the socket once the queue is written.
func (n *netIO) closing() { n.startWriter() }

// closeLinger bounds how long a closed portable connection's writer may
// go on writing what was queued before the close.
const closeLinger = time.Second

// close closes the TCP connection under nc, so a blocked Read or Write
// returns at once; a TLS close_notify, which could block, is not
// attempted (closeWith's half close sent one). With a writer running,
// the reader stops now, and the writer gets closeLinger to write the
// queue, then closes the socket: frames queued just before the close
// (closeWith then closeNow: a close echo, the shutdown notice) reach
// the peer as on the epoll path, where write(2) put them in the kernel.
func (n *netIO) close() {
	if !n.writing {
		_ = n.raw.Close()
		return
	}
	n.linger = true
	_ = n.raw.SetReadDeadline(time.Unix(1, 0))
	_ = n.raw.SetWriteDeadline(time.Now().Add(closeLinger))
}

func (n *netIO) forget() {
	n.eng.mu.Lock()
	delete(n.eng.set, n.c)
	n.eng.mu.Unlock()
}

// read reads the connection until it closes: buffered first, then the
// socket. Every complete frame goes to conn.handleBytes, as on an epoll
// loop; only the bytes of an incomplete frame are kept.
func (n *netIO) read(buffered []byte) {
	defer n.eng.goroutines.Done()
	c := n.c
	limit := c.gw.cfg.MaxFrameBytes + maxHeaderLen
	buf := make([]byte, max(portableReadBuf, len(buffered)))
	have := copy(buf, buffered)
	fresh := have > 0
	var err error
	for {
		if fresh {
			used := c.handleBytes(buf[:have])
			if used < 0 {
				have = 0 // closing: later frames are drained until the peer's close
			} else {
				have = copy(buf, buf[used:have])
			}
		}
		if err != nil {
			c.closeNow()
			return
		}
		switch {
		case have == len(buf):
			// An incomplete frame fills the buffer; parseFrame has checked
			// its length against MaxFrameBytes.
			grown := make([]byte, max(min(2*len(buf), limit), have+1))
			copy(grown, buf[:have])
			buf = grown
		case have == 0 && len(buf) > portableKeepBuf:
			buf = make([]byte, portableReadBuf)
		}
		var m int
		m, err = n.nc.Read(buf[have:])
		fresh = m > 0
		if fresh {
			c.touch()
			have += m
		}
	}
}

// writeQueue writes the conn's queue until it is empty, then ends; when
// the conn is closing it half-closes the socket after the last byte, and
// when the conn closed meanwhile (linger) it closes the socket.
//
// It takes each batch off the queue before writing it: the queue's bound
// (Config.OutboundQueueBytes) and the slow-consumer rule count what has
// not been handed to the socket, as on the epoll path, where write(2)
// hands bytes to the kernel under conn.mu. Counting the batch until the
// write returns would hold bytes the peer has already read against it
// for as long as this goroutine waits to be scheduled again, and close
// healthy clients. A stuck socket thus holds at most one batch here plus
// a full queue.
func (n *netIO) writeQueue() {
	defer n.eng.goroutines.Done()
	c := n.c
	var bw *bufio.Writer
	if n.tls {
		bw = n.eng.bufw.Get().(*bufio.Writer)
		bw.Reset(n.nc)
		defer func() {
			bw.Reset(nil)
			n.eng.bufw.Put(bw)
		}()
	}
	var iov [][]byte
	var err error
	c.mu.Lock()
	for err == nil && len(c.outq) > 0 && (!c.closed || n.linger) {
		k := min(len(c.outq), maxIOV)
		iov = append(iov[:0], c.outq[:k]...)
		for _, f := range iov {
			c.outBytes -= len(f)
		}
		clear(c.outq[:k])
		if c.outq = c.outq[k:]; len(c.outq) == 0 {
			c.outq = nil
		}
		c.mu.Unlock()
		err = n.writeOut(iov, bw)
		clear(iov)
		c.mu.Lock()
		if len(c.outq) == 0 {
			c.dropSince = 0 // everything queued went out: a run of drops ends
		}
	}
	n.writing = false
	closed, half := c.closed, c.closing && !c.closed && err == nil
	if closed {
		c.outq, c.outBytes = nil, 0
	}
	c.mu.Unlock()
	switch {
	case closed: // close found this writer running and left the socket to it
		_ = n.raw.Close()
	case err != nil:
		c.closeNow()
	case half:
		n.closeWrite()
	}
}

// writeOut writes frames: one writev on TCP; through bw under TLS, so
// small frames share records.
func (n *netIO) writeOut(frames [][]byte, bw *bufio.Writer) error {
	if bw == nil {
		bufs := net.Buffers(frames)
		_, err := bufs.WriteTo(n.nc)
		return err
	}
	for _, f := range frames {
		if _, err := bw.Write(f); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// closeWrite half-closes the socket: a TLS close_notify, then a TCP FIN.
func (n *netIO) closeWrite() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := n.nc.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	if n.tls {
		if cw, ok := n.raw.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
	}
}
