package gateway

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/proto/liveimpb"
)

// runGateway runs a real gateway with cfg on an in-process NATS server
// (no router: the tests use what a gateway answers itself) and returns
// its address and a function that stops it and returns Run's error.
func runGateway(t testing.TB, cfg Config) (*Gateway, net.Addr, func() error) {
	t.Helper()
	nc := natstest.Connect(t)
	cfg.Addr = "127.0.0.1:0"
	g, err := New(cfg, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Error("the gateway did not stop")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	return g, addr, stop
}

// pingRequest sends a ClientFrame ping, which the gateway answers itself,
// and waits for its pong.
func pingRequest(t testing.TB, conn io.ReadWriter, id uint32) {
	t.Helper()
	b, _ := proto.Marshal(&liveimpb.ClientFrame{Id: id, Body: &liveimpb.ClientFrame_Ping{Ping: &liveimpb.PingRequest{}}})
	if err := wsutil.WriteClientBinary(conn, b); err != nil {
		t.Fatal(err)
	}
	data, err := wsutil.ReadServerBinary(conn)
	if err != nil {
		t.Fatal(err)
	}
	var sf liveimpb.ServerFrame
	if err := proto.Unmarshal(data, &sf); err != nil || sf.GetReply().GetId() != id || sf.GetReply().GetPong() == nil {
		t.Fatalf("reply %v (%v), want the pong of request %d", &sf, err, id)
	}
}

// readClose reads frames until a close frame and returns its status and
// the DisconnectEvent before it, if any.
func readClose(t *testing.T, conn net.Conn) (ws.StatusCode, *liveimpb.DisconnectEvent) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var notice *liveimpb.DisconnectEvent
	for {
		f, err := ws.ReadFrame(conn)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		switch f.Header.OpCode {
		case ws.OpBinary:
			var sf liveimpb.ServerFrame
			if proto.Unmarshal(f.Payload, &sf) == nil && sf.GetEvent().GetDisconnect() != nil {
				notice = sf.GetEvent().GetDisconnect()
			}
		case ws.OpClose:
			if len(f.Payload) < 2 {
				return ws.StatusNoStatusRcvd, notice
			}
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload)), notice
		}
	}
}

// TestRunOnEachPath: a real gateway serves a WebSocket client on each I/O
// path, and its shutdown tells the client to reconnect (1001).
func TestRunOnEachPath(t *testing.T) {
	forEachPath(t, func(t *testing.T, path string) {
		if path == pathPortableTLS {
			t.Skip("TestTLS runs a real gateway with a certificate")
		}
		g, addr, stop := runGateway(t, Config{IO: path})
		if g.IO() != path {
			t.Fatalf("IO() = %q, want %q", g.IO(), path)
		}
		conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr.String()+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		pingRequest(t, conn, 1)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		status, notice := readClose(t, conn)
		if status != ws.StatusGoingAway || !notice.GetReconnect() {
			t.Fatalf("shutdown: status %d, notice %v; want 1001 and a reconnect", status, notice)
		}
	})
}

// TestTLS: with a certificate the gateway serves wss:// and https:// on
// the portable path; a real TLS WebSocket client is answered, its close
// is echoed, and a client that does not speak TLS gets no upgrade.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	g, addr, _ := runGateway(t, Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if g.IO() != IOPortable {
		t.Fatalf("IO() = %q with TLS, want %q", g.IO(), IOPortable)
	}
	clientTLS := &tls.Config{RootCAs: pool}
	d := ws.Dialer{TLSConfig: clientTLS}
	conn, br, _, err := d.Dial(context.Background(), "wss://"+addr.String()+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if br != nil {
		t.Fatal("the gateway wrote before the client asked")
	}
	if _, ok := conn.(*tls.Conn); !ok {
		t.Fatalf("wss:// gave a %T, not a TLS connection", conn)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	for id := range uint32(3) {
		pingRequest(t, conn, id+1)
	}
	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))); err != nil {
		t.Fatal(err)
	}
	if status, _ := readClose(t, conn); status != ws.StatusNormalClosure {
		t.Fatalf("close echoed with %d, want 1000", status)
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https /healthz: %s", resp.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if plain, _, _, err := ws.Dial(ctx, "ws://"+addr.String()+"/ws"); err == nil {
		plain.Close()
		t.Fatal("a plain ws:// client was upgraded on the TLS port")
	}
}
