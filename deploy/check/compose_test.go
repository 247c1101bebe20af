package check

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

const (
	composeFile    = "docker-compose.yml" // at the repository root, where `docker compose up` finds it
	prometheusFile = "deploy/prometheus.yml"
	dockerfile     = "deploy/Dockerfile"
)

// compose is the part of a Compose file the checks read. Anchors and
// merge keys are resolved by yaml.v3.
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       composeBuild      `yaml:"build"`
	Entrypoint  stringOrList      `yaml:"entrypoint"`
	Command     stringOrList      `yaml:"command"`
	Environment composeEnv        `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Secrets     composeSecretRefs `yaml:"secrets"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Healthcheck *struct {
		Test stringOrList `yaml:"test"`
	} `yaml:"healthcheck"`
}

// composeSecretRefs are the secrets a service mounts, by their path in
// the container: the short syntax (a name, at /run/secrets/<name>) or the
// long one (source and target).
type composeSecretRefs map[string]string // path -> secret name

func (r *composeSecretRefs) UnmarshalYAML(n *yaml.Node) error {
	var refs []yaml.Node
	if err := n.Decode(&refs); err != nil {
		return err
	}
	*r = composeSecretRefs{}
	for _, ref := range refs {
		var long struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		}
		if ref.Kind == yaml.ScalarNode {
			long.Source = ref.Value
		} else if err := ref.Decode(&long); err != nil {
			return err
		}
		target := long.Target
		if target == "" {
			target = long.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		(*r)[target] = long.Source
	}
	return nil
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// UnmarshalYAML reads both forms of build: a context path, or a mapping.
func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context, b.Dockerfile = n.Value, "Dockerfile"
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

// stringOrList is a list of strings or one string (split on spaces, as
// Compose does for a command without a shell).
type stringOrList []string

func (l *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

// composeEnv is environment as a mapping or as a list of NAME=value.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		(*e)[k] = fmt.Sprint(v)
	}
	return nil
}

func (e composeEnv) vars() []envVar {
	var env []envVar
	for _, k := range slices.Sorted(maps.Keys(e)) {
		env = append(env, envVar{Name: k, Value: e[k], Literal: true})
	}
	return env
}

// composeRel is a repository path as the Compose file names it: relative
// to the file's directory, with "./".
func composeRel(repoRel string) string {
	rel, err := filepath.Rel(filepath.Dir(composeFile), repoRel)
	if err != nil {
		panic(err)
	}
	return "./" + filepath.ToSlash(rel)
}

// composeFilePath is the path of a file the Compose file names (a
// secret's, a volume's source): relative to the Compose file's directory.
func composeFilePath(t testing.TB, file string) string {
	t.Helper()
	return filepath.Join(filepath.Dir(repoPath(t, composeFile)), file)
}

func readCompose(t *testing.T) *compose {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, composeFile))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return &c
}

// TestComposeSchema loads the Compose file the way docker compose does,
// validating it against the Compose specification's schema (a misspelled
// key fails) and checking references between services and volumes.
func TestComposeSchema(t *testing.T) {
	t.Parallel()
	path := repoPath(t, composeFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("liveim", true) })
	if err != nil {
		t.Fatalf("%s does not load as a Compose file: %v", composeFile, err)
	}
	for _, s := range p.Services {
		if s.Build != nil {
			ctx, err := filepath.Abs(s.Build.Context)
			if err != nil {
				t.Fatal(err)
			}
			if ctx != repoRoot(t) {
				t.Errorf("service %s builds in %s, want the repository root (deploy/Dockerfile copies the whole module)", s.Name, ctx)
			}
			if _, err := os.Stat(filepath.Join(ctx, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: %v", s.Name, err)
			}
		}
	}
}

