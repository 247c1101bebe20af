package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/internal/testcluster"
)

// from is a dialer whose sockets come from the loopback address local.
func from(local string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
}

// dialFrom opens a TCP connection to addr from the loopback address local
// (127.0.0.x: Linux routes the whole of 127/8 to lo), so one test can be
// several clients. It closes when the test ends.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	conn, err := from(local).Dial("tcp", addr)
	if err != nil {
		t.Skipf("dial from %s: %v (this system does not route all of 127/8 to loopback)", local, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// upgradeFrom opens a WebSocket from local and returns it. The gateway
// accepts sockets in order, so once it has answered, every socket dialed
// before has been through its accept checks.
func upgradeFrom(t *testing.T, local, url string) net.Conn {
	t.Helper()
	d := ws.Dialer{NetDial: from(local).DialContext, Timeout: 10 * time.Second}
	conn, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("WebSocket from %s: %v", local, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// silent opens n sockets from local that never send a byte.
func silent(t *testing.T, local, addr string, n int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range n {
		out = append(out, dialFrom(t, local, addr))
	}
	return out
}

// stillOpen fails the test when the gateway has closed one of conns. It
// is asked after a later upgrade was answered, so the gateway had seen
// them all; a socket it closed has its FIN queued already.
func stillOpen(t *testing.T, what string, conns ...net.Conn) {
	t.Helper()
	for i, conn := range conns {
		if closedWithin(conn, 50*time.Millisecond) {
			t.Fatalf("%s %d was closed", what, i)
		}
	}
}

// TestSilentConnectionsCannotFillAGateway: sockets that never finish a
// request (slowloris) cannot take a gateway's files or memory. Without a
// cap, one address opening sockets faster than the read timeout closes
// them held every file the process had, and the gateway could accept
// nobody, reconnect to nothing. Now one address holds at most
// MaxPendingPerIP sockets not yet upgraded (the next is closed at once),
// every address together at most MaxPending (the oldest is closed to make
// room: real clients finish their upgrade in milliseconds and get
// through), a trusted proxy is not capped by address, and an upgraded
// socket no longer counts.
func TestSilentConnectionsCannotFillAGateway(t *testing.T) {
	cfg := gateway.Config{MaxPendingPerIP: 3, MaxPending: 6, HTTPTimeout: time.Minute, TrustedProxies: []string{"127.0.0.9/32"}}

	t.Run("per address", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: cfg})
		url := c.Gateway(0).URL
		addr := hostOf(url)
		held := silent(t, "127.0.0.2", addr, 3)
		extra := dialFrom(t, "127.0.0.2", addr)
		if !closedWithin(extra, 20*time.Second) {
			t.Fatal("a 4th silent socket from one address is still open with MaxPendingPerIP 3")
		}
		upgradeFrom(t, "127.0.0.3", url)
		stillOpen(t, "silent socket within the address's cap", held...)
	})

	t.Run("oldest closed", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: cfg})
		url := c.Gateway(0).URL
		addr := hostOf(url)
		held := append(silent(t, "127.0.0.2", addr, 3), silent(t, "127.0.0.3", addr, 3)...)
		newest := dialFrom(t, "127.0.0.4", addr)
		if !closedWithin(held[0], 20*time.Second) {
			t.Fatal("the oldest silent socket is still open with MaxPending 6 reached")
		}
		// A real client gets through a full set of silent sockets.
		upgradeFrom(t, "127.0.0.5", url)
		stillOpen(t, "newer silent socket", append(held[2:], newest)...)
	})

	t.Run("trusted proxy", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: cfg})
		url := c.Gateway(0).URL
		held := silent(t, "127.0.0.9", hostOf(url), 5)
		upgradeFrom(t, "127.0.0.9", url)
		stillOpen(t, "silent socket from a trusted proxy", held...)
	})

	for _, io := range []string{gateway.IOEpoll, gateway.IOPortable, "tls"} {
		t.Run("upgraded sockets do not count/"+io, func(t *testing.T) {
			if io == gateway.IOEpoll && runtime.GOOS != "linux" {
				t.Skip("epoll is Linux's")
			}
			opts := testcluster.Options{Gateway: cfg}
			if io == "tls" { // the socket is inside a tls.Conn
				certFile, keyFile, pool := testcert.Write(t)
				opts.Gateway.TLSCertFile, opts.Gateway.TLSKeyFile = certFile, keyFile
				opts.ClientTLS = &tls.Config{RootCAs: pool}
			} else {
				opts.Gateway.IO = io
			}
			c := testcluster.Start(t, opts)
			// Each login is a socket the gateway accepted from 127.0.0.1;
			// had upgraded sockets stayed pending, the 4th would have been
			// closed at once (MaxPendingPerIP 3).
			var clients []*client.Client
			for i := range 8 {
				clients = append(clients, c.Login(t, 0, fmt.Sprintf("u%d", i), ""))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i, cl := range clients {
				if _, err := cl.Ping(ctx); err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
			}
		})
	}
}

// TestFullGatewayClosesSocketsThatNeverLogIn: a gateway at MaxConns makes
// room for a new client by closing its oldest WebSocket that has not begun
// to log in for a second, rather than answering 503 until that socket's
// login timeout: addresses that each stay under their caps cannot fill a
// gateway with sockets that never log in. Logged-in sessions are never
// closed for room: a gateway full of them still answers 503.
func TestFullGatewayClosesSocketsThatNeverLogIn(t *testing.T) {
	t.Run("never logged in", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxConns: 3, LoginTimeout: time.Minute}})
		url := c.Gateway(0).URL
		idle := dialAll(t, url, 3)
		// Once they are a second old, a real client gets in.
		testcluster.WaitFor(t, 20*time.Second, func() error {
			cl, err := testcluster.Dial(t, url)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = cl.Login(ctx, client.Login{AppID: testcluster.AppID, UserID: "alice", Auth: testcluster.Auth("alice", "")})
			return err
		})
		if !closedWithin(idle[0], 10*time.Second) {
			t.Fatal("the oldest socket that never logged in is still open")
		}
	})
	t.Run("logged in", func(t *testing.T) {
		c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxConns: 3}})
		for i := range 3 {
			c.Login(t, 0, fmt.Sprintf("u%d", i), "")
		}
		_, _, _, err := ws.Dial(context.Background(), c.Gateway(0).URL)
		var se ws.StatusError
		if !errors.As(err, &se) || int(se) != http.StatusServiceUnavailable {
			t.Fatalf("upgrade to a gateway full of sessions: %v, want 503", err)
		}
	})
}
