package main

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liveim/liveim/internal/telemetry"
)

// newRegistry returns the process's Prometheus registry, with the Go
// runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// drain drains nc (its subscriptions, then its pending publishes) and
// waits for it to close, at most timeout.
func drain(nc *nats.Conn, timeout time.Duration) error {
	if err := nc.Drain(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			nc.Close()
			return errors.New("nats drain timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// shutdownTracing flushes the spans still buffered.
func shutdownTracing(tp telemetry.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("trace export", "err", err)
	}
}

// buildVersion is the version liveim reports (service.version of its
// traces): the main module's version in the binary's build information,
// "(devel)" for a build from a work tree, empty when the binary has none.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return ""
}
