// Package opshttp serves a process's internal HTTP listener (--http-addr):
// /healthz, /readyz, Prometheus /metrics and, when asked, Go's profiles
// under /debug/pprof/. It is for the operator's network (probes,
// Prometheus, kubectl port-forward), never the public WebSocket port.
//
//	srv := opshttp.New(opshttp.Config{Addr: "127.0.0.1:8081", Pprof: true}, reg, ready)
//	go srv.Run(ctx)
package opshttp

import (
	"container/list"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the listener.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:8081".
	Addr string
	// Pprof serves Go's profiles under /debug/pprof/. Default off.
	Pprof bool
	// ReadTimeout bounds reading a whole request, its body included: the
	// routers serve the server API here, to callers who need no key to
	// start a request. Default 30s.
	ReadTimeout time.Duration
	// MaxConns caps the connections held at once, so a flood cannot take
	// the files the process needs for NATS and its store; past it the
	// oldest connection is closed to make room (a new one is never turned
	// away for it: kubelet's probes come on new connections). Default 1024.
	MaxConns int
	// MaxConnsPerIP caps one peer address's connections; past it its new
	// one is closed at once, so one peer cannot push every other
	// connection out. Default 256.
	MaxConnsPerIP int
}

// RegisterFlags registers --http-addr and --pprof on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "http-addr", "", "internal listener: /healthz, /readyz, /metrics (and /debug/pprof with --pprof); keep it off the internet (default 127.0.0.1:8081)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles on the internal listener's /debug/pprof/")
	fs.DurationVar(&c.ReadTimeout, "http-read-timeout", 0, "internal listener: bound on reading a whole request (default 30s)")
	fs.IntVar(&c.MaxConns, "http-max-conns", 0, "internal listener: connections held at once; past it the oldest is closed for a new one (default 1024)")
	fs.IntVar(&c.MaxConnsPerIP, "http-max-conns-per-ip", 0, "internal listener: connections of one peer address; past it its new ones are closed (default 256)")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.ReadTimeout < 0 || c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		return errors.New("--http-read-timeout, --http-max-conns and --http-max-conns-per-ip must not be negative")
	}
	if c.Addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port) // a number, or a name in /etc/services
	}
	if err != nil {
		return fmt.Errorf("--http-addr %q: %w", c.Addr, err)
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8081"
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.MaxConns == 0 {
		c.MaxConns = 1024
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 256
	}
	return c
}

// Server is the internal listener. Build it with New, add routes with
// Handle, then Listen and Run.
type Server struct {
	cfg Config
	mux *http.ServeMux
	ln  net.Listener
	log *slog.Logger
}

// New returns a Server serving reg on /metrics and ready on /readyz
// (nil error: ready). /healthz answers while the process serves.
func New(cfg Config, reg *prometheus.Registry, ready func() error, log *slog.Logger) *Server {
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: log}
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if cfg.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s
}

// Handle adds a route.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Listen opens the listening socket; Run calls it when it was not called.
func (s *Server) Listen() (net.Addr, error) {
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("--http-addr: %w", err)
		}
		s.ln = &limitListener{Listener: ln, max: s.cfg.MaxConns, perPeer: s.cfg.MaxConnsPerIP, byPeer: make(map[string]int)}
	}
	return s.ln.Addr(), nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	// No WriteTimeout: a CPU profile answers after its seconds. The server
	// API bounds its own answers' writes.
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.cfg.ReadTimeout,
		IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.ln) }()
	s.log.Info("internal http listening", "addr", s.ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("internal http: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// limitListener bounds the connections held: at max it closes the oldest
// to make room for a new one, and it closes a new one of a peer holding
// perPeer already. Refusing new connections at max instead let one peer
// holding max idle ones fail kubelet's probes, which restarted every
// router at once.
type limitListener struct {
	net.Listener
	max, perPeer int

	mu     sync.Mutex
	conns  list.List // of *countedConn, oldest first
	byPeer map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerOf(c)
		l.mu.Lock()
		if l.byPeer[peer] >= l.perPeer {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		var oldest *countedConn
		if l.conns.Len() >= l.max {
			oldest = l.conns.Front().Value.(*countedConn)
			l.forget(oldest)
		}
		cc := &countedConn{Conn: c, l: l, peer: peer}
		cc.elem = l.conns.PushBack(cc)
		l.byPeer[peer]++
		l.mu.Unlock()
		if oldest != nil {
			_ = oldest.Conn.Close() // its server goroutine ends on the error
		}
		return cc, nil
	}
}

// forget takes c out of the counts; l.mu is held.
func (l *limitListener) forget(c *countedConn) {
	if c.elem == nil {
		return
	}
	l.conns.Remove(c.elem)
	c.elem = nil
	if l.byPeer[c.peer]--; l.byPeer[c.peer] <= 0 {
		delete(l.byPeer, c.peer)
	}
}

// peerOf is a connection's peer address without its port.
func peerOf(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// countedConn gives its place back at its first Close.
type countedConn struct {
	net.Conn
	l    *limitListener
	peer string
	elem *list.Element // nil once forgotten
}

func (c *countedConn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
