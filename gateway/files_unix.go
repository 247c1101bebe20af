//go:build unix

package gateway

import (
	"math"
	"syscall"
)

// openFileLimit returns the process's open-file limit (RLIMIT_NOFILE),
// or 0 when it is unknown or too large to matter (unlimited).
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return 0
	}
	return int(rl.Cur)
}
