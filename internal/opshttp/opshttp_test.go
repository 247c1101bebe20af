package opshttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

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