func TestComposeCluster(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	byImage := func(prefix string) []string {
		var names []string
		for name, s := range c.Services {
			if strings.HasPrefix(s.Image, prefix) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		return names
	}

	// Three NATS servers with JetStream, clustered, each routing to the
	// other two, each storing on its own volume.
	natsNames := byImage("nats:2.12")
	if len(natsNames) != 3 {
		t.Fatalf("NATS services %v, want 3 on the official nats:2.12 image", natsNames)
	}
	serverNames, storeVolumes := map[string]bool{}, map[string]bool{}
	for _, name := range natsNames {
		s := c.Services[name]
		args := serverFlags(s.Command)
		if _, ok := args["js"]; !ok {
			if _, ok := args["jetstream"]; !ok {
				t.Errorf("%s: JetStream is off (no -js)", name)
			}
		}
		if args["cluster"] != "nats://0.0.0.0:6222" {
			t.Errorf("%s: -cluster %q, want nats://0.0.0.0:6222", name, args["cluster"])
		}
		if args["cluster_name"] != "liveim" {
			t.Errorf("%s: -cluster_name %q, want liveim", name, args["cluster_name"])
		}
		sn := args["server_name"] + args["n"] + args["name"]
		if sn == "" || serverNames[sn] {
			t.Errorf("%s: server name %q is empty or not unique", name, sn)
		}
		serverNames[sn] = true
		routed := map[string]bool{}
		for r := range strings.SplitSeq(args["routes"], ",") {
			if u, err := url.Parse(strings.TrimSpace(r)); err == nil {
				routed[u.Hostname()] = true
			}
		}
		for _, other := range natsNames {
			if other != name && !routed[other] {
				t.Errorf("%s: -routes %q has no route to %s", name, args["routes"], other)
			}
		}
		dir := args["sd"] + args["store_dir"]
		vol := volumeAt(s.Volumes, dir)
		if dir == "" || vol == "" {
			t.Errorf("%s: store dir %q is not on a volume", name, dir)
		} else if storeVolumes[vol] {
			t.Errorf("%s: store volume %s shared with another server", name, vol)
		}
		storeVolumes[vol] = true
		if _, ok := c.Volumes[vol]; !ok {
			t.Errorf("%s: volume %s is not declared", name, vol)
		}
		if s.Healthcheck == nil {
			t.Errorf("%s: no healthcheck", name)
		}
	}

	// Scylla, developer-sized.
	scylla := byImage("scylladb/scylla:")
	if len(scylla) != 1 {
		t.Fatalf("Scylla services %v, want 1", scylla)
	}
	sc := c.Services[scylla[0]]
	for _, want := range [][2]string{{"--smp", "1"}, {"--memory", "750M"}, {"--overprovisioned", "1"}, {"--developer-mode", "1"}} {
		if i := slices.Index(sc.Command, want[0]); i < 0 || i+1 >= len(sc.Command) || sc.Command[i+1] != want[1] {
			t.Errorf("scylla command %v lacks %s %s", sc.Command, want[0], want[1])
		}
	}
	if sc.Healthcheck == nil {
		t.Error("scylla: no healthcheck")
	}

	// Jaeger with OTLP and its UI; Prometheus.
	jaeger := byImage("jaegertracing/")
	if len(jaeger) != 1 {
		t.Fatalf("Jaeger services %v, want 1", jaeger)
	}
	if p := strings.Join(c.Services[jaeger[0]].Ports, " "); !strings.Contains(p, ":4317") || !strings.Contains(p, ":16686") {
		t.Errorf("jaeger ports %q: want OTLP 4317 and UI 16686", p)
	}
	prom := byImage("prom/prometheus:")
	if len(prom) != 1 {
		t.Fatalf("Prometheus services %v, want 1", prom)
	}
	if !slices.ContainsFunc(c.Services[prom[0]].Volumes, func(v string) bool { return strings.HasPrefix(v, composeRel(prometheusFile)+":") }) {
		t.Errorf("prometheus does not mount %s: %v", composeRel(prometheusFile), c.Services[prom[0]].Volumes)
	}

	// Gateways and routers from deploy/Dockerfile.
	gateways, routers := liveimServices(c, "gateway"), liveimServices(c, "router")
	if len(gateways) < 2 || len(routers) < 2 {
		t.Fatalf("gateways %v and routers %v: want at least 2 of each", gateways, routers)
	}
	for _, name := range append(slices.Clone(gateways), routers...) {
		s := c.Services[name]
		if s.Build.Dockerfile != dockerfile || filepath.Clean(filepath.Join(filepath.Dir(composeFile), s.Build.Context)) != "." {
			t.Errorf("%s: build %+v, want %s with the repository root as context", name, s.Build, dockerfile)
		}
		env := s.Environment
		// Every NATS server, so a client survives any one of them.
		hosts := map[string]bool{}
		for u := range strings.SplitSeq(env["LIVEIM_NATS"], ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err == nil {
				hosts[pu.Hostname()] = true
			}
		}
		for _, n := range natsNames {
			if !hosts[n] {
				t.Errorf("%s: LIVEIM_NATS %q does not list %s", name, env["LIVEIM_NATS"], n)
			}
		}
		for _, n := range natsNames {
			if _, ok := s.DependsOn[n]; !ok {
				t.Errorf("%s: does not depend on %s", name, n)
			}
		}
		// Traces to Jaeger over OTLP.
		u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		if err != nil || u.Hostname() != jaeger[0] || (u.Port() != "4317" && u.Port() != "4318") {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want OTLP on %s", name, env["OTEL_EXPORTER_OTLP_ENDPOINT"], jaeger[0])
		}
	}
	for _, name := range gateways {
		env := c.Services[name].Environment
		if h, _, _ := net.SplitHostPort(env["LIVEIM_ADDR"]); h != "0.0.0.0" {
			t.Errorf("%s: LIVEIM_ADDR %q, want 0.0.0.0:PORT (reachable from the host)", name, env["LIVEIM_ADDR"])
		}
		if listenPort(env["LIVEIM_ADDR"]) == listenPort(env["LIVEIM_HTTP_ADDR"]) {
			t.Errorf("%s: LIVEIM_ADDR %q and LIVEIM_HTTP_ADDR %q share a port: /metrics belongs on the internal listener only", name, env["LIVEIM_ADDR"], env["LIVEIM_HTTP_ADDR"])
		}
	}
	for _, name := range routers {
		env := c.Services[name].Environment
		for k, want := range map[string]string{"LIVEIM_STREAM_REPLICAS": "3", "LIVEIM_STORE": "scylla", "LIVEIM_SCYLLA_HOSTS": scylla[0]} {
			if env[k] != want {
				t.Errorf("%s: %s=%q, want %q", name, k, env[k], want)
			}
		}
		if _, ok := c.Services[name].DependsOn[scylla[0]]; !ok {
			t.Errorf("%s: does not depend on %s", name, scylla[0])
		}
	}

	// Prometheus scrapes every gateway and router on /metrics of its
	// internal listener (--http-addr), the only one serving it, and no
	// gateway's public port.
	targets := prometheusTargets(t)
	for _, name := range append(slices.Clone(gateways), routers...) {
		env := c.Services[name].Environment
		if h, _, _ := net.SplitHostPort(env["LIVEIM_HTTP_ADDR"]); h != "0.0.0.0" {
			t.Errorf("%s: LIVEIM_HTTP_ADDR %q, want 0.0.0.0:PORT (scraped by Prometheus)", name, env["LIVEIM_HTTP_ADDR"])
		}
		_, port, _ := net.SplitHostPort(env["LIVEIM_HTTP_ADDR"])
		if !targets[name+":"+port] {
			t.Errorf("%s does not scrape %s:%s/metrics, its internal listener (targets %v)", prometheusFile, name, port, targets)
		}
	}
	for _, name := range gateways {
		if _, port, _ := net.SplitHostPort(c.Services[name].Environment["LIVEIM_ADDR"]); targets[name+":"+port] {
			t.Errorf("%s scrapes %s:%s, the public port, which serves no /metrics", prometheusFile, name, port)
		}
	}
}

// TestComposePortsOnLoopback checks that the local cluster publishes its
// ports on the host's loopback only: NATS, Scylla and the internal
// listeners are not for the network.
func TestComposePortsOnLoopback(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		for _, p := range c.Services[name].Ports {
			parts := strings.Split(p, ":")
			if len(parts) < 3 || (parts[0] != "127.0.0.1" && parts[0] != "[::1]") {
				t.Errorf("%s: port %q is published on every host address, want 127.0.0.1:HOST:CONTAINER", name, p)
			}
		}
	}
}

