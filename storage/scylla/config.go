package scylla

import (
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// Config configures a Store. The zero value means the defaults, applied
// in one place (withDefaults), except Hosts, which is required.
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
	// PasswordAuthenticator.
	Username, Password string
}

// RegisterFlags registers the Scylla flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("scylla-hosts", "ScyllaDB contact points, comma separated (host or host:port)", func(v string) error {
		c.Hosts = nil
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.Hosts = append(c.Hosts, h)
			}
		}
		return nil
	})
	fs.StringVar(&c.Keyspace, "scylla-keyspace", "", "ScyllaDB keyspace (default liveim)")
	fs.StringVar(&c.Replication, "scylla-replication", "", "replication map used when creating the keyspace (default SimpleStrategy, RF 1)")
	fs.StringVar(&c.Consistency, "scylla-consistency", "", "read and write consistency (default LOCAL_QUORUM)")
	fs.StringVar(&c.Username, "scylla-username", "", "ScyllaDB user name")
	fs.StringVar(&c.Password, "scylla-password", "", "ScyllaDB password")
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
	if c.BucketWidth < 0 || c.Timeout < 0 {
		return errors.New("scylla: negative duration")
	}
	return nil
}

func (c Config) withDefaults() Config {
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

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != "" && len(s) <= 48
}
