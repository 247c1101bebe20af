//go:build windows

package e2e

import "syscall"

// setRecvBuffer sets a socket's receive buffer (SO_RCVBUF) before it
// connects, so the window it announces stays small.
func setRecvBuffer(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
