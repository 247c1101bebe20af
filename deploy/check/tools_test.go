package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helmVersion is the Helm the tests install into <repo>/.bin.
const helmVersion = "v3.22.0"

// helmLDFlags are what Helm's release build sets: its own version, and the
// Kubernetes version of its client libraries (v0.37 for Helm 3.22) as the
// default cluster version of `helm template` and `helm lint`.
var helmLDFlags = strings.Join([]string{
	"-s", "-w",
	"-X helm.sh/helm/v3/internal/version.version=" + helmVersion,
	"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
	"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
	"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
	"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
}, " ")

// kubeVersion is the cluster version the chart is linted and rendered for:
// the oldest it supports (its Chart.yaml kubeVersion).
const kubeVersion = "1.30.0"

// liveimModule is the module path of the repository's root go.mod.
const liveimModule = "github.com/liveim/liveim"

var (
	tmpDir string // removed when the tests end

	// deadline bounds the long child commands (installing Helm, building
	// liveim): they are stopped, with their whole process group, a little
	// before go test's -timeout would kill the test binary and leave them
	// running.
	deadline time.Time

	rootOnce sync.Once
	root     string
	rootErr  error

	helmOnce sync.Once
	helmBin  string
	helmErr  error

	liveimOnce sync.Once
	liveimBin  string
	liveimErr  error

	authConfOnce sync.Once
	authConfBin  string
	authConfErr  error

	flagsMu sync.Mutex
	flagSet = map[string]map[string]flagInfo{} // target -> flag name -> info
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			deadline = time.Now().Add(d - d/20 - 5*time.Second)
		}
	}
	dir, err := os.MkdirTemp("", "liveim-deploy-check-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot returns the repository root: the nearest directory above this
// one whose go.mod is liveim's.
func repoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && modulePath(b) == liveimModule {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("no go.mod of " + liveimModule + " above the working directory")
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

// modulePath returns the module path a go.mod declares.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// repoPath is a path under the repository root.
func repoPath(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{repoRoot(t)}, elem...)...)
}

// slowHint is added to the error of a long child command that ran out of
// time.
const slowHint = "the first run compiles Helm, its Kubernetes libraries and liveim (a few minutes on 2 idle cores): give it more time, e.g. go test -count=1 -timeout 30m ./..."

// goCmd is a go command for a child process: the caller's environment,
// without a -mod setting in GOFLAGS (nothing here may rewrite a go.mod) and
// outside any workspace. It runs in its own process group, killed whole
// at the deadline.
func goCmd(dir string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	if !deadline.IsZero() {
		ctx, cancel = context.WithDeadline(context.Background(), deadline)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	ownProcessGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	var flags []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") && !strings.HasPrefix(f, "--mod=") {
			flags = append(flags, f)
		}
	}
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.Join(flags, " "), "GOWORK=off")
	return cmd, cancel
}

// runGo runs a go command from goCmd and returns its combined output.
func runGo(cmd *exec.Cmd, cancel context.CancelFunc) ([]byte, error) {
	defer cancel()
	out, err := cmd.CombinedOutput()
	if err != nil && !deadline.IsZero() && time.Now().After(deadline) {
		err = fmt.Errorf("%v: out of time: %s", err, slowHint)
	}
	return out, err
}

