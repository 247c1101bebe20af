package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/proto/liveimpb"
)

// waitFor polls cond until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDrainSpreadsCloses: a stopping gateway tells its clients to
// reconnect one after another across its drain window, not all at once,
// and refuses new upgrades meanwhile, on each I/O path (the drain gathers
// the connections of either engine) and under TLS. The closes' times are
// what each client saw; the checks leave a slow machine wide margins: the
// clients are told after the drain began, the first of them well before
// the last (a quarter of the window; evenly spread, the gap is most of
// it), and in at least three separate moments. Every close counts as a
// shutdown (liveim_gateway_disconnects_total).
func TestDrainSpreadsCloses(t *testing.T) {
	forEachPath(t, testDrainSpreadsCloses)
}

func testDrainSpreadsCloses(t *testing.T, path string) {
	const clients = 6
	const window = 3 * time.Second
	nc := natstest.Connect(t)
	cfg := Config{Addr: "127.0.0.1:0", DrainDelay: window, LoginTimeout: time.Minute, Loops: 2, IO: path}
	url, dialer := "ws://", ws.DefaultDialer
	if path == pathPortableTLS {
		certFile, keyFile, pool := testcert.Write(t)
		cfg.IO, cfg.TLSCertFile, cfg.TLSKeyFile = IOPortable, certFile, keyFile
		url, dialer = "wss://", ws.Dialer{TLSConfig: &tls.Config{RootCAs: pool}}
	}
	g, err := New(cfg, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- g.Run(ctx) }()
	url += addr.String() + "/ws"

	type closed struct {
		at        time.Time
		reconnect bool
		err       error
	}
	seen := make(chan closed, clients)
	for range clients {
		c, _, _, err := dialer.Dial(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			for {
				data, op, err := wsutil.ReadServerData(c)
				if err != nil {
					seen <- closed{at: time.Now(), err: fmt.Errorf("closed without a disconnect event: %w", err)}
					return
				}
				var f liveimpb.ServerFrame
				if op == ws.OpBinary && proto.Unmarshal(data, &f) == nil && f.GetEvent().GetDisconnect() != nil {
					seen <- closed{at: time.Now(), reconnect: f.GetEvent().GetDisconnect().Reconnect}
					return
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, func() error {
		if n := g.Stats().Connections; n != clients {
			return fmt.Errorf("the gateway holds %d connections, want %d", n, clients)
		}
		return nil
	})

	began := time.Now()
	stop()
	// Readiness and upgrades fail from the start of the drain.
	waitFor(t, 5*time.Second, func() error {
		if g.Ready() == nil {
			return errors.New("still ready while draining")
		}
		return nil
	})
	var status ws.StatusError
	if _, _, _, err := dialer.Dial(context.Background(), url); !errors.As(err, &status) || int(status) != http.StatusServiceUnavailable {
		t.Errorf("an upgrade while draining: %v, want 503", err)
	}

	var times []time.Time
	for range clients {
		select {
		case c := <-seen:
			if c.err != nil || !c.reconnect {
				t.Fatalf("a client was closed without a reconnect hint: %+v", c)
			}
			times = append(times, c.at)
		case <-time.After(window + 30*time.Second):
			t.Fatalf("%d of %d clients told to reconnect", len(times), clients)
		}
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	slices.SortFunc(times, time.Time.Compare)
	offsets := make([]time.Duration, len(times))
	for i, at := range times {
		offsets[i] = at.Sub(began).Round(time.Millisecond)
	}
	t.Logf("clients told to reconnect at %v after the drain began (window %v)", offsets, window)
	if times[0].Before(began) {
		t.Fatalf("a client was told before the drain began: %v", offsets)
	}
	if spread := times[clients-1].Sub(times[0]); spread < window/4 {
		t.Fatalf("all %d closes within %v of a %v window: not spread (%v)", clients, spread, window, offsets)
	}
	moments := 1
	for i := 1; i < clients; i++ {
		if times[i].Sub(times[i-1]) >= window/(4*clients) {
			moments++
		}
	}
	if moments < 3 {
		t.Fatalf("the closes came in %d bursts, want them spread (%v)", moments, offsets)
	}
	if n := testutil.ToFloat64(g.metrics.disconnects.WithLabelValues(reasonShutdown)); n != clients {
		t.Fatalf("%v disconnects counted as %s, want %d", n, reasonShutdown, clients)
	}
}
