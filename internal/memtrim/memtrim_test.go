package memtrim

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTrimmerDecides: a trim comes once after a burst of at least Burst
// bytes and Quiet below QuietRate; never under steady load, never after
// a burst too small to be worth a collection, and not twice for one
// burst.
func TestTrimmerDecides(t *testing.T) {
	const mib = 1 << 20
	cfg := Config{}.WithDefaults() // 5 s quiet under 4 MiB/s; bursts of 64 MiB
	start := time.Unix(1000, 0)
	tr := newTrimmer(cfg, start, 0)
	allocated := uint64(0)
	at := start
	step := func(bytesPerSec uint64) bool {
		at = at.Add(time.Second)
		allocated += bytesPerSec
		return tr.observe(at, allocated)
	}
	for i := range 60 { // steady load of 10 MiB/s: 600 MiB, never quiet
		if step(10 * mib) {
			t.Fatalf("trimmed under steady load, second %d", i+1)
		}
	}
	var trims []int
	for i := range 20 { // quiet: 1 MiB/s
		if step(mib) {
			trims = append(trims, i+1)
		}
	}
	if len(trims) != 1 || trims[0] != 5 {
		t.Fatalf("trims in quiet seconds %v, want one, in the 5th", trims)
	}
	// The quiet seconds after the trim allocated 15 MiB; a burst of 30
	// MiB more is still below the 64 MiB worth a collection.
	for range 3 {
		step(10 * mib)
	}
	for i := range 20 {
		if step(0) {
			t.Fatalf("trimmed after 45 MiB since the last trim, %d s quiet", i+1)
		}
	}
	for range 4 { // 40 MiB more: 85 since the last trim
		step(10 * mib)
	}
	trims = trims[:0]
	for i := range 20 {
		if step(0) {
			trims = append(trims, i+1)
		}
	}
	if len(trims) != 1 || trims[0] != 5 {
		t.Fatalf("second burst: trims in quiet seconds %v, want one, in the 5th", trims)
	}
	if (Config{Quiet: -1}).WithDefaults().Quiet != -1 {
		t.Fatal("a negative Quiet (off) was defaulted")
	}
}

var sink [][]byte

// TestRunTrims: after this process allocates a burst and goes quiet,
// Run returns the free heap to the OS: the runtime's released heap grows
// by most of the burst.
func TestRunTrims(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Run's log, line by line.
	pr, pw := io.Pipe()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Quiet: time.Millisecond, Burst: 64 << 20}, slog.New(slog.NewTextHandler(pw, nil)), reg)
	}()
	t.Cleanup(func() { cancel(); <-done; pw.Close() })

	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// 128 MiB of garbage, 32 MiB live at a time: the heap grows, and
	// what it grew into is free once the burst ends.
	for range 128 {
		sink = append(sink, make([]byte, 1<<20))
		if len(sink) == 32 {
			sink = nil
		}
	}
	sink = nil
	before := released()
	timeout := time.After(60 * time.Second)
	for trimmed := false; !trimmed; {
		select {
		case l := <-lines:
			trimmed = strings.Contains(l, "heap trimmed")
		case <-timeout:
			t.Fatal("no trim within 60 s of a 128 MiB burst")
		}
	}
	if got := released(); got < before+16<<20 {
		t.Fatalf("released heap went from %d to %d bytes at the trim; want 16 MiB more at least", before, got)
	}
	if n := testutil.ToFloat64(trimsOf(t, reg)); n != 1 {
		t.Fatalf("liveim_heap_trims_total %v after one trim", n)
	}
}

// trimsOf returns the liveim_heap_trims_total counter Run registered.
func trimsOf(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 || fams[0].GetName() != "liveim_heap_trims_total" {
		t.Fatalf("registry holds %v, %v; want liveim_heap_trims_total alone", fams, err)
	}
	return reg
}

func TestCgroupLimit(t *testing.T) {
	for _, c := range []struct {
		name, proc string
		files      map[string]string
		want       int64
		ok         bool
	}{
		{"v2, limited", "0::/kubepods/pod1/c1\n", map[string]string{"kubepods/pod1/c1/memory.max": "2147483648\n"}, 2147483648, true},
		{"v2, unlimited", "0::/user.slice\n", map[string]string{"user.slice/memory.max": "max\n"}, 0, false},
		{"v2, own namespace", "0::/\n", map[string]string{"memory.max": "1073741824"}, 1073741824, true},
		{"v1, limited", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n", map[string]string{"memory/docker/abc/memory.limit_in_bytes": "536870912\n"}, 536870912, true},
		{"v1, unlimited", "4:cpuacct,memory:/\n", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup files", "0::/x\n", nil, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			proc := filepath.Join(dir, "cgroup")
			if err := os.WriteFile(proc, []byte(c.proc), 0o600); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(dir, "sys")
			for name, v := range c.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got, ok := cgroupLimit(proc, root); got != c.want || ok != c.ok {
				t.Fatalf("cgroupLimit = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// TestApplyContainerLimitKeepsGOMEMLIMIT: an operator's GOMEMLIMIT wins.
func TestApplyContainerLimitKeepsGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got := ApplyContainerLimit(slog.New(slog.DiscardHandler)); got != 0 {
		t.Fatalf("set %d with GOMEMLIMIT given", got)
	}
}