// helm returns the pinned Helm, installing it into <repo>/.bin when it is
// missing or another version.
func helm(t testing.TB) string {
	t.Helper()
	bin := repoPath(t, ".bin", "helm")
	helmOnce.Do(func() {
		if v, err := helmVersionOf(bin); err == nil && v == helmVersion {
			helmBin = bin
			return
		}
		start := time.Now()
		cmd, cancel := goCmd(tmpDir, "install", "-trimpath", "-ldflags="+helmLDFlags, "helm.sh/helm/v3/cmd/helm@"+helmVersion)
		cmd.Env = append(cmd.Env, "GOBIN="+filepath.Dir(bin), "CGO_ENABLED=0")
		if out, err := runGo(cmd, cancel); err != nil {
			helmErr = fmt.Errorf("go install helm %s: %v\n%s", helmVersion, err, out)
			return
		}
		v, err := helmVersionOf(bin)
		if err != nil || v != helmVersion {
			helmErr = fmt.Errorf("installed %s reports version %q (%v), want %s", bin, v, err, helmVersion)
			return
		}
		t.Logf("installed helm %s into %s in %s", helmVersion, bin, time.Since(start).Round(time.Second))
		helmBin = bin
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmBin
}

func helmVersionOf(bin string) (string, error) {
	out, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output()
	return strings.TrimSpace(string(out)), err
}

// runHelm runs the pinned Helm in the repository root.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(tmpDir, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmpDir, "helm-config"), "HELM_DATA_HOME="+filepath.Join(tmpDir, "helm-data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// stampVersion and stampCommit are the VERSION and COMMIT liveim() builds
// with.
const (
	stampVersion = "v0.0.0-deploy-check"
	stampCommit  = "0123456789ab"
)

// liveim returns the liveim binary, built from the repository the way
// deploy/Dockerfile builds it, with its -ldflags for VERSION stampVersion
// and COMMIT stampCommit.
func liveim(t testing.TB) string {
	t.Helper()
	dir := repoRoot(t)
	liveimOnce.Do(func() {
		ldflags, err := buildLDFlags(readDockerfile(t), stampVersion, stampCommit)
		if err != nil {
			liveimErr = err
			return
		}
		out := filepath.Join(tmpDir, "liveim")
		start := time.Now()
		cmd, cancel := goCmd(dir, "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", out, liveimModule+"/cmd/liveim")
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		if b, err := runGo(cmd, cancel); err != nil {
			liveimErr = fmt.Errorf("CGO_ENABLED=0 go build ./cmd/liveim: %v\n%s", err, b)
			return
		}
		t.Logf("built liveim in %s", time.Since(start).Round(time.Second))
		liveimBin = out
	})
	if liveimErr != nil {
		t.Fatal(liveimErr)
	}
	return liveimBin
}

// authConfProgram prints natsserver.AuthorizationConf(os.Args[1],
// os.Args[2]). It is built inside liveim's module (it imports an internal
// package) through -overlay: nothing is written into the tree.
const authConfProgram = `package main

import (
	"fmt"
	"os"

	"github.com/liveim/liveim/internal/natsserver"
)

func main() { fmt.Print(natsserver.AuthorizationConf(os.Args[1], os.Args[2])) }
`

// authorizationConf returns the authorization block liveim's
// natsserver.AuthorizationConf prints for the two passwords: the NATS
// users and permissions liveim's code relies on.
func authorizationConf(t testing.TB, routerPassword, gatewayPassword string) string {
	t.Helper()
	dir := repoRoot(t)
	authConfOnce.Do(func() {
		src := filepath.Join(tmpDir, "authconf.go")
		overlay := filepath.Join(tmpDir, "authconf-overlay.json")
		pkg := filepath.Join("internal", "natsserver", "deploycheck_authconf")
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(dir, pkg, "main.go"): src}})
		if err := errors.Join(os.WriteFile(src, []byte(authConfProgram), 0o600), os.WriteFile(overlay, ov, 0o600)); err != nil {
			authConfErr = err
			return
		}
		out := filepath.Join(tmpDir, "authconf")
		cmd, cancel := goCmd(dir, "build", "-overlay="+overlay, "-o", out, "./"+filepath.ToSlash(pkg))
		if b, err := runGo(cmd, cancel); err != nil {
			authConfErr = fmt.Errorf("go build natsserver.AuthorizationConf printer: %v\n%s", err, b)
			return
		}
		authConfBin = out
	})
	if authConfErr != nil {
		t.Fatal(authConfErr)
	}
	out, err := exec.Command(authConfBin, routerPassword, gatewayPassword).Output()
	if err != nil {
		t.Fatalf("natsserver.AuthorizationConf printer: %v", err)
	}
	return string(out)
}

// flagInfo is one flag of a liveim target, as `liveim TARGET -h` prints it.
type flagInfo struct {
	Name string
	Type string // "string", "int", "duration", "float", "bool", "value", ...
}

// targetFlags returns the flags of a liveim target, or of a target's
// command ("app create").
func targetFlags(t testing.TB, target string) map[string]flagInfo {
	t.Helper()
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if fs, ok := flagSet[target]; ok {
		return fs
	}
	out, err := exec.Command(liveim(t), append(strings.Fields(target), "-h")...).CombinedOutput()
	if err != nil {
		t.Fatalf("liveim %s -h: %v\n%s", target, err, out)
	}
	fs := parseFlagUsage(string(out))
	if len(fs) == 0 {
		t.Fatalf("liveim %s -h printed no flags:\n%s", target, out)
	}
	flagSet[target] = fs
	return fs
}

