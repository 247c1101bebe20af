package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/demo"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/memtrim"
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/opshttp"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage/backend"
)

// serveConfig composes everything `liveim serve` runs. Its components'
// flags have the names they have in `liveim gateway` and `liveim router`;
// --id names both the gateway and the router.
type serveConfig struct {
	Data       string // default "./data"
	NATSListen string // default "127.0.0.1:4222"
	PublicURL  string // default ws://<addr>/ws (wss:// with the gateway's --tls-cert)
	LogLevel   string // default "info"
	// Dev serves /dev/token, which mints a token for any user of the demo
	// app. Default ("auto"): on when the gateway listens on loopback only.
	Dev     autoBool
	Ops     opshttp.Config
	Trim    memtrim.Config
	Store   backend.Config
	Gateway gateway.Config
	Router  router.Config
	API     serverapi.Config
}

func (c *serveConfig) settings() *settings {
	s := newSettings("serve")
	s.add("serve", func(fs *flag.FlagSet) {
		fs.StringVar(&c.Data, "data", "./data", "data directory: embedded store, JetStream, app.json, passwords, admin key")
		fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS listen address (extra gateways connect here)")
		fs.StringVar(&c.PublicURL, "public-url", "", "gateway URL advertised in appSign (default ws://<addr>/ws, wss:// with --tls-cert)")
		fs.Var(&c.Dev, "dev", "development mode: serve /dev/token for the demo page; true, false or auto (default auto: on when --addr is loopback and --public-url, if given, names this machine)")
	})
	s.add("gateway", c.Gateway.RegisterFlags)
	s.add("router", func(fs *flag.FlagSet) { c.Router.RegisterFlags(fs, "") }, "id")
	s.fs.Lookup("id").Usage = "gateway and router: unique ID among gateways and among routers (default random)"
	s.add("server API", c.API.RegisterFlags)
	s.add("storage", c.Store.RegisterFlags)
	s.add("internal listener, logs and memory", opsFlags(&c.Ops, &c.Trim, &c.LogLevel))
	return s
}

// validate also reads the admin key (API.AdminKey) when --admin-key-file
// names one, and the gateway's TLS files when --tls-cert names them.
func (c *serveConfig) validate() error {
	errs := []error{checkLogLevel(c.LogLevel), validateGateway(c.Gateway), c.Router.Validate(), c.Store.Validate(), c.Ops.Validate(), c.Trim.Validate()}
	if _, _, err := splitListen(c.NATSListen); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "ws://") && !strings.HasPrefix(c.PublicURL, "wss://") {
		errs = append(errs, fmt.Errorf("--public-url %q: want a ws:// or wss:// URL", c.PublicURL))
	}
	if c.API.AdminKeyFile != "" {
		key, err := serverapi.ReadAdminKey(c.API.AdminKeyFile)
		c.API.AdminKey = key
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.API.Validate())...)
}

func (c *serveConfig) applyDefaults() {
	c.Gateway, c.Router, c.API = c.Gateway.WithDefaults(), c.Router.WithDefaults(), c.API.WithDefaults()
	c.Store, c.Ops, c.Trim = c.Store.WithDefaults(), c.Ops.WithDefaults(), c.Trim.WithDefaults()
}

// splitListen reads --nats-listen.
func splitListen(addr string) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err == nil {
		port, err = strconv.Atoi(portStr)
	}
	if err == nil && (port < 0 || port > 65535) {
		err = errors.New("port out of range")
	}
	if err != nil {
		return "", 0, fmt.Errorf("--nats-listen %q: %w", addr, err)
	}
	return host, port, nil
}

// autoBool is a boolean flag that may also be left to "auto".
type autoBool struct {
	set, on bool
}

func (b *autoBool) Set(v string) error {
	if v == "auto" {
		*b = autoBool{}
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true, false or auto")
	}
	*b = autoBool{set: true, on: on}
	return nil
}

func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.on)
}

