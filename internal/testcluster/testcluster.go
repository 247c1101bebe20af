// Package testcluster starts real liveim components in-process for tests:
// nats-server with JetStream on a random port, routers, gateways on
// loopback, and the embedded store, all in t.TempDir(). Nothing is mocked.
package testcluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
)

// AppID and AppKey are the test app's credentials.
const (
	AppID  = "test-app"
	AppKey = "test-app-key"
)

// Options says what to start. The zero value starts one router and one
// gateway with default configs, except that the per-session send rate is
// unlimited unless Gateway.SendRate is set.
type Options struct {
	Routers  int // default 1
	Gateways int // default 1
	Gateway  gateway.Config
	Router   router.Config
}

// Cluster is a running set of components.
type Cluster struct {
	NATS  *server.Server
	Store storage.Store

	t        testing.TB
	opts     Options
	mu       sync.Mutex
	gateways []*Gateway
}

// Gateway is one running gateway.
type Gateway struct {
	*gateway.Gateway
	URL    string // ws://host:port/ws
	cancel context.CancelFunc
	done   chan error
}

// Stop stops the gateway and waits for it.
func (g *Gateway) Stop() error {
	g.cancel()
	return <-g.done
}

// Start starts a cluster; it stops when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Routers == 0 {
		opts.Routers = 1
	}
	if opts.Gateways == 0 {
		opts.Gateways = 1
	}
	if opts.Gateway.SendRate == 0 { // tests send in bursts; those about 412 set their own
		opts.Gateway.SendRate, opts.Gateway.SendBurst = 1e6, 1e6
	}
	dir := t.TempDir()
	ns, err := natsserver.Start(natsserver.Config{Dir: dir + "/nats"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	st, err := pebble.Open(dir+"/store", pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.PutApp(context.Background(), storage.App{ID: AppID, Key: AppKey}); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{NATS: ns, Store: st, t: t, opts: opts}
	for i := 0; i < opts.Routers; i++ {
		c.startRouter()
	}
	for i := 0; i < opts.Gateways; i++ {
		c.StartGateway()
	}
	return c
}

func logger() *slog.Logger {
	if os.Getenv("LIVEIM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Connect returns a new NATS connection to the cluster's server.
func (c *Cluster) Connect() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.NATS.ClientURL())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

func (c *Cluster) startRouter() {
	r, err := router.New(c.opts.Router, c.Connect(), c.Store, logger())
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("router: %v", err)
		}
	})
	// Wait until the router's subscriptions are in place.
	nc := c.Connect()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := nc.Request("liveim.sys.app", nil, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("router not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartGateway starts one more gateway on a random loopback port.
func (c *Cluster) StartGateway() *Gateway {
	c.t.Helper()
	cfg := c.opts.Gateway
	cfg.Addr = "127.0.0.1:0"
	gw, err := gateway.New(cfg, c.Connect(), logger())
	if err != nil {
		c.t.Fatal(err)
	}
	addr, err := gw.Listen()
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{Gateway: gw, URL: "ws://" + addr.String() + "/ws", cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- gw.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			c.t.Errorf("gateway did not stop")
		}
	})
	c.mu.Lock()
	c.gateways = append(c.gateways, g)
	c.mu.Unlock()
	return g
}

// Gateway returns the i-th gateway started.
func (c *Cluster) Gateway(i int) *Gateway {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gateways[i]
}

// Auth returns valid credentials for userID with role, expiring in an hour.
func Auth(userID, role string) *liveimpb.UserAuth {
	cr := auth.Issue(AppID, AppKey, userID, role, "n", time.Hour, time.Now())
	return &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}
}

// Login dials gateway gw and logs userID in; the client closes when the
// test ends.
func (c *Cluster) Login(t testing.TB, gw int, userID, role string) *client.Client {
	t.Helper()
	cl, err := Dial(t, c.Gateway(gw).URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Login(ctx, client.Login{AppID: AppID, UserID: userID, Auth: Auth(userID, role)}); err != nil {
		t.Fatalf("login %s: %v", userID, err)
	}
	return cl
}

// Dial connects a client that closes when the test ends.
func Dial(t testing.TB, url string) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl, nil
}

// WaitFor polls f until it returns nil or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NextEvent returns the next event of cl that keep accepts, skipping
// others, or fails the test after timeout.
func NextEvent(t testing.TB, cl *client.Client, timeout time.Duration, keep func(*liveimpb.Event) bool) *liveimpb.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-cl.Events():
			if !ok {
				t.Fatalf("connection closed while waiting for an event: %v", cl.Err())
			}
			if keep(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no event within %v", timeout)
			return nil
		}
	}
}

// ErrCode returns the catalogue code of err, or 0.
func ErrCode(err error) int32 {
	var e *liveimpb.Error
	if errors.As(err, &e) {
		return int32(e.Code)
	}
	return 0
}
