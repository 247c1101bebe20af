package gateway

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/liveim/liveim/internal/flagvalue"
)

// Config configures a Gateway. The zero value means the defaults; they are
// applied in one place, WithDefaults.
type Config struct {
	// Addr is the HTTP listen address serving /ws and /healthz.
	// Default "127.0.0.1:8080".
	Addr string
	// ID names this gateway in NATS subjects; it must be unique among
	// running gateways. Default: random.
	ID string
	// IO is how connections do I/O after their upgrade: IOEpoll
	// ("epoll": event loops, no goroutine per idle connection; Linux
	// only) or IOPortable ("portable": a goroutine per connection on its
	// net.Conn; any OS). Both serve the same protocol with the same
	// limits. Default: epoll on Linux, portable elsewhere and with TLS.
	IO string
	// Loops is the number of epoll event loops (IOEpoll). Default
	// GOMAXPROCS.
	Loops int
	// TLSCertFile and TLSKeyFile are PEM files of a certificate (chain)
	// and its key: with both set the gateway serves HTTPS and wss://
	// itself, on the portable path (epoll reads raw sockets). They are
	// read at start. Default: none, plain HTTP behind a proxy that
	// terminates TLS.
	TLSCertFile string
	TLSKeyFile  string
	// MaxFrameBytes is the largest client frame payload; a larger frame
	// closes the connection with status 1009. Default 64 KiB.
	MaxFrameBytes int
	// LoginTimeout is how long a new connection may wait before logging
	// in. Default 10s.
	LoginTimeout time.Duration
	// HeartbeatTimeout is how long a session may stay silent before the
	// gateway closes it (disconnect 3), unless the client asks for another
	// value in 15s..120s at login. Default 99s.
	HeartbeatTimeout time.Duration
	// TokenExpiryNotice is how long before a session's token expires the
	// gateway sends TokenExpiringEvent (the SDK's tokenexpired), or halfway
	// through the token's lifetime left at login when that is shorter; a session
	// still on that token at its expiry is closed (disconnect 5, status
	// 4001). Default 60s.
	TokenExpiryNotice time.Duration
	// RequestTimeout bounds a router request; after it the client gets 503.
	// Default 5s.
	RequestTimeout time.Duration
	// OutboundQueueBytes bounds the bytes queued for one slow socket, not
	// yet handed to it: NORMAL events beyond it are dropped, and a reply or
	// HIGH event beyond it closes the connection. On the portable path the
	// batch its writer goroutine is writing is handed over, so a stuck
	// socket holds up to about twice this. Default 1 MiB.
	OutboundQueueBytes int
	// SendRate is how many messages per second one session may send
	// (group and C2C together); faster sends get 412. Default 20.
	SendRate float64
	// SendBurst is how many messages a session may send at once before
	// SendRate applies. Default 40.
	SendBurst int
	// RequestRate is how many requests per second one session may make,
	// of every kind but messages (which SendRate limits); faster ones get
	// 412. Default 50.
	RequestRate float64
	// RequestBurst is how many requests a session may make at once before
	// RequestRate applies. Default 100.
	RequestBurst int
	// MaxGroupsPerSession caps the groups one session is in at once; a
	// join beyond it is 443. Default 100.
	MaxGroupsPerSession int
	// HeartbeatInterval is how often the gateway tells the routers it is
	// alive. Default 2s.
	HeartbeatInterval time.Duration
	// Dispatchers is the number of goroutines taking group and user
	// messages off NATS; one subject always goes to the same one, so its
	// messages keep their order. Default 2*GOMAXPROCS.
	Dispatchers int
	// DispatchBuffer is how many messages NATS may hand a dispatcher (and
	// the user dispatcher) ahead of it; dispatchers move them to their
	// rooms' backlogs at once, so it fills only if that cannot keep up.
	// Default 8192.
	DispatchBuffer int
	// MaxRoomBacklog bounds the events of one room waiting for its
	// dispatcher: past it the room's NORMAL events are shed, past twice
	// that in HIGH events its members reconnect and resume. Default 4096.
	MaxRoomBacklog int
	// MergeWindow is how long a big room's events are gathered into one
	// EventBatch frame; negative turns merging off. Default 50ms.
	MergeWindow time.Duration
	// MergeMinMembers is the least number of local members for which a
	// room merges its events; smaller rooms get each event at once.
	// Default 100.
	MergeMinMembers int
	// MergeMaxBytes ends a merge window early once its events reach this
	// size. Default 32 KiB.
	MergeMaxBytes int
	// SlowConsumerTimeout is how long a socket may keep having NORMAL
	// events dropped, its queue full, before the gateway closes it with a
	// reconnect hint (DisconnectEvent code 0, reconnect true). Default 5s.
	SlowConsumerTimeout time.Duration
	// HTTPTimeout bounds reading a request's headers and body and writing
	// a response (an upgrade's handshake included). Default 10s.
	HTTPTimeout time.Duration
	// HTTPIdleTimeout closes an idle keep-alive HTTP connection. Default
	// 30s.
	HTTPIdleTimeout time.Duration
	// MaxConns caps the WebSocket connections the gateway holds; past it
	// upgrades get HTTP 503 with Retry-After, before the upgrade. Negative:
	// no cap. Default: the process's open-file limit less 256, so a full
	// process refuses upgrades rather than upgrade a socket it has no file
	// left to keep (no cap when the limit is unknown or unlimited).
	MaxConns int
	// MaxConnsPerIP caps the WebSocket connections one client address may
	// hold; more get HTTP 429. Negative: no cap. Default 10000 (mobile
	// carriers put many users behind one address).
	MaxConnsPerIP int
	// MaxPending caps the client sockets the gateway has accepted but not
	// upgraded to WebSockets (requests still being read, keep-alive HTTP).
	// Past it, or once these sockets and the WebSockets together reach
	// MaxConns plus half the file reserve, the oldest is closed to make
	// room: sockets that never finish a request (slowloris) cannot hold
	// the process's files, while real clients, which finish theirs in
	// milliseconds, get through. Negative: no cap. Default 4096.
	MaxPending int
	// MaxPendingPerIP caps the sockets one client address holds not yet
	// upgraded; a new one past it is closed at once. A trusted proxy
	// (TrustedProxies) is not capped by address. Negative: no cap.
	// Default 256.
	MaxPendingPerIP int
	// UpgradeRatePerIP is how many WebSocket upgrades per second one
	// client address may make after UpgradeBurstPerIP; more get HTTP 429.
	// Negative: no cap. Default 100.
	UpgradeRatePerIP float64
	// UpgradeBurstPerIP is how many upgrades one address may make at once.
	// Default 200.
	UpgradeBurstPerIP int
	// TrustedProxies lists the CIDRs of proxies in front of the gateway
	// (load balancers, ingress); for a connection from one of them the
	// client address is taken from X-Forwarded-For. Default: none.
	TrustedProxies []string
	// DrainDelay is the drain window of a stopping gateway: from the
	// moment /readyz starts failing (and new upgrades get 503) its clients
	// are told to reconnect one after another across the window, the last
	// at its end, so other gateways see a steady stream of reconnects, not
	// a storm. Default 0: all at once.
	DrainDelay time.Duration
	// GCPercent is the Go garbage collector's target (GOGC) for a
	// `liveim gateway` process, unless the GOGC environment variable is
	// set. Idle connections allocate nothing, so a lower target costs
	// little CPU and keeps the heap closer to what is live: at 19,000
	// joined connections, 1.9 KB of RSS each at 50 against 2.4 KB at Go's
	// 100 (docs/benchmarks.md). `liveim serve`, whose NATS, router and
	// store allocate per message, applies it only when set. Default 50.
	GCPercent int
}

