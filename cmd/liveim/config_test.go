package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcert"
)

// runCLI runs the liveim binary with env added to the test's
// environment, and returns its stdout, stderr and exit error.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, liveimBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestConfigCheck: `liveim config check` reads the command line, LIVEIM_*
// variables and the --config file as the target would, reports unknown
// variables, and prints the effective settings, defaults filled in and
// secrets redacted; invalid settings fail with every reason.
func TestConfigCheck(t *testing.T) {
	file := writeConfig(t, `partitions: 64        # every router of the cluster the same
scylla-hosts:
  - scylla-1
  - scylla-2
workers: 4
`)
	stdout, stderr, err := runCLI(t, []string{"LIVEIM_ROOM_RATE=200", "LIVEIM_WORKER=9", "LIVEIM_CONFIG=" + file},
		"config", "check", "--target", "router", "--workers", "8", "--nats", "nats://liveim-router:s3cret@n1:4222,nats://n2:4222")
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, stderr)
	}
	for _, want := range []string{"\nroom-rate: 200\n", "\npartitions: 64\n", "\nworkers: 8\n", "\nmax-backlog: 10000\n",
		"\ncallback-max-age: 72h\n", `scylla-hosts: ["scylla-1", "scylla-2"]`, "\nhttp-addr: \"127.0.0.1:8081\"\n",
		"\nnats: \"nats://liveim-router:xxxxx@n1:4222,nats://n2:4222\"\n", "\n# ---- router ----\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config check output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "s3cret") {
		t.Error("config check printed the NATS password")
	}
	if !strings.Contains(stderr, "LIVEIM_WORKER is not a setting of liveim router, and is ignored (did you mean LIVEIM_WORKERS, --workers?)") {
		t.Errorf("no warning about LIVEIM_WORKER: %q", stderr)
	}

	// Invalid: every reason at once, and no output.
	stdout, stderr, err = runCLI(t, nil, "config", "check", "--target", "router", "--partitions", "5000", "--store", "cassandra", "--log-level", "loud")
	if err == nil || stdout != "" {
		t.Fatalf("invalid settings: %v, printed %q", err, stdout)
	}
	for _, want := range []string{"at most 1024 partitions", `--store "cassandra"`, `--log-level "loud"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check error lacks %q: %s", want, stderr)
		}
	}
	if _, stderr, err := runCLI(t, nil, "config", "check", "--partitions", "5"); err == nil || !strings.Contains(stderr, "needs --target") {
		t.Errorf("without --target: %v %s", err, stderr)
	}
	if _, stderr, err := runCLI(t, nil, "config", "check", "--target=bench"); err == nil || !strings.Contains(stderr, `--target "bench"`) {
		t.Errorf("--target bench: %v %s", err, stderr)
	}
}

// TestConfigDefault: `liveim config default` prints every setting of a
// target, and what it prints is a config file the target reads back,
// every value its default.
func TestConfigDefault(t *testing.T) {
	for _, target := range slices.Sorted(func(yield func(string) bool) {
		for name := range configTargets {
			if !yield(name) {
				return
			}
		}
	}) {
		t.Run(target, func(t *testing.T) {
			var out bytes.Buffer
			if err := runConfig(context.Background(), []string{"default", "--target", target}, &out); err != nil {
				t.Fatal(err)
			}
			cfg := configTargets[target]()
			s := cfg.settings()
			s.fs.VisitAll(func(f *flag.Flag) {
				if f.Name != "config" && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(f.Name)+`: `).MatchString(out.String()) {
					t.Errorf("--%s is not in the output", f.Name)
				}
			})
			// Read back: it parses, and (but for demo, which needs an app)
			// validates, and holds the same as no file at all.
			file := writeConfig(t, out.String())
			if err := s.parse([]string{"--config", file}, nil); err != nil {
				t.Fatalf("reading the defaults back: %v\n%s", err, out.String())
			}
			if target != "demo" {
				if err := cfg.validate(); err != nil {
					t.Fatalf("the defaults do not validate: %v", err)
				}
			}
			blank := configTargets[target]()
			blank.settings()
			cfg.applyDefaults()
			blank.applyDefaults()
			if !reflect.DeepEqual(printed(cfg), printed(blank)) {
				t.Errorf("defaults read back differ from the defaults:\n%+v\n%+v", cfg, blank)
			}
		})
	}
}

// printed is c printed, pointers (funcs, clients) left out.
func printed(c targetConfig) string {
	s := fmt.Sprintf("%+v", c)
	return regexp.MustCompile(`0x[0-9a-f]+`).ReplaceAllString(s, "ptr")
}

// TestConfigDefaultMachineIndependent: what `liveim config default`
// prints does not depend on the machine (computedAtStart lists the
// settings whose default does).
func TestConfigDefaultMachineIndependent(t *testing.T) {
	print := func(target string, procs int) string {
		prev := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(prev)
		var out bytes.Buffer
		if err := runConfig(context.Background(), []string{"default", "--target", target}, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for target := range configTargets {
		if a, b := print(target, 1), print(target, 3); a != b {
			t.Errorf("liveim config default --target %s differs with GOMAXPROCS 1 and 3: list the setting in computedAtStart", target)
		}
	}
}

// TestConfigDefaultTakesTLS: the file `liveim config default` prints for
// a target with a gateway leaves --io to its default, so a certificate
// added to it (--tls-cert, --tls-key) validates and runs on the portable
// path, as without the file; a printed "epoll" would refuse it.
func TestConfigDefaultTakesTLS(t *testing.T) {
	certFile, keyFile, _ := testcert.Write(t)
	for _, target := range []string{"gateway", "serve"} {
		t.Run(target, func(t *testing.T) {
			var out bytes.Buffer
			if err := runConfig(context.Background(), []string{"default", "--target", target}, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "\nio: \"\"\n") {
				t.Errorf("--io is not printed as its computed default \"\":\n%s", out.String())
			}
			cfg := configTargets[target]()
			s := cfg.settings()
			if err := s.parse([]string{"--config", writeConfig(t, out.String()), "--tls-cert", certFile, "--tls-key", keyFile}, nil); err != nil {
				t.Fatal(err)
			}
			if err := cfg.validate(); err != nil {
				t.Fatalf("the defaults with a certificate do not validate: %v", err)
			}
			cfg.applyDefaults()
			if io := s.fs.Lookup("io").Value.String(); io != gateway.IOPortable {
				t.Fatalf("--io %q with a certificate, want %q", io, gateway.IOPortable)
			}
		})
	}
}

// TestSameFlagNames: a setting has one name in every target: liveim
// serve takes the gateway's and the router's flags as liveim gateway and
// liveim router do (--id names both), but for the NATS client's: its NATS
// is embedded (--nats-listen).
func TestSameFlagNames(t *testing.T) {
	var serve serveConfig
	ss := serve.settings()
	for _, target := range []string{"gateway", "router"} {
		configTargets[target]().settings().fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "nats" || strings.HasPrefix(f.Name, "nats-") {
				return
			}
			if g := ss.fs.Lookup(f.Name); g == nil {
				t.Errorf("liveim %s --%s is not a flag of liveim serve", target, f.Name)
			} else if g.Usage != f.Usage && f.Name != "id" && f.Name != "data" {
				t.Errorf("--%s: %q in serve, %q in %s", f.Name, g.Usage, f.Usage, target)
			}
		})
	}
	if err := ss.parse([]string{"--id", "one"}, nil); err != nil {
		t.Fatal(err)
	}
	if serve.Gateway.ID != "one" || serve.Router.ID != "one" {
		t.Fatalf("serve --id: gateway %q, router %q", serve.Gateway.ID, serve.Router.ID)
	}
	ss.fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "router-") || strings.HasPrefix(f.Name, "gateway-id") {
			t.Errorf("liveim serve --%s: a prefixed name", f.Name)
		}
	})
}

// notFlags are the fields of the targets' configurations that are no
// setting: set by the code, or following another setting.
var notFlags = []string{
	"API.AdminKey",                    // read from --admin-key-file
	"API.Now",                         // the clock
	"API.StreamReplicas",              // the router's --stream-replicas
	"Router.Callbacks.StreamReplicas", // the router's --stream-replicas
	"Router.Callbacks.HTTPClient",     // built from --callback-timeout
}

// TestEveryTunableHasAFlag sets every flag of every target and checks
// that each field of the target's configuration is set by one.
func TestEveryTunableHasAFlag(t *testing.T) {
	for target, newCfg := range configTargets {
		cfg := newCfg()
		s := cfg.settings()
		covered := map[string]bool{}
		before := leaves(reflect.ValueOf(cfg).Elem(), "")
		s.fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "config" {
				return
			}
			if err := f.Value.Set(sample(f)); err != nil {
				t.Fatalf("%s --%s: %v", target, f.Name, err)
			}
			after := leaves(reflect.ValueOf(cfg).Elem(), "")
			for path, v := range after {
				if !reflect.DeepEqual(v, before[path]) {
					covered[path] = true
				}
			}
			before = after
		})
		for path := range before {
			if !covered[path] && !slices.Contains(notFlags, path) {
				t.Errorf("liveim %s: %s has no flag", target, path)
			}
		}
	}
}

// sample is a value a flag accepts that differs from its default.
func sample(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch v := g.Get().(type) {
		case bool:
			return fmt.Sprint(!v)
		case time.Duration:
			return (v + 7*time.Second).String()
		case int, int32, int64, uint, uint64, float64:
			return "77"
		case []string:
			return "sample-item"
		}
	}
	if f.Name == "dev" {
		return "true"
	}
	return "sample-" + f.Name
}

// leaves returns the exported fields of v, recursively through structs
// with exported fields, by path.
func leaves(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && hasExported(fv.Type()) {
			for p, x := range leaves(fv, prefix+sf.Name+".") {
				out[p] = x
			}
			continue
		}
		out[prefix+sf.Name] = fmt.Sprintf("%#v", fv.Interface())
	}
	return out
}

func hasExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// TestValidateBeforeConnecting: a target with invalid settings fails with
// the reason before it connects to anything, even when NATS or Scylla is
// unreachable; with valid settings it goes on to connect.
func TestValidateBeforeConnecting(t *testing.T) {
	unreachable := "nats://192.0.2.1:4222" // TEST-NET-1: no answer, ever
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"router", []string{"router", "--nats", unreachable, "--store", "scylla", "--scylla-hosts", "192.0.2.1", "--partitions", "5000"}, "at most 1024 partitions"},
		{"router admin key", []string{"router", "--nats", unreachable, "--admin-key-file", filepath.Join(t.TempDir(), "missing.key")}, "missing.key"},
		{"gateway", []string{"gateway", "--nats", unreachable, "--send-rate", "-1"}, "gateway: negative size"},
		{"gateway NATS URL", []string{"gateway", "--nats", "nats://n1:4222,nats://n2:42x2"}, "--nats, URL 2"},
		{"gateway TLS files", []string{"gateway", "--nats", unreachable, "--tls-cert", filepath.Join(t.TempDir(), "missing.pem"), "--tls-key", filepath.Join(t.TempDir(), "missing.key")}, "TLS certificate"},
		{"gateway TLS on epoll", []string{"gateway", "--nats", unreachable, "--io", "epoll", "--tls-cert", "cert.pem", "--tls-key", "key.pem"}, "--io epoll"},
		{"serve", []string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--nats-listen", "127.0.0.1", "--http-addr", "127.0.0.1:0"}, "--nats-listen"},
		{"serve log level", []string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--log-level", "loud"}, "--log-level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, stderr, err := runCLI(t, nil, c.args...)
			if err == nil || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "connect") {
				t.Fatalf("%v after %v: %v\n%s\nwant a validation error naming %q", c.args, time.Since(start), err, stderr, c.want)
			}
		})
	}
	// serve made nothing: its data directory is created after validation.
	data := filepath.Join(t.TempDir(), "data")
	if _, _, err := runCLI(t, nil, "serve", "--data", data, "--router-partitions", "5"); err == nil {
		t.Fatal("serve --router-partitions passed: that name is gone (--partitions)")
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("serve with a bad flag created %s: %v", data, err)
	}
	// Valid settings: on to NATS, which refuses.
	_, stderr, err := runCLI(t, nil, "gateway", "--nats", "nats://"+freeAddr(t), "--http-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(stderr, "connect to NATS") {
		t.Fatalf("a gateway against no NATS: %v %s", err, stderr)
	}
}

// TestHarnessVariables keeps harnessVariables true: every LIVEIM_
// variable the repository's scripts and tests set or read for themselves
// is a flag of some target or listed there, and everything listed is
// still used.
func TestHarnessVariables(t *testing.T) {
	flags := map[string]bool{"LIVEIM_API": true, "LIVEIM_ADMIN_KEY_FILE": true} // liveim app's
	for _, newCfg := range configTargets {
		newCfg().settings().fs.VisitAll(func(f *flag.Flag) { flags[envName(f.Name)] = true })
	}
	used := map[string]bool{}
	uses := regexp.MustCompile(`(?m)(?:Getenv|LookupEnv|Setenv)\("(LIVEIM_[A-Z0-9_]+)"|(?:export |^|\s)(LIVEIM_[A-Z0-9_]+)=|process\.env\.(LIVEIM_[A-Z0-9_]+)|Env = "(LIVEIM_[A-Z0-9_]+)"`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == ".git" || n == "data" || n == "docs" || n == "helm" || n == "deploy" {
				return filepath.SkipDir
			}
			if path == filepath.Join(root, "cmd", "liveim") { // these tests set unknown names on purpose
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".ts") && !strings.HasPrefix(filepath.ToSlash(path), "../../scripts/") && !strings.HasPrefix(filepath.ToSlash(path), "../../.ci/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range uses.FindAllStringSubmatch(string(b), -1) {
			name := m[1] + m[2] + m[3] + m[4]
			used[name] = true
			if !flags[name] && !slices.Contains(harnessVariables, name) && name != "LIVEIM_CONFIG" {
				t.Errorf("%s uses %s, no flag of a target: add it to harnessVariables (or rename it)", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range harnessVariables {
		if !used[name] {
			t.Errorf("harnessVariables lists %s, which nothing uses any more", name)
		}
	}
}

// TestHealth: liveim health succeeds on a 2xx answer only.
func TestHealth(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "router starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	_, stderr, err := runCLI(t, []string{"LIVEIM_URL=http://elsewhere/"}, "health", "--url", srv.URL+"/readyz")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "503") || !strings.Contains(stderr, "router starting") {
		t.Fatalf("not ready: %v %q", err, stderr)
	}
	ready.Store(true)
	if out, stderr, err := runCLI(t, nil, "health", "--url", srv.URL+"/readyz"); err != nil || !strings.Contains(out, "200") {
		t.Fatalf("ready: %v %q %q", err, out, stderr)
	}
	if _, _, err := runCLI(t, nil, "health", "--url", "http://"+freeAddr(t)+"/readyz", "--timeout", "2s"); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("nothing listening: %v", err)
	}
}

// TestVersion: liveim version names the Go it was built with; a plain
// go build stamps no version (deploy/check builds with the image's
// -ldflags and checks those).
func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, nil, "version")
	if err != nil || !regexp.MustCompile(`^liveim \S+ \(commit \S+, `+regexp.QuoteMeta(runtime.Version())+`\)\n$`).MatchString(out) {
		t.Fatalf("liveim version: %q %v", out, err)
	}
}