// TestComposeEnvNamesRealFlags checks the LIVEIM_ variables of every
// gateway, router and demo service against the target's flags.
func TestComposeEnvNamesRealFlags(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	targets := []string{"gateway", "router", "demo"}
	for _, target := range targets {
		for _, name := range liveimServices(c, target) {
			checkEnv(t, composeFile+": "+name, target, c.Services[name].Environment.vars())
		}
	}
	for name, s := range c.Services {
		if len(s.Command) > 0 && s.Build.Dockerfile == dockerfile && !slices.Contains(targets, s.Command[0]) {
			t.Errorf("%s runs liveim %s: deploy/check does not know that target's flags", name, s.Command[0])
		}
	}
}

// liveimServices returns the services running a liveim target.
func liveimServices(c *compose, target string) []string {
	var names []string
	for name, s := range c.Services {
		if s.Build.Dockerfile == dockerfile && len(s.Command) > 0 && s.Command[0] == target {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// serverFlags reads nats-server flags: -name value, --name value, -name=value.
func serverFlags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] {
			continue // not a flag
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			out[k] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out[a] = args[i+1]
			i++
		} else {
			out[a] = ""
		}
	}
	return out
}

// volumeAt returns the named volume mounted at dir.
func volumeAt(volumes []string, dir string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == dir && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") {
			return parts[0]
		}
	}
	return ""
}

