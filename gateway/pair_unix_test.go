//go:build unix

package gateway

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// socketPair returns the two ends of a new Unix stream socket pair as
// net.Conns: server for the gateway, client for the test. sndbuf > 0
// sets the kernel buffers between them.
func socketPair(tb testing.TB, sndbuf int) (server, client net.Conn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f) // a duplicate of fd
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
	setBuffers(tb, conns[0], conns[1], sndbuf)
	return conns[0], conns[1]
}
