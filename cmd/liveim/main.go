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
//
// Every flag can also be set by an environment variable: LIVEIM_ followed
// by the flag name in upper case with '-' as '_' (e.g. LIVEIM_ADDR), or in
// a file given by --config (LIVEIM_CONFIG): "name: value" lines.
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
	// bench-worker and ceiling-worker are started by `liveim bench` and
	// `liveim ceiling` themselves.
	"bench-worker":   func(_ context.Context, _ []string, stdout io.Writer) error { return bench.RunWorker(os.Stdin, stdout) },
	"ceiling-worker": runCeilingWorker,
}

func main() {
	if len(os.Args) < 2 || targets[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: liveim serve|gateway|router|token|app|demo|bench|ceiling [flags]   (liveim TARGET -h for flags)")
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
// line from its LIVEIM_ environment variable, and failing that from the
// file named by --config (or LIVEIM_CONFIG). Precedence: command line,
// environment, file, default.
func parseFlags(fs *flag.FlagSet, args []string) error {
	configFile := fs.String("config", "", "file of flag settings, one \"name: value\" per line (# comments)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		*configFile = os.Getenv("LIVEIM_CONFIG")
	}
	fromFile := map[string]string{}
	if *configFile != "" {
		var err error
		if fromFile, err = readConfigFile(*configFile); err != nil {
			return err
		}
		for name := range fromFile {
			if fs.Lookup(name) == nil {
				return fmt.Errorf("%s: %q is not a flag of this target", *configFile, name)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "config" {
			return
		}
		env := "LIVEIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %s: %w", *configFile, f.Name, e)
			}
		}
	})
	return err
}

// readConfigFile reads "name: value" lines (YAML's flat subset; "name =
// value" also works); # starts a comment, quotes around a value are
// removed.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if eq := strings.IndexByte(line, '='); eq >= 0 && (!ok || eq < len(name)) {
			name, value, ok = line[:eq], line[eq+1:], true
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"name: value\"", path, i+1)
		}
		name, value = strings.TrimPrefix(strings.TrimSpace(name), "--"), strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[name] = value
	}
	return out, nil
}

// newLogger returns the process logger: JSON lines on stderr, with
// trace_id and span_id when logged with a traced context.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))), nil
}
