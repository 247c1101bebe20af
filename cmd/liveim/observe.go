package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liveim/liveim/internal/buildinfo"
	"github.com/liveim/liveim/internal/memtrim"
	"github.com/liveim/liveim/internal/telemetry"
)

// newRegistry returns the process's Prometheus registry, with the Go
// runtime and process collectors and liveim_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	return reg
}

// logStart logs which liveim a target starts as.
func logStart(log *slog.Logger, target string) {
	i := buildinfo.Get()
	log.Info("liveim starting", "target", target, "version", i.Version, "commit", i.Commit, "goversion", i.GoVersion)
}

// startTrim keeps the process's heap under its container's memory limit
// (memtrim.ApplyContainerLimit) and runs its heap trimmer (memtrim) until
// the returned function is called, which waits for it to end.
func startTrim(ctx context.Context, cfg memtrim.Config, log *slog.Logger, reg prometheus.Registerer) (stop func()) {
	memtrim.ApplyContainerLimit(log)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		memtrim.Run(ctx, cfg, log, reg)
	}()
	return func() { cancel(); <-done }
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
// traces): the stamped or module version internal/buildinfo finds.
func buildVersion() string { return buildinfo.Get().Version }
