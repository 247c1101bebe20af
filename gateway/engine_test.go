package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/proto/liveimpb"
)

// pathPortableTLS is the portable path with TLS on the socket, as with
// Config.TLSCertFile: runEngine and adoptPair set it up.
const pathPortableTLS = IOPortable + "+tls"

// ioPaths returns the I/O paths of this OS, and the portable one under
// TLS: every behaviour test runs on each.
func ioPaths() []string {
	if haveEpoll {
		return []string{IOEpoll, IOPortable, pathPortableTLS}
	}
	return []string{IOPortable, pathPortableTLS}
}

// forEachPath runs f as a subtest per I/O path.
func forEachPath(t *testing.T, f func(t *testing.T, path string)) {
	for _, path := range ioPaths() {
		t.Run(path, func(t *testing.T) { f(t, path) })
	}
}

// runEngine starts g's engine of path; it stops when the test ends.
func runEngine(tb testing.TB, g *Gateway, path string) {
	tb.Helper()
	g.cfg.IO = path
	if path == pathPortableTLS {
		certFile, keyFile, _ := testcert.Write(tb)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			tb.Fatal(err)
		}
		g.cfg.IO, g.tls = IOPortable, &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	eng, err := g.newEngine()
	if err != nil {
		tb.Fatal(err)
	}
	g.eng = eng
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		eng.run(stop)
		close(done)
	}()
	tb.Cleanup(func() {
		for _, c := range eng.conns() {
			c.closeNow()
		}
		close(stop)
		<-done
		eng.close()
	})
}

// adoptPair gives the server end of a new socket pair to g's engine, with
// buffered as the bytes read behind the upgrade, and returns its conn and
// the client end; both speak TLS when g has a certificate.
func adoptPair(tb testing.TB, g *Gateway, sndbuf int, buffered []byte) (*conn, net.Conn) {
	tb.Helper()
	server, client := socketPair(tb, sndbuf)
	tb.Cleanup(func() { client.Close() })
	if g.tls != nil {
		// Both ends finish the handshake first, as net/http's does before
		// a request is read and upgraded.
		roots := x509.NewCertPool()
		roots.AddCert(g.tls.Certificates[0].Leaf)
		ts, tc := tls.Server(server, g.tls), tls.Client(client, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- ts.HandshakeContext(ctx) }()
		if err := errors.Join(tc.HandshakeContext(ctx), <-done); err != nil {
			tb.Fatal(err)
		}
		server, client = ts, tc
	}
	c, err := g.eng.adopt(server, netip.MustParseAddr("127.0.0.1"), "", buffered)
	if err != nil {
		tb.Fatal(err)
	}
	return c, client
}

// setBuffers sets the send buffer of server and the receive buffer of
// client to n bytes, when n > 0.
func setBuffers(tb testing.TB, server, client net.Conn, n int) {
	tb.Helper()
	if n <= 0 {
		return
	}
	type buffers interface {
		SetWriteBuffer(int) error
		SetReadBuffer(int) error
	}
	if err := server.(buffers).SetWriteBuffer(n); err != nil {
		tb.Fatal(err)
	}
	if err := client.(buffers).SetReadBuffer(n); err != nil {
		tb.Fatal(err)
	}
}

// state reports whether c is closing (a close frame queued) and closed.
func (c *conn) state() (closing, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing, c.closed
}

// received is what a client read off its socket until it ended.
type received struct {
	seqs       []int64 // seqnums of group messages, in order
	replies    []*liveimpb.Reply
	pongs      int // WebSocket pongs
	disconnect *liveimpb.DisconnectEvent
	status     ws.StatusCode // of the close frame; 0 if none came
	end        error         // why reading ended: io.EOF after a half close
}

