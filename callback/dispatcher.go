package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/storage"
)

// Config configures a Dispatcher. The zero value means the defaults.
type Config struct {
	// Batch is the most events one POST carries, and the most an app has
	// in flight. Default 100.
	Batch int
	// BatchBytes bounds one POST's events, in bytes as stored; a POST
	// carries one event at least. Default 512 KiB: a batch of 100 events
	// of messages near the 15 KiB data limit was 1.5 MB, over the body
	// limit many receivers keep (nginx's is 1 MiB), and a 413 was tried
	// again forever, so the app got no event after it.
	BatchBytes int
	// Linger is how long a dispatcher waits for more events before it
	// posts a batch that is not full. Default 50ms.
	Linger time.Duration
	// Timeout bounds one POST. Default 10s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed POST is
	// tried again; it doubles from MinBackoff. Defaults 500ms and 1m.
	MinBackoff, MaxBackoff time.Duration
	// Rescan is how often the apps are read to find callback URLs set or
	// removed. Default 5s.
	Rescan time.Duration
	// LeaseTTL is how long an app's events stay with a dispatcher that
	// stopped (died) before another takes them. Default 5s.
	LeaseTTL time.Duration
	// MaxAge is how long the stream keeps an event not yet delivered.
	// Default 72h.
	MaxAge time.Duration
	// MaxBytes bounds the events the stream holds, all apps together:
	// past it the oldest go, which are those of an app whose backend has
	// not taken them for longest (events delivered leave the stream at
	// once). Without it one app's dead receiver would fill the NATS
	// nodes' storage, which the HIGH and request streams share, within
	// MaxAge. Default 4 GiB.
	MaxBytes int64
	// StreamReplicas is the stream's replica count. Default 1.
	StreamReplicas int
	// HTTPClient posts the batches. Default: a client with Timeout.
	HTTPClient *http.Client
}

// RegisterFlags registers the tunables of callback delivery on fs, their
// names prefixed with prefix (the router uses "callback-"). StreamReplicas
// follows the router's and has no flag.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&c.Batch, prefix+"batch", 0, "callbacks: most events in one POST, and in flight per app (default 100)")
	fs.IntVar(&c.BatchBytes, prefix+"batch-bytes", 0, "callbacks: most bytes of events in one POST; a POST carries one event at least (default 524288)")
	fs.DurationVar(&c.Linger, prefix+"linger", 0, "callbacks: wait for more events before posting a batch that is not full (default 50ms)")
	fs.DurationVar(&c.Timeout, prefix+"timeout", 0, "callbacks: bound on one POST (default 10s)")
	fs.DurationVar(&c.MinBackoff, prefix+"min-backoff", 0, "callbacks: first wait before a failed POST is tried again, doubling (default 500ms)")
	fs.DurationVar(&c.MaxBackoff, prefix+"max-backoff", 0, "callbacks: longest wait before a failed POST is tried again (default 1m)")
	fs.DurationVar(&c.Rescan, prefix+"rescan", 0, "callbacks: how often the apps are read for callback URLs set or removed (default 5s)")
	fs.DurationVar(&c.LeaseTTL, prefix+"lease-ttl", 0, "callbacks: how long an app's events wait for a dispatcher that died before another router takes them (default 5s)")
	fs.DurationVar(&c.MaxAge, prefix+"max-age", 0, "callbacks: how long events wait for an app's backend that does not take them (default 72h)")
	fs.Int64Var(&c.MaxBytes, prefix+"max-bytes", 0, "callbacks: most bytes of events kept for apps' backends that do not take them, all apps together; the oldest go first (default 4 GiB)")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Batch < 0 || c.BatchBytes < 0 || c.StreamReplicas < 0 || c.MaxBytes < 0 {
		return errors.New("callback: negative size in config")
	}
	for _, d := range []time.Duration{c.Linger, c.Timeout, c.MinBackoff, c.MaxBackoff, c.Rescan, c.LeaseTTL, c.MaxAge} {
		if d < 0 {
			return errors.New("callback: negative duration in config")
		}
	}
	if d := c.WithDefaults(); d.MinBackoff > d.MaxBackoff {
		return fmt.Errorf("callback: the least backoff %v is above the largest, %v", d.MinBackoff, d.MaxBackoff)
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 512 << 10
	}
	if c.Linger <= 0 {
		c.Linger = 50 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.Rescan <= 0 {
		c.Rescan = 5 * time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 72 * time.Hour
	}
	if c.StreamReplicas <= 0 {
		c.StreamReplicas = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 30
	}
	if c.HTTPClient == nil {
		c.HTTPClient = AppClient(c.Timeout)
	}
	return c
}

