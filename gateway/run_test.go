package gateway

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/natstest"
)

// TestRunFailsCleanly: a gateway whose setup fails (here its NATS
// connection is closed, so its inbox cannot be subscribed) returns the
// error and leaves nothing behind: no goroutine, no listening socket.
func TestRunFailsCleanly(t *testing.T) {
	nc := natstest.Connect(t)
	g, err := New(Config{Addr: "127.0.0.1:0"}, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Run(ctx); err == nil {
		t.Fatal("Run on a closed NATS connection returned nil")
	}
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Fatal("the gateway still listens after a failed Run")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after a failed Run, %d before", n, before)
	}
}