// readAll reads server frames from client until the socket ends or stop
// returns true for what was read so far. Nothing may come after a close
// frame.
func readAll(t *testing.T, client net.Conn, stop func(*received) bool) *received {
	t.Helper()
	var r received
	_ = client.SetReadDeadline(time.Now().Add(15 * time.Second))
	for stop == nil || !stop(&r) {
		f, err := ws.ReadFrame(client)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the socket neither ended nor sent what the test waits for: %+v", r)
			}
			r.end = err
			return &r
		}
		if r.status != 0 {
			t.Fatalf("a %v frame after the close frame", f.Header.OpCode)
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			r.status = ws.StatusNoStatusRcvd
			if len(f.Payload) >= 2 {
				r.status = ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
			}
		case ws.OpPong:
			r.pongs++
		case ws.OpBinary:
			var sf liveimpb.ServerFrame
			if err := proto.Unmarshal(f.Payload, &sf); err != nil {
				t.Fatalf("server frame: %v", err)
			}
			if m := sf.GetEvent().GetGroupMessage(); m != nil {
				r.seqs = append(r.seqs, m.Seqnum)
			}
			if d := sf.GetEvent().GetDisconnect(); d != nil {
				r.disconnect = d
			}
			if rep := sf.GetReply(); rep != nil {
				r.replies = append(r.replies, rep)
			}
		default:
			t.Fatalf("unexpected %v frame", f.Header.OpCode)
		}
	}
	return &r
}

// eventFrame is a group message with seqnum seq and data bytes of data
// as one WebSocket frame, as dispatchers send it.
func eventFrame(t testing.TB, seq int64, data int) []byte {
	return appendFrame(nil, ws.OpBinary, groupEventFrame(t, seq, data))
}

// TestSlowConsumer: a socket that is not read drops NORMAL frames once
// its queue is full and stays open; the first frame that must not be
// dropped and does not fit closes it with a reconnect notice and status
// 1008; nothing is ever queued past the bound. The client then gets
// every frame that was taken, in order, and none that was dropped,
// before the close.
func TestSlowConsumer(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		g.cfg.OutboundQueueBytes = 64 << 10
		runEngine(t, g, path)
		c, client := adoptPair(t, g, 8<<10, nil)
		var taken []int64
		seq := int64(1)
		for ; g.metrics.dropped.Load() == 0; seq++ {
			if seq > 10000 {
				t.Fatal("80 MB for a socket nobody reads, and nothing dropped")
			}
			if c.send(eventFrame(t, seq, 8<<10), true) {
				taken = append(taken, seq)
			}
		}
		if closing, _ := c.state(); closing {
			t.Fatal("closed for dropping NORMAL frames")
		}
		// The socket may still take a batch the kernel had not accepted at
		// the drop (portable paths write it from another goroutine), so a
		// frame that must not be dropped can still fit: it is taken then,
		// and one of the next ones, at most a few batches on, finds the
		// queue full.
		for ; c.send(eventFrame(t, seq, 8<<10), false); seq++ {
			taken = append(taken, seq)
			c.mu.Lock()
			queued := c.outBytes
			c.mu.Unlock()
			if queued > g.cfg.OutboundQueueBytes {
				t.Fatalf("%d bytes queued, past the bound of %d", queued, g.cfg.OutboundQueueBytes)
			}
			if len(taken) > 10000 {
				t.Fatal("80 MB for a socket nobody reads, and a frame that must not be dropped never refused")
			}
		}
		if closing, _ := c.state(); !closing || g.metrics.slowClosed.Load() != 1 {
			t.Fatal("a full queue did not close the socket for a frame that must not be dropped")
		}
		got := readAll(t, client, nil)
		if !slices.Equal(got.seqs, taken) {
			t.Fatalf("the client read seqnums %v, want the %d taken: %v", got.seqs, len(taken), taken)
		}
		if d := got.disconnect; d == nil || !d.Reconnect || d.Reason != "slow consumer" {
			t.Fatalf("disconnect notice %v, want a slow consumer's reconnect", d)
		}
		if got.status != ws.StatusPolicyViolation {
			t.Fatalf("close status %d, want 1008", got.status)
		}
	})
}

