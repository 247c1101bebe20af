package router

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/storage/pebble"
)

// TestRunFailsCleanly: a router whose setup fails returns the error and
// leaves no worker or other goroutine behind.
func TestRunFailsCleanly(t *testing.T) {
	ns, err := natsserver.Start(natsserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{}, nc, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err == nil {
		t.Fatal("Run on a closed NATS connection returned nil")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after a failed Run, %d before", n, before)
	}
}
