package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"

	"github.com/liveim/liveim/internal/flagvalue"
)

// envPrefix starts the environment variable of every flag: --foo-bar is
// LIVEIM_FOO_BAR.
const envPrefix = "LIVEIM_"

// parseFlags parses args, then fills every flag not given on the command
// line from its LIVEIM_ environment variable, and failing that from the
// YAML file named by --config (or LIVEIM_CONFIG). Precedence: command
// line, environment, file, default. A key of the file that names no flag
// is an error; with warn set, so is nothing about a LIVEIM_ variable that
// names no flag, which is reported on warn instead (a typo changes
// nothing, and says so).
func parseFlags(fs *flag.FlagSet, args []string, warn io.Writer) error {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "YAML file of settings, one \"name: value\" per flag (also LIVEIM_CONFIG)")
	}
	if warn != nil {
		for _, w := range unknownEnv(fs, os.Environ()) {
			fmt.Fprintf(warn, "liveim %s: warning: %s\n", fs.Name(), w)
		}
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(strings.TrimSuffix(envPrefix, "_")),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(yamlParser(fs)))
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	// ff says where an error came from in a prefix its inner error
	// repeats ("invalid value ... for flag -loops", "... from environment
	// variable LIVEIM_LOOPS").
	if err != nil && (strings.HasPrefix(err.Error(), "error parsing commandline arguments: ") ||
		strings.HasPrefix(err.Error(), "error parsing environment variables: ")) && errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return err
}

// yamlParser reads a --config file: a YAML mapping of flag names to
// values (ffyaml), a list for a flag that takes several values. A key
// that names no flag, a list for a flag that takes one value, and a
// nested mapping are errors.
func yamlParser(fs *flag.FlagSet) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		path := fs.Lookup("config").Value.String()
		type kv struct{ name, value string }
		var pairs []kv
		count := map[string]int{}
		err := ffyaml.Parser(r, func(name, value string) error {
			f := fs.Lookup(name)
			switch {
			case name == "config":
				return errors.New(`"config" in a config file: a file cannot name another`)
			case f == nil:
				return fmt.Errorf("%q is not a setting of liveim %s%s", name, fs.Name(), suggest(fs, name, false))
			}
			pairs = append(pairs, kv{name, value})
			count[name]++
			return nil
		})
		var pe ffyaml.ParseError
		if errors.As(err, &pe) {
			err = pe.Inner
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, p := range pairs {
			if count[p.name] > 1 && !flagvalue.IsList(fs.Lookup(p.name).Value) {
				return fmt.Errorf("%s: %q takes one value, not a list", path, p.name)
			}
			if err := set(p.name, p.value); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		return nil
	}
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// k8sServiceVariable reports whether name=value is one of the variables
// Kubernetes gives every pod for each Service of its namespace (a Service
// "liveim-router" gives LIVEIM_ROUTER_SERVICE_HOST=10.0.0.1,
// LIVEIM_ROUTER_PORT=tcp://10.0.0.1:8081, LIVEIM_ROUTER_PORT_8081_TCP_ADDR,
// ...): they are not meant for liveim and are not reported. The value
// must look like Kubernetes' too, so a typo of a setting still is.
func k8sServiceVariable(name, value string) bool {
	switch {
	case k8sPortVar.MatchString(name):
		return true
	case strings.HasSuffix(name, "_SERVICE_HOST"):
		return net.ParseIP(value) != nil
	case k8sServicePort.MatchString(name):
		_, err := strconv.ParseUint(value, 10, 16)
		return err == nil
	case strings.HasSuffix(name, "_PORT"):
		return k8sPortURL.MatchString(value)
	}
	return false
}

var (
	k8sPortVar     = regexp.MustCompile(`_PORT_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?$`)
	k8sServicePort = regexp.MustCompile(`_SERVICE_PORT(_[A-Z0-9_]+)?$`)
	k8sPortURL     = regexp.MustCompile(`^(tcp|udp|sctp)://[^/]+:[0-9]+$`)
)

// harnessVariables are LIVEIM_ variables of liveim's own test scripts and
// tests, which set them for themselves, not for the processes they start;
// TestHarnessVariables keeps the list true.
var harnessVariables = []string{
	"LIVEIM_BIN", "LIVEIM_CEILING_TEST_WORKER", "LIVEIM_CQL_HOSTS", "LIVEIM_CREDS", "LIVEIM_CQL_TLS_CA", "LIVEIM_E2E_STORE",
	"LIVEIM_FAULT_ROUNDS", "LIVEIM_FAULT_SEED", "LIVEIM_GATEWAY_IO", "LIVEIM_JAEGER", "LIVEIM_TEST_LOG",
}

// unknownEnv returns a warning for every LIVEIM_ variable of environ that
// names no flag of fs, with the closest flag when one is close.
func unknownEnv(fs *flag.FlagSet, environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || k8sServiceVariable(name, value) || slices.Contains(harnessVariables, name) {
			continue
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))
		if fs.Lookup(flagName) != nil && envName(flagName) == name {
			continue
		}
		msg := fmt.Sprintf("%s is not a setting of liveim %s, and is ignored", name, fs.Name())
		if s := suggest(fs, flagName, true); s != "" {
			msg += s
		} else {
			msg += fmt.Sprintf(" (liveim %s -h lists them)", fs.Name())
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}

// suggest returns " (did you mean ...?)" naming the flag of fs closest to
// name, or "" when none is close. A name that is a flag with a word in
// front ("router-room-rate" for "room-rate") counts as close.
func suggest(fs *flag.FlagSet, name string, asEnv bool) string {
	best, bestDist := "", -1
	fs.VisitAll(func(f *flag.Flag) {
		d := levenshtein(name, f.Name)
		if _, rest, ok := strings.Cut(name, "-"); ok && rest == f.Name {
			d = 1
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if bestDist < 0 || bestDist > max(2, len(name)/3) {
		return ""
	}
	if asEnv {
		return fmt.Sprintf(" (did you mean %s, --%s?)", envName(best), best)
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// levenshtein returns the edit distance of a and b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
