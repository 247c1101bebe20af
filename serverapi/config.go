package serverapi

import (
	"errors"
	"flag"
	"time"
)

// Config configures the server API.
type Config struct {
	// AdminKey authorises the operator's app management (Authorization:
	// Bearer <key>). Empty turns the admin API off (403). Set from
	// --admin-key-file.
	AdminKey string
	// AdminKeyFile is where AdminKey is read from. Default none.
	AdminKeyFile string
	// RequestTimeout bounds one router request. Default 10s.
	RequestTimeout time.Duration
	// OnlineTimeout bounds the wait for gateways' answers to an online
	// check. Default 2s.
	OnlineTimeout time.Duration
	// MaxBodyBytes is the largest request body (413 above it). Default
	// 1 MiB.
	MaxBodyBytes int64
	// BroadcastParallel is how many groups a broadcast sends to at once.
	// Default 16.
	BroadcastParallel int
	// StreamReplicas is the replica count of the nonce bucket. Default 1.
	StreamReplicas int
	// AppRate is how many requests a second one app may make of this
	// router's server API; past it (and AppBurst) a request is 412 (HTTP
	// 429). Default 1000.
	AppRate float64
	// AppBurst is how many requests an app may make at once before
	// AppRate applies. Default 2000.
	AppBurst int
	// NonceMaxBytes bounds the nonce bucket, all apps together; when it
	// is full, signed requests are 503 until nonces age out (a replay is
	// never let through). Default 1 GiB.
	NonceMaxBytes int64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// RegisterFlags adds the server API's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.AdminKeyFile, "admin-key-file", "", "file holding the admin key of the server API's app management (empty: admin API off)")
	fs.DurationVar(&c.RequestTimeout, "api-request-timeout", 0, "server API: bound on one router request (default 10s)")
	fs.DurationVar(&c.OnlineTimeout, "api-online-timeout", 0, "server API: wait for the gateways' answers to an online check (default 2s)")
	fs.Int64Var(&c.MaxBodyBytes, "api-max-body-bytes", 0, "server API: largest request body (default 1048576)")
	fs.IntVar(&c.BroadcastParallel, "api-broadcast-parallel", 0, "server API: groups a broadcast sends to at once (default 16)")
	fs.Float64Var(&c.AppRate, "api-app-rate", 0, "server API: requests per second one app may make of this router (default 1000)")
	fs.IntVar(&c.AppBurst, "api-app-burst", 0, "server API: requests one app may make at once before --api-app-rate applies (default 2000)")
	fs.Int64Var(&c.NonceMaxBytes, "api-nonce-max-bytes", 0, "server API: most bytes of request nonces kept for the replay window, all apps together; when full, requests are 503 (default 1 GiB)")
}

// WithDefaults returns c with defaults for unset fields.
func (c Config) WithDefaults() Config {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.OnlineTimeout <= 0 {
		c.OnlineTimeout = 2 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.BroadcastParallel <= 0 {
		c.BroadcastParallel = 16
	}
	if c.StreamReplicas <= 0 {
		c.StreamReplicas = 1
	}
	if c.AppRate <= 0 {
		c.AppRate = 1000
	}
	if c.AppBurst <= 0 {
		c.AppBurst = 2000
	}
	if c.NonceMaxBytes <= 0 {
		c.NonceMaxBytes = 1 << 30
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// MinAdminKeyLen is the shortest admin key accepted.
const MinAdminKeyLen = 16

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.AdminKey != "" && len(c.AdminKey) < MinAdminKeyLen {
		return errors.New("serverapi: the admin key must be at least 16 characters")
	}
	if c.RequestTimeout < 0 || c.OnlineTimeout < 0 || c.MaxBodyBytes < 0 || c.BroadcastParallel < 0 || c.StreamReplicas < 0 || c.NonceMaxBytes < 0 || c.AppRate < 0 || c.AppBurst < 0 {
		return errors.New("serverapi: negative duration or size in config")
	}
	return nil
}
