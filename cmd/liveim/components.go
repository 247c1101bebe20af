package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage/backend"
)

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	var cfg gateway.Config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	natsURL := fs.String("nats", nats.DefaultURL, "NATS URL(s), comma separated")
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
	nc, err := nats.Connect(*natsURL, nats.Name("liveim-gateway"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *natsURL, err)
	}
	defer nc.Close()
	reg := newRegistry()
	gw, err := gateway.New(cfg, nc, log, gateway.WithRegisterer(reg))
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
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	natsURL := fs.String("nats", nats.DefaultURL, "NATS URL(s), comma separated")
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
	store, err := backend.Open(ctx, storeCfg, *data, log)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := nats.Connect(*natsURL, nats.Name("liveim-router"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *natsURL, err)
	}
	defer nc.Close()
	rt, err := router.New(cfg, nc, store, log)
	if err != nil {
		return err
	}
	return rt.Run(ctx)
}
