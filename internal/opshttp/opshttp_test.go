package opshttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "liveim_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Inc()
	var notReady atomic.Bool
	for _, pprof := range []bool{false, true} {
		srv := New(Config{Addr: "127.0.0.1:0", Pprof: pprof}, reg, func() error {
			if notReady.Load() {
				return errors.New("draining")
			}
			return nil
		}, nil)
		addr, err := srv.Listen()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		base := "http://" + addr.String()
		if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "liveim_test_total 1") {
			t.Fatalf("/metrics: %d %q", code, body)
		}
		notReady.Store(false)
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Fatalf("/readyz ready: %d", code)
		}
		notReady.Store(true)
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
			t.Fatalf("/readyz draining: %d %q", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("/healthz: %d", code)
		}
		want := 404
		if pprof {
			want = 200
		}
		if code, _ := get(t, base+"/debug/pprof/"); code != want {
			t.Fatalf("pprof %v: /debug/pprof/ %d, want %d", pprof, code, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
	}{{"", true}, {"127.0.0.1:8081", true}, {"0.0.0.0:0", true}, {":http", true}, {"[::1]:8081", true},
		{"127.0.0.1", false}, {"127.0.0.1:80811", false}, {"127.0.0.1:no-such-port", false}} {
		if err := (Config{Addr: c.addr}).Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%q) = %v, want ok %v", c.addr, err, c.ok)
		}
	}
	if got := (Config{}).WithDefaults().Addr; got != "127.0.0.1:8081" {
		t.Errorf("default Addr %q", got)
	}
}

// TestStalledRequestsAndConnectionFloods: the internal listener serves the
// routers' server API to whoever reaches it, key or not, and kubelet's
// probes. A request that stops halfway through its body is ended after
// ReadTimeout (it held its connection, goroutine and buffer for ever). At
// MaxConns the oldest connection is closed to make room: a peer holding
// every place does not keep a probe out (refusing new connections there
// failed every router's liveness probe at once). One peer past
// MaxConnsPerIP gets its new connection closed at once.
func TestStalledRequestsAndConnectionFloods(t *testing.T) {
	start := func(cfg Config) string {
		cfg.Addr = "127.0.0.1:0"
		srv := New(cfg, prometheus.NewRegistry(), func() error { return nil }, nil)
		srv.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
		addr, err := srv.Listen()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = srv.Run(ctx) }()
		return addr.String()
	}
	dial := func(addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	healthz := func(addr string) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
			return fmt.Errorf("answer %q, %v", b, err)
		}
		return nil
	}
	// closed waits for the server to end c (an answer, EOF or a reset).
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		_, err := io.ReadAll(c)
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}

	t.Run("stalled body", func(t *testing.T) {
		addr := start(Config{ReadTimeout: time.Second})
		stalled := dial(addr)
		if _, err := io.WriteString(stalled, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 1000)); err != nil {
			t.Fatal(err)
		}
		if !closed(stalled) {
			t.Fatal("a request stalled halfway through its body was kept past the read timeout")
		}
	})
	t.Run("full", func(t *testing.T) {
		addr := start(Config{MaxConns: 3})
		var held []net.Conn
		for range 3 {
			held = append(held, dial(addr))
		}
		// Every place is held: a probe still gets in, the oldest goes.
		if err := healthz(addr); err != nil {
			t.Fatalf("a probe with every place held: %v", err)
		}
		if !closed(held[0]) {
			t.Fatal("the oldest connection was kept past MaxConns")
		}
	})
	t.Run("a flood from other peers", func(t *testing.T) {
		// Kubelet probes from the node's address; a pod floods from its own
		// (here 127.0.0.2 and 127.0.0.3, the probe from 127.0.0.1).
		addr := start(Config{MaxConns: 4, MaxConnsPerIP: 3})
		from := func(ip string) net.Conn {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Skipf("no %s on this host: %v", ip, err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		var flood []net.Conn
		for range 3 {
			flood = append(flood, from("127.0.0.2"))
		}
		from("127.0.0.3")
		if !closed(from("127.0.0.2")) {
			t.Fatal("a fourth connection of a peer at MaxConnsPerIP was kept")
		}
		for i := range 3 {
			if err := healthz(addr); err != nil {
				t.Fatalf("probe %d during the flood: %v", i, err)
			}
		}
		if !closed(flood[0]) {
			t.Fatal("the flood's oldest connection was kept past MaxConns")
		}
	})
	t.Run("one peer", func(t *testing.T) {
		addr := start(Config{MaxConnsPerIP: 2})
		dial(addr)
		dial(addr)
		if !closed(dial(addr)) {
			t.Fatal("a third connection of one peer past MaxConnsPerIP was kept")
		}
	})
}
