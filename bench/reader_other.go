//go:build !linux

package bench

import (
	"errors"
	"net"
	"time"
)

// errNeedsLinux is what liveim bench answers where it cannot run.
var errNeedsLinux = errors.New("bench: liveim bench needs Linux: its clients are read by epoll loops, and the servers' CPU and memory come from /proc")

// supported reports why liveim bench cannot run here.
func supported() error { return errNeedsLinux }

func newFanoutReader() (*fanoutReader, error) { return nil, errNeedsLinux }

func (r *fanoutReader) add(net.Conn, int) error { return errNeedsLinux }

func (r *fanoutReader) run(<-chan struct{}, time.Duration) {}

func writeFD(int, []byte) (int, error) { return 0, errNeedsLinux }