// Buckets of the dispatchers (subject names them too).
const (
	// leaseBucket holds which dispatcher delivers an app's events: a key
	// per app, renewed by its holder, gone TTL after it stops.
	leaseBucket = "liveim_callback_leases"
	// cursorBucket holds, per app, the stream sequence of the last event
	// the app took.
	cursorBucket = "liveim_callback_cursors"
)

// Dispatcher delivers the events of every app with a callback URL.
type Dispatcher struct {
	cfg   Config
	js    jetstream.JetStream
	store storage.Store
	log   *slog.Logger
	id    string // names this dispatcher in leases

	leases, cursors jetstream.KeyValue

	delivered, failures prometheus.Counter

	mu   sync.Mutex // leaf lock
	apps map[string]context.CancelFunc
}

// NewDispatcher returns a Dispatcher. reg may be nil.
func NewDispatcher(cfg Config, js jetstream.JetStream, store storage.Store, log *slog.Logger, reg prometheus.Registerer) *Dispatcher {
	d := &Dispatcher{
		cfg: cfg.WithDefaults(), js: js, store: store, log: log, id: ids.New(), apps: make(map[string]context.CancelFunc),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "liveim_callback_events_delivered_total", Help: "Callback events the apps' backends took (2xx)."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "liveim_callback_post_failures_total", Help: "Callback POSTs that failed (error or non-2xx) and are retried."}),
	}
	if reg != nil {
		reg.MustRegister(d.delivered, d.failures)
	}
	return d
}

// Run makes the stream and buckets and delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	st, err := d.setup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(d.cfg.Rescan)
	defer tick.Stop()
	for {
		d.scan(ctx, st, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (d *Dispatcher) setup(ctx context.Context) (jetstream.Stream, error) {
	st, err := EnsureStream(ctx, d.js, d.cfg)
	if err != nil {
		return nil, err
	}
	if d.leases, err = d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: leaseBucket, Description: "which router delivers an app's callback events",
		TTL: d.cfg.LeaseTTL, Storage: jetstream.MemoryStorage, Replicas: d.cfg.StreamReplicas,
	}); err != nil {
		return nil, fmt.Errorf("callback: bucket %s: %w", leaseBucket, err)
	}
	if d.cursors, err = d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cursorBucket, Description: "the last callback event each app took",
		Storage: jetstream.FileStorage, Replicas: d.cfg.StreamReplicas,
	}); err != nil {
		return nil, fmt.Errorf("callback: bucket %s: %w", cursorBucket, err)
	}
	return st, nil
}

