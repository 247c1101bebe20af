// Package natsconn connects liveim's components to NATS with the
// credentials and TLS settings of their configuration: a user and a
// password (from a file), an nkey seed, a JWT credentials file, and TLS
// with a private CA and a client certificate.
//
//	var cfg natsconn.Config
//	cfg.RegisterFlags(fs)
//	nc, err := natsconn.Connect(ctx, cfg, "liveim-gateway", logger)
//
// When no server can be reached at first, Connect keeps trying for
// Config.ConnectWait (a process may start before NATS does); refused
// credentials or TLS fail at once. A connection that was up reconnects
// forever. Connects, disconnects, reconnects and lame-duck notices are
// logged.
//
// Secrets never reach an error or a log line: URLs are shown with their
// passwords redacted, and passwords are read from files, never from the
// command line.
package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/internal/flagvalue"
	"github.com/liveim/liveim/internal/subject"
)

// GatewayInbox is the option every gateway connects with: its requests'
// inboxes under subject.GatewayInboxPrefix, the only inboxes a gateway
// may read.
func GatewayInbox() nats.Option { return nats.CustomInboxPrefix(subject.GatewayInboxPrefix) }

// Config says how to reach NATS. The zero value connects to
// nats.DefaultURL without credentials.
type Config struct {
	// URL is one or more NATS URLs, comma separated. Default
	// nats://127.0.0.1:4222.
	URL string
	// User is the user name; its password is read from PasswordFile.
	User string
	// PasswordFile holds User's password (surrounding space is ignored).
	PasswordFile string
	// NKeySeedFile holds an nkey seed ("SU..."), for servers that
	// authenticate nkeys.
	NKeySeedFile string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed),
	// for servers in operator mode.
	CredsFile string
	// TLSCA verifies the server against this CA bundle instead of the
	// system roots; setting it, or TLSCert, turns TLS on.
	TLSCA string
	// TLSCert and TLSKey are a client certificate for servers that verify
	// clients (mutual TLS).
	TLSCert, TLSKey string
	// ConnectWait is how long Connect keeps trying when no server can be
	// reached at first; refused credentials or TLS fail at once. Default
	// 30s.
	ConnectWait time.Duration
}

// DefaultConnectWait is Config.ConnectWait's default.
const DefaultConnectWait = 30 * time.Second

// RegisterFlags registers --nats and the --nats-* flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(flagvalue.Joined(&c.URL), "nats", "NATS URL(s), comma separated (default "+nats.DefaultURL+")")
	fs.StringVar(&c.User, "nats-user", "", "NATS user name (password from --nats-password-file)")
	fs.StringVar(&c.PasswordFile, "nats-password-file", "", "file holding the NATS user's password")
	fs.StringVar(&c.NKeySeedFile, "nats-nkey", "", "file holding an nkey seed to authenticate with")
	fs.StringVar(&c.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and seed)")
	fs.StringVar(&c.TLSCA, "nats-tls-ca", "", "CA bundle that signs the NATS servers' certificates (turns TLS on)")
	fs.StringVar(&c.TLSCert, "nats-tls-cert", "", "client certificate for NATS mutual TLS")
	fs.StringVar(&c.TLSKey, "nats-tls-key", "", "key of --nats-tls-cert")
	fs.DurationVar(&c.ConnectWait, "nats-connect-wait", 0, "how long to keep trying to reach NATS at start; refused credentials or TLS fail at once (default 30s)")
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.ConnectWait == 0 {
		c.ConnectWait = DefaultConnectWait
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for i, u := range strings.Split(c.URL, ",") {
		if err := checkURL(strings.TrimSpace(u)); err != nil {
			return fmt.Errorf("natsconn: --nats, URL %d: %w", i+1, err)
		}
	}
	if (c.User == "") != (c.PasswordFile == "") {
		return errors.New("natsconn: --nats-user and --nats-password-file go together")
	}
	n := 0
	for _, set := range []bool{c.User != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("natsconn: use one of --nats-user, --nats-nkey and --nats-creds")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("natsconn: --nats-tls-cert and --nats-tls-key go together")
	}
	if c.ConnectWait < 0 {
		return errors.New("natsconn: --nats-connect-wait must not be negative")
	}
	return nil
}

