package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/demo"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/flagvalue"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
)

// demoConfig configures `liveim demo`: the live-room demo page and the
// backend half of an app that the page logs in through, for a cluster
// whose gateways do not serve the page themselves (they do only under
// `liveim serve`).
type demoConfig struct {
	// Addr is where the page and /dev/token listen. Default
	// "127.0.0.1:8070".
	Addr string
	// AppFile is a JSON file with the app's app_id, app_key and app_sign
	// (what `liveim app create` and `liveim app --data DIR` print). Either
	// it or API.
	AppFile string
	// API lists routers' internal listeners (comma separated, tried in
	// turn): the app is read, and created when missing, through the admin
	// API. Either it or AppFile.
	API []string
	// AdminKeyFile holds the admin key, with API. Default none.
	AdminKeyFile string
	// AppID is the app to read or create, with API. Default "demo".
	AppID string
	// GatewayURLs are the gateway URLs the page connects to (in appSign).
	// With API the app is created with them, or changed to them; with
	// AppFile they replace the file's appSign. Default: the app's own.
	GatewayURLs []string
	// AllowedHosts are the Host values ("host:port" as browsers send them)
	// /dev/token answers besides loopback and Addr. Default none.
	AllowedHosts []string
	// TTL is the lifetime of the tokens minted. Default 24h, at most the
	// app's maximum token lifetime.
	TTL time.Duration
	// Wait bounds how long the server API is retried at start. Default 5m.
	Wait time.Duration
	// LogLevel: debug, info, warn or error. Default "info".
	LogLevel string
}

func (c *demoConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8070", "listen address of the demo page and /dev/token")
	fs.StringVar(&c.AppFile, "app-file", "", "JSON file with the app's app_id, app_key and app_sign (e.g. liveim app create's output); or --api")
	fs.Var(flagvalue.List(&c.API), "api", "routers' internal listeners, comma separated (e.g. http://router:8081): read the app, creating it if missing, through the admin API; or --app-file")
	fs.StringVar(&c.AdminKeyFile, "admin-key-file", "", "file holding the admin key (with --api)")
	fs.StringVar(&c.AppID, "app", demoapp.ID, "ID of the app to read or create (with --api)")
	fs.Var(flagvalue.List(&c.GatewayURLs), "gateway-urls", "comma-separated ws(s) gateway URLs the page connects to (default: the app's own); with --api the app is created with them or changed to them")
	fs.Var(flagvalue.List(&c.AllowedHosts), "allowed-hosts", "comma-separated Host values (host:port) /dev/token answers besides loopback and --addr")
	fs.DurationVar(&c.TTL, "ttl", 24*time.Hour, "lifetime of the tokens minted")
	fs.DurationVar(&c.Wait, "wait", 5*time.Minute, "how long to retry the server API at start")
	registerLogLevel(fs, &c.LogLevel)
}

func (c *demoConfig) settings() *settings {
	s := newSettings("demo")
	s.add("demo", c.registerFlags)
	return s
}

// applyDefaults does nothing: the flags hold the defaults.
func (c *demoConfig) applyDefaults() {}

func (c demoConfig) validate() error {
	if (c.AppFile == "") == (len(c.API) == 0) {
		return errors.New("liveim demo: give either --app-file or --api")
	}
	if len(c.API) > 0 {
		if c.AdminKeyFile == "" {
			return errors.New("liveim demo: --api needs --admin-key-file")
		}
		if err := ids.Check("app", c.AppID); err != nil {
			return err
		}
	}
	for _, u := range c.GatewayURLs {
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			return fmt.Errorf("--gateway-urls: %q is not a ws:// or wss:// URL", u)
		}
	}
	if c.TTL <= 0 || c.TTL > auth.DefaultMaxLifetime {
		return fmt.Errorf("--ttl must be positive and at most %v", auth.DefaultMaxLifetime)
	}
	return checkLogLevel(c.LogLevel)
}

// runDemo serves the demo page and /dev/token for one app, acting as that
// app's backend: it signs login tokens with the app key itself.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg demoConfig
	log, err := loadTarget(&cfg, args, &cfg.LogLevel)
	if err != nil {
		return err
	}
	var info demoapp.Info
	ttl := cfg.TTL
	if cfg.AppFile != "" {
		info, err = readAppFile(cfg.AppFile, cfg.GatewayURLs)
	} else {
		info, ttl, err = demoAppFromAPI(ctx, cfg, log)
	}
	if err != nil {
		return err
	}
	sign, err := auth.ParseAppSign(info.AppSign)
	if err != nil || len(sign.URLs) == 0 {
		return fmt.Errorf("app %s: its appSign names no gateway URL for the page to connect to: give --gateway-urls (or liveim app set %s --gateway-urls ...)", info.AppID, info.AppID)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/", demo.Pages())
	hosts := append(devHosts(addr, ""), lower(cfg.AllowedHosts)...)
	mux.Handle("/dev/token", demo.TokenHandler(info, ttl, hosts))
	mod := demo.ModerationHandler(info, cfg.API, hosts) // kicks and timed mutes; with --app-file none
	mux.Handle(demo.KickPath, mod)
	mux.Handle(demo.MutePath, mod)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	fmt.Fprintf(stdout, `liveim demo is running.
  demo page:  http://%s/  (/dev/token mints tokens for any user of app %s: development only)
  gateways:   %s
`, addr, info.AppID, strings.Join(sign.URLs, ", "))
	log.Info("demo serving", "addr", addr, "app_id", info.AppID, "gateway_urls", sign.URLs)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// readAppFile reads an app's credentials from a JSON file; urls, when
// given, replace its appSign.
func readAppFile(path string, urls []string) (demoapp.Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return demoapp.Info{}, err
	}
	var info demoapp.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return demoapp.Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if info.AppID == "" || info.AppKey == "" {
		return demoapp.Info{}, fmt.Errorf("%s: want app_id and app_key", path)
	}
	if len(urls) > 0 {
		info.AppSign = auth.AppSign{AppID: info.AppID, URLs: urls}.Encode()
	}
	return info, nil
}

