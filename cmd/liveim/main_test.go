package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/flagvalue"
)

// testFlags is a flag set like a target's: one flag of each kind.
func testFlags() (fs *flag.FlagSet, addr, natsURL *string, loops *int, rate *float64, window *time.Duration, proxies *[]string, other *string) {
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	addr = fs.String("addr", "127.0.0.1:8080", "")
	natsURL = new(string)
	fs.Var(flagvalue.Joined(natsURL), "nats", "")
	loops = fs.Int("loops", 0, "")
	rate = fs.Float64("send-rate", 0, "")
	window = fs.Duration("merge-window", 0, "")
	proxies = new([]string)
	fs.Var(flagvalue.List(proxies), "trusted-proxies", "")
	other = fs.String("other", "default", "")
	return
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "liveim.yaml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestParseFlagsPrecedence: command line over environment over config
// file over default; the file is YAML: inline comments are comments,
// quotes are YAML's, lists are lists.
func TestParseFlagsPrecedence(t *testing.T) {
	file := writeConfig(t, `# gateway settings
addr: 0.0.0.0:9000   # an inline comment, not part of the value
nats:                # a list for a flag that takes several values
  - nats://a:4222
  - nats://b:4222
loops: 3
send-rate: 7
merge-window: 80ms
trusted-proxies: ["10.0.0.0/8", 192.168.0.0/16]
`)
	t.Setenv("LIVEIM_LOOPS", "5")
	fs, addr, natsURL, loops, rate, window, proxies, other := testFlags()
	if err := parseFlags(fs, []string{"--config", file, "--send-rate", "9"}, nil); err != nil {
		t.Fatal(err)
	}
	if *addr != "0.0.0.0:9000" || *natsURL != "nats://a:4222,nats://b:4222" || *loops != 5 || *rate != 9 || *window != 80*time.Millisecond ||
		!slices.Equal(*proxies, []string{"10.0.0.0/8", "192.168.0.0/16"}) || *other != "default" {
		t.Fatalf("addr %q nats %q loops %d rate %v window %v proxies %q other %q", *addr, *natsURL, *loops, *rate, *window, *proxies, *other)
	}

	// LIVEIM_CONFIG names the file when --config does not.
	t.Setenv("LIVEIM_CONFIG", file)
	fs, addr, _, _, _, _, _, _ = testFlags()
	if err := parseFlags(fs, nil, nil); err != nil || *addr != "0.0.0.0:9000" {
		t.Fatalf("LIVEIM_CONFIG: addr %q, %v", *addr, err)
	}
}

// TestParseFlagsConfigErrors: what a config file may not hold.
func TestParseFlagsConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, file, want string
	}{
		{"unknown key, with the closest flag", "addr: x\nsend-rat: 7\n", `"send-rat" is not a setting of liveim t (did you mean "send-rate"?)`},
		{"unknown key, nothing close", "zzzzzzzz: 1\n", `"zzzzzzzz" is not a setting of liveim t`},
		{"a list for a one-value flag", "addr: [a, b]\n", `"addr" takes one value, not a list`},
		{"a nested mapping", "gateway:\n  addr: x\n", `"gateway.addr" is not a setting`},
		{"a value of the wrong type", "loops: many\n", `loops`},
		{"not YAML", "addr: [\n", `liveim.yaml`},
		{"a config file naming another", "config: other.yaml\n", `a file cannot name another`},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeConfig(t, c.file)
			fs, _, _, _, _, _, _, _ := testFlags()
			err := parseFlags(fs, []string{"--config", file}, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("got %v, want an error naming %s and %q", err, file, c.want)
			}
		})
	}
	fs, _, _, _, _, _, _, _ := testFlags()
	if err := parseFlags(fs, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, nil); err == nil {
		t.Fatal("a missing config file passed")
	}
	fs, _, _, _, _, _, _, _ = testFlags()
	if err := parseFlags(fs, []string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

// TestUnknownEnvWarning: a LIVEIM_ variable that names no flag is
// reported, with the closest flag, and changes nothing; Kubernetes'
// service variables and the test harness's are not reported.
func TestUnknownEnvWarning(t *testing.T) {
	t.Setenv("LIVEIM_SEND_RAT", "7")     // a typo
	t.Setenv("LIVEIM_GATEWAY_ADDR", "x") // an old prefixed name
	t.Setenv("LIVEIM_NOTHING_LIKE_IT_AT_ALL", "1")
	t.Setenv("LIVEIM_LOOPS", "2")                      // a flag: no warning
	t.Setenv("LIVEIM_ROUTER_SERVICE_HOST", "10.0.0.1") // Kubernetes' variables of a Service liveim-router
	t.Setenv("LIVEIM_ROUTER_SERVICE_PORT", "8081")
	t.Setenv("LIVEIM_ROUTER_SERVICE_PORT_INTERNAL", "8081")
	t.Setenv("LIVEIM_ROUTER_PORT", "tcp://10.0.0.1:8081")
	t.Setenv("LIVEIM_ROUTER_PORT_8081_TCP", "tcp://10.0.0.1:8081")
	t.Setenv("LIVEIM_ROUTER_PORT_8081_TCP_ADDR", "10.0.0.1")
	t.Setenv("LIVEIM_ROUTER_PORT_8081_TCP_PORT", "8081")
	t.Setenv("LIVEIM_ROUTER_PORT_8081_TCP_PROTO", "tcp")
	t.Setenv("LIVEIM_HTTP_PORT", "8081") // a mistake, not a Kubernetes variable
	t.Setenv("LIVEIM_CQL_HOSTS", "127.0.0.1:19042")
	fs, addr, _, loops, rate, _, _, _ := testFlags()
	var warn bytes.Buffer
	if err := parseFlags(fs, nil, &warn); err != nil {
		t.Fatal(err)
	}
	if *rate != 0 || *addr != "127.0.0.1:8080" || *loops != 2 {
		t.Fatalf("rate %v addr %q loops %d", *rate, *addr, *loops)
	}
	got := strings.Split(strings.TrimSpace(warn.String()), "\n")
	want := []string{
		"liveim t: warning: LIVEIM_GATEWAY_ADDR is not a setting of liveim t, and is ignored (did you mean LIVEIM_ADDR, --addr?)",
		"liveim t: warning: LIVEIM_HTTP_PORT is not a setting of liveim t, and is ignored (liveim t -h lists them)",
		"liveim t: warning: LIVEIM_NOTHING_LIKE_IT_AT_ALL is not a setting of liveim t, and is ignored (liveim t -h lists them)",
		"liveim t: warning: LIVEIM_SEND_RAT is not a setting of liveim t, and is ignored (did you mean LIVEIM_SEND_RATE, --send-rate?)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without a writer nothing is reported (liveim token, liveim app).
	fs, _, _, _, _, _, _, _ = testFlags()
	if err := parseFlags(fs, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"room-rate", "room-rat", 1}, {"kitten", "sitting", 3}} {
		if got := levenshtein(c.a, c.b); got != c.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
