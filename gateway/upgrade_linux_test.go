//go:build linux

package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// BenchmarkUpgrade: a WebSocket client dials a real gateway (epoll path,
// in-process NATS), is upgraded, is answered one ping and closes. The
// client's work is in the figures too. cpu-µs/op is the process's CPU
// time (user and system) per connection, which ns/op, mostly round
// trips, does not show; allocs/op is what a storm of reconnects makes
// the gateway's GC chase.
func BenchmarkUpgrade(b *testing.B) {
	_, addr, _ := runGateway(b, Config{IO: IOEpoll, UpgradeRatePerIP: -1, MaxConnsPerIP: -1, MaxPendingPerIP: -1})
	url := "ws://" + addr.String() + "/ws"
	b.ReportAllocs()
	before := cpuTime(b)
	for b.Loop() {
		conn, _, _, err := ws.Dial(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		pingRequest(b, conn, 1)
		_ = conn.Close()
	}
	b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the CPU time the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FuzzUpgradeRequest: whatever bytes a client sends first, a real gateway
// answers with an HTTP response or closes, and keeps no socket pending
// once the client is gone. The gateway runs once for the whole target.
func FuzzUpgradeRequest(f *testing.F) {
	f.Add([]byte(upgradeRequest("/ws", "")))
	f.Add([]byte(upgradeRequest("/ws?x=1", "X-Forwarded-For: 10.0.0.1\r\n")))
	f.Add([]byte("GET /ws HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET /ws"))
	f.Add([]byte("GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"))
	f.Add([]byte("POST /ws HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: gw\r\n\tfolded\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'})
	g, addr, _ := runGateway(f, Config{IO: IOEpoll, UpgradeRatePerIP: -1, MaxConnsPerIP: -1, MaxPendingPerIP: -1, HTTPTimeout: 2 * time.Second})
	f.Fuzz(func(t *testing.T, req []byte) {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("reading the answer to %q: %v", req, err)
		}
		if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.")) {
			t.Fatalf("answer to %q is not HTTP: %q", req, got)
		}
		waitFor(t, 10*time.Second, func() error {
			if n := g.pending.count(); n != 0 {
				return fmt.Errorf("%d sockets pending after %q", n, req)
			}
			return nil
		})
	})
}
