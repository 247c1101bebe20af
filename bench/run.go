package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/procstat"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// Result is what a run measured; --json prints it as one object. Fields a
// scenario does not measure stay zero.
type Result struct {
	Scenario                   string  `json:"scenario"`
	Connections                int     `json:"connections"`
	Gateways                   int     `json:"gateways"`
	DeliveriesPerSec           float64 `json:"deliveries_per_sec"`
	DeliveriesPerGatewayCPUSec float64 `json:"deliveries_per_gateway_cpu_sec"`
	P50Ms                      float64 `json:"p50_ms"`
	P99Ms                      float64 `json:"p99_ms"`
	P999Ms                     float64 `json:"p999_ms"`
	RSSBytesPerConn            float64 `json:"rss_bytes_per_conn"`
	HeapBytesPerConn           float64 `json:"heap_bytes_per_conn"`
	// ClusterRSSBytesPerConn is the RSS every server process (gateways,
	// NATS, routers) grew by, per connection.
	ClusterRSSBytesPerConn float64 `json:"cluster_rss_bytes_per_conn"`
	// FrameWait and FrameWrite are the gateways' own times for a room
	// frame in the measured phase (liveim_gateway_room_frame_seconds):
	// from its oldest event's arrival off NATS to the start of the
	// broadcast loop, and the loop to its last socket write. What the
	// clients' latency holds beyond them is the sender's path to the
	// router and back out, the kernel and the load generator.
	FrameWaitP50Ms  float64 `json:"frame_wait_p50_ms,omitempty"`
	FrameWaitP99Ms  float64 `json:"frame_wait_p99_ms,omitempty"`
	FrameWriteP50Ms float64 `json:"frame_write_p50_ms,omitempty"`
	FrameWriteP99Ms float64 `json:"frame_write_p99_ms,omitempty"`
	// CPUMicrosPerMessage is the servers' CPU per message accepted in the
	// measured phase (all processes).
	CPUMicrosPerMessage float64 `json:"cpu_us_per_message,omitempty"`
	// Stored counts the messages the routers appended to their store in
	// the measured phase.
	Stored int `json:"stored"`
	// Unavailable counts the routers' 503 replies and PinsLost the
	// partition pins they lost, over the whole run.
	Unavailable    int     `json:"unavailable"`
	PinsLost       int     `json:"pins_lost"`
	HighLost       int     `json:"high_lost"`
	HighDuplicated int     `json:"high_duplicated"`
	NormalDropped  int     `json:"normal_dropped"`
	LoginsPerSec   float64 `json:"logins_per_sec"`
	// Retries counts logins and joins the clients tried again after a
	// 503; LoginCPUMicros is the servers' CPU per login+join (all
	// processes, connect and idle scenarios).
	Retries        int     `json:"retries"`
	LoginCPUMicros float64 `json:"login_cpu_us,omitempty"`
	// IdleCores is the servers' CPU (all processes, in cores) while the
	// idle scenario's clients only ping, over IdleWindowSeconds;
	// IdleCPUMicrosPerConnSec is the same per connection, in CPU
	// microseconds per second.
	IdleWindowSeconds       float64 `json:"idle_window_seconds,omitempty"`
	IdleCores               float64 `json:"idle_cores,omitempty"`
	IdleCPUMicrosPerConnSec float64 `json:"idle_cpu_us_per_conn_sec,omitempty"`
	// CPUSeconds is the CPU time of every server process during the
	// measured phase; GatewayCPUSeconds that of the gateways holding the
	// clients (with --gateways 1, liveim serve, NATS and router included).
	CPUSeconds        float64 `json:"cpu_seconds"`
	GatewayCPUSeconds float64 `json:"gateway_cpu_seconds"`
	ServerRSSBytes    int64   `json:"server_rss_bytes"`
	// LoadCPUSeconds is the CPU time of the load generator's worker
	// processes in the measured phase of fanout, rooms and c2c.
	LoadCPUSeconds float64 `json:"load_cpu_seconds"`
	// MachineCPUSeconds is all the CPU time the machine spent busy in the
	// same phase (/proc/stat), kernel network work (softirq) included,
	// which no process is charged for.
	MachineCPUSeconds float64 `json:"machine_cpu_seconds"`
	// Sent and Rejected count the messages the load generator sent and
	// those the server answered with an error.
	Sent      int64         `json:"sent"`
	Rejected  int64         `json:"rejected"`
	Errors    int           `json:"errors"`
	Processes []ProcessStat `json:"processes"`
}

