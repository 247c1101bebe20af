package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGet(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c"}, {Key: "vcs.modified", Value: "true"}}}
	for _, c := range []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string
		want            Info
	}{
		{"linker values win", vcs, "v0.2.0", "abcdef", Info{"v0.2.0", "abcdef", "go1.26.8"}},
		{"VCS stamping of a checkout", vcs, "", "", Info{Unknown, "1a2b3c-dirty", "go1.26.8"}},
		{"go install module@version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.1"}},
			"", "", Info{"v0.3.1", Unknown, "go1.26.8"}},
		{"nothing recorded", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"", "", Info{Unknown, Unknown, "go1.26.8"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := get(c.bi, c.version, c.commit); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if s := (Info{"v1", "c", "go1.26.8"}).String(); s != "liveim v1 (commit c, go1.26.8)" {
		t.Fatalf("String %q", s)
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	i := Get()
	want := `# HELP liveim_build_info Always 1; its labels say which liveim build the process runs.
# TYPE liveim_build_info gauge
liveim_build_info{commit="` + i.Commit + `",goversion="` + i.GoVersion + `",version="` + i.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "liveim_build_info"); err != nil {
		t.Fatal(err)
	}
}
