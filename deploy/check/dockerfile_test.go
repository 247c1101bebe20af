package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case
	Args string
}

func readDockerfile(t testing.TB) []instruction {
	t.Helper()
	f, err := os.Open(repoPath(t, dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerfile checks deploy/Dockerfile's build and final stages (no
// Docker here to build it: the build command itself runs in liveim()).
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	var stages [][]instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				t.Fatalf("%s before the first FROM", in.Cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final stage", len(stages))
	}

	// Build stage: the Go of go.mod, a static binary.
	build := stages[0]
	goVersion := goDirective(t)
	from := strings.Fields(build[0].Args)
	if len(from) != 3 || from[0] != "golang:"+goVersion || !strings.EqualFold(from[1], "AS") {
		t.Errorf("build stage FROM %q, want golang:%s AS <name> (the go directive of go.mod)", build[0].Args, goVersion)
	}
	buildName := from[len(from)-1]
	// The build: static, no VCS stamping of its own (the context may be a
	// worktree whose .git points outside it), VERSION and COMMIT from
	// build arguments declared before it. liveim() builds with the same
	// -ldflags, and TestImageVersionStamp checks they reach liveim version.
	if _, err := buildLDFlags(ins, "v", "c"); err != nil {
		t.Error(err)
	}
	for _, arg := range []string{"VERSION", "COMMIT"} {
		if !declaresArg(build, arg) {
			t.Errorf("build stage declares no ARG %s before its build", arg)
		}
	}

	// Final stage: distroless (or scratch), numeric non-root user.
	final := stages[len(stages)-1]
	if base := final[0].Args; base != "gcr.io/distroless/static-debian12:nonroot" && base != "scratch" {
		t.Errorf("final stage FROM %q, want distroless static nonroot or scratch", base)
	}
	get := func(cmd string) []string {
		var out []string
		for _, in := range final {
			if in.Cmd == cmd {
				out = append(out, in.Args)
			}
		}
		return out
	}
	if !slices.Contains(get("COPY"), "--from="+buildName+" /liveim /liveim") {
		t.Errorf("final stage COPY %v, want --from=%s /liveim /liveim", get("COPY"), buildName)
	}
	// The licence and notices ship beside the binary, and whatever the
	// final stage copies from the context exists (a missing path would
	// fail only where Docker runs).
	var copied []string
	for _, c := range get("COPY") {
		f := strings.Fields(c)
		if len(f) < 2 || strings.HasPrefix(f[0], "--from=") {
			continue
		}
		for _, p := range f[:len(f)-1] {
			if _, err := os.Stat(repoPath(t, p)); err != nil {
				t.Errorf("final stage copies %s: %v", p, err)
			}
			copied = append(copied, p)
		}
	}
	for _, want := range []string{"LICENSE", "NOTICE"} {
		if !slices.Contains(copied, want) {
			t.Errorf("final stage does not copy %s into the image", want)
		}
	}
	users := get("USER")
	if len(users) == 0 {
		t.Error("no USER: the image would run as root")
	} else {
		u, _, _ := strings.Cut(users[len(users)-1], ":")
		if uid, err := strconv.Atoi(u); err != nil || uid == 0 {
			t.Errorf("USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot checks it)", users[len(users)-1])
		} else if uid != 65532 {
			t.Errorf("USER %d: the chart's securityContext runs as 65532", uid)
		}
	}
	var entry []string
	if e := get("ENTRYPOINT"); len(e) != 1 || json.Unmarshal([]byte(e[0]), &entry) != nil || !slices.Equal(entry, []string{"/liveim"}) {
		t.Errorf("ENTRYPOINT %v, want [\"/liveim\"] (exec form: no shell in the image)", e)
	}
	// OCI labels, the version and revision from the same arguments.
	labels := map[string]string{}
	for _, l := range get("LABEL") {
		for _, m := range labelPair.FindAllStringSubmatch(l, -1) {
			labels[m[1]] = m[2]
		}
	}
	for key, want := range map[string]string{
		"org.opencontainers.image.title": "liveim", "org.opencontainers.image.source": "https://github.com/liveim/liveim",
		"org.opencontainers.image.version": "${VERSION}", "org.opencontainers.image.revision": "${COMMIT}",
	} {
		if labels[key] != want {
			t.Errorf("final stage LABEL %s=%q, want %q", key, labels[key], want)
		}
	}
	if labels["org.opencontainers.image.description"] == "" {
		t.Error("final stage has no LABEL org.opencontainers.image.description")
	}
	for _, arg := range []string{"VERSION", "COMMIT"} {
		if !declaresArg(final, arg) {
			t.Errorf("final stage declares no ARG %s: its labels would be empty", arg)
		}
	}
	exposed := strings.Fields(strings.Join(get("EXPOSE"), " "))
	for _, p := range []string{"8080", "8081"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE %v lacks %s", exposed, p)
		}
	}
}

// labelPair is one key="value" of a LABEL instruction.
var labelPair = regexp.MustCompile(`([a-z0-9.-]+)="([^"]*)"`)

// declaresArg reports whether a stage declares the build argument.
func declaresArg(stage []instruction, name string) bool {
	return slices.ContainsFunc(stage, func(in instruction) bool {
		for _, f := range strings.Fields(in.Args) {
			if in.Cmd == "ARG" && (f == name || strings.HasPrefix(f, name+"=")) {
				return true
			}
		}
		return false
	})
}

// buildCmd is the Dockerfile's build of liveim: the -ldflags value in
// double quotes.
var buildCmd = regexp.MustCompile(`CGO_ENABLED=0\s+go build\s+-trimpath\s+-buildvcs=false\s+-ldflags="([^"]*)"\s+-o /liveim\s+\./cmd/liveim$`)

// buildLDFlags returns the -ldflags of the Dockerfile's build of liveim,
// ${VERSION} and ${COMMIT} replaced by version and commit as the shell of
// its RUN would.
func buildLDFlags(ins []instruction, version, commit string) (string, error) {
	for _, in := range ins {
		if m := buildCmd.FindStringSubmatch(in.Args); in.Cmd == "RUN" && m != nil {
			if !strings.Contains(m[1], "${VERSION}") || !strings.Contains(m[1], "${COMMIT}") {
				return "", fmt.Errorf("%s: -ldflags %q does not stamp ${VERSION} and ${COMMIT}", dockerfile, m[1])
			}
			return strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit).Replace(m[1]), nil
		}
	}
	return "", fmt.Errorf("%s: no RUN ... %s", dockerfile, buildCmd)
}

// TestImageVersionStamp checks that the Dockerfile's -ldflags set what
// liveim version prints (a wrong -X path would set nothing and say
// nothing), and that every process's /metrics would carry it: liveim()
// builds with them and stampVersion and stampCommit.
func TestImageVersionStamp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(liveim(t), "version").Output()
	want := "liveim " + stampVersion + " (commit " + stampCommit + ", go"
	if err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("liveim version printed %q (%v), want %q...", out, err, want)
	}
}

// goDirective returns the major.minor of the root go.mod's go directive.
func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}
