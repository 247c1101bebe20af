// Package opshttp serves a process's internal HTTP listener (--http-addr):
// /healthz, /readyz, Prometheus /metrics and, when asked, Go's profiles
// under /debug/pprof/. It is for the operator's network (probes,
// Prometheus, kubectl port-forward), never the public WebSocket port.
//
//	srv := opshttp.New(opshttp.Config{Addr: "127.0.0.1:8081", Pprof: true}, reg, ready)
//	go srv.Run(ctx)
package opshttp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
}

// RegisterFlags registers --http-addr and --pprof on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "http-addr", "", "internal listener: /healthz, /readyz, /metrics (and /debug/pprof with --pprof); keep it off the internet (default 127.0.0.1:8081)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles on the internal listener's /debug/pprof/")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
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
		s.ln = ln
	}
	return s.ln.Addr(), nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
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
