package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveim/liveim/internal/memtrim"
	"github.com/liveim/liveim/internal/natsconn"
	"github.com/liveim/liveim/internal/opshttp"
)

// targetConfig is the configuration of a long-running target (serve,
// gateway, router, demo): the Config structs of its components.
type targetConfig interface {
	// settings registers the target's flags, which point into the
	// configuration, in sections.
	settings() *settings
	// validate reports every setting that cannot work. It reads local
	// files the settings name (the admin key) and never touches the
	// network: a target validates before it connects to anything.
	validate() error
	// applyDefaults sets every setting left at its zero value to its
	// default, in place, for printing.
	applyDefaults()
}

// configTargets are the targets `liveim config` knows.
var configTargets = map[string]func() targetConfig{
	"serve":   func() targetConfig { return &serveConfig{} },
	"gateway": func() targetConfig { return &gatewayConfig{} },
	"router":  func() targetConfig { return &routerConfig{} },
	"demo":    func() targetConfig { return &demoConfig{} },
}

// settings is a target's flag set with its flags in sections, in the
// order `liveim config` prints them.
type settings struct {
	fs       *flag.FlagSet
	sections []section
}

type section struct {
	title string
	names []string
}

func newSettings(target string) *settings {
	return &settings{fs: flag.NewFlagSet(target, flag.ContinueOnError)}
}

// add registers a section of flags. A name another section registered
// already panics, as the flag package does for a flag defined twice,
// unless it is in shared: then the one flag sets both (liveim serve's --id
// names its gateway and its router).
func (s *settings) add(title string, register func(*flag.FlagSet), shared ...string) {
	own := flag.NewFlagSet(title, flag.ContinueOnError)
	register(own)
	sec := section{title: title}
	own.VisitAll(func(f *flag.Flag) {
		if prev := s.fs.Lookup(f.Name); prev != nil {
			if !slices.Contains(shared, f.Name) {
				panic(fmt.Sprintf("liveim %s: flag --%s of %s is defined twice", s.fs.Name(), f.Name, title))
			}
			prev.Value = both{prev.Value, f.Value}
			return
		}
		s.fs.Var(f.Value, f.Name, f.Usage)
		sec.names = append(sec.names, f.Name)
	})
	s.sections = append(s.sections, sec)
}

// parse parses the command line, the environment (unknown LIVEIM_
// variables reported on warn) and the --config file.
func (s *settings) parse(args []string, warn io.Writer) error {
	return parseFlags(s.fs, args, warn)
}

// both is a flag that sets two values.
type both [2]flag.Value

func (b both) Set(v string) error { return errors.Join(b[0].Set(v), b[1].Set(v)) }
func (b both) String() string {
	if b[0] == nil {
		return ""
	}
	return b[0].String()
}

// computedAtStart reports the settings whose default depends on the
// machine (GOMAXPROCS) or on other settings: `liveim config default`
// prints their zero value, which means "computed at start", not this
// machine's number. --io defaults to epoll on Linux but to portable on
// other systems and with --tls-cert, so a printed "epoll" would be wrong
// elsewhere and would refuse a certificate added to the file.
// TestConfigDefaultMachineIndependent and TestConfigDefaultTakesTLS keep
// the list true.
func computedAtStart(name string) bool {
	switch name {
	case "loops", "dispatchers", "io":
		return true
	}
	return false
}

const configUsage = `usage: liveim config check --target TARGET [flags]   validate TARGET's settings (flags, LIVEIM_* variables,
                                                     --config FILE) and print the effective ones as YAML
       liveim config default --target TARGET         print every setting of TARGET with its default, as a
                                                     commented YAML file for --config
TARGET: serve, gateway or router (or demo). Neither connects to anything.`

