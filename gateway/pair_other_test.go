//go:build !unix

package gateway

import (
	"net"
	"testing"
)

// socketPair returns the two ends of a new loopback TCP connection:
// server for the gateway, client for the test. sndbuf > 0 sets the
// kernel buffers between them.
func socketPair(tb testing.TB, sndbuf int) (server, client net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		tb.Fatal(err)
	}
	setBuffers(tb, server, client, sndbuf)
	return server, client
}
