// Package testcluster starts real liveim components in-process for tests:
// nats-server with JetStream on a random port, routers, gateways on
// loopback, and the embedded store, all in t.TempDir(). Nothing is mocked.
//
// LIVEIM_GATEWAY_IO=portable (or epoll) picks the gateways' I/O path when
// a test does not set Options.Gateway.IO, so a whole suite runs once on
// each path (scripts/test runs the e2e tests on the portable one).
package testcluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
	"github.com/liveim/liveim/storage/scylla"
)

// AppID and AppKey are the test app's credentials.
const (
	AppID  = "test-app"
	AppKey = "test-app-key"
)

// Options says what to start. The zero value starts one router and one
// gateway with default configs, except that the per-session send and
// request rates and the per-address connection and upgrade caps are off
// unless set.
type Options struct {
	Routers  int // default 1
	Gateways int // default 1
	// Gateway configures every gateway; Gateway.IO defaults to
	// LIVEIM_GATEWAY_IO. With Gateway.TLSCertFile the gateways' URLs are
	// wss://, and ClientTLS is what Login trusts.
	Gateway   gateway.Config
	Router    router.Config
	ClientTLS *tls.Config
	// RouterStore, when set, gives the i-th router started its view of
	// the cluster's store (a wrapper, e.g. one that makes writes slow).
	RouterStore func(i int, s storage.Store) storage.Store
	// GatewayConfig, when set, changes the configuration of the i-th
	// gateway started (Gateway, with its defaults, is what it gets).
	GatewayConfig func(i int, cfg gateway.Config) gateway.Config
}

// Cluster is a running set of components.
type Cluster struct {
	NATS  *server.Server
	Store storage.Store

	t    testing.TB
	opts Options
	// routerPW and gatewayPW are the NATS passwords of the two users.
	routerPW, gatewayPW string
	mu                  sync.Mutex
	gateways            []*Gateway
	routers             []*Router
}

// Router is one running router.
type Router struct {
	*router.Router
	runner
}

// runner is a component running on its own goroutine.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
}

func (r *runner) start(run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		r.err = run(ctx)
		close(r.done)
	}()
}

// Stop stops the component and waits for it; calling it again is
// harmless.
func (r *runner) Stop() error {
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(20 * time.Second):
		return fmt.Errorf("did not stop within 20s")
	}
}