// ProcessStat is one server process at the end of a run.
type ProcessStat struct {
	Role       string  `json:"role"` // serve or gateway
	PID        int     `json:"pid"`
	Clients    bool    `json:"clients"` // it holds bench clients
	RSSBytes   int64   `json:"rss_bytes"`
	HeapBytes  int64   `json:"heap_bytes"` // Go heap in use, from its /metrics
	CPUSeconds float64 `json:"cpu_seconds"`
	metrics    samples // its /metrics page
}

// Run runs one benchmark and prints its result to out. It needs Linux.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := supported(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var srv *servers
	if cfg.Target == "" {
		if srv, err = startServers(ctx, self, cfg.Gateways, cfg.Routers, strings.Fields(cfg.GatewayFlags), strings.Fields(cfg.StoreFlags)); err != nil {
			return err
		}
		defer srv.stop()
	} else {
		srv = &servers{urls: []string{cfg.Target}, ops: []string{cfg.TargetHTTP}, pids: []int{cfg.PID}, roles: []string{"target"}, data: cfg.Data}
	}
	app, err := demoapp.Load(srv.data)
	if err != nil {
		return err
	}
	if err := createRooms(ctx, srv.urls[0], app, cfg.Rooms); err != nil {
		return err
	}
	before, err := srv.usage()
	if err != nil {
		return err
	}

	res := Result{Scenario: cfg.scenarioName(), Connections: cfg.Connections, Gateways: len(srv.urls)}
	reading := cfg.Scenario != "idle" && cfg.Scenario != "connect"
	workers, reports, err := startWorkers(self, cfg, srv.clientURLs(), app, reading)
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	if err != nil {
		return err
	}
	var slowest float64
	for _, r := range reports {
		res.Errors += r.Errors
		res.Retries += r.Retries
		slowest = max(slowest, r.Seconds)
		if r.FirstErr != "" && res.Errors > 0 {
			fmt.Fprintln(os.Stderr, "bench: first client error:", r.FirstErr)
		}
	}
	connected := cfg.Connections - res.Errors
	if slowest > 0 {
		res.LoginsPerSec = float64(connected) / slowest
	}
	if loggedIn, err := srv.usage(); err == nil && connected > 0 {
		var cpu float64
		for i, p := range loggedIn {
			cpu += p.CPUSeconds - before[i].CPUSeconds
		}
		res.LoginCPUMicros = cpu * 1e6 / float64(connected)
	}
	// CPU is counted from cpuStart: the start for idle and connect, the
	// first message for the others. Memory is counted from before.
	cpuStart, after := before, []ProcessStat(nil)
	switch cfg.Scenario {
	case "fanout":
		cpuStart, after, err = runFanout(ctx, cfg, srv, app, workers, connected, &res)
	case "rooms", "c2c":
		cpuStart, after, err = runSends(cfg, srv, workers, connected, &res)
	case "idle":
		time.Sleep(cfg.Settle)
		after, err = srv.usage()
		if err == nil {
			err = measureIdle(cfg, srv, after, connected, &res)
		}
	default:
		time.Sleep(cfg.Settle)
		after, err = srv.usage()
	}
	if err != nil {
		return err
	}
	res.Processes = after
	var gwRSS, gwHeap, allRSS int64
	var startPages, endPages []samples
	for i, p := range after {
		cpu := p.CPUSeconds - cpuStart[i].CPUSeconds
		res.CPUSeconds += cpu
		res.ServerRSSBytes += p.RSSBytes
		allRSS += p.RSSBytes - before[i].RSSBytes
		startPages, endPages = append(startPages, cpuStart[i].metrics), append(endPages, p.metrics)
		res.Unavailable += int(p.metrics.sum("liveim_router_requests_total", `code="503"`) - before[i].metrics.sum("liveim_router_requests_total", `code="503"`))
		res.Stored += int(p.metrics.sum("liveim_router_store_seconds_count", `op="AppendMessage"`, `result="ok"`) - cpuStart[i].metrics.sum("liveim_router_store_seconds_count", `op="AppendMessage"`, `result="ok"`))
		res.PinsLost += int(p.metrics.sum("liveim_router_partition_pins_lost_total") - before[i].metrics.sum("liveim_router_partition_pins_lost_total"))
		if p.Clients {
			res.GatewayCPUSeconds += cpu
			gwRSS += p.RSSBytes - before[i].RSSBytes
			gwHeap += p.HeapBytes - before[i].HeapBytes
		}
	}
	if connected > 0 {
		res.RSSBytesPerConn = float64(gwRSS) / float64(connected)
		res.HeapBytesPerConn = float64(gwHeap) / float64(connected)
		res.ClusterRSSBytesPerConn = float64(allRSS) / float64(connected)
	}
	if accepted := res.Sent - res.Rejected; accepted > 0 {
		res.CPUMicrosPerMessage = res.CPUSeconds * 1e6 / float64(accepted)
		const frame = "liveim_gateway_room_frame_seconds"
		wait, write := buckets(frame, `stage="wait"`, startPages, endPages), buckets(frame, `stage="write"`, startPages, endPages)
		res.FrameWaitP50Ms, res.FrameWaitP99Ms = ms(quantile(0.5, wait)), ms(quantile(0.99, wait))
		res.FrameWriteP50Ms, res.FrameWriteP99Ms = ms(quantile(0.5, write)), ms(quantile(0.99, write))
	}
	if res.GatewayCPUSeconds > 0 && res.DeliveriesPerSec > 0 {
		res.DeliveriesPerGatewayCPUSec = res.DeliveriesPerSec * cfg.Duration.Seconds() / res.GatewayCPUSeconds
	}
	return printResult(out, cfg.JSON, res)
}