// demoAppFromAPI reads the app through the admin API, creating it when
// missing and setting its gateway URLs when cfg names others, retrying
// while no router answers. It returns the token lifetime too: cfg.TTL,
// capped by the app's maximum.
func demoAppFromAPI(ctx context.Context, cfg demoConfig, log *slog.Logger) (demoapp.Info, time.Duration, error) {
	key, err := serverapi.ReadAdminKey(cfg.AdminKeyFile)
	if err != nil {
		return demoapp.Info{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	defer cancel()
	var app serverapi.AppView
	for attempt, delay := 0, 250*time.Millisecond; ; attempt++ {
		api := cfg.API[attempt%len(cfg.API)]
		app, err = ensureApp(ctx, apiclient.New(api, apiclient.Admin(key)), cfg.AppID, cfg.GatewayURLs, log)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return demoapp.Info{}, 0, fmt.Errorf("app %s: no router's server API answered within --wait %v: %w", cfg.AppID, cfg.Wait, err)
		}
		if !retriable(err) {
			return demoapp.Info{}, 0, fmt.Errorf("app %s through %s: %w", cfg.AppID, api, err)
		}
		log.Warn("server API not answering yet; retrying", "api", api, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	switch {
	case app.Disabled:
		return demoapp.Info{}, 0, fmt.Errorf("app %s is disabled", app.ID)
	case app.NonceLength != 0 && app.NonceLength != auth.DefaultNonceLength:
		return demoapp.Info{}, 0, fmt.Errorf("app %s wants token nonces of %d characters; liveim demo makes %d", app.ID, app.NonceLength, auth.DefaultNonceLength)
	}
	ttl := cfg.TTL
	if maxTTL := time.Duration(app.MaxTokenLifetimeSec) * time.Second; maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	return demoapp.Info{AppID: app.ID, AppKey: app.Key, AppSign: app.AppSign}, ttl, nil
}

// ensureApp returns the app id, creating it with urls when it is missing
// and setting its gateway URLs to urls when they differ. The admin API
// answers 400 both for a missing app and for creating an existing one, so
// a failed create is followed by another read: two processes starting at
// once both end up with the one app.
func ensureApp(ctx context.Context, c *apiclient.Client, id string, urls []string, log *slog.Logger) (serverapi.AppView, error) {
	var app serverapi.AppView
	err := c.Do(ctx, http.MethodGet, "/admin/apps/"+id, nil, nil, &app)
	if errors.Is(err, liveimpb.ErrInvalidParameter) {
		body := map[string]any{"app_id": id}
		if len(urls) > 0 {
			body["gateway_urls"] = urls
		}
		cerr := c.Do(ctx, http.MethodPost, "/admin/apps", nil, body, &app)
		if cerr == nil {
			log.Info("created the app", "app_id", id, "gateway_urls", urls)
			return app, nil
		}
		if !errors.Is(cerr, liveimpb.ErrInvalidParameter) {
			return app, cerr
		}
		if err := c.Do(ctx, http.MethodGet, "/admin/apps/"+id, nil, nil, &app); err != nil {
			return app, cerr
		}
	} else if err != nil {
		return app, err
	}
	if len(urls) > 0 && !slices.Equal(app.GatewayURLs, urls) {
		log.Info("setting the app's gateway URLs", "app_id", id, "from", app.GatewayURLs, "to", urls)
		if err := c.Do(ctx, http.MethodPatch, "/admin/apps/"+id, nil, map[string]any{"gateway_urls": urls}, &app); err != nil {
			return app, err
		}
	}
	return app, nil
}

// retriable reports whether a server API call may succeed when tried
// again: no catalogue answer at all (routers starting, a proxy's 502), or
// 500/503. 400, 401 and 403 (a wrong admin key) are final.
func retriable(err error) bool {
	var e *liveimpb.Error
	return !errors.As(err, &e) || errors.Is(err, liveimpb.ErrUnavailable) || errors.Is(err, liveimpb.ErrInternal)
}

// lower returns the strings in lower case.
func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