// RegisterFlags registers the gateway flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "", "gateway: HTTP/WebSocket listen address (default 127.0.0.1:8080)")
	fs.StringVar(&c.ID, "id", "", "gateway: unique ID among gateways (default random)")
	fs.StringVar(&c.IO, "io", "", "gateway: connection I/O, epoll (Linux) or portable (default epoll on Linux without TLS, else portable)")
	fs.IntVar(&c.Loops, "loops", 0, "gateway: epoll event loops (default GOMAXPROCS)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "gateway: PEM certificate file to serve wss:// and https:// itself, with --tls-key, on --io portable (default none: plain HTTP, TLS in front)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "gateway: PEM private key file of --tls-cert (default none)")
	fs.IntVar(&c.MaxFrameBytes, "max-frame-bytes", 0, "gateway: largest client frame (default 65536)")
	fs.DurationVar(&c.LoginTimeout, "login-timeout", 0, "gateway: how long a new connection may wait before logging in (default 10s)")
	fs.DurationVar(&c.HeartbeatTimeout, "heartbeat-timeout", 0, "gateway: default idle timeout of a session (default 99s)")
	fs.DurationVar(&c.TokenExpiryNotice, "token-expiry-notice", 0, "gateway: how long before a session's token expires it is told (default 60s)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 0, "gateway: bound on a router request; then the client gets 503 (default 5s)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 0, "gateway: how often the gateway tells the routers it is alive (default 2s)")
	fs.IntVar(&c.OutboundQueueBytes, "outbound-queue-bytes", 0, "gateway: bytes queued per slow socket (default 1 MiB)")
	fs.Float64Var(&c.SendRate, "send-rate", 0, "gateway: messages per second per session before 412 (default 20)")
	fs.IntVar(&c.SendBurst, "send-burst", 0, "gateway: messages a session may send at once (default 40)")
	fs.Float64Var(&c.RequestRate, "request-rate", 0, "gateway: requests per second per session before 412 (default 50)")
	fs.IntVar(&c.RequestBurst, "request-burst", 0, "gateway: requests a session may make at once (default 100)")
	fs.IntVar(&c.MaxGroupsPerSession, "max-groups-per-session", 0, "gateway: groups one session may be in at once (default 100)")
	fs.IntVar(&c.Dispatchers, "dispatchers", 0, "gateway: goroutines taking group and user messages off NATS (default 2*GOMAXPROCS)")
	fs.IntVar(&c.DispatchBuffer, "dispatch-buffer", 0, "gateway: messages NATS may hand a dispatcher ahead of it (default 8192)")
	fs.IntVar(&c.MaxRoomBacklog, "max-room-backlog", 0, "gateway: events of one room waiting for its dispatcher before NORMAL ones are shed (default 4096)")
	fs.DurationVar(&c.MergeWindow, "merge-window", 0, "gateway: how long a big room's events are merged into one frame; negative turns merging off (default 50ms)")
	fs.IntVar(&c.MergeMinMembers, "merge-min-members", 0, "gateway: local members from which a room merges its events (default 100)")
	fs.IntVar(&c.MergeMaxBytes, "merge-max-bytes", 0, "gateway: a merge window ends early at this many bytes of events (default 32768)")
	fs.DurationVar(&c.SlowConsumerTimeout, "slow-consumer-timeout", 0, "gateway: how long a socket may drop events before it is closed (default 5s)")
	fs.DurationVar(&c.HTTPTimeout, "http-timeout", 0, "gateway: read and write timeout of an HTTP request and upgrade (default 10s)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", 0, "gateway: idle keep-alive HTTP connections close after (default 30s)")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "gateway: WebSockets the gateway holds at most; past it upgrades get 503, negative for no cap (default: the open-file limit less 256)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", 0, "gateway: WebSockets one client address may hold, negative for no cap (default 10000)")
	fs.IntVar(&c.MaxPending, "max-pending", 0, "gateway: client sockets accepted and not yet upgraded; past it the oldest is closed, negative for no cap (default 4096)")
	fs.IntVar(&c.MaxPendingPerIP, "max-pending-per-ip", 0, "gateway: sockets one client address holds not yet upgraded; more are closed at once, negative for no cap (default 256; trusted proxies exempt)")
	fs.Float64Var(&c.UpgradeRatePerIP, "upgrade-rate-per-ip", 0, "gateway: WebSocket upgrades per second per client address, negative for no cap (default 100)")
	fs.IntVar(&c.UpgradeBurstPerIP, "upgrade-burst-per-ip", 0, "gateway: WebSocket upgrades one client address may make at once (default 200)")
	fs.Var(flagvalue.List(&c.TrustedProxies), "trusted-proxies", "gateway: comma-separated CIDRs of proxies whose X-Forwarded-For names the client (default none)")
	fs.IntVar(&c.GCPercent, "gc-percent", 0, "gateway: the Go GC target (GOGC) of a liveim gateway process unless GOGC is set; lower holds less memory per idle connection (default 50; liveim serve keeps Go's 100 unless this is set)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "gateway: on shutdown, the window over which clients are told to reconnect, one after another, after /readyz fails (default 0: all at once)")
}