// ms converts seconds to milliseconds, NaN (no samples) to 0.
func ms(s float64) float64 {
	if math.IsNaN(s) {
		return 0
	}
	return s * 1000
}

// measureIdle reads the servers' CPU over cfg.IdleWindow once the
// clients are idle (they only ping, every 25 s): what idle connections
// cost while nothing happens.
func measureIdle(cfg Config, srv *servers, start []ProcessStat, connected int, res *Result) error {
	time.Sleep(cfg.IdleWindow)
	end, err := srv.usage()
	if err != nil {
		return err
	}
	var cpu float64
	for i, p := range end {
		cpu += p.CPUSeconds - start[i].CPUSeconds
	}
	res.IdleWindowSeconds = cfg.IdleWindow.Seconds()
	res.IdleCores = cpu / cfg.IdleWindow.Seconds()
	if connected > 0 {
		res.IdleCPUMicrosPerConnSec = res.IdleCores * 1e6 / float64(connected)
	}
	return nil
}

func printResult(out io.Writer, asJSON bool, r Result) error {
	if asJSON {
		return json.NewEncoder(out).Encode(r)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	fmt.Fprintf(tw, "connections\t%d (%d failed)\n", r.Connections, r.Errors)
	fmt.Fprintf(tw, "gateways\t%d\n", r.Gateways)
	fmt.Fprintf(tw, "logins/s\t%.0f (%d retried after 503)\n", r.LoginsPerSec, r.Retries)
	if r.LoginCPUMicros > 0 {
		fmt.Fprintf(tw, "server CPU per login+join\t%.0f µs\n", r.LoginCPUMicros)
	}
	if r.IdleWindowSeconds > 0 {
		fmt.Fprintf(tw, "idle server CPU (clients pinging every 25 s)\t%.1f%% of a core over %.0f s: %.2f µs per connection per second\n",
			100*r.IdleCores, r.IdleWindowSeconds, r.IdleCPUMicrosPerConnSec)
	}
	fmt.Fprintf(tw, "RSS / Go heap per connection (gateways with clients)\t%.0f B / %.0f B\n", r.RSSBytesPerConn, r.HeapBytesPerConn)
	fmt.Fprintf(tw, "RSS per connection, every server process (gateways, NATS, routers)\t%.0f B\n", r.ClusterRSSBytesPerConn)
	fmt.Fprintf(tw, "router 503 replies / partition pins lost\t%d / %d\n", r.Unavailable, r.PinsLost)
	fmt.Fprintf(tw, "CPU: all servers / gateways with clients / load workers / machine\t%.2f s / %.2f s / %.2f s / %.2f s\n", r.CPUSeconds, r.GatewayCPUSeconds, r.LoadCPUSeconds, r.MachineCPUSeconds)
	for _, p := range r.Processes {
		fmt.Fprintf(tw, "  %s pid %d%s\tRSS %.1f MiB, heap %.1f MiB, CPU %.2f s\n", p.Role, p.PID,
			map[bool]string{true: " (clients)"}[p.Clients], float64(p.RSSBytes)/(1<<20), float64(p.HeapBytes)/(1<<20), p.CPUSeconds)
	}
	if r.Sent > 0 || r.Scenario == "fanout" {
		fmt.Fprintf(tw, "sent / rejected / stored\t%d / %d / %d\n", r.Sent, r.Rejected, r.Stored)
		fmt.Fprintf(tw, "deliveries/s\t%.0f\n", r.DeliveriesPerSec)
		fmt.Fprintf(tw, "deliveries per gateway CPU-second\t%.0f\n", r.DeliveriesPerGatewayCPUSec)
		fmt.Fprintf(tw, "latency p50 / p99 / p99.9\t%.1f / %.1f / %.1f ms\n", r.P50Ms, r.P99Ms, r.P999Ms)
		fmt.Fprintf(tw, "gateway frame wait p50 / p99 (off NATS to broadcast)\t%.2f / %.2f ms\n", r.FrameWaitP50Ms, r.FrameWaitP99Ms)
		fmt.Fprintf(tw, "gateway broadcast loop p50 / p99 (to the last socket write)\t%.2f / %.2f ms\n", r.FrameWriteP50Ms, r.FrameWriteP99Ms)
		fmt.Fprintf(tw, "server CPU per message accepted\t%.0f µs\n", r.CPUMicrosPerMessage)
		fmt.Fprintf(tw, "HIGH lost / duplicated\t%d / %d\n", r.HighLost, r.HighDuplicated)
		fmt.Fprintf(tw, "NORMAL dropped\t%d\n", r.NormalDropped)
	}
	return tw.Flush()
}

// createRooms makes the rooms the clients join, as an admin of the demo
// app.
func createRooms(ctx context.Context, url string, app demoapp.Info, n int) error {
	cl, err := client.Dial(ctx, url)
	if err != nil {
		return err
	}
	defer cl.Close()
	cr := auth.Issue(app.AppID, app.AppKey, "bench-admin", auth.RoleAdmin, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
	if _, err := cl.Login(ctx, client.Login{AppID: app.AppID, UserID: "bench-admin",
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		return fmt.Errorf("bench: admin login: %w", err)
	}
	for i := 0; i < n; {
		_, err := cl.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: roomName(i), GroupName: roomName(i)})
		switch {
		case errors.Is(err, liveimpb.ErrTooFast) || errors.Is(err, liveimpb.ErrUnavailable):
			// Over the session's request rate (or a router busy): wait as
			// an SDK would, then try again.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		case err != nil:
			return fmt.Errorf("bench: create %s: %w", roomName(i), err)
		default:
			i++
		}
	}
	return nil
}

// servers are the processes a run measures.
type servers struct {
	urls  []string
	ops   []string // internal listeners (host:port), for /metrics
	pids  []int
	roles []string
	data  string
	cmds  []*exec.Cmd
	dir   string
}

// clientURLs are the gateways the bench clients use: with extra gateway
// processes, only those, so their figures are a gateway's alone, as in a
// gateway pod; liveim serve then holds NATS and the router.
func (s *servers) clientURLs() []string {
	if len(s.urls) > 1 {
		return s.urls[1:]
	}
	return s.urls
}

// usage reads every server process from /proc and its Go heap from its
// /metrics.
func (s *servers) usage() ([]ProcessStat, error) {
	out := make([]ProcessStat, len(s.pids))
	for i, pid := range s.pids {
		r, err1 := procstat.RSS(pid)
		c, err2 := procstat.CPU(pid)
		m, err3 := scrape(s.ops[i])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		clients := s.roles[i] == "gateway" || (len(s.urls) == 1 && s.roles[i] != "router")
		out[i] = ProcessStat{Role: s.roles[i], PID: pid, Clients: clients, RSSBytes: r,
			HeapBytes: int64(m["go_memstats_heap_inuse_bytes"]), CPUSeconds: c, metrics: m}
	}
	return out, nil
}

func (s *servers) stop() {
	for i := len(s.cmds) - 1; i >= 0; i-- {
		_ = s.cmds[i].Process.Signal(os.Interrupt)
		_ = s.cmds[i].Wait()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServers runs `liveim serve` and gateways-1 `liveim gateway`
// processes on its embedded NATS, on a temp data dir.
func startServers(ctx context.Context, self string, gateways, routers int, extra, store []string) (*servers, error) {
	dir, err := os.MkdirTemp("", "liveim-bench-")
	if err != nil {
		return nil, err
	}
	s := &servers{dir: dir, data: filepath.Join(dir, "data")}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// The NATS passwords exist before serve starts, so the extra gateways
	// started beside it can read theirs at once.
	if err := os.MkdirAll(s.data, 0o700); err != nil {
		return nil, err
	}
	if _, _, err := natsserver.EnsurePasswords(s.data); err != nil {
		return nil, err
	}
	// No server-side limit may shape a benchmark: rates, bursts and
	// per-address caps are lifted on every gateway.
	unlimited := []string{"--log-level", "error", "--send-rate", "1000000", "--send-burst", "1000000",
		"--max-conns-per-ip", "-1", "--upgrade-rate-per-ip", "-1", "--max-pending", "-1", "--max-pending-per-ip", "-1", "--request-rate", "1000000", "--request-burst", "1000000"}
	for i := range gateways {
		addr, err := freeAddr()
		if err != nil {
			s.stop()
			return nil, err
		}
		opsAddr, err := freeAddr()
		if err != nil {
			s.stop()
			return nil, err
		}
		args := []string{"serve", "--data", s.data, "--nats-listen", natsAddr}
		if i > 0 {
			args = []string{"gateway", "--nats", "nats://" + natsAddr, "--nats-user", subject.GatewayUser,
				"--nats-password-file", filepath.Join(s.data, natsserver.GatewayPasswordFile)}
		}
		args = append(append(args, "--addr", addr, "--http-addr", opsAddr), unlimited...)
		if i == 0 {
			args = append(args, store...) // after the limits: store flags may set --log-level too
		}
		args = append(args, extra...)
		if err := s.start(ctx, self, args, opsAddr, "ws://"+addr+"/ws", "http://"+addr+"/healthz"); err != nil {
			return nil, err
		}
	}
	// Routers beyond serve's own share its NATS and its store (ScyllaDB:
	// Config.Validate saw to it).
	for i := 1; i < routers; i++ {
		opsAddr, err := freeAddr()
		if err != nil {
			s.stop()
			return nil, err
		}
		args := append([]string{"router", "--id", fmt.Sprintf("bench-router-%d", i), "--nats", "nats://" + natsAddr, "--nats-user", subject.RouterUser,
			"--nats-password-file", filepath.Join(s.data, natsserver.RouterPasswordFile), "--http-addr", opsAddr, "--log-level", "error"}, store...)
		if err := s.start(ctx, self, args, opsAddr, "", "http://"+opsAddr+"/readyz"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// start runs `self args...` (args[0] is its role) and waits until health
// answers 200; url is its WebSocket URL when it serves clients. On an
// error every server started is stopped.
func (s *servers) start(ctx context.Context, self string, args []string, opsAddr, url, health string) error {
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		s.stop()
		return err
	}
	s.cmds = append(s.cmds, cmd)
	s.pids = append(s.pids, cmd.Process.Pid)
	if url != "" {
		s.urls = append(s.urls, url)
	}
	s.ops = append(s.ops, opsAddr)
	s.roles = append(s.roles, args[0])
	if err := waitHealthy(ctx, health); err != nil {
		s.stop()
		return err
	}
	return nil
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: %s not healthy", url)
}

// worker is one `liveim bench-worker` process.
type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// line reads the worker's next line.
func (w *worker) line() (string, error) {
	l, err := w.out.ReadString('\n')
	return strings.TrimSpace(l), err
}

// workersCPU is the CPU time the workers used so far, in seconds.
func workersCPU(workers []*worker) float64 {
	var total float64
	for _, w := range workers {
		c, _ := procstat.CPU(w.cmd.Process.Pid)
		total += c
	}
	return total
}

func (w *worker) stop() {
	_ = w.stdin.Close()
	_ = w.cmd.Wait()
}

// startWorkers spreads the clients over worker processes and waits until
// each has connected its share.
func startWorkers(self string, cfg Config, urls []string, app demoapp.Info, read bool) ([]*worker, []report, error) {
	var workers []*worker
	for first := 0; first < cfg.Connections; first += cfg.PerWorker {
		j := job{URLs: urls, AppID: app.AppID, AppKey: app.AppKey, First: first, Count: min(cfg.PerWorker, cfg.Connections-first),
			Rooms: cfg.Rooms, SourceIP: 2 + (len(workers)*50)%200, Read: read, NoJoin: cfg.Scenario == "connect",
			Dialers: cfg.Concurrency, ReadInterval: cfg.ReadInterval}
		cmd := exec.Command(self, "bench-worker")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return workers, nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return workers, nil, err
		}
		if err := cmd.Start(); err != nil {
			return workers, nil, err
		}
		w := &worker{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
		workers = append(workers, w)
		b, _ := json.Marshal(j)
		if _, err := fmt.Fprintf(stdin, "%s\n", b); err != nil {
			return workers, nil, err
		}
	}
	var reports []report
	for _, w := range workers { // each writes its line once all its clients are in
		line, err := w.line()
		var r report
		if err != nil || json.Unmarshal([]byte(line), &r) != nil {
			return workers, nil, fmt.Errorf("bench: worker said %q (%v)", line, err)
		}
		reports = append(reports, r)
	}
	return workers, reports, nil
}
