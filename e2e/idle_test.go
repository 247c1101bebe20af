package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// rawConn is a client connection without a goroutine: requests are written
// and their replies read synchronously.
type rawConn struct {
	net.Conn
	r io.Reader
}

func dialRaw(t testing.TB, url string) *rawConn {
	t.Helper()
	return dialRawHeader(t, url, nil)
}

// dialRawHeader dials with extra headers on the upgrade request.
func dialRawHeader(t testing.TB, url string, hdr http.Header) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{}
	if hdr != nil {
		d.Header = ws.HandshakeHeaderHTTP(hdr)
	}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rc := &rawConn{Conn: conn, r: conn}
	if br != nil {
		rc.r = io.MultiReader(br, conn)
	}
	return rc
}

// do writes f and reads frames until its reply.
func (c *rawConn) do(f *liveimpb.ClientFrame) (*liveimpb.Reply, error) {
	b, err := proto.Marshal(f)
	if err != nil {
		return nil, err
	}
	if err := wsutil.WriteClientBinary(c.Conn, b); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		data, err := wsutil.ReadServerBinary(struct {
			io.Reader
			io.Writer
		}{c.r, c.Conn})
		if err != nil {
			return nil, err
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(data, &sf); err != nil {
			return nil, err
		}
		if rep := sf.GetReply(); rep != nil && rep.Id == f.Id {
			return rep, liveimpb.ReplyError(rep)
		}
	}
}

func (c *rawConn) login(userID string) error {
	_, err := c.do(&liveimpb.ClientFrame{Id: 1, Body: &liveimpb.ClientFrame_Login{Login: &liveimpb.LoginRequest{
		AppId: testcluster.AppID, User: &liveimpb.User{UserId: userID}, Auth: testcluster.Auth(userID, ""),
	}}})
	return err
}

func (c *rawConn) join(groupID string) error {
	_, err := c.do(&liveimpb.ClientFrame{Id: 2, Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: groupID}}})
	return err
}

// TestIdleConnectionsHoldNoGoroutine logs 5,000 connections in, joins
// them to rooms, and counts the goroutines they added: on the epoll path
// the gateway must not keep one per connection; on the portable path
// (LIVEIM_GATEWAY_IO=portable) exactly its reader, and no writer while
// nothing is queued. The test holds both ends of every socket (10,000
// fds, under the 20,000 per-process cap), and its client side is
// goroutine-free too.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 5,000 connections")
	}
	const conns, rooms = 5000, 50
	c := testcluster.Start(t, testcluster.Options{})
	admin := c.Login(t, 0, "admin", "admin")
	for i := range rooms {
		createGroup(t, admin, fmt.Sprintf("room-%d", i))
	}
	url := c.Gateway(0).URL
	perConn := 0 // goroutines an idle connection may hold
	if c.Gateway(0).IO() == gateway.IOPortable {
		perConn = 1
	}
	warm := dialRaw(t, url)
	if err := warm.login("warm-up"); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc

	work := make(chan int)
	done := make(chan error, conns)
	for range 8 {
		go func() {
			for i := range work {
				rc := dialRaw(t, url)
				err := rc.login(fmt.Sprintf("user-%d", i))
				if err == nil {
					err = rc.join(fmt.Sprintf("room-%d", i%rooms))
				}
				done <- err
			}
		}()
	}
	go func() {
		for i := range conns {
			work <- i
		}
		close(work)
	}()
	for range conns {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Gateway(0).Stats().Connections; got != conns+2 {
		t.Fatalf("gateway holds %d connections, want %d", got, conns+2)
	}
	// Let the 8 dialing goroutines and any short-lived login goroutines end.
	var after int
	testcluster.WaitFor(t, 10*time.Second, func() error {
		after = runtime.NumGoroutine()
		if after-before > perConn*conns+50 {
			return fmt.Errorf("%d goroutines for %d idle connections (before %d) on the %s path", after-before, conns, before, c.Gateway(0).IO())
		}
		return nil
	})
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d idle joined connections: %+d goroutines, heap %+d KiB for both ends (%.0f B/conn)",
		conns, after-before, (int64(ms.HeapAlloc)-int64(heapBefore))>>10, float64(int64(ms.HeapAlloc)-int64(heapBefore))/conns)
}

// TestHalfFrameDelaysNobody opens a connection that sends half a frame and
// stalls, then checks that other clients' traffic flows while it stalls.
func TestHalfFrameDelaysNobody(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gatewayWithOneLoop()})
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 0, "bob", "")
	createGroup(t, alice, "room-1")
	join(t, alice, "room-1")
	join(t, bob, "room-1")

	// The staller logs in, then sends the first half of a frame.
	staller := dialRaw(t, c.Gateway(0).URL)
	if err := staller.login("staller"); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&liveimpb.ClientFrame{Id: 9, Body: &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: &liveimpb.SendC2CMessageRequest{
		ReceiverId: "nobody", Type: chatType, Data: strings.Repeat("x", 1000),
	}}})
	var frame frameBuffer
	if err := wsutil.WriteClientBinary(&frame, b); err != nil {
		t.Fatal(err)
	}
	if _, err := staller.Write(frame.b[:len(frame.b)/2]); err != nil {
		t.Fatal(err)
	}

	// While it stalls, the others chat on the same (single) event loop.
	for i := range 20 {
		if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, bob, 20)
	if got[19].Data != "19" {
		t.Fatalf("last message %q", got[19].Data)
	}

	// The staller finishes its frame and gets its answer: nothing it sent
	// was lost.
	if _, err := staller.Write(frame.b[len(frame.b)/2:]); err != nil {
		t.Fatal(err)
	}
	_ = staller.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := wsutil.ReadServerBinary(struct {
		io.Reader
		io.Writer
	}{staller.r, staller.Conn})
	if err != nil {
		t.Fatal(err)
	}
	var sf liveimpb.ServerFrame
	if err := proto.Unmarshal(data, &sf); err != nil || sf.GetReply().GetId() != 9 || sf.GetReply().GetCode() != 424 {
		t.Fatalf("staller got %v (%v), want 424 for request 9", &sf, err)
	}
}

// frameBuffer collects written bytes.
type frameBuffer struct{ b []byte }

func (w *frameBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func gatewayWithOneLoop() gateway.Config { return gateway.Config{Loops: 1} }