// Gateway is one running gateway.
type Gateway struct {
	*gateway.Gateway
	runner
	URL string // ws://host:port/ws
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
	if opts.Gateway.RequestRate == 0 {
		opts.Gateway.RequestRate, opts.Gateway.RequestBurst = 1e6, 1e6
	}
	// Every test client comes from 127.0.0.1; tests of the per-address
	// caps set their own.
	if opts.Gateway.MaxConnsPerIP == 0 {
		opts.Gateway.MaxConnsPerIP = -1
	}
	if opts.Gateway.UpgradeRatePerIP == 0 {
		opts.Gateway.UpgradeRatePerIP = -1
	}
	if opts.Gateway.MaxPendingPerIP == 0 {
		opts.Gateway.MaxPendingPerIP = -1
	}
	if opts.Gateway.IO == "" && !opts.Gateway.ServesTLS() { // TLS is served on the portable path only
		opts.Gateway.IO = os.Getenv("LIVEIM_GATEWAY_IO")
	}
	dir := t.TempDir()
	// NATS needs credentials, and gateways connect with the narrow
	// permissions of production (subject.GatewayPublish and friends).
	routerPW, gatewayPW := auth.NewNonce(32), auth.NewNonce(32)
	ns, err := natsserver.Start(natsserver.Config{Dir: dir + "/nats", Users: natsserver.LiveimUsers(routerPW, gatewayPW)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	st, err := openStore(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.PutApp(context.Background(), storage.App{ID: AppID, Key: AppKey}); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{NATS: ns, Store: st, t: t, opts: opts, routerPW: routerPW, gatewayPW: gatewayPW}
	for i := 0; i < opts.Routers; i++ {
		c.StartRouter()
	}
	for i := 0; i < opts.Gateways; i++ {
		c.StartGateway()
	}
	return c
}

// openStore opens the store the tests run on: the embedded pebble store,
// or, with LIVEIM_E2E_STORE=scylla, a fresh keyspace on the CQL server in
// LIVEIM_CQL_HOSTS (scripts/cql-test-server starts one).
func openStore(t testing.TB, dir string) (storage.Store, error) {
	if os.Getenv("LIVEIM_E2E_STORE") != "scylla" {
		return pebble.Open(dir+"/store", pebble.Options{NoSync: true})
	}
	hosts := os.Getenv("LIVEIM_CQL_HOSTS")
	if hosts == "" {
		t.Fatal("LIVEIM_E2E_STORE=scylla needs LIVEIM_CQL_HOSTS: run `eval $(scripts/cql-test-server start)`")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := scylla.Config{
		Hosts: strings.Split(hosts, ","), Keyspace: "liveim_e2e_" + hex.EncodeToString(b[:]),
		Consistency: "ONE", SerialConsistency: "SERIAL", Timeout: 20 * time.Second,
	}
	st, err := scylla.Open(ctx, cfg, logger())
	if err == nil {
		t.Cleanup(func() { _ = scylla.DropKeyspace(context.Background(), cfg) }) // after the store's Close
	}
	return st, err
}

func logger() *slog.Logger {
	if os.Getenv("LIVEIM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Connect returns a new NATS connection to the cluster's server as a
// router (every permission).
func (c *Cluster) Connect() *nats.Conn {
	c.t.Helper()
	return c.ConnectAs(subject.RouterUser)
}

// JetStream returns JetStream on a new connection as a router, for tests
// that reach into the cluster's streams and buckets.
func (c *Cluster) JetStream() jetstream.JetStream {
	c.t.Helper()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// ConnectAs returns a new NATS connection as subject.RouterUser or
// subject.GatewayUser.
func (c *Cluster) ConnectAs(user string) *nats.Conn {
	c.t.Helper()
	opts := []nats.Option{nats.UserInfo(user, c.routerPW)}
	if user == subject.GatewayUser {
		opts = []nats.Option{nats.UserInfo(user, c.gatewayPW), nats.CustomInboxPrefix(subject.GatewayInboxPrefix)}
	}
	nc, err := nats.Connect(c.NATS.ClientURL(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// StartRouter starts one more router and waits until it serves.
func (c *Cluster) StartRouter() *Router {
	c.t.Helper()
	st := c.Store
	if c.opts.RouterStore != nil {
		c.mu.Lock()
		i := len(c.routers)
		c.mu.Unlock()
		st = c.opts.RouterStore(i, st)
	}
	rt, err := router.New(c.opts.Router, c.Connect(), st, logger())
	if err != nil {
		c.t.Fatal(err)
	}
	r := &Router{Router: rt}
	r.start(rt.Run)
	c.t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			c.t.Errorf("router: %v", err)
		}
	})
	select {
	case <-rt.Ready():
	case <-r.done:
		c.t.Fatalf("router: %v", r.err)
	case <-time.After(20 * time.Second):
		c.t.Fatal("router not ready")
	}
	c.mu.Lock()
	c.routers = append(c.routers, r)
	c.mu.Unlock()
	return r
}

// Router returns the i-th router started.
func (c *Cluster) Router(i int) *Router {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routers[i]
}

// StartGateway starts one more gateway on a random loopback port.
func (c *Cluster) StartGateway() *Gateway {
	c.t.Helper()
	cfg := c.opts.Gateway
	if c.opts.GatewayConfig != nil {
		c.mu.Lock()
		i := len(c.gateways)
		c.mu.Unlock()
		cfg = c.opts.GatewayConfig(i, cfg)
	}
	cfg.Addr = "127.0.0.1:0"
	gw, err := gateway.New(cfg, c.ConnectAs(subject.GatewayUser), logger())
	if err != nil {
		c.t.Fatal(err)
	}
	addr, err := gw.Listen()
	if err != nil {
		c.t.Fatal(err)
	}
	scheme := "ws://"
	if cfg.ServesTLS() {
		scheme = "wss://"
	}
	g := &Gateway{Gateway: gw, URL: scheme + addr.String() + "/ws"}
	g.start(gw.Run)
	c.t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			c.t.Errorf("gateway: %v", err)
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
	return AuthTTL(userID, role, time.Hour)
}

// AuthTTL returns valid credentials for userID with role, expiring ttl
// from now.
func AuthTTL(userID, role string, ttl time.Duration) *liveimpb.UserAuth {
	cr := auth.Issue(AppID, AppKey, userID, role, auth.NewNonce(auth.DefaultNonceLength), ttl, time.Now())
	return &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}
}

// Login dials gateway gw and logs userID in; the client closes when the
// test ends.
func (c *Cluster) Login(t testing.TB, gw int, userID, role string) *client.Client {
	t.Helper()
	cl, err := DialWith(t, ws.Dialer{TLSConfig: c.opts.ClientTLS}, c.Gateway(gw).URL)
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
	return DialWith(t, ws.DefaultDialer, url)
}

// DialWith connects a client with d that closes when the test ends.
func DialWith(t testing.TB, d ws.Dialer, url string) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.DialWith(ctx, d, url)
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

// AdminKey is the test cluster's server API admin key.
const AdminKey = "test-admin-key-0123456789"

// API is a running server API.
type API struct {
	*serverapi.Server
	runner
	URL string // http://host:port, the root the API's Prefix is under
}

// StartAPI starts the server API of the i-th router on a random loopback
// port, as `liveim router` serves it on its internal listener, and waits
// until it takes requests.
func (c *Cluster) StartAPI(i int, cfg serverapi.Config) *API {
	c.t.Helper()
	if cfg.AdminKey == "" {
		cfg.AdminKey = AdminKey
	}
	api, err := serverapi.New(cfg, c.Connect(), c.Store, c.Router(i).Router, logger())
	if err != nil {
		c.t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	c.t.Cleanup(srv.Close)
	a := &API{Server: api, URL: srv.URL}
	a.start(api.Run)
	c.t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			c.t.Errorf("server API: %v", err)
		}
	})
	select {
	case <-api.Ready():
	case <-a.done:
		c.t.Fatalf("server API: %v", a.err)
	case <-time.After(20 * time.Second):
		c.t.Fatal("server API not ready")
	}
	return a
}

// AppClient returns a client of the API signing as the test app.
func (a *API) AppClient() *apiclient.Client {
	return apiclient.New(a.URL, apiclient.App(AppID, AppKey))
}

// AdminClient returns a client of the API as the operator.
func (a *API) AdminClient() *apiclient.Client {
	return apiclient.New(a.URL, apiclient.Admin(AdminKey))
}
