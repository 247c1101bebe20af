// Package backend opens the storage backend a component's configuration
// names: the embedded pebble store (single node) or ScyllaDB.
//
//	var cfg backend.Config
//	cfg.RegisterFlags(fs)
//	store, err := backend.Open(ctx, cfg, dataDir, logger)
package backend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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
	fs.StringVar(&c.Kind, "store", "", "storage backend: pebble (embedded, one process) or scylla (default pebble)")
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

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Kind == "" {
		c.Kind = Pebble
	}
	c.Scylla = c.Scylla.WithDefaults()
	return c
}

// Open opens the configured backend; the pebble store lives under
// dataDir/store (see openPebble).
func Open(ctx context.Context, c Config, dataDir string, logger *slog.Logger) (storage.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Kind == Scylla {
		return scylla.Open(ctx, c.Scylla, logger)
	}
	return openPebble(ctx, dataDir, logger)
}

// StoreDir and StoreIDFile are the pebble store's directory and the file
// that records its identity, under the data directory.
const (
	StoreDir    = "store"
	StoreIDFile = "store.id"
)

// ErrDamagedStore is returned by Open when the data directory's store is
// missing, cannot be opened, or is not the one the directory was created
// with.
var ErrDamagedStore = errors.New("refusing to start: the store is damaged or missing")

// openPebble opens dataDir/store and checks it is the store the data
// directory was created with: dataDir/store.id records the identity of
// the store made there. A store that went missing, lost its manifest or
// was swapped is refused, never replaced by an empty one: seqnums would
// be handed out again beside the HIGH messages JetStream still holds.
func openPebble(ctx context.Context, dataDir string, logger *slog.Logger) (storage.Store, error) {
	dir, marker := filepath.Join(dataDir, StoreDir), filepath.Join(dataDir, StoreIDFile)
	want, err := os.ReadFile(marker)
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: %w", err)
	}
	refuse := func(why string, args ...any) error {
		return fmt.Errorf("%w: %s; %s records a store created there. Restore %s from a backup, or move %s aside to start afresh",
			ErrDamagedStore, fmt.Sprintf(why, args...), marker, dir, dataDir)
	}
	if created {
		if _, err := os.Stat(dir); err != nil {
			return nil, refuse("%s is missing", dir)
		}
	}
	st, err := pebble.Open(dir, pebble.Options{Logger: logger, MustExist: created})
	if err != nil {
		if created {
			return nil, refuse("%v", err)
		}
		return nil, err
	}
	id, err := st.ID(ctx)
	if err == nil && created && strings.TrimSpace(string(want)) != id {
		err = refuse("%s is another store (identity %s, want %s)", dir, id, strings.TrimSpace(string(want)))
	}
	if err == nil && !created {
		err = os.WriteFile(marker, []byte(id+"\n"), 0o600)
	}
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}
