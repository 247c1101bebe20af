// Command liveim is the one binary of liveim. Its first argument picks the
// target:
//
//	liveim serve    everything in one process: embedded NATS, router, gateway, embedded store
//	liveim gateway  a gateway against a NATS URL
//	liveim router   a router against a NATS URL
//	liveim token    print a login token for a user of the demo app
//	liveim app      print the demo app's credentials
//	liveim bench    measure a server: idle connections, login storms
//
// Every flag can also be set by an environment variable: LIVEIM_ followed
// by the flag name in upper case with '-' as '_' (e.g. LIVEIM_ADDR).
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
	"strings"
	"syscall"

	"github.com/liveim/liveim/bench"
)

var targets = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"serve":   runServe,
	"gateway": runGateway,
	"router":  runRouter,
	"token":   runToken,
	"app":     runApp,
	"bench":   runBench,
	// bench-worker is started by `liveim bench` itself.
	"bench-worker": func(_ context.Context, _ []string, stdout io.Writer) error { return bench.RunWorker(os.Stdin, stdout) },
}

func main() {
	if len(os.Args) < 2 || targets[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: liveim serve|gateway|router|token|app|bench [flags]   (liveim TARGET -h for flags)")
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

// parseFlags parses args, then fills every flag not given on the command
// line from its LIVEIM_ environment variable.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "LIVEIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

// newLogger returns the process logger: JSON lines on stderr.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
