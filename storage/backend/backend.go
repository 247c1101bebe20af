// Package backend opens the storage backend a component's configuration
// names: the embedded pebble store (single node) or ScyllaDB.
//
//	var cfg backend.Config
//	cfg.RegisterFlags(fs)
//	store, err := backend.Open(ctx, cfg, dataDir, logger)
package backend

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
	"github.com/liveim/liveim/storage/scylla"
)

// Names of the backends.
const (
	Pebble = "pebble"
	Scylla = "scylla"
)

// Config selects and configures a backend.
type Config struct {
	// Kind is Pebble or Scylla. Default Pebble.
	Kind string
	// Scylla configures the Scylla backend.
	Scylla scylla.Config
}

// RegisterFlags registers --store and the --scylla-* flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Kind, "store", Pebble, "storage backend: pebble (embedded, one process) or scylla")
	c.Scylla.RegisterFlags(fs)
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch c.Kind {
	case "", Pebble:
		return nil
	case Scylla:
		return c.Scylla.Validate()
	}
	return fmt.Errorf("--store %q: want %s or %s", c.Kind, Pebble, Scylla)
}

// Open opens the configured backend; the pebble store lives under
// dataDir/store.
func Open(ctx context.Context, c Config, dataDir string, logger *slog.Logger) (storage.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Kind == Scylla {
		return scylla.Open(ctx, c.Scylla, logger)
	}
	return pebble.Open(filepath.Join(dataDir, "store"), pebble.Options{Logger: logger})
}
