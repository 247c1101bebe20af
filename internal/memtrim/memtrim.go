// Package memtrim hands a process's free heap memory back to the
// operating system once a burst of allocation is over.
//
// Go's collector keeps the memory a heap grew into up to its next goal
// (GOGC: twice what is live at Go's default), and returns it only slowly
// when the heap is that size. After a login storm a gateway, router or
// NATS server therefore stays at its peak's RSS, although what it keeps
// live is far less, and Kubernetes charges the peak. A trimmer watches
// how fast the process allocates; when a burst of at least Config.Burst
// bytes has been followed by Config.Quiet of allocating less than
// Config.QuietRate a second, it collects and returns the free memory
// once (debug.FreeOSMemory). A process under steady load never trims; an
// idle one trims once after each burst.
package memtrim

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is when a trimmer trims. The zero value means the defaults.
type Config struct {
	// Quiet is how long allocation must stay below QuietRate after a
	// burst before the trim. Default 5s; negative turns trimming off.
	Quiet time.Duration
	// QuietRate is the allocation rate, in bytes a second, under which a
	// process counts as quiet. Default 4 MiB.
	QuietRate int64
	// Burst is how many bytes must have been allocated since the last
	// trim (or the start) for another to be worth a collection.
	// Default 64 MiB.
	Burst int64
}

// RegisterFlags registers the settings of c on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Quiet, "trim-quiet", 0, "after an allocation burst, how long the process must stay quiet before its free heap memory goes back to the OS (default 5s; negative: never)")
	fs.Int64Var(&c.QuietRate, "trim-quiet-rate", 0, "allocation rate (bytes/s) under which the process counts as quiet (default 4194304)")
	fs.Int64Var(&c.Burst, "trim-burst", 0, "bytes allocated since the last trim before another is worth a collection (default 67108864)")
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Quiet == 0 {
		c.Quiet = 5 * time.Second
	}
	if c.QuietRate == 0 {
		c.QuietRate = 4 << 20
	}
	if c.Burst == 0 {
		c.Burst = 64 << 20
	}
	return c
}

// Validate reports a setting that cannot be right.
func (c Config) Validate() error {
	if c.QuietRate < 0 || c.Burst < 0 {
		return errors.New("memtrim: negative --trim-quiet-rate or --trim-burst")
	}
	return nil
}

// sampleEvery is how often a trimmer reads the allocation counter; a
// read costs well under a microsecond and stops nothing.
const sampleEvery = time.Second

// Run trims the process's heap as Config says until ctx ends, counting
// its trims in liveim_heap_trims_total on reg.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) {
	cfg = cfg.WithDefaults()
	if cfg.Quiet < 0 {
		return
	}
	trims := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "liveim_heap_trims_total",
		Help: "Times the process handed its free heap back to the OS after an allocation burst (--trim-quiet).",
	})
	if err := reg.Register(trims); err != nil {
		log.Warn("heap trims metric", "err", err)
	}
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	t := newTrimmer(cfg, time.Now(), read())
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if !t.observe(now, read()) {
				continue
			}
			var before, after debug.GCStats
			debug.ReadGCStats(&before)
			start := time.Now()
			debug.FreeOSMemory()
			debug.ReadGCStats(&after)
			trims.Inc()
			log.Info("heap trimmed after an allocation burst", "took", time.Since(start), "gc_pause", after.PauseTotal-before.PauseTotal)
		}
	}
}

// trimmer decides when to trim from samples of the process's cumulative
// allocated bytes; it does no trimming itself.
type trimmer struct {
	cfg        Config
	last       uint64    // allocated bytes at the last sample
	lastAt     time.Time // when
	trimmedAt  uint64    // allocated bytes at the last trim (or start)
	quietSince time.Time // zero while the process allocates fast
}

func newTrimmer(cfg Config, now time.Time, allocated uint64) *trimmer {
	return &trimmer{cfg: cfg, last: allocated, lastAt: now, trimmedAt: allocated}
}

// observe takes a sample and reports whether to trim now: a burst of at
// least Burst bytes since the last trim, then Quiet below QuietRate.
func (t *trimmer) observe(now time.Time, allocated uint64) bool {
	elapsed := now.Sub(t.lastAt).Seconds()
	if elapsed <= 0 {
		return false
	}
	rate := float64(allocated-t.last) / elapsed
	prevAt := t.lastAt
	t.last, t.lastAt = allocated, now
	if rate >= float64(t.cfg.QuietRate) {
		t.quietSince = time.Time{}
		return false
	}
	if t.quietSince.IsZero() {
		t.quietSince = prevAt // quiet over the whole sample
	}
	if now.Sub(t.quietSince) < t.cfg.Quiet || allocated-t.trimmedAt < uint64(t.cfg.Burst) {
		return false
	}
	t.trimmedAt = allocated
	return true
}