// checkURL reports a NATS URL nats.go would refuse, or one without a host,
// naming it with its password redacted. An empty one is the default.
func checkURL(u string) error {
	if u == "" {
		return nil
	}
	if !strings.Contains(u, "://") {
		u = "nats://" + u // as nats.go reads it
	}
	pu, err := url.Parse(u)
	if err != nil {
		return errors.New("not a URL") // url's error would show a password
	}
	if pu.Hostname() == "" {
		return fmt.Errorf("%s names no host", Redact(u))
	}
	if p := pu.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Errorf("%s: port %q is not a number from 0 to 65535", Redact(u), p)
		}
	}
	return nil
}

// Connect connects as name (the connection name servers show), logging
// the connection's life on log. When no server can be reached it keeps
// trying (nats.RetryOnFailedConnect) for Config.ConnectWait, or until ctx
// ends; a server that refuses the credentials or the TLS handshake ends
// it at once. Once connected it reconnects forever. Its errors name the
// servers with any password in their URLs redacted.
func Connect(ctx context.Context, c Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("nats_connection", name)
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if c.User != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("natsconn: --nats-password-file: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.User, strings.TrimSpace(string(b))))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("natsconn: --nats-nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	up := make(chan struct{})
	var once sync.Once
	opts = append(opts, handlers(log, func() { once.Do(func() { close(up) }) })...)
	opts = append(opts, extra...)

	// A first attempt tells a server that refuses us (fail now) from no
	// server at all (wait for one).
	nc, err := nats.Connect(c.URL, opts...)
	if err == nil {
		return nc, nil
	}
	if refused(err) {
		return nil, fmt.Errorf("connect to NATS at %s: %w", Redact(c.URL), err)
	}
	log.Warn("NATS not reachable; retrying", "url", Redact(c.URL), "for", c.ConnectWait.String(), "err", err)
	nc, err = nats.Connect(c.URL, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", Redact(c.URL), err)
	}
	deadline := time.NewTimer(c.ConnectWait)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-up:
			return nc, nil
		case <-poll.C:
			if nc.IsConnected() {
				return nc, nil
			}
			if err = nc.LastError(); !refused(err) {
				continue
			}
			err = fmt.Errorf("connect to NATS at %s: %w", Redact(c.URL), err)
		case <-deadline.C:
			err = fmt.Errorf("connect to NATS at %s: no server reachable within %s", Redact(c.URL), c.ConnectWait)
		case <-ctx.Done():
			err = fmt.Errorf("connect to NATS at %s: %w", Redact(c.URL), ctx.Err())
		}
		nc.Close()
		return nil, err
	}
}

// refused reports whether err says a server refused the connection, its
// credentials or its TLS: trying again cannot help.
func refused(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrAccountAuthExpired), errors.Is(err, nats.ErrSecureConnRequired), errors.Is(err, nats.ErrSecureConnWanted),
		errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return true
	}
	// A TLS alert from the server (say, a client certificate it wants).
	return strings.Contains(err.Error(), "tls: ")
}

// handlers log the connection's life; connected runs once it is up.
func handlers(log *slog.Logger, connected func()) []nats.Option {
	return []nats.Option{
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connected", "url", nc.ConnectedUrlRedacted(), "server_id", nc.ConnectedServerId())
			connected()
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // Close or Drain: not an outage
			}
			log.Warn("NATS disconnected; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted(), "server_id", nc.ConnectedServerId(), "reconnects", nc.Stats().Reconnects)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("NATS reconnect attempt failed", "err", err)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Warn("NATS connection closed", "err", err)
				return
			}
			log.Debug("NATS connection closed")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn("NATS server entering lame duck mode; reconnecting to another", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS error", "subject", subj, "err", err)
		}),
	}
}

// Redact returns NATS URLs (comma separated) with their passwords and
// tokens replaced by "xxxxx".
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx") // a bare token
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