// parseFlagUsage reads the flags from the Go flag package's usage text:
// "  -name type" lines, the type absent for booleans.
func parseFlagUsage(usage string) map[string]flagInfo {
	fs := map[string]flagInfo{}
	for line := range strings.SplitSeq(usage, "\n") {
		rest, ok := strings.CutPrefix(line, "  -")
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '\t'); i >= 0 { // one-letter flags keep their usage on the line
			rest = rest[:i]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		info := flagInfo{Name: f[0], Type: "bool"}
		if len(f) > 1 {
			info.Type = f[1]
		}
		fs[info.Name] = info
	}
	return fs
}

// envFlag is the flag a LIVEIM_ variable sets: LIVEIM_FOO_BAR is --foo-bar.
func envFlag(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "LIVEIM_")), "_", "-")
}

// envVar is one environment variable given to a liveim process.
type envVar struct {
	Name    string
	Value   string
	Literal bool // false when the value comes from elsewhere (a Secret, a field)
}

// checkEnv checks that every LIVEIM_ variable in env names a flag of the
// target and that a literal value is one the flag accepts.
func checkEnv(t *testing.T, where, target string, env []envVar) {
	t.Helper()
	flags := targetFlags(t, target)
	seen := map[string]bool{}
	for _, e := range env {
		if seen[e.Name] {
			t.Errorf("%s: %s is set twice", where, e.Name)
		}
		seen[e.Name] = true
		if !strings.HasPrefix(e.Name, "LIVEIM_") {
			continue
		}
		name := envFlag(e.Name)
		f, ok := flags[name]
		if !ok {
			t.Errorf("%s: %s names no flag of `liveim %s` (no --%s)", where, e.Name, target, name)
			continue
		}
		if e.Literal {
			if err := checkFlagValue(f.Type, e.Value); err != nil {
				t.Errorf("%s: %s=%q is not a valid %s for --%s: %v", where, e.Name, e.Value, f.Type, name, err)
			}
		}
	}
}

// checkFlagValue reports whether a flag of the type accepts the value.
func checkFlagValue(typ, v string) error {
	var err error
	switch typ {
	case "int", "int64":
		_, err = strconv.ParseInt(v, 0, 64)
	case "uint", "uint64":
		_, err = strconv.ParseUint(v, 0, 64)
	case "float":
		_, err = strconv.ParseFloat(v, 64)
	case "duration":
		_, err = time.ParseDuration(v)
	case "bool":
		_, err = strconv.ParseBool(v)
	}
	return err
}

func TestParseFlagUsage(t *testing.T) {
	usage := "Usage of router:\n" +
		"  -c2c-timeout duration\n    \trouter: wait (default 3s)\n" +
		"  -dev\n    \tdevelopment mode\n" +
		"  -scylla-hosts value\n    \tcontact points\n" +
		"  -x\tone letter\n" +
		"  -send-rate float\n    \trate (default 20)\n"
	got := parseFlagUsage(usage)
	want := map[string]string{"c2c-timeout": "duration", "dev": "bool", "scylla-hosts": "value", "x": "bool", "send-rate": "float"}
	if len(got) != len(want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for name, typ := range want {
		if got[name].Type != typ {
			t.Errorf("flag %s: type %q, want %q", name, got[name].Type, typ)
		}
	}
	if envFlag("LIVEIM_STREAM_REPLICAS") != "stream-replicas" {
		t.Errorf("envFlag(LIVEIM_STREAM_REPLICAS) = %q", envFlag("LIVEIM_STREAM_REPLICAS"))
	}
	for _, c := range []struct {
		typ, v string
		ok     bool
	}{{"int", "3", true}, {"int", "three", false}, {"duration", "15s", true}, {"duration", "15", false}, {"float", "0.5", true}, {"string", "x", true}} {
		if err := checkFlagValue(c.typ, c.v); (err == nil) != c.ok {
			t.Errorf("checkFlagValue(%s, %q) = %v", c.typ, c.v, err)
		}
	}
}
