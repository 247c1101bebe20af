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
// routers' server API to whoever reaches it, key or not. A request that
// stops halfway through its body is ended after ReadTimeout (it held its
// connection, goroutine and buffer for ever), and connections past
// MaxConns are closed at once, so a flood cannot take the files the
// process needs for NATS and its store; once one closes, a new one is
// served.
func TestStalledRequestsAndConnectionFloods(t *testing.T) {
	srv := New(Config{Addr: "127.0.0.1:0", ReadTimeout: time.Second, MaxConns: 2}, prometheus.NewRegistry(), func() error { return nil }, nil)
	srv.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Run(ctx) }()

	stalled, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// Both are open now (the second is idle: nothing is read before its
	// request); a third is past the cap.
	third, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := third.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past MaxConns was kept: read %d, %v", n, err)
	}
	// The stalled request is ended by the read timeout (the server answers
	// or closes); a minute is room enough for a busy machine.
	_ = stalled.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadAll(stalled); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a request stalled halfway through its body was kept past the read timeout")
	}
	healthz := func() error { // the stalled one's place is free again
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
			return fmt.Errorf("answer %q, %v", b, err)
		}
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	for err := healthz(); err != nil; err = healthz() {
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after the stalled one ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
