//go:build !linux

package ceiling

import "errors"

// errNeedsLinux is what liveim ceiling answers where it cannot run.
var errNeedsLinux = errors.New("ceiling: liveim ceiling needs Linux: its servers and clients are epoll loops, and CPU time comes from /proc")

// supported reports why liveim ceiling cannot run here.
func supported() error { return errNeedsLinux }

// readChunk is the most a poller reads from one socket at a time.
const readChunk = 64 << 10

// The poller and its sockets exist only on Linux (poller_linux.go); these
// stand-ins let the rest of the package build, and Run and RunWorker
// refuse to start before any is made.

type pollee interface {
	base() *sock
	onRead(buf []byte) bool
}

type poller struct{ done chan struct{} }

func newPoller() (*poller, error) { return nil, errNeedsLinux }

func (l *poller) add(pollee) error { return errNeedsLinux }

func (l *poller) run(<-chan struct{}) {}

type sock struct {
	fd      int
	partial []byte
}

func (s *sock) write([]byte) (bool, error) { return false, errNeedsLinux }

func (s *sock) fill([]byte) ([]byte, bool) { return nil, false }

func (s *sock) keep([]byte) {}

func (s *sock) close() {}