// runConfig is `liveim config check|default`.
func runConfig(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "default") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(os.Stderr, configUsage)
			return flag.ErrHelp
		}
		return errors.New(configUsage)
	}
	cmd := args[0]
	target, rest, err := cutTarget(args[1:])
	if err != nil {
		return err
	}
	newCfg := configTargets[target]
	if newCfg == nil {
		return fmt.Errorf("liveim config %s: --target %q: want serve, gateway, router or demo\n%s", cmd, target, configUsage)
	}
	cfg := newCfg()
	s := cfg.settings()
	switch cmd {
	case "default":
		if len(rest) > 0 {
			return fmt.Errorf("liveim config default takes no flags but --target, got %q", rest)
		}
		cfg.applyDefaults()
		s.fs.VisitAll(func(f *flag.Flag) {
			if computedAtStart(f.Name) {
				_ = f.Value.Set(f.DefValue)
			}
		})
		fmt.Fprintf(stdout, `# Every setting of liveim %s with its default: a file for --config FILE (or
# LIVEIM_CONFIG=FILE); keep the settings you change. Each is also a flag (--NAME) and an
# environment variable (LIVEIM_NAME, upper case, '-' as '_'); the command line wins over
# the environment, the environment over the file. A key that is no setting is an error.
# liveim config check --target %s --config FILE validates a file.
`, target, target)
		return writeSettings(stdout, s)
	default: // check
		if err := s.parse(rest, os.Stderr); err != nil {
			return err
		}
		if err := cfg.validate(); err != nil {
			return err
		}
		cfg.applyDefaults()
		fmt.Fprintf(stdout, "# The settings liveim %s runs with: command line, LIVEIM_* variables, --config file and\n# defaults. Secrets are redacted. They are valid.\n", target)
		return writeSettings(stdout, s)
	}
}

// cutTarget takes --target NAME (or -target, or =NAME) out of args.
func cutTarget(args []string) (target string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "target" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", nil, errors.New("--target needs a value")
			}
			i++
			value = args[i]
		}
		target = value
	}
	if target == "" {
		return "", nil, errors.New("liveim config needs --target\n" + configUsage)
	}
	return target, rest, nil
}

// writeSettings prints every flag of s but --config as YAML, section by
// section, each with its usage as a comment.
func writeSettings(w io.Writer, s *settings) error {
	var b strings.Builder
	for _, sec := range s.sections {
		if len(sec.names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n# ---- %s ----\n", sec.title)
		for _, name := range sec.names {
			f := s.fs.Lookup(name)
			fmt.Fprintf(&b, "\n# %s\n%s: %s\n", f.Usage, name, yamlValue(f))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// yamlValue is a flag's value as YAML: numbers, booleans and durations
// plain, strings quoted, lists as flow sequences, secrets redacted.
func yamlValue(f *flag.Flag) string {
	quote := func(s string) string {
		b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
		return string(b)
	}
	switch f.Name {
	case "scylla-password":
		if f.Value.String() != "" {
			return quote("<redacted>")
		}
	case "nats":
		return quote(natsconn.Redact(f.Value.String()))
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return quote(f.Value.String())
	}
	switch v := g.Get().(type) {
	case []string:
		items := make([]string, len(v))
		for i, s := range v {
			items[i] = quote(s)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case string:
		return quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int, int32, int64, uint, uint64:
		return fmt.Sprint(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Duration:
		return shortDuration(v)
	}
	return quote(f.Value.String())
}

// shortDuration is d as time.ParseDuration reads it, without the zero
// minutes and seconds of Duration.String: 72h, not 72h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// loadTarget parses a target's arguments, validates them before anything
// connects, and returns the process logger at level (the target's
// --log-level, which the parse fills in).
func loadTarget(cfg targetConfig, args []string, level *string) (*slog.Logger, error) {
	if err := cfg.settings().parse(args, os.Stderr); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newLogger(*level)
}

// opsFlags registers the section every long-running target shares: its
// internal listener, its heap trimmer (--trim-*) and --log-level.
func opsFlags(ops *opshttp.Config, trim *memtrim.Config, level *string) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		ops.RegisterFlags(fs)
		trim.RegisterFlags(fs)
		registerLogLevel(fs, level)
	}
}

// registerLogLevel registers --log-level.
func registerLogLevel(fs *flag.FlagSet, level *string) {
	fs.StringVar(level, "log-level", "info", "debug, info, warn or error (JSON lines on stderr)")
}

// checkLogLevel reports a --log-level newLogger refuses.
func checkLogLevel(level string) error {
	_, err := parseLogLevel(level)
	return err
}
