package router

import (
	"errors"
	"flag"
	"time"
)

// Config configures a Router. The zero value means the defaults; they are
// applied in one place, withDefaults.
type Config struct {
	// Workers is how many requests are processed at once. Requests of one
	// group always go to the same worker, so they keep their order.
	// Default 32.
	Workers int
	// C2CTimeout bounds the wait for the receiver's gateway to take a C2C
	// message. Default 3s.
	C2CTimeout time.Duration
	// MaxDataBytes is the largest message data, in bytes (413 above it).
	// Default 15 KiB.
	MaxDataBytes int
	// MaxGroupNameBytes is the longest groupName. Default 128.
	MaxGroupNameBytes int
	// MaxGroupMetaBytes is the largest groupMeta. Default 32 KiB.
	MaxGroupMetaBytes int
	// RecentPageSize is listRecentMessage's default and largest page.
	// Default 50.
	RecentPageSize int
	// SeqBlock is how many seqnums a router reserves per group state write,
	// so a restart never reuses one. Default 1000.
	SeqBlock int64
}

// RegisterFlags registers the router flags on fs with the given prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&c.Workers, prefix+"workers", 0, "router: concurrent request workers (default 32)")
	fs.DurationVar(&c.C2CTimeout, prefix+"c2c-timeout", 0, "router: wait for a C2C receiver's gateway (default 3s)")
	fs.IntVar(&c.MaxDataBytes, prefix+"max-data-bytes", 0, "router: largest message data in bytes (default 15360)")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Workers < 0 || c.MaxDataBytes < 0 || c.MaxGroupNameBytes < 0 || c.MaxGroupMetaBytes < 0 || c.RecentPageSize < 0 || c.SeqBlock < 0 {
		return errors.New("router: negative size in config")
	}
	if c.C2CTimeout < 0 {
		return errors.New("router: negative c2c timeout")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.C2CTimeout == 0 {
		c.C2CTimeout = 3 * time.Second
	}
	if c.MaxDataBytes == 0 {
		c.MaxDataBytes = 15 << 10
	}
	if c.MaxGroupNameBytes == 0 {
		c.MaxGroupNameBytes = 128
	}
	if c.MaxGroupMetaBytes == 0 {
		c.MaxGroupMetaBytes = 32 << 10
	}
	if c.RecentPageSize == 0 {
		c.RecentPageSize = 50
	}
	if c.SeqBlock == 0 {
		c.SeqBlock = 1000
	}
	return c
}
