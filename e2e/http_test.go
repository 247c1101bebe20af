package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
)

func hostOf(url string) string {
	return strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws")
}

// closedWithin reports whether the server closes conn within d (the client
// reads EOF or a reset).
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestHTTPConnectionsDoNotLinger: an idle keep-alive connection is closed
// after the idle timeout, a failed upgrade closes its socket, and a
// client that never finishes its request headers is cut off.
func TestHTTPConnectionsDoNotLinger(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{HTTPIdleTimeout: 500 * time.Millisecond, HTTPTimeout: time.Second}})
	addr := hostOf(c.Gateway(0).URL)
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dial()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		if !closedWithin(conn, 10*time.Second) {
			t.Fatal("idle keep-alive connection still open")
		}
	})
	t.Run("failed upgrade", func(t *testing.T) {
		conn := dial()
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", addr) // no key, no version
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad upgrade: %v %v, want 400", resp, err)
		}
		if !closedWithin(conn, 10*time.Second) {
			t.Fatal("the socket of a failed upgrade is still open")
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		conn := dial()
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\n", addr) // never ends
		if !closedWithin(conn, 10*time.Second) {
			t.Fatal("a request whose headers never end still holds its socket")
		}
	})
}

// TestMaxConns: a gateway holding MaxConns WebSockets answers the next
// upgrade 503 with Retry-After before upgrading it (a full process would
// otherwise upgrade a socket it has no file left to keep), and takes
// upgrades again once a connection has closed. The sockets held are
// logged in: a full gateway closes one that never logs in to make room
// (TestFullGatewayClosesSocketsThatNeverLogIn).
func TestMaxConns(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxConns: 3}})
	url := c.Gateway(0).URL
	var held []*client.Client
	for i := range 3 {
		held = append(held, c.Login(t, 0, fmt.Sprintf("u%d", i), ""))
	}
	resp, err := http.Get(strings.Replace(url, "ws://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade past MaxConns: HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, _, _, err = ws.Dial(context.Background(), url)
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != http.StatusServiceUnavailable {
		t.Fatalf("4th WebSocket: %v, want 503", err)
	}
	freeOne(t, url, held)
}

// dialAll opens n WebSockets to url.
func dialAll(t *testing.T, url string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for range n {
		conn, _, _, err := ws.Dial(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	return held
}

// freeOne closes the first of held (sockets or clients), waits until url
// takes an upgrade again (a slot frees once the gateway sees the close),
// and closes the rest.
func freeOne[C io.Closer](t *testing.T, url string, held []C) {
	t.Helper()
	held[0].Close()
	testcluster.WaitFor(t, 10*time.Second, func() error {
		conn, _, _, err := ws.Dial(context.Background(), url)
		if err == nil {
			conn.Close()
		}
		return err
	})
	for _, h := range held[1:] {
		h.Close()
	}
}

// TestPerIPLimits: one address may hold at most MaxConnsPerIP WebSockets
// and open at most UpgradeBurstPerIP at once (then UpgradeRatePerIP a
// second); beyond either it gets HTTP 429, and the others are served.
func TestPerIPLimits(t *testing.T) {
	t.Run("connections", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxConnsPerIP: 3, UpgradeRatePerIP: 1000, UpgradeBurstPerIP: 1000}})
		url := c.Gateway(0).URL
		held := dialAll(t, url, 3)
		_, _, _, err := ws.Dial(context.Background(), url)
		var se ws.StatusError
		if !errors.As(err, &se) || int(se) != http.StatusTooManyRequests {
			t.Fatalf("4th connection: %v, want 429", err)
		}
		freeOne(t, url, held)
	})
	t.Run("upgrade rate", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxConnsPerIP: 1000, UpgradeRatePerIP: 0.1, UpgradeBurstPerIP: 3}})
		url := c.Gateway(0).URL
		for i := range 4 {
			conn, _, _, err := ws.Dial(context.Background(), url)
			if i < 3 {
				if err != nil {
					t.Fatalf("upgrade %d: %v", i, err)
				}
				conn.Close()
				continue
			}
			var se ws.StatusError
			if !errors.As(err, &se) || int(se) != http.StatusTooManyRequests {
				t.Fatalf("upgrade %d: %v, want 429", i, err)
			}
		}
	})
}
