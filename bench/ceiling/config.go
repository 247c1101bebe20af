package ceiling

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

// The kinds of ceiling a run can measure.
const (
	KindNATSFanout  = "nats-fanout"
	KindWSBroadcast = "ws-broadcast"
	KindWSEcho      = "ws-echo"
)

// maxPerProcess is the most sockets one process may hold: these machines
// cap a process at 20,000 open files.
const maxPerProcess = 19500

// perServer is how many members one server process takes when Servers is
// not given.
const perServer = 19000

// Config configures a run. The zero value means the defaults, applied in
// withDefaults.
type Config struct {
	// Kind is nats-fanout, ws-broadcast or ws-echo. Default nats-fanout.
	Kind string
	// Members is how many sockets receive each message (ws-echo: how many
	// clients echo). Default 1000.
	Members int
	// Rate is the messages per second sent to all members (fan-out
	// kinds). Default 100.
	Rate float64
	// Duration is how long messages are sent, or clients echo. Default 10s.
	Duration time.Duration
	// Payload is the size of a message in bytes; it starts with the send
	// time in decimal nanoseconds. Default 100, at least 24.
	Payload int
	// Servers is how many server processes share the members: a NATS
	// cluster for nats-fanout, independent gobwas/ws servers otherwise.
	// Default ceil(Members/19000).
	Servers int
	// PerWorker is the most client sockets one worker process holds; the
	// members are split evenly over ceil(Members/PerWorker) workers.
	// Default 19000, at most 19500.
	PerWorker int
	// SourceAddrs is how many loopback source addresses (127.0.0.2 on)
	// clients dial from. Default 16.
	SourceAddrs int
	// Drain is how long, once sending ended, a run waits for the next
	// delivery before it counts the rest as missing. Default 5s.
	Drain time.Duration
	// JSON prints one JSON object instead of a table.
	JSON bool
	// WorkerCommand is the command line that starts a child process, which
	// must call RunWorker. Default: this executable with "ceiling-worker".
	WorkerCommand []string
	// WorkerEnv is added to the environment of child processes.
	WorkerEnv []string
}

// RegisterFlags registers the ceiling flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Kind, "kind", KindNATSFanout, "nats-fanout, ws-broadcast or ws-echo")
	fs.IntVar(&c.Members, "members", 0, "sockets each message goes to; ws-echo: echoing clients (default 1000)")
	fs.Float64Var(&c.Rate, "rate", 0, "messages per second (default 100)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to send or echo (default 10s)")
	fs.IntVar(&c.Payload, "payload", 0, "message size in bytes (default 100)")
	fs.IntVar(&c.Servers, "servers", 0, "server processes (default ceil(members/19000))")
	fs.IntVar(&c.PerWorker, "per-worker", 0, "client sockets per worker process (default 19000)")
	fs.IntVar(&c.SourceAddrs, "source-addrs", 0, "loopback source addresses clients dial from (default 16)")
	fs.DurationVar(&c.Drain, "drain", 0, "wait for missing deliveries this long after the last one (default 5s)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch c.Kind {
	case "", KindNATSFanout, KindWSBroadcast, KindWSEcho:
	default:
		return fmt.Errorf("ceiling: --kind %q: want %s, %s or %s", c.Kind, KindNATSFanout, KindWSBroadcast, KindWSEcho)
	}
	if c.Members < 0 || c.Rate < 0 || c.Duration < 0 || c.Payload < 0 || c.Servers < 0 ||
		c.PerWorker < 0 || c.SourceAddrs < 0 || c.Drain < 0 {
		return errors.New("ceiling: negative value")
	}
	if c.Payload != 0 && (c.Payload < 24 || c.Payload > 65535) {
		return errors.New("ceiling: --payload must be between 24 and 65535 bytes")
	}
	if c.PerWorker > maxPerProcess {
		return fmt.Errorf("ceiling: --per-worker above %d breaks the 20,000 open files of a process", maxPerProcess)
	}
	if c.SourceAddrs > 250 {
		return errors.New("ceiling: --source-addrs above 250 leaves 127.0.0.0/24")
	}
	d := c.withDefaults()
	if (d.Members+d.Servers-1)/d.Servers > maxPerProcess {
		return fmt.Errorf("ceiling: %d members on %d servers breaks the 20,000 open files of a process", d.Members, d.Servers)
	}
	return nil
}

// withDefaults fills every unset field.
func (c Config) withDefaults() Config {
	if c.Kind == "" {
		c.Kind = KindNATSFanout
	}
	if c.Members == 0 {
		c.Members = 1000
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Payload == 0 {
		c.Payload = 100
	}
	if c.Servers == 0 {
		c.Servers = (c.Members + perServer - 1) / perServer
	}
	if c.PerWorker == 0 {
		c.PerWorker = 19000
	}
	if c.SourceAddrs == 0 {
		c.SourceAddrs = 16
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if len(c.WorkerCommand) == 0 {
		if self, err := os.Executable(); err == nil {
			c.WorkerCommand = []string{self, "ceiling-worker"}
		}
	}
	return c
}

// prepare validates c and applies the defaults.
func (c Config) prepare() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c = c.withDefaults()
	if len(c.WorkerCommand) == 0 {
		return c, errors.New("ceiling: no worker command (cannot find this executable)")
	}
	return c, nil
}

// messages is how many messages a fan-out run sends.
func (c Config) messages() int {
	return max(1, int(c.Rate*c.Duration.Seconds()+0.5))
}

// workers is how many worker processes hold the clients.
func (c Config) workers() int {
	return (c.Members + c.PerWorker - 1) / c.PerWorker
}