// prometheusTargets returns host:port of every target scraped on /metrics.
func prometheusTargets(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, prometheusFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Scheme        string `yaml:"scheme"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", prometheusFile, err)
	}
	targets := map[string]bool{}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "" || jobs[sc.JobName] {
			t.Errorf("%s: job name %q empty or repeated", prometheusFile, sc.JobName)
		}
		jobs[sc.JobName] = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	return targets
}

// TestComposeHealth checks that `docker compose up` starts the liveim
// services in an order that works and can tell when they are up: every
// gateway, router and demo has a healthcheck that runs `/liveim health`
// (the image has no shell: exec form, the binary the Dockerfile copies)
// with flags that command has, on its own readiness URL; gateways start
// once every router is healthy (a client finds a router), and the demo,
// which creates the app, once every router and gateway is.
func TestComposeHealth(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	routers, gateways, demos := liveimServices(c, "router"), liveimServices(c, "gateway"), liveimServices(c, "demo")
	healthFlags := targetFlags(t, "health")
	for _, name := range slices.Concat(routers, gateways, demos) {
		s := c.Services[name]
		if s.Healthcheck == nil {
			t.Errorf("%s: no healthcheck", name)
			continue
		}
		test := []string(s.Healthcheck.Test)
		if len(test) < 3 || test[0] != "CMD" || test[1] != "/liveim" || test[2] != "health" {
			t.Errorf("%s: healthcheck %q, want [CMD /liveim health ...] (no shell in the image)", name, test)
			continue
		}
		args := serverFlags(test[3:])
		for f := range args {
			if _, ok := healthFlags[f]; !ok {
				t.Errorf("%s: healthcheck flag --%s is no flag of liveim health", name, f)
			}
		}
		u, err := url.Parse(args["url"])
		if err != nil || u.Hostname() != "127.0.0.1" {
			t.Errorf("%s: healthcheck --url %q, want the service's own listener on 127.0.0.1", name, args["url"])
			continue
		}
		env := s.Environment
		wantPort, wantPath := listenPort(env["LIVEIM_HTTP_ADDR"]), "/readyz"
		if s.Command[0] == "demo" {
			wantPort, wantPath = listenPort(env["LIVEIM_ADDR"]), "/"
		}
		if u.Port() != itoa(wantPort) || u.Path != wantPath {
			t.Errorf("%s: healthcheck --url %s, want http://127.0.0.1:%d%s", name, args["url"], wantPort, wantPath)
		}
	}
	waitsFor := func(name string, deps []string) {
		for _, d := range deps {
			m, _ := c.Services[name].DependsOn[d].(map[string]any)
			if m["condition"] != "service_healthy" {
				t.Errorf("%s: depends on %s with %v, want condition service_healthy", name, d, c.Services[name].DependsOn[d])
			}
		}
	}
	for _, g := range gateways {
		waitsFor(g, routers)
	}
	for _, d := range demos {
		waitsFor(d, slices.Concat(routers, gateways))
	}
}