// fileReserve is how many of its open files a gateway keeps for other
// than WebSockets by default (Config.MaxConns): NATS, the listener, epoll,
// upgrades in flight, and in liveim serve the store's files.
const fileReserve = 256

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Loops < 0 || c.MaxFrameBytes < 0 || c.OutboundQueueBytes < 0 || c.Dispatchers < 0 || c.SendRate < 0 || c.SendBurst < 0 ||
		c.RequestRate < 0 || c.RequestBurst < 0 || c.MaxGroupsPerSession < 0 ||
		c.MergeMinMembers < 0 || c.MergeMaxBytes < 0 || c.DispatchBuffer < 0 || c.MaxRoomBacklog < 0 || c.GCPercent < 0 {
		return errors.New("gateway: negative size in config")
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if err := c.validateIO(); err != nil {
		return err
	}
	if c.UpgradeBurstPerIP < 0 {
		return errors.New("gateway: negative size in config")
	}
	if c.HTTPTimeout < 0 || c.HTTPIdleTimeout < 0 ||
		c.LoginTimeout < 0 || c.HeartbeatTimeout < 0 || c.RequestTimeout < 0 || c.HeartbeatInterval < 0 ||
		c.SlowConsumerTimeout < 0 || c.DrainDelay < 0 || c.TokenExpiryNotice < 0 {
		return errors.New("gateway: negative duration in config")
	}
	return nil
}

