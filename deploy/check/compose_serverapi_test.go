package check

import (
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestComposeServerAPI checks the server API and the demo in the Compose
// cluster:
//
//   - every router reads the admin key from the file of one Compose
//     secret (LIVEIM_ADMIN_KEY_FILE), whose file holds a usable key, and
//     listens with its internal listener (the server API) on the Compose
//     network; no gateway holds the key;
//   - one `liveim demo` service serves the demo page on the host's
//     loopback, gets its app through every router's server API with the
//     same admin key secret, names every gateway as the host's browser
//     reaches it (ws://127.0.0.1:<published port>/ws), and starts after
//     the routers;
//   - the key is in no variable, command or entrypoint.
func TestComposeServerAPI(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	routers, gateways := liveimServices(c, "router"), liveimServices(c, "gateway")
	if len(routers) == 0 || len(gateways) == 0 {
		t.Fatalf("routers %v, gateways %v", routers, gateways)
	}

	// The routers' admin key: one secret for all.
	secret := ""
	for _, name := range routers {
		s := c.Services[name]
		file := s.Environment["LIVEIM_ADMIN_KEY_FILE"]
		got := s.Secrets[file]
		switch {
		case got == "":
			t.Errorf("%s: LIVEIM_ADMIN_KEY_FILE=%q is no file of a secret it mounts: the admin API would answer 403", name, file)
		case secret != "" && got != secret:
			t.Errorf("%s: admin key from secret %s, another router's from %s", name, got, secret)
		default:
			secret = got
		}
		if h, _, _ := net.SplitHostPort(s.Environment["LIVEIM_HTTP_ADDR"]); h != "0.0.0.0" {
			t.Errorf("%s: LIVEIM_HTTP_ADDR=%q: the server API is not reachable from the demo", name, s.Environment["LIVEIM_HTTP_ADDR"])
		}
	}
	if secret == "" {
		t.Fatal("no router has the admin key")
	}
	def, ok := c.Secrets[secret]
	if !ok || def.File == "" {
		t.Fatalf("secret %s is not declared with a file", secret)
	}
	b, err := os.ReadFile(composeFilePath(t, def.File))
	if err != nil {
		t.Fatalf("secret %s: %v", secret, err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < minAdminKeyLen {
		t.Errorf("secret %s: %s holds %d characters, want at least %d (liveim router refuses shorter keys)", secret, def.File, len(key), minAdminKeyLen)
	}
	for _, name := range gateways {
		s := c.Services[name]
		if slices.Contains(slices.Collect(maps.Values(s.Secrets)), secret) {
			t.Errorf("%s: mounts the admin key (secret %s): gateways face the internet", name, secret)
		}
		if v, ok := s.Environment["LIVEIM_ADMIN_KEY_FILE"]; ok {
			t.Errorf("%s: LIVEIM_ADMIN_KEY_FILE=%q on a gateway", name, v)
		}
	}

	// The demo backend.
	demos := liveimServices(c, "demo")
	if len(demos) != 1 {
		t.Fatalf("services running liveim demo: %v, want one (the demo page of the local cluster)", demos)
	}
	name := demos[0]
	demo := c.Services[name]
	env := demo.Environment
	if got := demo.Secrets[env["LIVEIM_ADMIN_KEY_FILE"]]; got != secret {
		t.Errorf("%s: LIVEIM_ADMIN_KEY_FILE=%q is secret %q, want the routers' admin key %s", name, env["LIVEIM_ADMIN_KEY_FILE"], got, secret)
	}
	if env["LIVEIM_APP_FILE"] != "" {
		t.Errorf("%s: LIVEIM_APP_FILE=%q: the demo gets its app through the server API", name, env["LIVEIM_APP_FILE"])
	}
	apis := map[string]bool{}
	for u := range strings.SplitSeq(env["LIVEIM_API"], ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		r, isRouter := c.Services[pu.Hostname()]
		if err != nil || pu.Scheme != "http" || !isRouter || !slices.Contains(routers, pu.Hostname()) {
			t.Errorf("%s: LIVEIM_API lists %q, which is no router's internal listener", name, u)
			continue
		}
		if _, port, _ := net.SplitHostPort(r.Environment["LIVEIM_HTTP_ADDR"]); pu.Port() != port {
			t.Errorf("%s: LIVEIM_API lists %q; %s's internal listener is on port %s", name, u, pu.Hostname(), port)
		}
		apis[pu.Hostname()] = true
	}
	for _, r := range routers {
		if !apis[r] {
			t.Errorf("%s: LIVEIM_API %q does not list %s (the demo should start with any router up)", name, env["LIVEIM_API"], r)
		}
		if _, ok := demo.DependsOn[r]; !ok {
			t.Errorf("%s: does not depend on %s", name, r)
		}
	}
	// The gateways as the host reaches them: their published loopback port.
	var want []string
	for _, g := range gateways {
		port := listenPort(c.Services[g].Environment["LIVEIM_ADDR"])
		for _, p := range c.Services[g].Ports {
			if parts := strings.Split(p, ":"); len(parts) == 3 && parts[0] == "127.0.0.1" && parts[2] == itoa(port) {
				want = append(want, "ws://127.0.0.1:"+parts[1]+"/ws")
			}
		}
	}
	got := strings.Split(env["LIVEIM_GATEWAY_URLS"], ",")
	slices.Sort(got)
	slices.Sort(want)
	if len(want) != len(gateways) || !slices.Equal(got, want) {
		t.Errorf("%s: LIVEIM_GATEWAY_URLS=%q, want every gateway as the host's browser reaches it: %v", name, env["LIVEIM_GATEWAY_URLS"], want)
	}
	// The page on the host's loopback (TestComposePortsOnLoopback checks
	// the address).
	port := listenPort(env["LIVEIM_ADDR"])
	if h, _, _ := net.SplitHostPort(env["LIVEIM_ADDR"]); h != "0.0.0.0" || !slices.ContainsFunc(demo.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+itoa(port)) }) {
		t.Errorf("%s: LIVEIM_ADDR=%q, ports %v: want 0.0.0.0:PORT published on the host's loopback", name, env["LIVEIM_ADDR"], demo.Ports)
	}

	// The key in plain sight nowhere.
	for _, n := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[n]
		plain := slices.Concat(s.Entrypoint, s.Command, slices.Collect(maps.Values(s.Environment)))
		if key != "" && slices.ContainsFunc(plain, func(p string) bool { return strings.Contains(p, key) }) {
			t.Errorf("%s: a command or variable holds the admin key", n)
		}
	}
}

func itoa(n int32) string {
	return strconv.FormatInt(int64(n), 10)
}
