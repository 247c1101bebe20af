// Command liveim is the one binary of liveim. Its first argument picks the
// target:
//
//	liveim serve    everything in one process: embedded NATS, router, gateway, embedded store
//	liveim gateway  a gateway against a NATS URL
//	liveim router   a router against a NATS URL
//	liveim token    print a login token for a user of the demo app
//	liveim app      manage apps through a cluster's admin API (no subcommand: print the demo app)
//	liveim demo     serve the demo page and its token endpoint as an app's backend (development)
//	liveim bench    measure a server: idle connections, login storms, fan-out, rooms, C2C
//	liveim ceiling  measure this machine's limits: bare nats-server fan-out, bare gobwas/ws
//	liveim config   check a target's settings and print them, or print every default
//	liveim version  print the version, VCS commit and Go version
//	liveim health   probe a URL, e.g. /readyz (exit 0 or 1: a healthcheck for the image, which has no shell)
//
// Every flag can also be set by an environment variable: LIVEIM_ followed
// by the flag name in upper case with '-' as '_' (e.g. LIVEIM_ADDR), or in
// a YAML file given by --config (LIVEIM_CONFIG). The command line wins over
// the environment, the environment over the file. serve, gateway, router,
// demo, bench and ceiling warn about a LIVEIM_ variable that names none of
// their flags; a key of the file that names none is an error (settings.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/liveim/liveim/bench"
	"github.com/liveim/liveim/internal/telemetry"
)

var targets = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"serve":   runServe,
	"gateway": runGateway,
	"router":  runRouter,
	"token":   runToken,
	"app":     runApp,
	"demo":    runDemo,
	"bench":   runBench,
	"ceiling": runCeiling,
	"config":  runConfig,
	"version": runVersion,
	"health":  runHealth,
	// bench-worker and ceiling-worker are started by `liveim bench` and
	// `liveim ceiling` themselves.
	"bench-worker":   func(_ context.Context, _ []string, stdout io.Writer) error { return bench.RunWorker(os.Stdin, stdout) },
	"ceiling-worker": runCeilingWorker,
}

func main() {
	if len(os.Args) < 2 || targets[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: liveim serve|gateway|router|token|app|demo|bench|ceiling|config|version|health [flags]   (liveim TARGET -h for flags)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := targets[os.Args[1]](ctx, os.Args[2:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "liveim:", err)
		os.Exit(1)
	}
}

// newLogger returns the process logger: JSON lines on stderr.
func newLogger(level string) (*slog.Logger, error) {
	l, err := parseLogLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))), nil
}

// parseLogLevel reads --log-level; empty is info.
func parseLogLevel(level string) (slog.Level, error) {
	var l slog.Level
	if level == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return l, nil
}
