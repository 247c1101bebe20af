package ceiling

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/bench/latency"
)

// Result is what a run measured; --json prints it as one object. For
// ws-echo a delivery is a round trip and a message a frame sent.
type Result struct {
	Kind      string  `json:"kind"`
	Members   int     `json:"members"`
	Connected int     `json:"connected"`
	Servers   int     `json:"servers"`
	Workers   int     `json:"workers"`
	Rate      float64 `json:"rate,omitempty"`
	// Messages is how many messages were sent to the members (ws-echo:
	// frames sent); Expected is how many deliveries that should make
	// (connected members × messages); Missing is Expected - Deliveries.
	Messages   int64 `json:"messages"`
	Expected   int64 `json:"expected"`
	Deliveries int64 `json:"deliveries"`
	Missing    int64 `json:"missing"`
	// Seconds is the window the rates are over: from the first send to the
	// last receipt (ws-echo: while clients echoed).
	Seconds          float64 `json:"seconds"`
	OfferedPerSec    float64 `json:"offered_per_sec,omitempty"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// ServerCPUSeconds is the server processes' user+system CPU over the
	// run; LoadCPUSeconds the load generator's (workers and publisher).
	ServerCPUSeconds          float64 `json:"server_cpu_seconds"`
	DeliveriesPerServerCPUSec float64 `json:"deliveries_per_server_cpu_sec"`
	LoadCPUSeconds            float64 `json:"load_cpu_seconds"`
	// MachineCPUSeconds is all CPU the machine spent busy over the run,
	// softirq included; what it holds beyond server and load is softirq
	// work ksoftirqd did, or other processes' work.
	MachineCPUSeconds float64 `json:"machine_cpu_seconds"`
	// Latency from send to receipt (ws-echo: round trip), in ms.
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	// MaxSendLagMs is how far behind schedule the sender got.
	MaxSendLagMs float64 `json:"max_send_lag_ms"`
	// QueuedWrites counts ws writes a full socket made wait for EPOLLOUT.
	QueuedWrites int64 `json:"queued_writes,omitempty"`
	// SlowConsumers counts connections nats-server cut as slow consumers.
	SlowConsumers int64 `json:"slow_consumers,omitempty"`
	ConnectErrors int   `json:"connect_errors"`
}

// Run measures the ceiling cfg.Kind names and prints it to out. It needs
// Linux.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := supported(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var res Result
	var err error
	switch cfg.withDefaults().Kind {
	case KindNATSFanout:
		res, err = NATSFanout(ctx, cfg)
	case KindWSBroadcast:
		res, err = WSBroadcast(ctx, cfg)
	case KindWSEcho:
		res, err = WSEcho(ctx, cfg)
	}
	if err != nil {
		return err
	}
	return printResult(out, cfg.JSON, res)
}

// NATSFanout measures a bare nats-server delivering cfg.Rate messages a
// second, for cfg.Duration, to cfg.Members raw core-NATS subscriber
// connections on one subject.
func NATSFanout(ctx context.Context, cfg Config) (Result, error) {
	cfg.Kind = KindNATSFanout
	cfg, err := cfg.prepare()
	if err != nil {
		return Result{}, err
	}
	f := newFleet(ctx, cfg)
	defer f.close()
	addrs, err := f.startNATSServers(ctx)
	if err != nil {
		return Result{}, err
	}
	ready, err := f.startWorkers(job{Role: roleNATSClients}, addrs)
	if err != nil {
		return Result{}, err
	}
	res := newResult(cfg, ready)
	nc, err := nats.Connect("nats://"+addrs[0], nats.Name("ceiling-publisher"), nats.FlusherTimeout(10*time.Minute))
	if err != nil {
		return res, fmt.Errorf("ceiling: publisher: %w", err)
	}
	defer nc.Close()
	probe := probePayload(cfg.Payload)
	if err := f.awaitProbes(ctx, res.Connected, func() error {
		if err := nc.Publish(natsSubject, probe); err != nil {
			return err
		}
		return nc.Flush()
	}); err != nil {
		return res, err
	}
	if _, err := callAll(f.workers, cmdReset); err != nil {
		return res, err
	}
	before, err := f.cpu()
	if err != nil {
		return res, err
	}
	payload := make([]byte, cfg.Payload)
	p, err := pace(ctx.Done(), cfg.messages(), cfg.Rate, func(stamp int64, _ time.Duration) error {
		return nc.Publish(natsSubject, stampPayload(payload, stamp))
	})
	if err != nil {
		return res, fmt.Errorf("ceiling: publish: %w", err)
	}
	if err := flushSlow(ctx, nc); err != nil {
		return res, fmt.Errorf("ceiling: publish: %w", err)
	}
	want := int64(res.Connected) * int64(p.sent)
	st, err := f.drain(ctx, func(st status) bool { return st.Received >= want })
	if err != nil {
		return res, err
	}
	after, err := f.cpu()
	if err != nil {
		return res, err
	}
	srv, err := callAll(f.servers, cmdReport)
	if err != nil {
		return res, err
	}
	res.SlowConsumers = sum(srv).SlowConsumers
	res.MaxSendLagMs = ms(p.maxLag)
	res.record(int64(p.sent), want, st, fanoutWindow(p.start, p.elapsed, st), after.sub(before))
	return res, nil
}

// flushSlow waits until the server has read everything published: a
// server that cannot keep up answers the flush's PING only after the
// backlog ahead of it, so allow minutes.
func flushSlow(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return nc.FlushWithContext(ctx)
}

// awaitProbes publishes probes until every subscriber has seen one, so
// measuring starts with every subscription known to every server.
func (f *fleet) awaitProbes(ctx context.Context, want int, publish func() error) error {
	var probed int
	err := poll(ctx, 30*time.Second, func() (bool, error) {
		if err := publish(); err != nil {
			return false, err
		}
		st, err := f.clientTotals()
		probed = st.Probed
		return probed >= want, err
	})
	if err != nil {
		return fmt.Errorf("ceiling: %d of %d subscribers reached: %w", probed, want, err)
	}
	return nil
}

// WSBroadcast measures bare gobwas/ws servers writing one frame per
// message, cfg.Rate messages a second for cfg.Duration, to each of
// cfg.Members WebSocket sockets.
func WSBroadcast(ctx context.Context, cfg Config) (Result, error) {
	cfg.Kind = KindWSBroadcast
	cfg, err := cfg.prepare()
	if err != nil {
		return Result{}, err
	}
	f := newFleet(ctx, cfg)
	defer f.close()
	addrs, err := f.startWSServers(modeBroadcast)
	if err != nil {
		return Result{}, err
	}
	ready, err := f.startWorkers(job{Role: roleWSClients, Mode: modeBroadcast}, addrs)
	if err != nil {
		return Result{}, err
	}
	res := newResult(cfg, ready)
	held, err := f.awaitServerConns(ctx, res.Connected)
	if err != nil {
		return res, err
	}
	before, err := f.cpu()
	if err != nil {
		return res, err
	}
	start := time.Now()
	if _, err := callAll(f.servers, cmdStart); err != nil {
		return res, err
	}
	var srv []status
	if err := poll(ctx, 30*cfg.Duration+time.Minute, func() (bool, error) {
		srv, err = callAll(f.servers, cmdReport)
		return sum(srv).Done, err
	}); err != nil {
		return res, fmt.Errorf("ceiling: broadcast: %w", err)
	}
	var want int64
	for i, s := range srv {
		want += int64(held[i].Conns) * s.Sent
	}
	st, err := f.drain(ctx, func(st status) bool { return st.Received >= want })
	if err != nil {
		return res, err
	}
	after, err := f.cpu()
	if err != nil {
		return res, err
	}
	total := sum(srv)
	res.MaxSendLagMs, res.QueuedWrites = total.MaxLagMs, total.Queued
	sent := srv[0].Sent
	res.record(sent, want, st, fanoutWindow(start, time.Duration(total.Seconds*1e9), st), after.sub(before))
	return res, nil
}

// WSEcho measures bare gobwas/ws servers echoing: cfg.Members clients
// each send a small masked frame and wait for its echo, in a loop, for
// cfg.Duration.
func WSEcho(ctx context.Context, cfg Config) (Result, error) {
	cfg.Kind = KindWSEcho
	cfg, err := cfg.prepare()
	if err != nil {
		return Result{}, err
	}
	f := newFleet(ctx, cfg)
	defer f.close()
	addrs, err := f.startWSServers(modeEcho)
	if err != nil {
		return Result{}, err
	}
	ready, err := f.startWorkers(job{Role: roleWSClients, Mode: modeEcho}, addrs)
	if err != nil {
		return Result{}, err
	}
	res := newResult(cfg, ready)
	res.Rate = 0
	if _, err := f.awaitServerConns(ctx, res.Connected); err != nil {
		return res, err
	}
	before, err := f.cpu()
	if err != nil {
		return res, err
	}
	start := time.Now()
	if _, err := callAll(f.workers, cmdStart); err != nil {
		return res, err
	}
	if err := sleep(ctx, cfg.Duration); err != nil {
		return res, err
	}
	if _, err := callAll(f.workers, cmdStop); err != nil {
		return res, err
	}
	elapsed := time.Since(start).Seconds()
	st, err := f.drain(ctx, func(st status) bool { return st.Received >= st.Sent })
	if err != nil {
		return res, err
	}
	after, err := f.cpu()
	if err != nil {
		return res, err
	}
	res.record(st.Sent, st.Sent, st, elapsed, after.sub(before))
	res.OfferedPerSec = 0
	return res, nil
}

// newResult starts a result once the clients are connected.
func newResult(cfg Config, ready status) Result {
	return Result{
		Kind: cfg.Kind, Members: cfg.Members, Connected: ready.Connected, ConnectErrors: ready.Errors,
		Servers: cfg.Servers, Workers: cfg.workers(), Rate: cfg.Rate,
		OfferedPerSec: float64(ready.Connected) * cfg.Rate,
	}
}

// fanoutWindow is the time from the first send to the last receipt, and
// at least the time sending took.
func fanoutWindow(start time.Time, sending time.Duration, st status) float64 {
	w := sending.Seconds()
	if st.LastNs > 0 {
		w = max(w, float64(st.LastNs-start.UnixNano())/1e9)
	}
	return w
}

// record fills in the figures of a finished run.
func (r *Result) record(messages, want int64, st status, window float64, cpu cpuUse) {
	r.Messages, r.Expected, r.Deliveries, r.Missing = messages, want, st.Received, want-st.Received
	r.Seconds = window
	if window > 0 {
		r.DeliveriesPerSec = float64(st.Received) / window
	}
	r.ServerCPUSeconds, r.LoadCPUSeconds, r.MachineCPUSeconds = cpu.server, cpu.load, cpu.machine
	if cpu.server > 0 {
		r.DeliveriesPerServerCPUSec = float64(st.Received) / cpu.server
	}
	r.P50Ms, r.P99Ms, r.P999Ms = st.Hist.Percentile(0.5), st.Hist.Percentile(0.99), st.Hist.Percentile(0.999)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// fmtMs formats a latency percentile; the histogram's last bucket holds
// everything from ~100 s up, so it prints as a lower bound.
func fmtMs(v float64) string {
	if last := latency.BucketMs(latency.Buckets - 2); v > last {
		return fmt.Sprintf(">%.0f", last)
	}
	return fmt.Sprintf("%.2f", v)
}

func printResult(out io.Writer, asJSON bool, r Result) error {
	if asJSON {
		return json.NewEncoder(out).Encode(r)
	}
	what, per := "deliveries", "delivery"
	if r.Kind == KindWSEcho {
		what, per = "round trips", "round trip"
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kind\t%s\n", r.Kind)
	fmt.Fprintf(tw, "members\t%d connected (%d failed), %d server(s), %d worker(s)\n", r.Connected, r.ConnectErrors, r.Servers, r.Workers)
	if r.Kind != KindWSEcho {
		fmt.Fprintf(tw, "messages\t%d at %g/s\n", r.Messages, r.Rate)
	}
	fmt.Fprintf(tw, "%s\t%d of %d (%d missing) in %.2f s\n", what, r.Deliveries, r.Expected, r.Missing, r.Seconds)
	fmt.Fprintf(tw, "%s/s\t%.0f", what, r.DeliveriesPerSec)
	if r.OfferedPerSec > 0 {
		fmt.Fprintf(tw, " (offered %.0f)", r.OfferedPerSec)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "server CPU\t%.2f s\n", r.ServerCPUSeconds)
	fmt.Fprintf(tw, "%s per server CPU-second\t%.0f\n", what, r.DeliveriesPerServerCPUSec)
	if r.DeliveriesPerServerCPUSec > 0 {
		fmt.Fprintf(tw, "server CPU per %s\t%.2f µs\n", per, 1e6/r.DeliveriesPerServerCPUSec)
	}
	fmt.Fprintf(tw, "load generator CPU\t%.2f s\n", r.LoadCPUSeconds)
	fmt.Fprintf(tw, "machine CPU (all processes, softirq)\t%.2f s of %.0f\n", r.MachineCPUSeconds, r.Seconds*float64(runtime.NumCPU()))
	fmt.Fprintf(tw, "latency p50 / p99 / p99.9\t%s / %s / %s ms\n", fmtMs(r.P50Ms), fmtMs(r.P99Ms), fmtMs(r.P999Ms))
	if r.Kind != KindWSEcho {
		fmt.Fprintf(tw, "max send lag\t%.1f ms\n", r.MaxSendLagMs)
	}
	if r.Kind == KindNATSFanout {
		fmt.Fprintf(tw, "slow consumers\t%d\n", r.SlowConsumers)
	}
	if r.Kind == KindWSBroadcast {
		fmt.Fprintf(tw, "queued writes\t%d\n", r.QueuedWrites)
	}
	return tw.Flush()
}