// IsBoolFlag lets --dev stand alone for --dev=true.
func (b *autoBool) IsBoolFlag() bool { return true }

// or returns the value, or auto when it was left to auto.
func (b autoBool) or(auto bool) bool {
	if !b.set {
		return auto
	}
	return b.on
}

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg serveConfig
	log, err := loadTarget(&cfg, args, &cfg.LogLevel)
	if err != nil {
		return err
	}
	logStart(log, "serve")
	// serve runs NATS, a router and the store beside its gateway: they
	// allocate for every message, so the process keeps Go's GC target
	// unless --gc-percent says otherwise (at 50, serve spent 13% more
	// CPU per stored message at 5,000 msgs/s).
	if cfg.Gateway.GCPercent != 0 {
		log.Info("gc target", "gogc", cfg.Gateway.ApplyGCPercent())
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return err
	}
	host, port, err := splitListen(cfg.NATSListen)
	if err != nil {
		return err
	}

	// The admin key of the server API: --admin-key-file, or one made in
	// the data directory.
	adminKeyFile := cfg.API.AdminKeyFile
	if adminKeyFile == "" { // else validate read it
		if adminKeyFile, cfg.API.AdminKey, err = serverapi.EnsureAdminKey(cfg.Data); err != nil {
			return err
		}
	}

	store, err := backend.Open(ctx, cfg.Store, cfg.Data, log)
	if err != nil {
		return err
	}
	defer store.Close()
	// The embedded NATS accepts only liveim's two users, whose passwords
	// live in the data directory; extra gateways read the gateway's.
	routerPW, gatewayPW, err := natsserver.EnsurePasswords(cfg.Data)
	if err != nil {
		return err
	}
	ns, err := natsserver.Start(natsserver.Config{Dir: filepath.Join(cfg.Data, "nats"), Host: host, Port: port,
		Users: natsserver.LiveimUsers(routerPW, gatewayPW)})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()

	// Gateway and router talk only through NATS, each on its own connection
	// as its own user, exactly as when they run as separate processes.
	rnc, err := natsconn.Connect(ctx, natsconn.Config{URL: ns.ClientURL(), User: subject.RouterUser,
		PasswordFile: filepath.Join(cfg.Data, natsserver.RouterPasswordFile)}, "liveim-router", log)
	if err != nil {
		return err
	}
	defer rnc.Close()
	gnc, err := natsconn.Connect(ctx, natsconn.Config{URL: ns.ClientURL(), User: subject.GatewayUser,
		PasswordFile: filepath.Join(cfg.Data, natsserver.GatewayPasswordFile)}, "liveim-gateway", log, natsconn.GatewayInbox())
	if err != nil {
		return err
	}
	defer gnc.Close()

	// Each component traces under its own service name, as when they run
	// as separate processes.
	gtp, err := telemetry.NewProvider(ctx, telemetry.GatewayService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(gtp, log)
	rtp, err := telemetry.NewProvider(ctx, telemetry.RouterService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(rtp, log)
	reg := newRegistry()
	defer startTrim(ctx, cfg.Trim, log, reg)()
	rt, err := router.New(cfg.Router, rnc, store, log, router.WithRegisterer(reg), router.WithTracerProvider(rtp))
	if err != nil {
		return err
	}
	gw, err := gateway.New(cfg.Gateway, gnc, log, gateway.WithRegisterer(reg), gateway.WithTracerProvider(gtp))
	if err != nil {
		return err
	}
	cfg.API.StreamReplicas = cfg.Router.StreamReplicas
	api, err := serverapi.New(cfg.API, rnc, store, rt, log)
	if err != nil {
		return err
	}
	ops := opshttp.New(cfg.Ops, reg, func() error {
		select {
		case <-rt.Ready():
		default:
			return errors.New("router starting")
		}
		return gw.Ready()
	}, log)
	ops.Handle(serverapi.Prefix+"/", api.Handler())
	stopOps, err := startOps(ctx, ops, log)
	if err != nil {
		return err
	}
	defer stopOps()
	addr, err := gw.Listen()
	if err != nil {
		return err
	}
	web, wsScheme := "http://", "ws://"
	if cfg.Gateway.ServesTLS() {
		web, wsScheme = "https://", "wss://"
	}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = wsScheme + addr.String() + "/ws"
	}
	app, created, err := demoapp.Ensure(ctx, store, cfg.Data, []string{publicURL}, log)
	if err != nil {
		return err
	}
	// Development mode comes on by itself only where nobody else can reach
	// it: the gateway on loopback and no public URL naming another host (a
	// proxy in front forwards the world's requests to loopback).
	dev := cfg.Dev.or(isLoopback(addr) && loopbackURL(publicURL))
	if dev && !(isLoopback(addr) && loopbackURL(publicURL)) {
		log.Warn("development mode where others may reach it: /dev/token mints a token for any user of the demo app, admin included",
			"addr", addr.String(), "public_url", publicURL)
	}
	opsAddr, _ := ops.Listen()
	gw.Mux().Handle("/", demo.Pages())
	if dev {
		hosts := devHosts(addr.String(), publicURL)
		gw.Mux().Handle("/dev/token", demo.TokenHandler(app, 24*time.Hour, hosts))
		// Kicks and timed mutes call the server API on our own internal listener.
		mod := demo.ModerationHandler(app, []string{"http://" + dialAddr(opsAddr)}, hosts)
		gw.Mux().Handle(demo.KickPath, mod)
		gw.Mux().Handle(demo.MutePath, mod)
	}
	printWelcome(stdout, cfg.Data, web+addr.String(), opsAddr.String(), publicURL, ns.ClientURL(), adminKeyFile, app, created, dev)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.Run(ctx) })
	g.Go(func() error { return api.Run(ctx) })
	g.Go(func() error {
		select { // serve clients once a router answers
		case <-rt.Ready():
		case <-ctx.Done():
			return nil
		}
		return gw.Run(ctx)
	})
	return g.Wait()
}

