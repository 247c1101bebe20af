package ceiling

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/liveim/liveim/bench/latency"
)

// Roles a child process can play.
const (
	roleNATSServer  = "nats-server"
	roleNATSClients = "nats-clients"
	roleWSServer    = "ws-server"
	roleWSClients   = "ws-clients"
)

// Modes of the WebSocket roles.
const (
	modeBroadcast = "broadcast"
	modeEcho      = "echo"
)

// Commands the parent sends a child, one a line; each gets one status
// line back. EOF on stdin ends the child.
const (
	cmdReport = "report" // counters so far
	cmdReset  = "reset"  // clients: zero the delivery counters
	cmdStart  = "start"  // ws-server: start broadcasting; ws-clients (echo): start echoing
	cmdStop   = "stop"   // ws-clients (echo): send no new frames
)

// job is the first line a child reads: what to be.
type job struct {
	Role string `json:"role"`
	// Mode is broadcast or echo, for ws-server and ws-clients.
	Mode string `json:"mode,omitempty"`
	// Cluster makes a nats-server listen for routes; Routes are the route
	// URLs it connects to.
	Cluster bool     `json:"cluster,omitempty"`
	Routes  []string `json:"routes,omitempty"`
	// Rate and Messages pace a ws-server's broadcast.
	Rate     float64 `json:"rate,omitempty"`
	Messages int     `json:"messages,omitempty"`
	Payload  int     `json:"payload,omitempty"`
	// Addrs are the servers clients dial, client i to Addrs[(First+i) %
	// len(Addrs)], from source 127.0.0.(2 + (First+i) % SourceAddrs).
	Addrs       []string `json:"addrs,omitempty"`
	First       int      `json:"first,omitempty"`
	Count       int      `json:"count,omitempty"`
	SourceAddrs int      `json:"source_addrs,omitempty"`
}

// status is a child's answer: the first line once it is ready, then one
// per command. Fields a role does not use stay zero.
type status struct {
	Error string `json:"error,omitempty"`

	// Servers.
	Addr          string  `json:"addr,omitempty"`
	ClusterAddr   string  `json:"cluster_addr,omitempty"`
	Conns         int     `json:"conns,omitempty"`
	Routes        int     `json:"routes,omitempty"`
	SlowConsumers int64   `json:"slow_consumers,omitempty"`
	Done          bool    `json:"done,omitempty"`
	MaxLagMs      float64 `json:"max_lag_ms,omitempty"`
	Queued        int64   `json:"queued,omitempty"`

	// Clients, once connected.
	Connected  int     `json:"connected,omitempty"`
	Errors     int     `json:"errors,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds,omitempty"`

	// Sent is messages a ws-server broadcast, or frames echo clients sent.
	Sent int64 `json:"sent,omitempty"`
	// Clients' counters: messages (echoes) received, sockets that saw a
	// probe, the last receipt and the latency histogram.
	Received int64        `json:"received,omitempty"`
	Probed   int          `json:"probed,omitempty"`
	LastNs   int64        `json:"last_ns,omitempty"`
	Hist     latency.Hist `json:"hist,omitempty"`
}

// role is what a child does; handle answers one command.
type role interface {
	handle(cmd string) (status, error)
	close()
}

// RunWorker is the child process (`liveim ceiling-worker`): it reads a job
// line from in, becomes a NATS server, a WebSocket server or a worker of
// clients, writes one status line to out once ready, then answers
// commands, one a line, until in closes or ctx ends.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	if err := supported(); err != nil {
		return err
	}
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("ceiling-worker: read job: %w", err)
	}
	var j job
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("ceiling-worker: job: %w", err)
	}
	ro, st, err := startRole(j)
	if err != nil {
		_ = writeStatus(out, status{Error: err.Error()})
		return err
	}
	defer ro.close()
	if err := writeStatus(out, st); err != nil {
		return err
	}
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmds <- strings.TrimSpace(line)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case cmd, ok := <-cmds:
			if !ok {
				return nil
			}
			st, err := ro.handle(cmd)
			if err != nil {
				st = status{Error: err.Error()}
			}
			if err := writeStatus(out, st); err != nil {
				return err
			}
		}
	}
}

// startRole starts what j asks for.
func startRole(j job) (role, status, error) {
	switch j.Role {
	case roleNATSServer:
		return startNATSServer(j)
	case roleWSServer:
		return startWSServer(j)
	case roleNATSClients, roleWSClients:
		return startClients(j)
	}
	return nil, status{}, fmt.Errorf("ceiling-worker: unknown role %q", j.Role)
}

func writeStatus(out io.Writer, st status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
		return fmt.Errorf("ceiling-worker: write status: %w", err)
	}
	return nil
}
