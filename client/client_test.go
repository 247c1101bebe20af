package client

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// TestCloseWithEventsUnread: Close returns though the caller never read
// Events and the server sent more events than its buffer holds (it used
// to wait forever: the reading goroutine was blocked handing over an
// event).
func TestCloseWithEventsUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sent := make(chan struct{})
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer conn.Close()
			frame, _ := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{}}})
			for range 5_000 {
				if wsutil.WriteServerBinary(conn, frame) != nil {
					return
				}
			}
			close(sent)
			_, _, _ = wsutil.ReadClientData(conn) // until the client closes
		}))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ws://"+ln.Addr().String()+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("the server could not send its events")
	}
	for len(c.Events()) < cap(c.Events()) { // the reader now waits to hand one more over
		if ctx.Err() != nil {
			t.Fatalf("the events did not fill the buffer: %d of %d, client error %v", len(c.Events()), cap(c.Events()), c.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30 s with events unread")
	}
}