// TestReaderIsNeverSlow: a client that reads every frame before it gets
// the next is never a slow consumer, however close to the queue's bound
// the frames are: bytes it has read never count against the bound, even
// while the goroutine that wrote them waits to run again (portable).
func TestReaderIsNeverSlow(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		g.cfg.OutboundQueueBytes = 64 << 10
		runEngine(t, g, path)
		c, client := adoptPair(t, g, 0, nil)
		for seq := int64(1); seq <= 300; seq++ {
			if !c.send(eventFrame(t, seq, 40<<10), false) {
				t.Fatalf("frame %d: closed as a slow consumer; the client had read every frame before it", seq)
			}
			got := readAll(t, client, func(r *received) bool { return len(r.seqs) == 1 })
			if got.seqs[0] != seq {
				t.Fatalf("read seqnum %d, want %d", got.seqs[0], seq)
			}
		}
	})
}

// TestChronicSlowConsumer: a socket that drops NORMAL frames for longer
// than SlowConsumerTimeout is closed with a reconnect notice, though no
// frame that must not be dropped came.
func TestChronicSlowConsumer(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		g.cfg.OutboundQueueBytes = 32 << 10
		g.cfg.SlowConsumerTimeout = 200 * time.Millisecond
		runEngine(t, g, path)
		c, client := adoptPair(t, g, 8<<10, nil)
		var firstDrop time.Time
		deadline := time.Now().Add(20 * time.Second)
		pace := time.NewTicker(time.Millisecond)
		defer pace.Stop()
		for seq := int64(1); ; seq++ {
			if closing, _ := c.state(); closing {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a socket dropping frames for 20s was not closed")
			}
			if !c.send(eventFrame(t, seq, 4<<10), true) && firstDrop.IsZero() {
				firstDrop = time.Now()
			}
			<-pace.C
		}
		if firstDrop.IsZero() {
			t.Fatal("closed before any frame was dropped")
		}
		if since := time.Since(firstDrop); since < g.cfg.SlowConsumerTimeout {
			t.Fatalf("closed %v after the first drop, before SlowConsumerTimeout", since)
		}
		got := readAll(t, client, nil)
		if d := got.disconnect; d == nil || !d.Reconnect {
			t.Fatalf("disconnect notice %v, want a reconnect", d)
		}
		if got.status != ws.StatusPolicyViolation {
			t.Fatalf("close status %d, want 1008", got.status)
		}
	})
}

// TestCloseStatuses: the close status a client's frame earns, and that
// the gateway then ends the socket.
func TestCloseStatuses(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  ws.StatusCode
	}{
		{"client close is echoed", nil, ws.StatusNormalClosure}, // built below
		{"text frame", clientFrame(t, ws.OpText, true, []byte("hi")), ws.StatusUnsupportedData},
		{"fragmented binary frame", clientFrame(t, ws.OpBinary, false, []byte("hi")), ws.StatusUnsupportedData},
		{"unmasked frame", appendFrame(nil, ws.OpBinary, []byte("hi")), ws.StatusProtocolError},
		{"frame over MaxFrameBytes", clientFrame(t, ws.OpBinary, true, make([]byte, 2000)), ws.StatusMessageTooBig},
	}
	tests[0].frame = clientFrame(t, ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		g.cfg.MaxFrameBytes = 1024
		runEngine(t, g, path)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, client := adoptPair(t, g, 0, nil)
				if _, err := client.Write(tt.frame); err != nil {
					t.Fatal(err)
				}
				got := readAll(t, client, nil)
				if got.status != tt.want {
					t.Fatalf("close status %d, want %d", got.status, tt.want)
				}
			})
		}
	})
}

// TestTimersClose: the engine runs every connection's timers. A
// connection that does not log in within LoginTimeout is closed (1008);
// a session silent past its heartbeat timeout gets disconnect(3) and
// 1001.
func TestTimersClose(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		g.cfg.LoginTimeout = 300 * time.Millisecond
		runEngine(t, g, path)
		_, anonymous := adoptPair(t, g, 0, nil)
		if got := readAll(t, anonymous, nil); got.status != ws.StatusPolicyViolation {
			t.Fatalf("login timeout: close status %d, want 1008", got.status)
		}

		g = benchGateway(t) // the default LoginTimeout: only the heartbeat may close
		runEngine(t, g, path)
		c, silent := adoptPair(t, g, 0, nil)
		s := &session{userKey: "app/u", heartbeat: 300 * time.Millisecond}
		s.setToken(time.Now().Add(time.Hour).Unix(), time.Now(), time.Minute)
		c.sess.Store(s)
		got := readAll(t, silent, nil)
		if d := got.disconnect; d.GetCode() != liveimpb.DisconnectCode_DISCONNECT_CODE_TIMEOUT || !d.GetReconnect() {
			t.Fatalf("heartbeat timeout: disconnect notice %v, want code 3 and a reconnect", d)
		}
		if got.status != ws.StatusGoingAway {
			t.Fatalf("heartbeat timeout: close status %d, want 1001", got.status)
		}
	})
}

