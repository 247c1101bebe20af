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
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/opshttp"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage/backend"
)

// registerOpsFlags registers the internal listener's flags.
func registerOpsFlags(fs *flag.FlagSet, c *opshttp.Config) {
	fs.StringVar(&c.Addr, "http-addr", "127.0.0.1:8081", "internal listener: /healthz, /readyz, /metrics (and /debug/pprof with --pprof); keep it off the internet")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles on the internal listener's /debug/pprof/")
}

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	var cfg gateway.Config
	var natsCfg natsconn.Config
	var opsCfg opshttp.Config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	registerOpsFlags(fs, &opsCfg)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	tp, err := telemetry.NewProvider(ctx, telemetry.GatewayService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	nc, err := natsconn.Connect(ctx, natsCfg, "liveim-gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	gw, err := gateway.New(cfg, nc, log, gateway.WithRegisterer(reg), gateway.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	ops := opshttp.New(opsCfg, reg, gw.Ready, log)
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

func runRouter(ctx context.Context, args []string, _ io.Writer) error {
	var cfg router.Config
	var storeCfg backend.Config
	var natsCfg natsconn.Config
	var opsCfg opshttp.Config
	var apiCfg serverapi.Config
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	apiCfg.RegisterFlags(fs)
	natsCfg.RegisterFlags(fs)
	registerOpsFlags(fs, &opsCfg)
	data := fs.String("data", "./data", "data directory of the embedded store")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cfg.RegisterFlags(fs, "")
	storeCfg.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if apiCfg.AdminKeyFile != "" {
		if apiCfg.AdminKey, err = serverapi.ReadAdminKey(apiCfg.AdminKeyFile); err != nil {
			return err
		}
	}
	tp, err := telemetry.NewProvider(ctx, telemetry.RouterService, buildVersion())
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	store, err := backend.Open(ctx, storeCfg, *data, log)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := natsconn.Connect(ctx, natsCfg, "liveim-router", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	rt, err := router.New(cfg, nc, store, log, router.WithRegisterer(reg), router.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	apiCfg.StreamReplicas = cfg.StreamReplicas
	api, err := serverapi.New(apiCfg, nc, store, rt, log)
	if err != nil {
		return err
	}
	// /readyz: ready once the router serves, not ready from the first
	// moment of a shutdown.
	var stopping atomic.Bool
	ops := opshttp.New(opsCfg, reg, func() error {
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