// scan starts delivering for apps that have a callback URL and stops for
// those that no longer have one.
func (d *Dispatcher) scan(ctx context.Context, st jetstream.Stream, wg *sync.WaitGroup) {
	apps, err := d.store.ListApps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("callbacks: list apps", "err", err)
		}
		return
	}
	want := make(map[string]bool)
	for _, a := range apps {
		if a.CallbackURL != "" && !a.Disabled {
			want[a.ID] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, cancel := range d.apps {
		if !want[id] {
			cancel()
			delete(d.apps, id)
		}
	}
	for id := range want {
		if d.apps[id] != nil {
			continue
		}
		actx, cancel := context.WithCancel(ctx)
		d.apps[id] = cancel
		wg.Go(func() { d.serveApp(actx, st, id) })
	}
}

// serveApp delivers an app's events whenever this dispatcher holds the
// app's lease, until ctx ends.
func (d *Dispatcher) serveApp(ctx context.Context, st jetstream.Stream, appID string) {
	for ctx.Err() == nil {
		l, err := d.acquire(ctx, appID)
		if err != nil { // another dispatcher delivers them: look again later
			if !sleep(ctx, d.cfg.LeaseTTL) {
				return
			}
			continue
		}
		err = d.deliver(ctx, st, l)
		l.release(context.WithoutCancel(ctx))
		if err != nil && ctx.Err() == nil {
			// NATS failing over, the lease lost: start again from the
			// cursor, after a pause.
			d.log.Warn("callbacks: delivering stopped; starting again", "app_id", appID, "err", err)
			if !sleep(ctx, d.cfg.MinBackoff) {
				return
			}
		}
	}
}

// lease is a dispatcher's hold on delivering an app's events.
type lease struct {
	d       *Dispatcher
	appID   string
	rev     uint64
	renewed time.Time
	// stream is when the stream being read was made: a cursor names it,
	// so a cursor into a stream since made again is not followed.
	stream time.Time
}

var errLeaseLost = errors.New("callback: lease lost")

// acquire takes the app's lease, if nobody holds it.
func (d *Dispatcher) acquire(ctx context.Context, appID string) (*lease, error) {
	rev, err := d.leases.Create(ctx, appID, []byte(d.id))
	if err != nil {
		return nil, err
	}
	return &lease{d: d, appID: appID, rev: rev, renewed: time.Now()}, nil
}

// renew keeps the lease when a third of its TTL has passed; it fails once
// another dispatcher took it.
func (l *lease) renew(ctx context.Context) error {
	if time.Since(l.renewed) < l.d.cfg.LeaseTTL/3 {
		return nil
	}
	rev, err := l.d.leases.Update(ctx, l.appID, []byte(l.d.id), l.rev)
	if err != nil {
		return fmt.Errorf("%w: %v", errLeaseLost, err)
	}
	l.rev, l.renewed = rev, time.Now()
	return nil
}

// hold renews the lease now, whenever it was renewed last: it fails once
// another dispatcher holds it.
func (l *lease) hold(ctx context.Context) error {
	l.renewed = time.Time{}
	return l.renew(ctx)
}

func (l *lease) release(ctx context.Context) {
	_ = l.d.leases.Delete(ctx, l.appID, jetstream.LastRevision(l.rev))
}

// deliver posts the app's events in stream order from the one after its
// cursor, while it holds the lease. A consumer of its own reads them; the
// cursor moves (and delivered events leave the stream) only after the app
// took a batch, so the next holder starts with what this one could not
// deliver: at least once, and in order.
//
// The consumer lives as long as this call: one is made per lease held,
// not per read (an ordered consumer's Fetch made a new one each time:
// idle apps × time of consumer proposals in a NATS cluster, and retried
// forever, deaf to ctx, once the stream was gone). It is R1 and acks
// nothing (the cursor is the record); the long pulls ask for heartbeats,
// so a consumer lost with its NATS node fails the pull, and deliver,
// which starts again from the cursor. So does a gap in the consumer's
// delivery sequence: events in flight when the connection moved to
// another NATS node are lost to this consumer, never to the app.
func (d *Dispatcher) deliver(ctx context.Context, st jetstream.Stream, l *lease) error {
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	l.stream = info.Created
	cursor, err := d.cursor(ctx, l)
	if err != nil {
		return err
	}
	cfg := jetstream.ConsumerConfig{
		Name:              "callbacks-" + l.appID + "-" + d.id,
		FilterSubject:     subject.CallbackApp(l.appID),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Minute, // one left behind by a dead router goes
		MemoryStorage:     true,
		Replicas:          1,
	}
	if cursor > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, cursor+1
	}
	// One of this name left by an earlier lease starts elsewhere.
	if err := st.DeleteConsumer(ctx, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer: %w", err)
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = st.DeleteConsumer(dctx, cfg.Name)
		cancel()
	}()
	wait := max(100*time.Millisecond, d.cfg.LeaseTTL/3)
	var delivered uint64 // the consumer's delivery sequence so far
	for ctx.Err() == nil {
		if err := l.renew(ctx); err != nil {
			return err
		}
		// Wait for one event, then take what else came within Linger, so
		// a quiet app gets its event at once and a busy one in batches.
		msgs, err := fetch(cons, 1, nil, jetstream.FetchMaxWait(wait), jetstream.FetchHeartbeat(wait/3))
		if err == nil && len(msgs) == 1 && d.cfg.Batch > 1 {
			msgs, err = fetch(cons, d.cfg.Batch-1, msgs, jetstream.FetchMaxWait(d.cfg.Linger))
		}
		for _, m := range msgs {
			meta, merr := m.Metadata()
			if merr != nil {
				return fmt.Errorf("event metadata: %w", merr)
			}
			if meta.Sequence.Consumer != delivered+1 {
				return fmt.Errorf("event %d delivered after %d: some were lost in flight", meta.Sequence.Consumer, delivered)
			}
			delivered++
		}
		if len(msgs) > 0 {
			for rest := msgs; len(rest) > 0; {
				n := fitting(rest, d.cfg.BatchBytes)
				if err := d.post(ctx, l, rest[:n]); err != nil {
					return err
				}
				rest = rest[n:]
			}
			continue
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

// fitting returns how many of msgs, one at least, hold at most max bytes.
func fitting(msgs []jetstream.Msg, max int) int {
	size := len(msgs[0].Data())
	n := 1
	for ; n < len(msgs) && size+len(msgs[n].Data()) <= max; n++ {
		size += len(msgs[n].Data())
	}
	return n
}

// fetch appends up to n messages of cons to msgs.
func fetch(cons jetstream.Consumer, n int, msgs []jetstream.Msg, opts ...jetstream.FetchOpt) ([]jetstream.Msg, error) {
	batch, err := cons.Fetch(n, opts...)
	if err != nil {
		return msgs, err
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, batch.Error()
}

// cursor returns the stream sequence of the last event the app took, 0
// for none. A cursor is "<sequence> <stream created, Unix ns>"; one
// written into another stream of the name (deleted and made again: its
// sequences start at 1 again) is void, or the app would miss the new
// stream's first events. A bare sequence (written by an earlier version)
// is taken as it is.
func (d *Dispatcher) cursor(ctx context.Context, l *lease) (uint64, error) {
	e, err := d.cursors.Get(ctx, l.appID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cursor: %w", err)
	}
	seqText, created, stamped := strings.Cut(string(e.Value()), " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: %w", e.Value(), err)
	}
	if stamped && created != strconv.FormatInt(l.stream.UnixNano(), 10) {
		d.log.Warn("callbacks: the stream was made again since the app's cursor; delivering from its start", "app_id", l.appID, "cursor", seq)
		return 0, nil
	}
	return seq, nil
}

// post delivers msgs in one POST, retrying (and keeping the lease) until
// the app takes them; then it moves the app's cursor past them and
// removes them from the stream. It fails when ctx ends or the lease is
// lost: the events stay for the next holder.
func (d *Dispatcher) post(ctx context.Context, l *lease, msgs []jetstream.Msg) error {
	b := Batch{AppID: l.appID, Events: make([]Event, 0, len(msgs))}
	for _, m := range msgs {
		var ev Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			d.log.Error("callbacks: undecodable event dropped", "app_id", l.appID, "err", err)
			continue
		}
		if err := fromItsPublisher(m.Subject(), ev); err != nil {
			d.log.Error("callbacks: forged event dropped", "app_id", l.appID, "subject", m.Subject(), "err", err)
			continue
		}
		b.Events = append(b.Events, ev)
	}
	body, _ := json.Marshal(b)
	backoff := d.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := d.sendHolding(ctx, l, body)
		if err == nil {
			break
		}
		if errors.Is(err, errLeaseLost) {
			return err
		}
		d.failures.Inc()
		d.log.Warn("callbacks: POST failed; retrying", "app_id", l.appID, "events", len(b.Events), "attempt", attempt, "retry_in", backoff, "err", err)
		for until := time.Now().Add(backoff); time.Now().Before(until); {
			if !sleep(ctx, min(time.Until(until), d.cfg.LeaseTTL/3)) {
				return ctx.Err()
			}
			if err := l.renew(ctx); err != nil {
				return err
			}
		}
		backoff = min(2*backoff, d.cfg.MaxBackoff)
	}
	d.delivered.Add(float64(len(b.Events)))
	// The cursor moves only under the lease: a holder that lost it must
	// not move the next holder's cursor back.
	if err := l.hold(ctx); err != nil {
		return err
	}
	meta, err := msgs[len(msgs)-1].Metadata()
	if err != nil {
		return fmt.Errorf("event metadata: %w", err)
	}
	last := meta.Sequence.Stream
	if _, err := d.cursors.Put(ctx, l.appID, fmt.Appendf(nil, "%d %d", last, l.stream.UnixNano())); err != nil {
		return fmt.Errorf("cursor: %w", err) // the batch comes again: at least once
	}
	// Delivered events leave the stream; what is not delivered waits up
	// to MaxAge. Only from the stream they were read from: in one made
	// again since, the sequences below last+1 are new events, never
	// delivered (TestAuditCBPurgeAfterStreamMadeAgain).
	st, err := d.js.Stream(ctx, subject.CallbackStream)
	switch {
	case err != nil:
	case !st.CachedInfo().Created.Equal(l.stream):
		d.log.Info("callbacks: the stream was made again while a batch was posted; nothing purged", "app_id", l.appID)
	default:
		err = st.Purge(ctx, jetstream.WithPurgeSubject(subject.CallbackApp(l.appID)), jetstream.WithPurgeSequence(last+1))
	}
	if err != nil {
		d.log.Debug("callbacks: purge delivered events", "app_id", l.appID, "err", err)
	}
	return nil
}

// fromItsPublisher checks that an event is one its subject's publisher
// may publish. Gateways publish users' online and offline events, on
// user subjects; every other event comes from routers, on group
// subjects, which gateways cannot publish to. A gateway (the process
// facing the internet) must not get a signed event of another kind, or
// of another app or user than its subject's, to an app's backend.
func fromItsPublisher(subj string, ev Event) error {
	rest, ok := strings.CutPrefix(subj, "liveim.cb.")
	if !ok {
		return fmt.Errorf("subject %q", subj)
	}
	appID, rest, _ := strings.Cut(rest, ".")
	if ev.AppID != appID {
		return fmt.Errorf("an event of app %q on app %q's subject", ev.AppID, appID)
	}
	if userID, ok := strings.CutPrefix(rest, "u."); ok {
		if ev.Type != UserOnline && ev.Type != UserOffline {
			return fmt.Errorf("a %s event on a user subject", ev.Type)
		}
		if ev.User == nil || ev.User.UserID != userID {
			return fmt.Errorf("an event of another user on user %q's subject", userID)
		}
	}
	return nil
}

// sendHolding is send that keeps the lease while the POST lasts: a
// receiver may take up to Timeout to answer, longer than LeaseTTL, and
// the lease must not pass to another router meanwhile, which would post
// the same events beside this one. It fails with errLeaseLost when the
// lease was lost all the same (the POST is then cut short).
func (d *Dispatcher) sendHolding(ctx context.Context, l *lease, body []byte) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(d.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.renew(ctx); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	err := d.send(ctx, l.appID, body)
	cancel(nil)
	<-renewed
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
		return cause
	}
	return err
}

// send POSTs one batch to the app's current callback URL, signed with its
// current key.
func (d *Dispatcher) send(ctx context.Context, appID string, body []byte) error {
	app, err := d.store.GetApp(ctx, appID)
	if err != nil {
		return fmt.Errorf("get app: %w", err)
	}
	if app.CallbackURL == "" {
		return errors.New("the app has no callback URL now")
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, app.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	auth.SignRequest(req, app.ID, app.Key, body, time.Now())
	resp, err := d.cfg.HTTPClient.Do(req)
	if err != nil {
		return redact(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// redact keeps the URL's query and credentials (apps put tokens there)
// out of logs.
func redact(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		return fmt.Errorf("post: %w", ue.Unwrap())
	}
	return err
}

// sleep waits d or until ctx ends; it reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
