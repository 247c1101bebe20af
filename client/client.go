// Package client is liveim's Go client: it dials a gateway over WebSocket,
// logs in, and runs requests and events of the wire protocol. Tests and
// `liveim bench` use it; apps may too.
//
//	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/ws")
//	_, err = c.Login(ctx, client.Login{AppID: "demo", UserID: "u1", Auth: auth})
//	_, err = c.JoinGroup(ctx, "room-1")
//	_, err = c.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: 10001, Data: "hi"})
//	ev := <-c.Events()
//
// A Client is safe for concurrent use. It holds one goroutine that reads
// the socket; events are delivered in order on Events(), which the caller
// must drain.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// ErrClosed is returned by requests on a closed client.
var ErrClosed = errors.New("client: connection closed")

// Client is one connection to a gateway.
type Client struct {
	conn   net.Conn
	events chan *liveimpb.Event
	errs   chan *liveimpb.Reply
	done   chan struct{}

	closing   chan struct{} // closed by Close: readLoop stops waiting for Events' reader
	closeOnce sync.Once

	writeMu sync.Mutex
	nextID  atomic.Uint32

	mu       sync.Mutex
	pending  map[uint32]chan *liveimpb.Reply
	closeErr error
}

// Dial connects to a gateway's WebSocket URL, e.g. ws://host:port/ws.
func Dial(ctx context.Context, url string) (*Client, error) {
	return DialWith(ctx, ws.DefaultDialer, url)
}

// DialWith connects to a gateway's WebSocket URL with d, e.g. to a
// wss:// URL with d.TLSConfig naming the roots to trust.
func DialWith(ctx context.Context, d ws.Dialer, url string) (*Client, error) {
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	if br != nil {
		// Frames the server sent right behind its handshake answer were
		// read with it: read them first.
		conn = &bufferedConn{Conn: conn, r: br}
	}
	c := &Client{
		conn:    conn,
		events:  make(chan *liveimpb.Event, 4096),
		errs:    make(chan *liveimpb.Reply, 16),
		done:    make(chan struct{}),
		closing: make(chan struct{}),
		pending: make(map[uint32]chan *liveimpb.Reply),
	}
	go c.readLoop()
	return c, nil
}

// Events returns the pushed events, in order. It is closed when the
// connection ends.
func (c *Client) Events() <-chan *liveimpb.Event { return c.events }

// Errors returns error replies that answer no request: the gateway's
// answer to a frame it could not read (id 0). Unread ones beyond 16 are
// dropped.
func (c *Client) Errors() <-chan *liveimpb.Reply { return c.errs }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: a wsutil.ClosedError carrying the
// gateway's close status, or another error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Close closes the connection, whether or not Events was drained: the
// events not read are dropped.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	c.writeMu.Lock()
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
	c.writeMu.Unlock()
	err := c.conn.Close()
	<-c.done
	return err
}

// Do sends one request and waits for its reply. A non-zero reply code is
// returned as a *liveimpb.Error.
func (c *Client) Do(ctx context.Context, f *liveimpb.ClientFrame) (*liveimpb.Reply, error) {
	f.Id = c.nextID.Add(1)
	ch := make(chan *liveimpb.Reply, 1)
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[f.Id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, f.Id)
		c.mu.Unlock()
	}()
	b, err := proto.Marshal(f)
	if err != nil {
		return nil, err
	}
	if err := c.WriteRaw(b); err != nil {
		return nil, err
	}
	select {
	case rep := <-ch:
		return rep, liveimpb.ReplyError(rep)
	case <-c.done:
		// The read loop hands a reply over before it ends: a reply and the
		// close right behind it (a 401 login) were both ready when this
		// select came, and it could pick the close
		// (e2e/cluster.TestNonceBindsOnReplicatedStream failed so once).
		select {
		case rep := <-ch:
			return rep, liveimpb.ReplyError(rep)
		default:
			return nil, ErrClosed
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// WriteRaw sends b as one binary frame, as is. Tests use it to send what
// a well-behaved client would not.
func (c *Client) WriteRaw(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return wsutil.WriteClientBinary(c.conn, b)
}

func (c *Client) readLoop() {
	defer close(c.events)
	defer close(c.done)
	for {
		data, op, err := wsutil.ReadServerData(c.conn)
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			return
		}
		if op != ws.OpBinary {
			continue
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(data, &sf); err != nil {
			continue
		}
		switch b := sf.Body.(type) {
		case *liveimpb.ServerFrame_Reply:
			c.mu.Lock()
			ch := c.pending[b.Reply.Id]
			c.mu.Unlock()
			if ch != nil {
				ch <- b.Reply
			} else if b.Reply.Code != 0 {
				select {
				case c.errs <- b.Reply:
				default:
				}
			}
		case *liveimpb.ServerFrame_Event:
			if !c.event(b.Event) {
				return
			}
		case *liveimpb.ServerFrame_Batch:
			for _, ev := range b.Batch.Events {
				if !c.event(ev) {
					return
				}
			}
		}
	}
}

// event hands ev to Events' reader; false means the client is closing
// (its caller may have stopped reading).
func (c *Client) event(ev *liveimpb.Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.closing:
		c.mu.Lock()
		if c.closeErr == nil {
			c.closeErr = ErrClosed
		}
		c.mu.Unlock()
		return false
	}
}

// Login holds what a client presents at login.
type Login struct {
	AppID            string
	UserID           string
	UserExtension    string
	DeviceID         string
	Auth             *liveimpb.UserAuth
	HeartbeatTimeout time.Duration
}

// Login logs in.
func (c *Client) Login(ctx context.Context, l Login) (*liveimpb.LoginReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_Login{Login: &liveimpb.LoginRequest{
		AppId:            l.AppID,
		User:             &liveimpb.User{UserId: l.UserID, UserExtension: l.UserExtension},
		Auth:             l.Auth,
		DeviceId:         l.DeviceID,
		HeartbeatTimeout: uint32(l.HeartbeatTimeout / time.Second),
	}}})
	return rep.GetLogin(), err
}
