package scylla

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/liveim/liveim/internal/flagvalue"
)

// Config configures a Store. The zero value means the defaults, applied
// in one place (WithDefaults), except Hosts, which is required.
type Config struct {
	// Hosts are the contact points, host or host:port. Required.
	Hosts []string
	// Keyspace holds liveim's tables. Default "liveim".
	Keyspace string
	// Replication is the keyspace's replication map, used when the
	// keyspace is created. Default "{'class': 'SimpleStrategy',
	// 'replication_factor': 1}"; production clusters use
	// NetworkTopologyStrategy, e.g. "{'class': 'NetworkTopologyStrategy',
	// 'dc1': 3}".
	Replication string
	// Consistency of reads and writes. Default LOCAL_QUORUM.
	Consistency string
	// SerialConsistency of compare-and-set writes. Default LOCAL_SERIAL.
	SerialConsistency string
	// BucketWidth is the time span of one message partition: a group's
	// history is split into one partition per window, so a busy room never
	// grows an unbounded partition. Default 1h (at the default room rate cap
	// of 500 messages/s, at most 1.8M rows, a few hundred MB, per
	// partition).
	BucketWidth time.Duration
	// Timeout bounds one query. Default 5s.
	Timeout time.Duration
	// Username and Password, when set, authenticate with
	// PasswordAuthenticator. PasswordFile, when set, holds the password
	// (so it stays off command lines); it wins over Password.
	Username, Password, PasswordFile string
	// TLS encrypts connections to the cluster, verifying each node's
	// certificate against the system roots or TLSCA and its host name
	// (or IP) against the contact point. Setting TLSCA or TLSCert turns it
	// on. Default off.
	TLS bool
	// TLSCA is a PEM bundle of the CAs that sign the nodes' certificates.
	TLSCA string
	// TLSCert and TLSKey are a client certificate for clusters that
	// require one.
	TLSCert, TLSKey string
}

// RegisterFlags registers the Scylla flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(flagvalue.List(&c.Hosts), "scylla-hosts", "ScyllaDB contact points, comma separated (host or host:port)")
	fs.StringVar(&c.Keyspace, "scylla-keyspace", "", "ScyllaDB keyspace (default liveim)")
	fs.StringVar(&c.Replication, "scylla-replication", "", "replication map used when creating the keyspace (default {'class': 'SimpleStrategy', 'replication_factor': 1})")
	fs.StringVar(&c.Consistency, "scylla-consistency", "", "read and write consistency (default LOCAL_QUORUM)")
	fs.StringVar(&c.SerialConsistency, "scylla-serial-consistency", "", "consistency of compare-and-set writes (default LOCAL_SERIAL)")
	fs.DurationVar(&c.BucketWidth, "scylla-bucket-width", 0, "time span of one message partition; set it before the keyspace holds messages and never change it (default 1h)")
	fs.DurationVar(&c.Timeout, "scylla-timeout", 0, "bound on one query (default 5s)")
	fs.StringVar(&c.Username, "scylla-username", "", "ScyllaDB user name")
	fs.StringVar(&c.Password, "scylla-password", "", "ScyllaDB password (prefer --scylla-password-file: command lines are visible to every local user)")
	fs.StringVar(&c.PasswordFile, "scylla-password-file", "", "file holding the ScyllaDB password")
	fs.BoolVar(&c.TLS, "scylla-tls", false, "connect to ScyllaDB over TLS (on by itself with --scylla-tls-ca or --scylla-tls-cert)")
	fs.StringVar(&c.TLSCA, "scylla-tls-ca", "", "CA bundle (PEM) that signs the ScyllaDB nodes' certificates")
	fs.StringVar(&c.TLSCert, "scylla-tls-cert", "", "client certificate (PEM) for ScyllaDB")
	fs.StringVar(&c.TLSKey, "scylla-tls-key", "", "key (PEM) of --scylla-tls-cert")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Hosts) == 0 {
		return errors.New("scylla: no hosts")
	}
	if c.Keyspace != "" && !validName(c.Keyspace) {
		return errors.New("scylla: keyspace must be letters, digits and _")
	}
	for _, s := range []string{c.Consistency, c.SerialConsistency} {
		if s != "" {
			if _, err := gocql.ParseConsistencyWrapper(s); err != nil {
				return errors.New("scylla: unknown consistency " + s)
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("scylla: --scylla-tls-cert and --scylla-tls-key go together")
	}
	if c.PasswordFile != "" && c.Username == "" {
		return errors.New("scylla: --scylla-password-file needs --scylla-username")
	}
	if c.BucketWidth < 0 || c.Timeout < 0 {
		return errors.New("scylla: negative duration")
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Keyspace == "" {
		c.Keyspace = "liveim"
	}
	if c.Replication == "" {
		c.Replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
	}
	if c.Consistency == "" {
		c.Consistency = "LOCAL_QUORUM"
	}
	if c.SerialConsistency == "" {
		c.SerialConsistency = "LOCAL_SERIAL"
	}
	if c.BucketWidth == 0 {
		c.BucketWidth = time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// cluster returns the gocql cluster configuration for cfg (defaults
// applied): contact points, timeouts, credentials and TLS.
func (c Config) cluster() (*gocql.ClusterConfig, error) {
	cl := gocql.NewCluster(c.Hosts...)
	cl.Timeout, cl.ConnectTimeout = c.Timeout, c.Timeout
	if c.Username != "" {
		pw := c.Password
		if c.PasswordFile != "" {
			b, err := os.ReadFile(c.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("scylla: --scylla-password-file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: pw}
	}
	if c.TLS || c.TLSCA != "" || c.TLSCert != "" {
		cl.SslOpts = &gocql.SslOptions{CaPath: c.TLSCA, CertPath: c.TLSCert, KeyPath: c.TLSKey, EnableHostVerification: true}
	}
	return cl, nil
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != "" && len(s) <= 48
}
