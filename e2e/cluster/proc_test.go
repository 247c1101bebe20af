package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback ports that were free a moment
// ago. Another process may bind one before the process it is meant for
// does: startFresh and startNATSNodes start again with fresh ports when
// that happens.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n { // each listener stays open until all are picked, so no port comes twice
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// errPortTaken: a process exited before it was ready because a port it
// was given was in use.
var errPortTaken = errors.New("a port it was given is taken")

// readyTimeout bounds how long a process may take to become ready, on a
// busy machine.
const readyTimeout = 60 * time.Second

// proc is one server process the test can kill and start again with the
// same arguments.
type proc struct {
	t     *testing.T
	name  string
	args  []string
	ready string // URL that answers 200 once it serves
	mu    sync.Mutex
	cmd   *exec.Cmd
	out   *tailWriter   // the end of this run's stdout and stderr
	done  chan struct{} // closed when the process has exited
	// exitErr is how it exited, once done is closed.
	exitErr error
}

// start starts the process and waits until it is ready; if it exits first
// or is not ready in time, the test fails with the end of its output.
func (p *proc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

// tryStart starts the process and waits until its ready URL answers 200.
// When the process exits first, or is not ready in time (then it is
// killed), the error says how, with the end of its output, and wraps
// errPortTaken if a port was in use. Nothing of it runs on after an error.
func (p *proc) tryStart() error {
	out := &tailWriter{max: 16 << 10}
	var w io.Writer = out
	if os.Getenv("LIVEIM_TEST_LOG") != "" {
		w = io.MultiWriter(os.Stderr, out)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second // bounds Wait if a child holds the output pipe
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.out, p.done = cmd, out, done
	p.mu.Unlock()
	if p.ready == "" {
		return nil
	}
	err := waitReady(p.ready, done, p.exited)
	if err == nil {
		return nil
	}
	p.kill9()
	err = fmt.Errorf("%s %w\n--- end of its output:\n%s\n--- (LIVEIM_TEST_LOG=1 shows all output)", p.name, err, strings.TrimRight(out.String(), "\n"))
	if out.contains(syscall.EADDRINUSE.Error()) {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// exited says how the process exited; call it once done is closed.
func (p *proc) exited() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitErr == nil {
		return errors.New("exit status 0")
	}
	return p.exitErr
}

// kill9 kills the process at once, as a crash or an OOM kill would.
func (p *proc) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// term stops the process with SIGTERM, as Kubernetes does, and waits for
// a clean exit.
func (p *proc) term() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done, out := p.cmd, p.done, p.out
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		p.mu.Lock()
		err := p.exitErr
		p.mu.Unlock()
		if err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM\n--- end of its output:\n%s", p.name, err, strings.TrimRight(out.String(), "\n"))
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s did not stop on SIGTERM", p.name)
	}
}

// waitReady polls url until it answers 200 and returns nil, or returns
// an error when the process exits first (done is closed; exited says how)
// or readyTimeout passes. A probe in flight ends when the process exits:
// another process may hold the port and never answer.
func waitReady(url string, done <-chan struct{}, exited func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	hc := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probe(ctx, hc, url)
		select {
		case <-done: // also when it answered: it is not running now
			if err == nil {
				return fmt.Errorf("exited (%v) just after %s answered 200", exited(), url)
			}
			return fmt.Errorf("exited (%v) before it was ready at %s", exited(), url)
		default:
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready at %s after %v: %v", url, readyTimeout, err)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// probe GETs url and returns nil if it answers 200.
func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %s", url, resp.Status)
	}
	return nil
}

// startFresh starts the process newProc returns, with ports it picks,
// and kills it when the test ends. A port freePort found free may be
// bound by another process before this one binds it (other tests run in
// parallel); then it starts a new process from newProc, with fresh ports,
// up to 5 times. Any other failure fails the test.
func startFresh(t *testing.T, newProc func() *proc) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := newProc()
		err := p.tryStart()
		if err == nil {
			t.Cleanup(p.kill9)
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("%v\n(attempt %d) starting it again with fresh ports", err, attempt)
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

func (w *tailWriter) contains(s string) bool { return strings.Contains(w.String(), s) }
