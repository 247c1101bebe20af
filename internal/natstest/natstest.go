// Package natstest gives tests a real NATS server: an in-process
// nats-server with JetStream (internal/natsserver, as `liveim serve`
// embeds it) in the test's temporary directory. Only tests import it.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/internal/natsserver"
)

// Connect starts a server for tb and returns a connection to it; both
// are closed when tb ends.
func Connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	ns, err := natsserver.Start(natsserver.Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