// TestFramesAcrossReads: bytes read behind the upgrade are handled first;
// a frame split over reads, and one far larger than the first read
// buffer, are handled once complete, in order with the rest.
func TestFramesAcrossReads(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		runEngine(t, g, path)
		request := func(id uint32, data int) []byte {
			f := &liveimpb.ClientFrame{Id: id, Body: &liveimpb.ClientFrame_Ping{Ping: &liveimpb.PingRequest{}}}
			if data > 0 { // needs a session: answered 404, which shows it was read
				f.Body = &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: &liveimpb.SendC2CMessageRequest{
					ReceiverId: "bob", Type: 10001, Data: string(make([]byte, data))}}
			}
			b, err := proto.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			return clientFrame(t, ws.OpBinary, true, b)
		}
		ping, first, big := clientFrame(t, ws.OpPing, true, []byte("p")), request(1, 0), request(2, 60<<10)
		buffered := append(append([]byte(nil), ping...), first[:len(first)/2]...)
		_, client := adoptPair(t, g, 0, buffered)
		rest := append(append([]byte(nil), first[len(first)/2:]...), big...)
		for len(rest) > 0 { // in pieces, each its own write
			n := min(len(rest), 7000)
			if _, err := client.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		got := readAll(t, client, func(r *received) bool { return len(r.replies) == 2 })
		if got.pongs != 1 {
			t.Fatalf("%d pongs for one ping", got.pongs)
		}
		if id := got.replies[0].Id; id != 1 || got.replies[0].GetPong() == nil {
			t.Fatalf("first reply %v, want the pong of request 1", got.replies[0])
		}
		if r := got.replies[1]; r.Id != 2 || r.Code != int32(liveimpb.ErrNoSession.Code) {
			t.Fatalf("second reply %v, want 404 for request 2", r)
		}
	})
}

// TestCloseKeepsQueuedFrames: frames queued right before the socket is
// closed (the gateway's shutdown notice: closeWith, then closeNow) still
// reach the client, on both paths.
func TestCloseKeepsQueuedFrames(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		runEngine(t, g, path)
		for i := range 20 {
			c, client := adoptPair(t, g, 0, nil)
			c.send(eventFrame(t, 1, 100), true)
			c.closeWith(ws.StatusGoingAway, "gateway shutting down", &liveimpb.DisconnectEvent{Reason: "gateway shutting down", Reconnect: true})
			c.closeNow()
			got := readAll(t, client, nil)
			if len(got.seqs) != 1 || !got.disconnect.GetReconnect() || got.status != ws.StatusGoingAway {
				t.Fatalf("try %d: the client read %+v (%v), want the event, the notice and 1001", i, got, got.end)
			}
		}
	})
}

// TestEngineConns: an engine lists its open connections and forgets
// closed ones; the gateway's connection count follows.
func TestEngineConns(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		g := benchGateway(t)
		runEngine(t, g, path)
		var conns []*conn
		for range 3 {
			c, _ := adoptPair(t, g, 0, nil)
			conns = append(conns, c)
		}
		if n := len(g.eng.conns()); n != 3 || g.metrics.connections.Load() != 3 {
			t.Fatalf("%d conns listed, %d counted; want 3", n, g.metrics.connections.Load())
		}
		conns[1].closeNow()
		if got := g.eng.conns(); len(got) != 2 || slices.Contains(got, conns[1]) || g.metrics.connections.Load() != 2 {
			t.Fatalf("after a close: %d conns listed, %d counted; want 2", len(got), g.metrics.connections.Load())
		}
	})
}
