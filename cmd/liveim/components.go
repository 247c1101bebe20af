package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage/backend"
)

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	var cfg gateway.Config
	var natsCfg natsconn.Config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	withPprof := fs.Bool("pprof", false, "serve Go profiles on /debug/pprof/")
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	tp, err := telemetry.NewProvider(ctx, telemetry.GatewayService)
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	nc, err := natsconn.Connect(natsCfg, "liveim-gateway")
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	gw, err := gateway.New(cfg, nc, log, gateway.WithRegisterer(reg), gateway.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	gw.Mux().Handle("/metrics", metricsHandler(reg))
	if *withPprof {
		mountPprof(gw.Mux())
	}
	err = gw.Run(ctx)
	if derr := drain(nc, 5*time.Second); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	return err
}

func runRouter(ctx context.Context, args []string, _ io.Writer) error {
	var cfg router.Config
	var storeCfg backend.Config
	var natsCfg natsconn.Config
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	natsCfg.RegisterFlags(fs)
	data := fs.String("data", "./data", "data directory of the embedded store")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	httpAddr := fs.String("http-addr", "127.0.0.1:8081", "listen address of /healthz, /readyz and /metrics")
	withPprof := fs.Bool("pprof", false, "serve Go profiles on /debug/pprof/")
	cfg.RegisterFlags(fs, "")
	storeCfg.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	tp, err := telemetry.NewProvider(ctx, telemetry.RouterService)
	if err != nil {
		return err
	}
	defer shutdownTracing(tp, log)
	store, err := backend.Open(ctx, storeCfg, *data, log)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := natsconn.Connect(natsCfg, "liveim-router")
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	rt, err := router.New(cfg, nc, store, log, router.WithRegisterer(reg), router.WithTracerProvider(tp))
	if err != nil {
		return err
	}

	// /readyz: ready once the router serves, not ready from the first
	// moment of a shutdown.
	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-rt.Ready():
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if stopping.Load() || !nc.IsConnected() {
			http.Error(w, "stopping or NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if *withPprof {
		mountPprof(mux)
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "err", err)
		}
	}()
	log.Info("router http listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		stopping.Store(true)
	}()
	err = rt.Run(ctx)
	if derr := drain(nc, 5*time.Second); derr != nil {
		log.Warn("nats drain", "err", derr)
	}
	_ = srv.Close()
	return err
}
