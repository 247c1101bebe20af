package ceiling

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/liveim/liveim/bench/latency"
	"github.com/liveim/liveim/internal/procstat"
)

// fleet is the child processes of one run: servers and client workers.
type fleet struct {
	cfg Config

	mu      sync.Mutex // guards servers and workers against kill
	servers []*child
	workers []*child

	unwatch func() bool
}

// newFleet returns an empty fleet whose children are killed if ctx ends.
func newFleet(ctx context.Context, cfg Config) *fleet {
	f := &fleet{cfg: cfg}
	f.unwatch = context.AfterFunc(ctx, f.kill)
	return f
}

func (f *fleet) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range slices.Concat(f.workers, f.servers) {
		c.kill()
	}
}

// close stops the workers, then the servers.
func (f *fleet) close() {
	f.unwatch()
	f.mu.Lock()
	cs := slices.Concat(f.workers, f.servers)
	f.mu.Unlock()
	for _, c := range cs {
		c.stop()
	}
}

// spawn starts a child with j and records it; its ready status is still
// to be read.
func (f *fleet) spawn(name string, j job, server bool) (*child, error) {
	c, err := startChild(f.cfg, name, j)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if server {
		f.servers = append(f.servers, c)
	} else {
		f.workers = append(f.workers, c)
	}
	return c, nil
}

// startNATSServers starts cfg.Servers nats-servers, clustered when more
// than one, and returns their client addresses.
func (f *fleet) startNATSServers(ctx context.Context) ([]string, error) {
	n := f.cfg.Servers
	var addrs, routes []string
	for i := range n {
		c, err := f.spawn(fmt.Sprintf("nats-server %d", i), job{Role: roleNATSServer, Cluster: n > 1, Routes: routes}, true)
		if err != nil {
			return nil, err
		}
		st, err := c.status()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, st.Addr)
		if i == 0 && n > 1 {
			routes = []string{"nats-route://" + st.ClusterAddr}
		}
	}
	if n == 1 {
		return addrs, nil
	}
	err := poll(ctx, 10*time.Second, func() (bool, error) {
		sts, err := callAll(f.servers, cmdReport)
		for _, st := range sts {
			if st.Routes < n-1 {
				return false, err
			}
		}
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("ceiling: nats cluster: %w", err)
	}
	return addrs, nil
}

// startWSServers starts cfg.Servers gobwas/ws servers in mode and returns
// their addresses.
func (f *fleet) startWSServers(mode string) ([]string, error) {
	var addrs []string
	for i := range f.cfg.Servers {
		j := job{Role: roleWSServer, Mode: mode, Rate: f.cfg.Rate, Messages: f.cfg.messages(), Payload: f.cfg.Payload}
		c, err := f.spawn(fmt.Sprintf("ws-server %d", i), j, true)
		if err != nil {
			return nil, err
		}
		st, err := c.status()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, st.Addr)
	}
	return addrs, nil
}

// startWorkers spreads cfg.Members clients evenly over cfg.workers()
// worker processes, all connecting at once, and waits until each has
// connected its share. It returns their summed ready status.
func (f *fleet) startWorkers(tmpl job, addrs []string) (status, error) {
	n := f.cfg.workers()
	var started []*child
	for i, first := 0, 0; i < n; i++ {
		j := tmpl
		j.Addrs, j.First, j.SourceAddrs, j.Payload = addrs, first, f.cfg.SourceAddrs, f.cfg.Payload
		j.Count = f.cfg.Members/n + btoi(i < f.cfg.Members%n)
		first += j.Count
		c, err := f.spawn(fmt.Sprintf("worker %d", i), j, false)
		if err != nil {
			return status{}, err
		}
		started = append(started, c)
	}
	sts := make([]status, len(started))
	for i, c := range started {
		st, err := c.status()
		if err != nil {
			return status{}, err
		}
		sts[i] = st
	}
	total := sum(sts)
	if total.Errors > 0 {
		fmt.Fprintf(os.Stderr, "ceiling: %d clients failed to connect; first error: %s\n", total.Errors, total.FirstError)
	}
	return total, nil
}

// clientTotals returns the workers' counters, summed.
func (f *fleet) clientTotals() (status, error) {
	sts, err := callAll(f.workers, cmdReport)
	return sum(sts), err
}

// awaitServerConns waits until the servers hold want sockets and returns
// each server's status.
func (f *fleet) awaitServerConns(ctx context.Context, want int) ([]status, error) {
	var sts []status
	err := poll(ctx, 30*time.Second, func() (bool, error) {
		var err error
		sts, err = callAll(f.servers, cmdReport)
		return sum(sts).Conns >= want, err
	})
	if err != nil {
		return nil, fmt.Errorf("ceiling: servers hold %d of %d sockets: %w", sum(sts).Conns, want, err)
	}
	return sts, nil
}

// drain polls the workers until done says so or nothing new arrived for
// cfg.Drain, and returns their summed counters.
func (f *fleet) drain(ctx context.Context, done func(status) bool) (status, error) {
	last, lastChange := int64(-1), time.Now()
	for {
		st, err := f.clientTotals()
		if err != nil || done(st) {
			return st, err
		}
		if st.Received != last {
			last, lastChange = st.Received, time.Now()
		} else if time.Since(lastChange) > f.cfg.Drain {
			return st, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// cpuUse is CPU-seconds so far of the servers, of the load generator
// (the workers and this process, which publishes for nats-fanout) and of
// the whole machine.
type cpuUse struct{ server, load, machine float64 }

func (f *fleet) cpu() (cpuUse, error) {
	server, err := sumCPU(pids(f.servers))
	if err != nil {
		return cpuUse{}, err
	}
	load, err := sumCPU(append(pids(f.workers), os.Getpid()))
	if err != nil {
		return cpuUse{}, err
	}
	machine, err := procstat.MachineCPU()
	return cpuUse{server: server, load: load, machine: machine}, err
}

func (u cpuUse) sub(o cpuUse) cpuUse {
	return cpuUse{server: u.server - o.server, load: u.load - o.load, machine: u.machine - o.machine}
}

// sum adds up statuses: counters summed, histograms merged, times and lags
// the largest, Done only when all are.
func sum(sts []status) status {
	t := status{Hist: latency.New(), Done: len(sts) > 0}
	for _, s := range sts {
		t.Conns += s.Conns
		t.Connected += s.Connected
		t.Errors += s.Errors
		t.Sent += s.Sent
		t.Received += s.Received
		t.Probed += s.Probed
		t.Queued += s.Queued
		t.SlowConsumers += s.SlowConsumers
		t.LastNs = max(t.LastNs, s.LastNs)
		t.MaxLagMs = max(t.MaxLagMs, s.MaxLagMs)
		t.Seconds = max(t.Seconds, s.Seconds)
		t.Done = t.Done && s.Done
		t.Hist.Merge(s.Hist)
		if t.FirstError == "" {
			t.FirstError = s.FirstError
		}
	}
	return t
}

// poll calls check every 50 ms until it reports true, fails, or timeout
// passes.
func poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s", timeout)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
