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
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/opshttp"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage/backend"
)

// serveConfig composes everything `liveim serve` runs.
type serveConfig struct {
	Data       string // default "./data"
	NATSListen string // default "127.0.0.1:4222"
	PublicURL  string // default ws://<addr>/ws (wss:// with the gateway's --tls-cert)
	LogLevel   string // default "info"
	// Dev serves /dev/token, which mints a token for any user of the demo
	// app. Default: on when the gateway listens on loopback only.
	Dev     bool
	devSet  bool
	Ops     opshttp.Config
	Store   backend.Config
	Gateway gateway.Config
	Router  router.Config
	API     serverapi.Config
}

func (c *serveConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Data, "data", "./data", "data directory: embedded store, JetStream, app.json")
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS listen address (extra gateways connect here)")
	fs.StringVar(&c.PublicURL, "public-url", "", "gateway URL advertised in appSign (default ws://<addr>/ws, wss:// with --tls-cert)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	registerOpsFlags(fs, &c.Ops)
	fs.BoolFunc("dev", "development mode: serve /dev/token for the demo page (default: on when --addr is loopback)", func(v string) error {
		b, err := strconv.ParseBool(v)
		c.Dev, c.devSet = b, true
		return err
	})
	c.Store.RegisterFlags(fs)
	c.Gateway.RegisterFlags(fs)
	c.Router.RegisterFlags(fs, "router-")
	c.API.RegisterFlags(fs)
}

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.registerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return fmt.Errorf("--nats-listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--nats-listen: %w", err)
	}

	// The admin key of the server API: --admin-key-file, or one made in
	// the data directory.
	adminKeyFile := cfg.API.AdminKeyFile
	if adminKeyFile == "" {
		adminKeyFile, cfg.API.AdminKey, err = serverapi.EnsureAdminKey(cfg.Data)
	} else {
		cfg.API.AdminKey, err = serverapi.ReadAdminKey(adminKeyFile)
	}
	if err != nil {
		return err
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
	rnc, err := natsconn.Connect(natsconn.Config{URL: ns.ClientURL(), User: subject.RouterUser,
		PasswordFile: filepath.Join(cfg.Data, natsserver.RouterPasswordFile)}, "liveim-router")
	if err != nil {
		return err
	}
	defer rnc.Close()
	gnc, err := natsconn.Connect(natsconn.Config{URL: ns.ClientURL(), User: subject.GatewayUser,
		PasswordFile: filepath.Join(cfg.Data, natsserver.GatewayPasswordFile)}, "liveim-gateway")
	if err != nil {
		return err
	}
	defer gnc.Close()

	// Each component traces under its own service name, as when they run
	// as separate processes.
	gtp, err := telemetry.NewProvider(ctx, telemetry.GatewayService)
	if err != nil {
		return err
	}
	defer shutdownTracing(gtp, log)
	rtp, err := telemetry.NewProvider(ctx, telemetry.RouterService)
	if err != nil {
		return err
	}
	defer shutdownTracing(rtp, log)
	reg := newRegistry()
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
	dev := cfg.Dev
	if !cfg.devSet {
		dev = isLoopback(addr)
	}
	gw.Mux().Handle("/", demo.Pages())
	if dev {
		gw.Mux().Handle("/dev/token", demo.TokenHandler(app, 24*time.Hour, devHosts(addr.String(), publicURL)))
	}
	opsAddr, _ := ops.Listen()
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
