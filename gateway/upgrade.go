package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The WebSocket upgrade without net/http. A join storm is mostly
// upgrades, and net/http gave each one its per-connection state and a
// 4 KiB reader and writer that a hijacked connection never returns to
// its pools: about half of all a gateway allocated in a storm. So the gateway
// accepts its sockets itself and looks at the first request line: an
// upgrade on /ws is read with a pooled reader and answered here, by the
// same serveWS; any other request, and every request after it on that
// connection, goes to net/http with the bytes read so far. Under TLS
// net/http serves everything, as before.

// wsRequestLine is how an upgrade's request line starts, up to the
// space or '?' after the path.
const wsRequestLine = "GET /ws"

var (
	upgradeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	upgradeWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 512) }}
)

// serveConns accepts sockets from ln until it is closed, and routes each
// on its own goroutine (a slow client must not hold up the others).
// Accept errors that pass (out of files) are retried after a pause that
// grows to a second, as net/http does.
func (g *Gateway) serveConns(ln net.Listener, rest *handoff) error {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				g.log.Warn("accept", "err", err, "retry_in", pause.String())
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		go g.route(c, rest)
	}
}

// isTemporary reports whether an accept error passes (EMFILE, ENFILE,
// ECONNABORTED): the errors net/http's Serve retries.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// route reads the start of a socket's first request: an upgrade on /ws is
// served here, anything else is handed to net/http. The read is bounded
// by Config.HTTPTimeout, as net/http bounds a request's headers.
func (g *Gateway) route(c net.Conn, rest *handoff) {
	_ = c.SetReadDeadline(time.Now().Add(g.cfg.HTTPTimeout))
	limit := &io.LimitedReader{R: c, N: http.DefaultMaxHeaderBytes}
	br := upgradeReaders.Get().(*bufio.Reader)
	br.Reset(limit)
	defer func() {
		br.Reset(nil)
		upgradeReaders.Put(br)
	}()
	head, err := br.Peek(len(wsRequestLine) + 1)
	switch {
	case err != nil:
		// Closed, silent past the timeout, or shorter than any request.
		_ = c.Close()
	case string(head[:len(wsRequestLine)]) == wsRequestLine && (head[len(wsRequestLine)] == ' ' || head[len(wsRequestLine)] == '?'):
		g.upgradeRaw(c, br, limit)
	default:
		read, _ := br.Peek(br.Buffered())
		if !rest.hand(&replayConn{Conn: c, read: bytes.Clone(read)}) {
			_ = c.Close()
		}
	}
}

// upgradeRaw reads an upgrade request from br and serves it with serveWS,
// which takes the socket over (rawResponse.Hijack) or answers an error.
func (g *Gateway) upgradeRaw(c net.Conn, br *bufio.Reader, limit *io.LimitedReader) {
	bw := upgradeWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	defer func() {
		bw.Reset(nil)
		upgradeWriters.Put(bw)
	}()
	w := &rawResponse{conn: c, rw: bufio.NewReadWriter(br, bw)}
	r, err := http.ReadRequest(br)
	if err != nil {
		code := http.StatusBadRequest
		if limit.N <= 0 {
			code = http.StatusRequestHeaderFieldsTooLarge
		}
		http.Error(w, http.StatusText(code), code)
	} else {
		r.RemoteAddr = c.RemoteAddr().String()
		g.serveWS(w, r)
	}
	if w.hijacked {
		return // serveWS kept the socket, or closed it
	}
	_ = c.SetWriteDeadline(time.Now().Add(g.cfg.HTTPTimeout))
	_ = bw.Flush()
	_ = c.Close()
}

// rawResponse is the http.ResponseWriter of an upgrade read by
// upgradeRaw: enough for serveWS's refusals (http.Error, then the
// connection closes) and for ws.UpgradeHTTP's hijack.
type rawResponse struct {
	conn     net.Conn
	rw       *bufio.ReadWriter
	header   http.Header
	status   int
	hijacked bool
}

func (w *rawResponse) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *rawResponse) WriteHeader(code int) {
	if w.status != 0 || w.hijacked {
		return
	}
	w.status = code
	fmt.Fprintf(w.rw.Writer, "HTTP/1.1 %03d %s\r\n", code, http.StatusText(code))
	h := w.Header()
	h.Set("Connection", "close")
	_ = h.Write(w.rw.Writer)
	_, _ = w.rw.WriteString("\r\n")
}

func (w *rawResponse) Write(b []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	return w.rw.Write(b)
}

// Hijack hands the socket and the buffers over; the caller then owns the
// socket, and upgradeRaw neither flushes nor closes it.
func (w *rawResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status != 0 {
		return nil, nil, errors.New("gateway: hijack after the response began")
	}
	w.hijacked = true
	return w.conn, w.rw, nil
}

// replayConn is a socket handed to net/http with the bytes route already
// read from it, which its first reads return.
type replayConn struct {
	net.Conn
	read []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.read) > 0 {
		n := copy(b, c.read)
		c.read = c.read[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// handoff is the listener net/http serves: the sockets route hands it.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// hand gives c to net/http; false once the listener is closed.
func (h *handoff) hand(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }
