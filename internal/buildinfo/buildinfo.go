// Package buildinfo says which liveim a process is: its version, the VCS
// commit it was built from and the Go it was built with, for `liveim
// version` and the liveim_build_info metric every process serves.
//
//	fmt.Println(buildinfo.Get()) // liveim v0.2.0 (commit 1a2b3c4, go1.26.8)
//	reg.MustRegister(buildinfo.Collector())
//
// The version and commit come from the linker when the build sets them
// (the image does, from its VERSION and COMMIT build arguments):
//
//	go build -ldflags "-X github.com/liveim/liveim/internal/buildinfo.version=v0.2.0 \
//	    -X github.com/liveim/liveim/internal/buildinfo.commit=1a2b3c4" ./cmd/liveim
//
// and otherwise from what the Go toolchain recorded in the binary
// (runtime/debug.ReadBuildInfo): the module version of `go install
// ...@version`, the VCS revision of a build inside a Git checkout.
//
// Get and Collector only read, and are safe for concurrent use.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and commit are set by the linker (-X); see the package comment.
// They are never written at run time.
var version, commit string

// Unknown is the version or commit of a build that recorded none.
const Unknown = "unknown"

// Info describes a build.
type Info struct {
	// Version is the linker's version, else the module version, else
	// Unknown (a plain `go build` in a checkout records "(devel)").
	Version string
	// Commit is the linker's commit, else the VCS revision with
	// "-dirty" when the tree had changes, else Unknown.
	Commit string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(bi, version, commit)
}

// get is Get with the build information and linker values as arguments.
func get(bi *debug.BuildInfo, version, commit string) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			info.Commit = rev
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	return info
}

// String is the line `liveim version` prints.
func (i Info) String() string {
	return fmt.Sprintf("liveim %s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}

// Collector returns the gauge liveim_build_info{version, commit,
// goversion}, always 1, for a process's registry.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "liveim_build_info",
		Help:        "Always 1; its labels say which liveim build the process runs.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
