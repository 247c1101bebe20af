package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/demoapp"
)

// runServeToExit runs `liveim serve` and returns its exit error and
// stderr; it fails the test if serve is still running after 30 s.
func runServeToExit(t *testing.T, dataDir string) (error, string) {
	t.Helper()
	cmd := exec.Command(liveimBin, "serve", "--data", dataDir, "--addr", freeAddr(t), "--nats-listen", freeAddr(t), "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err, stderr.String()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("liveim serve kept running on a damaged store; stderr:\n%s", stderr.String())
		return nil, ""
	}
}

// TestServeRefusesDamagedStore: a data directory whose store went missing
// or lost its manifest must not start as an empty store (JetStream would
// replay old HIGH messages beside seqnums handed out again); serve refuses
// and says why. A store that is only partly there is refused the same way.
func TestServeRefusesDamagedStore(t *testing.T) {
	damage := map[string]func(t *testing.T, dir string){
		"store directory removed": func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "store")); err != nil {
				t.Fatal(err)
			}
		},
		"manifest removed": func(t *testing.T, dir string) {
			files, _ := filepath.Glob(filepath.Join(dir, "store", "MANIFEST-*"))
			cur, _ := filepath.Glob(filepath.Join(dir, "store", "CURRENT"))
			if len(files) == 0 {
				t.Fatal("no MANIFEST in the store")
			}
			for _, f := range append(files, cur...) {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		},
		"another store put in its place": func(t *testing.T, dir string) {
			other := t.TempDir()
			srv := startServe(t, other, freeAddr(t), freeAddr(t))
			stopServe(t, srv)
			if err := os.RemoveAll(filepath.Join(dir, "store")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(other, "store"), filepath.Join(dir, "store")); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damageIt := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			srv := startServe(t, dir, freeAddr(t), freeAddr(t))
			stopServe(t, srv)
			damageIt(t, dir)
			err, stderr := runServeToExit(t, dir)
			if err == nil {
				t.Fatalf("serve exited 0 on a damaged store; stderr:\n%s", stderr)
			}
			if !strings.Contains(stderr, "store") || !strings.Contains(stderr, "refus") {
				t.Fatalf("serve did not say what is wrong:\n%s", stderr)
			}
		})
	}
}

// TestServeTrustsTheStoreOverAppJSON: when app.json and the store
// disagree on the demo app's key, serve warns and rewrites app.json from
// the store, so `liveim token` issues tokens that work.
func TestServeTrustsTheStoreOverAppJSON(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, dir, freeAddr(t), freeAddr(t))
	stopServe(t, srv)
	info, err := demoapp.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := info
	stale.AppKey = "stale-key-from-an-old-backup"
	b, _ := json.Marshal(stale)
	if err := os.WriteFile(filepath.Join(dir, demoapp.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(liveimBin, "serve", "--data", dir, "--addr", addr, "--nats-listen", freeAddr(t), "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/readyz", 30*time.Second)
	got, err := demoapp.Load(dir)
	if err != nil || got.AppKey != info.AppKey {
		t.Fatalf("app.json after start: %+v, %v; want the store's key back", got, err)
	}
	if !strings.Contains(stderr.String(), "app.json") {
		t.Fatalf("no warning about app.json:\n%s", stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer a process may write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