// validateIO checks IO and the TLS files.
func (c Config) validateIO() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("gateway: --tls-cert and --tls-key go together")
	}
	switch c.IO {
	case "", IOPortable:
	case IOEpoll:
		if !haveEpoll {
			return errNoEpoll
		}
		if c.ServesTLS() {
			return errors.New("gateway: --io epoll cannot serve TLS (--tls-cert): use --io portable, or terminate TLS in front")
		}
	default:
		return fmt.Errorf("gateway: --io %q: want %s or %s", c.IO, IOEpoll, IOPortable)
	}
	return nil
}

// ServesTLS reports whether the gateway terminates TLS itself: its URLs
// are then wss:// and https://.
func (c Config) ServesTLS() bool { return c.TLSCertFile != "" }

// TLSConfig reads TLSCertFile and TLSKeyFile and returns the listener's
// TLS configuration, or nil when the gateway serves no TLS. New calls it;
// a target calls it while it validates its settings, so a missing or
// mismatched file fails before anything connects.
func (c Config) TLSConfig() (*tls.Config, error) {
	if !c.ServesTLS() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: TLS certificate (--tls-cert, --tls-key): %w", err)
	}
	// HTTP/1.1 only: a WebSocket upgrade is an HTTP/1.1 request.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.IO == "" {
		c.IO = IOPortable
		if haveEpoll && !c.ServesTLS() {
			c.IO = IOEpoll
		}
	}
	if c.Loops == 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 99 * time.Second
	}
	if c.TokenExpiryNotice == 0 {
		c.TokenExpiryNotice = 60 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.OutboundQueueBytes == 0 {
		c.OutboundQueueBytes = 1 << 20
	}
	if c.SendRate == 0 {
		c.SendRate = 20
	}
	if c.SendBurst == 0 {
		c.SendBurst = 40
	}
	if c.RequestRate == 0 {
		c.RequestRate = 50
	}
	if c.RequestBurst == 0 {
		c.RequestBurst = 100
	}
	if c.MaxGroupsPerSession == 0 {
		c.MaxGroupsPerSession = 100
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.Dispatchers == 0 {
		c.Dispatchers = 2 * runtime.GOMAXPROCS(0)
	}
	if c.DispatchBuffer == 0 {
		c.DispatchBuffer = 8192
	}
	if c.MaxRoomBacklog == 0 {
		c.MaxRoomBacklog = 4096
	}
	if c.MergeWindow == 0 { // negative stays: merging off
		c.MergeWindow = 50 * time.Millisecond
	}
	if c.MergeMinMembers == 0 {
		c.MergeMinMembers = 100
	}
	if c.MergeMaxBytes == 0 {
		c.MergeMaxBytes = 32 << 10
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = 10 * time.Second
	}
	if c.HTTPIdleTimeout == 0 {
		c.HTTPIdleTimeout = 30 * time.Second
	}
	if c.MaxConns == 0 {
		c.MaxConns = -1
		if files := openFileLimit(); files > 0 {
			c.MaxConns = max(files-fileReserve, files/2)
		}
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 10000
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	if c.MaxPendingPerIP == 0 {
		c.MaxPendingPerIP = 256
	}
	if c.UpgradeRatePerIP == 0 {
		c.UpgradeRatePerIP = 100
	}
	if c.UpgradeBurstPerIP == 0 {
		c.UpgradeBurstPerIP = 200
	}
	if c.SlowConsumerTimeout == 0 {
		c.SlowConsumerTimeout = 5 * time.Second
	}
	if c.GCPercent == 0 {
		c.GCPercent = 50
	}
	return c
}

// ApplyGCPercent sets the process's GC target to GCPercent (after
// defaults) unless the GOGC environment variable is set, and returns the
// target in force. The process is the gateway's: call it once, from main.
func (c Config) ApplyGCPercent() int {
	if v := os.Getenv("GOGC"); v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(c.WithDefaults().GCPercent)
	return c.WithDefaults().GCPercent
}

// trustedProxies parses TrustedProxies.
func (c Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("gateway: trusted proxy %q: %w", p, err)
		}
		out = append(out, pfx)
	}
	return out, nil
}
