package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	HighLost                   int     `json:"high_lost"`
	HighDuplicated             int     `json:"high_duplicated"`
	NormalDropped              int     `json:"normal_dropped"`
	LoginsPerSec               float64 `json:"logins_per_sec"`
	CPUSeconds                 float64 `json:"cpu_seconds"`
	ServerRSSBytes             int64   `json:"server_rss_bytes"`
	Errors                     int     `json:"errors"`
}

// Run runs one benchmark and prints its result to out.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
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
		if srv, err = startServers(ctx, self, cfg.Gateways); err != nil {
			return err
		}
		defer srv.stop()
	} else {
		srv = &servers{urls: []string{cfg.Target}, pids: []int{cfg.PID}, data: cfg.Data}
	}
	app, err := demoapp.Load(srv.data)
	if err != nil {
		return err
	}
	if err := createRooms(ctx, srv.urls[0], app, cfg.Rooms); err != nil {
		return err
	}
	rssBefore, cpuBefore, err := srv.usage()
	if err != nil {
		return err
	}

	res := Result{Scenario: cfg.Scenario, Connections: cfg.Connections, Gateways: len(srv.urls)}
	fanout := cfg.Scenario == "fanout"
	workers, reports, err := startWorkers(self, cfg, srv.urls, app, fanout)
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
		slowest = max(slowest, r.Seconds)
		if r.FirstErr != "" && res.Errors > 0 {
			fmt.Fprintln(os.Stderr, "bench: first client error:", r.FirstErr)
		}
	}
	connected := cfg.Connections - res.Errors
	if slowest > 0 {
		res.LoginsPerSec = float64(connected) / slowest
	}
	if fanout {
		if err := runFanout(ctx, cfg, srv, app, workers, connected, &res); err != nil {
			return err
		}
		return printResult(out, cfg.JSON, res)
	}
	time.Sleep(cfg.Settle)
	rssAfter, cpuAfter, err := srv.usage()
	if err != nil {
		return err
	}
	res.CPUSeconds = cpuAfter - cpuBefore
	res.ServerRSSBytes = rssAfter
	if connected > 0 {
		res.RSSBytesPerConn = float64(rssAfter-rssBefore) / float64(connected)
	}
	return printResult(out, cfg.JSON, res)
}

func printResult(out io.Writer, asJSON bool, r Result) error {
	if asJSON {
		return json.NewEncoder(out).Encode(r)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	fmt.Fprintf(tw, "connections\t%d (%d failed)\n", r.Connections, r.Errors)
	fmt.Fprintf(tw, "gateways\t%d\n", r.Gateways)
	fmt.Fprintf(tw, "logins/s\t%.0f\n", r.LoginsPerSec)
	fmt.Fprintf(tw, "server RSS\t%.1f MiB\n", float64(r.ServerRSSBytes)/(1<<20))
	fmt.Fprintf(tw, "RSS per connection\t%.0f B\n", r.RSSBytesPerConn)
	fmt.Fprintf(tw, "server CPU\t%.2f s\n", r.CPUSeconds)
	if r.Scenario == "fanout" {
		fmt.Fprintf(tw, "deliveries/s\t%.0f\n", r.DeliveriesPerSec)
		fmt.Fprintf(tw, "deliveries per server CPU-second\t%.0f\n", r.DeliveriesPerGatewayCPUSec)
		fmt.Fprintf(tw, "latency p50 / p99 / p99.9\t%.1f / %.1f / %.1f ms\n", r.P50Ms, r.P99Ms, r.P999Ms)
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
	cr := auth.Issue(app.AppID, app.AppKey, "bench-admin", auth.RoleAdmin, "b", time.Hour, time.Now())
	if _, err := cl.Login(ctx, client.Login{AppID: app.AppID, UserID: "bench-admin",
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		return fmt.Errorf("bench: admin login: %w", err)
	}
	for i := range n {
		if _, err := cl.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: roomName(i), GroupName: roomName(i)}); err != nil {
			return fmt.Errorf("bench: create %s: %w", roomName(i), err)
		}
	}
	return nil
}

// servers are the processes a run measures.
type servers struct {
	urls []string
	pids []int
	data string
	cmds []*exec.Cmd
	dir  string
}

func (s *servers) usage() (rss int64, cpu float64, err error) {
	for _, pid := range s.pids {
		r, err1 := procRSS(pid)
		c, err2 := procCPU(pid)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, err
		}
		rss, cpu = rss+r, cpu+c
	}
	return rss, cpu, nil
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
func startServers(ctx context.Context, self string, gateways int) (*servers, error) {
	dir, err := os.MkdirTemp("", "liveim-bench-")
	if err != nil {
		return nil, err
	}
	s := &servers{dir: dir, data: filepath.Join(dir, "data")}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	for i := range gateways {
		addr, err := freeAddr()
		if err != nil {
			s.stop()
			return nil, err
		}
		args := []string{"serve", "--data", s.data, "--addr", addr, "--nats-listen", natsAddr, "--log-level", "error", "--send-rate", "1000000", "--send-burst", "1000000"}
		if i > 0 {
			args = []string{"gateway", "--nats", "nats://" + natsAddr, "--addr", addr, "--log-level", "error", "--send-rate", "1000000", "--send-burst", "1000000"}
		}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			s.stop()
			return nil, err
		}
		s.cmds = append(s.cmds, cmd)
		s.pids = append(s.pids, cmd.Process.Pid)
		s.urls = append(s.urls, "ws://"+addr+"/ws")
		if err := waitHealthy(ctx, "http://"+addr+"/healthz"); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
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
			Rooms: cfg.Rooms, SourceIP: 2 + (len(workers)*50)%200, Read: read}
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
