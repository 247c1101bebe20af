//go:build unix

package check

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes a command the leader of a new process group and
// has its cancellation kill the whole group: the go command's compilers
// and linkers with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
