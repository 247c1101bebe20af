// Package sockfd takes a socket out of Go's netpoller so an epoll loop of
// our own can own it (the gateway's event loops, the bench's readers). It
// works on Unix systems; elsewhere Detach closes the connection and
// returns ErrUnsupported.
package sockfd

import "errors"

// ErrUnsupported is Detach's error where sockets are not file descriptors
// (Windows).
var ErrUnsupported = errors.New("sockfd: sockets are handed over as file descriptors only on Unix systems")
