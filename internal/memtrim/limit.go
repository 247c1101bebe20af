package memtrim

import (
	"bufio"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// limitShare is the share of its container's memory limit a process lets
// its heap grow to (runtime/debug.SetMemoryLimit), leaving the rest to
// stacks, the store's own memory and the kernel's buffers.
const limitShare = 0.9

// ApplyContainerLimit makes the Go collector keep the heap under 90% of
// the process's cgroup memory limit, when there is one and GOMEMLIMIT
// does not set another. Without it a process collects by GOGC alone,
// which lets the heap reach twice what is live (1.5 times on a gateway at
// --gc-percent 50) whatever the container allows: a pod with 1.1 GiB live
// under a 2 GiB limit was killed for memory instead of collecting sooner,
// and a gateway killed so drops every socket at once. It returns the
// limit set, 0 for none.
func ApplyContainerLimit(log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := cgroupLimit("/proc/self/cgroup", "/sys/fs/cgroup")
	if !ok {
		return 0
	}
	set := int64(float64(limit) * limitShare)
	debug.SetMemoryLimit(set)
	log.Info("memory limit from the container", "cgroup_limit_bytes", limit, "go_memory_limit_bytes", set)
	return set
}

// cgroupLimit reads the memory limit of the process's cgroup: its own
// memory.max under cgroup v2 (the path in procCgroup's "0::" line, below
// root), or memory.limit_in_bytes under v1; ok is false when there is
// none ("max", a v1 limit of nearly 2^63, or no file).
func cgroupLimit(procCgroup, root string) (limit int64, ok bool) {
	var files []string
	if f, err := os.Open(procCgroup); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "0::/path" (v2) or "N:memory:/path" (v1, maybe with others).
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				files = append(files, filepath.Join(root, parts[2], "memory.max"))
			case strings.Contains(","+parts[1]+",", ",memory,"):
				files = append(files, filepath.Join(root, "memory", parts[2], "memory.limit_in_bytes"))
			}
		}
		_ = f.Close()
	}
	// In a container with its own cgroup namespace the paths are "/".
	files = append(files, filepath.Join(root, "memory.max"), filepath.Join(root, "memory", "memory.limit_in_bytes"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1's "no limit" is 2^63 rounded to pages
			return 0, false
		}
		return n, true
	}
	return 0, false
}
