package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/memtrim"
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/opshttp"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage/backend"
)

// gatewayConfig is the configuration of `liveim gateway`.
type gatewayConfig struct {
	LogLevel string // default "info"
	NATS     natsconn.Config
	Ops      opshttp.Config
	Trim     memtrim.Config
	Gateway  gateway.Config
}

func (c *gatewayConfig) settings() *settings {
	s := newSettings("gateway")
	s.add("gateway", c.Gateway.RegisterFlags)
	s.add("NATS", c.NATS.RegisterFlags)
	s.add("internal listener, logs and memory", opsFlags(&c.Ops, &c.Trim, &c.LogLevel))
	return s
}

// validate also reads the TLS certificate and key (--tls-cert, --tls-key)
// when they are set.
func (c *gatewayConfig) validate() error {
	return errors.Join(checkLogLevel(c.LogLevel), validateGateway(c.Gateway), c.NATS.Validate(), c.Ops.Validate(), c.Trim.Validate())
}

// validateGateway validates a gateway's settings and, when they name a
// TLS certificate and key, reads them: a missing or mismatched file fails
// before the target connects to NATS, not after (gateway.New reads them
// again).
func validateGateway(c gateway.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	_, err := c.TLSConfig()
	return err
}

func (c *gatewayConfig) applyDefaults() {
	c.Gateway, c.NATS, c.Ops, c.Trim = c.Gateway.WithDefaults(), c.NATS.WithDefaults(), c.Ops.WithDefaults(), c.Trim.WithDefaults()
}

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	var cfg gatewayConfig
	log, err := loadTarget(&cfg, args, &cfg.LogLevel)
	if err != nil {
		return err
	}
	logStart(log, "gateway")
	log.Info("gc target", "gogc", cfg.Gateway.ApplyGCPercent())
	tp, err := telemetry.NewProvider(ctx, telemetry.GatewayService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	nc, err := natsconn.Connect(ctx, cfg.NATS, "liveim-gateway", log, natsconn.GatewayInbox())
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	defer startTrim(ctx, cfg.Trim, log, reg)()
	gw, err := gateway.New(cfg.Gateway, nc, log, gateway.WithRegisterer(reg), gateway.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	ops := opshttp.New(cfg.Ops, reg, gw.Ready, log)
	stopOps, err := startOps(ctx, ops, log)
	if err != nil {
		return err
	}
	defer stopOps()
	err = gw.Run(ctx)
	if derr := drain(nc, 5*time.Second); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}

// startOps starts the internal listener; it keeps serving after ctx ends
// (probes see a draining process as not ready) until stop is called.
func startOps(ctx context.Context, ops *opshttp.Server, log *slog.Logger) (stop func(), err error) {
	if _, err := ops.Listen(); err != nil {
		return nil, err
	}
	opsCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ops.Run(opsCtx); err != nil {
			log.Error("internal http", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// routerConfig is the configuration of `liveim router`.
type routerConfig struct {
	// Data is the data directory of the embedded store. Default "./data".
	Data     string
	LogLevel string // default "info"
	NATS     natsconn.Config
	Ops      opshttp.Config
	Trim     memtrim.Config
	Router   router.Config
	Store    backend.Config
	API      serverapi.Config
}

func (c *routerConfig) settings() *settings {
	s := newSettings("router")
	s.add("router", func(fs *flag.FlagSet) { c.Router.RegisterFlags(fs, "") })
	s.add("server API", c.API.RegisterFlags)
	s.add("storage", func(fs *flag.FlagSet) {
		c.Store.RegisterFlags(fs)
		fs.StringVar(&c.Data, "data", "./data", "data directory of the embedded store (--store pebble)")
	})
	s.add("NATS", c.NATS.RegisterFlags)
	s.add("internal listener, logs and memory", opsFlags(&c.Ops, &c.Trim, &c.LogLevel))
	return s
}

// validate also reads the admin key (API.AdminKey) from its file.
func (c *routerConfig) validate() error {
	errs := []error{checkLogLevel(c.LogLevel), c.Router.Validate(), c.Store.Validate(), c.NATS.Validate(), c.Ops.Validate(), c.Trim.Validate()}
	if c.API.AdminKeyFile != "" {
		key, err := serverapi.ReadAdminKey(c.API.AdminKeyFile)
		c.API.AdminKey = key
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.API.Validate())...)
}

func (c *routerConfig) applyDefaults() {
	c.Router, c.Store, c.API = c.Router.WithDefaults(), c.Store.WithDefaults(), c.API.WithDefaults()
	c.NATS, c.Ops, c.Trim = c.NATS.WithDefaults(), c.Ops.WithDefaults(), c.Trim.WithDefaults()
}

func runRouter(ctx context.Context, args []string, _ io.Writer) error {
	var c routerConfig
	log, err := loadTarget(&c, args, &c.LogLevel)
	if err != nil {
		return err
	}
	logStart(log, "router")
	tp, err := telemetry.NewProvider(ctx, telemetry.RouterService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	store, err := backend.Open(ctx, c.Store, c.Data, log)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := natsconn.Connect(ctx, c.NATS, "liveim-router", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	defer startTrim(ctx, c.Trim, log, reg)()
	rt, err := router.New(c.Router, nc, store, log, router.WithRegisterer(reg), router.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	c.API.StreamReplicas = c.Router.StreamReplicas
	api, err := serverapi.New(c.API, nc, store, rt, log)
	if err != nil {
		return err
	}
	// /readyz: ready once the router serves, not ready from the first
	// moment of a shutdown.
	var stopping atomic.Bool
	ops := opshttp.New(c.Ops, reg, func() error {
		select {
		case <-rt.Ready():
		default:
			return errors.New("starting")
		}
		if stopping.Load() || !nc.IsConnected() {
			return errors.New("stopping or NATS disconnected")
		}
		return nil
	}, log)
	ops.Handle(serverapi.Prefix+"/", api.Handler())
	stopOps, err := startOps(ctx, ops, log)
	if err != nil {
		return err
	}
	defer stopOps()
	go func() {
		<-ctx.Done()
		stopping.Store(true)
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.Run(gctx) })
	g.Go(func() error { return api.Run(gctx) })
	err = g.Wait()
	if derr := drain(nc, 5*time.Second); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}