// devHosts returns the Host values /dev/token answers besides loopback:
// the listen address and the public URL's host, as browsers send them.
func devHosts(addr, publicURL string) []string {
	hosts := []string{strings.ToLower(addr)}
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		hosts = append(hosts, strings.ToLower(u.Host))
	}
	return hosts
}

// dialAddr returns an address to reach a listener at a on this host: its
// own, or 127.0.0.1 for one on all interfaces (Go's wildcard listeners
// take IPv4 too).
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
}

// loopbackURL reports whether a URL names this machine only: localhost or
// a loopback address.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	name := pu.Hostname()
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// isLoopback reports whether a listen address accepts only local clients.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// printWelcome prints how to use the running server; page is the
// gateway's web root, http:// or https://<addr>.
func printWelcome(w io.Writer, data, page, opsAddr, publicURL, natsURL, adminKeyFile string, app demoapp.Info, created, dev bool) {
	state := "existing"
	if created {
		state = "new"
	}
	if dev {
		page += "/  (development mode: /dev/token mints demo tokens)"
	} else {
		page += "/  (needs --dev to log in)"
	}
	fmt.Fprintf(w, `liveim is running.
  demo page:  %s
  WebSocket:  %s
  internal:   http://%s/metrics, /healthz, /readyz (keep off the internet)
  server API: http://%s/api/v1/  (admin key: %s;
              liveim app list --admin-key-file %s --api http://%s)
  NATS:       %s  (extra gateways: liveim gateway --nats %s
              --nats-user %s --nats-password-file %s)
  demo app (%s): app_id=%s
  appSign:    %s

Get a login token for a user:
  liveim token --data %s --user alice [--role admin]
`, page, publicURL, opsAddr, opsAddr, adminKeyFile, adminKeyFile, opsAddr, natsURL, natsURL, subject.GatewayUser, filepath.Join(data, natsserver.GatewayPasswordFile), state, app.AppID, app.AppSign, data)
}
