package bench

import (
	"errors"
	"flag"
	"strings"
	"time"
)

// Config configures a run. The zero value means the defaults, applied in
// withDefaults.
type Config struct {
	// Scenario is idle (logged-in, joined, silent clients), connect (the
	// login storm of the same), fanout (one room, a sender at Rate),
	// rooms (Rooms rooms of Connections/Rooms members, the members
	// sending Rate messages a second in all) or c2c (user n sends to user
	// n+1, Rate in all). Default idle.
	Scenario string
	// Connections is how many clients log in. Default 1000.
	Connections int
	// Rooms is how many rooms the clients join, round robin. Default 100.
	Rooms int
	// Gateways is how many gateway processes to start (liveim serve counts
	// as one). Default 1.
	Gateways int
	// Target is the WebSocket URL of a running server to measure instead of
	// starting one; PID is its process and Data its data dir (for the
	// demo app's credentials); TargetHTTP is its internal listener
	// (--http-addr), where its Go heap is read.
	Target     string
	PID        int
	Data       string
	TargetHTTP string
	// PerWorker is the most clients one worker process holds. Default 19000.
	PerWorker int
	// Settle is how long connections stay idle before memory is read.
	// Default 3s.
	Settle time.Duration
	// IdleWindow is how long the idle scenario measures the servers' CPU
	// after Settle, with every client pinging every 25 s. Default 30s.
	IdleWindow time.Duration
	// Routers is how many routers serve the run: liveim serve's own and
	// Routers-1 `liveim router` processes, which share its store, so more
	// than one needs StoreFlags naming ScyllaDB. Default 1.
	Routers int
	// StoreFlags are the store flags of serve and the routers, e.g.
	// "--store scylla --scylla-hosts 127.0.0.1:9042".
	StoreFlags string
	// GatewayFlags are extra flags for every gateway process started
	// (liveim serve included), space separated, e.g. "--merge-window 80ms".
	GatewayFlags string
	// Concurrency is how many clients each worker process connects at
	// once. Default 64.
	Concurrency int
	// JSON prints one JSON object instead of a table.
	JSON bool
	// Rate is the fanout scenario's messages per second. Default 100.
	Rate float64
	// Duration is how long the fanout scenario sends. Default 10s.
	Duration time.Duration
	// HighEvery makes one fanout message in HighEvery HIGH. Default 10.
	HighEvery int
	// NoStorage sends the messages of fanout and rooms with noStorage
	// set: the router neither stores NORMAL messages nor keeps them for
	// history. The scenario's name then ends in "-nostorage".
	NoStorage bool
	// ReadInterval makes the load generator read each client socket at
	// most once per interval: fewer, larger reads, to show how much of a
	// latency is the clients' own reading. Default 0: read as frames come.
	ReadInterval time.Duration
}

// scenarioName is the scenario as results name it: storage off shows.
func (c Config) scenarioName() string {
	if c.NoStorage && (c.Scenario == "fanout" || c.Scenario == "rooms") {
		return c.Scenario + "-nostorage"
	}
	return c.Scenario
}

// RegisterFlags registers the bench flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Scenario, "scenario", "idle", "idle, connect, fanout, rooms or c2c")
	fs.IntVar(&c.Connections, "connections", 0, "clients (default 1000)")
	fs.IntVar(&c.Rooms, "rooms", 0, "rooms the clients join (default 100)")
	fs.IntVar(&c.Gateways, "gateways", 0, "gateway processes to start (default 1)")
	fs.IntVar(&c.Routers, "routers", 0, "routers: serve's and routers-1 liveim router processes, which need a shared store (--store-flags) (default 1)")
	fs.StringVar(&c.StoreFlags, "store-flags", "", "store flags of serve and the routers, e.g. \"--store scylla --scylla-hosts 127.0.0.1:9042\"")
	fs.StringVar(&c.Target, "target", "", "ws://host:port/ws of a running server (default: start one)")
	fs.IntVar(&c.PID, "pid", 0, "process of the running server (with --target)")
	fs.StringVar(&c.Data, "data", "", "data dir of the running server (with --target)")
	fs.StringVar(&c.TargetHTTP, "target-http", "127.0.0.1:8081", "internal listener (--http-addr) of the running server (with --target)")
	fs.IntVar(&c.PerWorker, "per-worker", 0, "clients per worker process (default 19000)")
	fs.DurationVar(&c.Settle, "settle", 0, "idle time before memory is read (default 3s)")
	fs.DurationVar(&c.IdleWindow, "idle-window", 0, "idle: how long the servers' CPU is measured after --settle, clients pinging every 25s (default 30s)")
	fs.StringVar(&c.GatewayFlags, "gateway-flags", "", "extra flags for the gateways started, e.g. \"--merge-window 80ms\"")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "clients each worker connects at once (default 64)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object")
	fs.Float64Var(&c.Rate, "rate", 0, "fanout: messages per second (default 100)")
	fs.DurationVar(&c.Duration, "duration", 0, "fanout: how long to send (default 10s)")
	fs.IntVar(&c.HighEvery, "high-every", 0, "fanout, rooms: one message in N is HIGH (default 10)")
	fs.DurationVar(&c.ReadInterval, "read-interval", 0, "fanout, rooms, c2c: clients read their sockets at most once per interval (fewer, larger reads)")
	fs.BoolVar(&c.NoStorage, "no-storage", false, "fanout, rooms: send with noStorage (the scenario's name says so)")
	fs.IntVar(&c.Connections, "members", 0, "fanout: room members (same as --connections)")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch c.Scenario {
	case "", "idle", "connect", "fanout", "c2c":
	case "rooms":
		if c.Rooms > 0 && c.Connections%c.Rooms != 0 {
			return errors.New("bench: rooms: --connections must be a multiple of --rooms (equal rooms)")
		}
	default:
		return errors.New("bench: --scenario must be idle, connect, fanout, rooms or c2c")
	}
	if c.Rate < 0 || c.Duration < 0 || c.HighEvery < 0 || c.ReadInterval < 0 {
		return errors.New("bench: negative value")
	}
	if c.Connections < 0 || c.Rooms < 0 || c.Gateways < 0 || c.Routers < 0 || c.PerWorker < 0 || c.Settle < 0 || c.IdleWindow < 0 || c.Concurrency < 0 {
		return errors.New("bench: negative value")
	}
	if c.Target != "" && (c.PID == 0 || c.Data == "") {
		return errors.New("bench: --target needs --pid and --data")
	}
	if c.PerWorker > 19500 {
		return errors.New("bench: --per-worker above 19500 breaks the 20,000 open files of a process")
	}
	if c.Routers > 1 && !strings.Contains(c.StoreFlags, "scylla") {
		return errors.New("bench: more than one router needs a shared store: --store-flags \"--store scylla --scylla-hosts HOST\"")
	}
	if c.Routers > 1 && c.Target != "" {
		return errors.New("bench: --routers starts routers beside the servers it starts; not with --target")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = "idle"
	}
	if c.Connections == 0 {
		c.Connections = 1000
	}
	if c.Rooms == 0 {
		c.Rooms = 100
	}
	if c.Gateways == 0 {
		c.Gateways = 1
	}
	if c.Routers == 0 {
		c.Routers = 1
	}
	if c.PerWorker == 0 {
		c.PerWorker = 19000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Settle == 0 {
		c.Settle = 3 * time.Second
	}
	if c.IdleWindow == 0 {
		c.IdleWindow = 30 * time.Second
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.HighEvery == 0 {
		c.HighEvery = 10
	}
	if c.Scenario == "fanout" {
		c.Rooms = 1
	}
	return c
}
