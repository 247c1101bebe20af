//go:build !unix

package sockfd

import (
	"net"
)

// Detach closes conn and returns ErrUnsupported: a socket is handed over
// as a file descriptor only on Unix systems.
func Detach(conn net.Conn) (int, error) {
	_ = conn.Close()
	return -1, ErrUnsupported
}
