package router

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/ratelimit"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/observed"
)

// Router answers gateway requests. Build it with New and start it with Run.
type Router struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	store storage.Store
	log   *slog.Logger
	now   func() time.Time

	workers     workers
	apps        *appCache
	gateways    *gatewayTracker
	gatewayIDs  interner // of members' sessions
	parts       *partitions
	auditClient *http.Client
	highs       []jetstream.Stream           // the HIGH stream shards (highStream)
	legacyHigh  atomic.Pointer[legacyStream] // the HIGH stream of before the shards while it is there (legacy)
	highChains  highChains                   // HIGH messages on their way to their HIGH stream
	quit        chan struct{}                // closed when Run returns: the HIGH chains give up

	qmu       sync.RWMutex // guards closing the workers' queues
	qclosed   bool
	c2c       chan struct{}  // bounds C2C deliveries in flight
	authSlots chan struct{}  // bounds credential checks in flight
	offSlots  chan struct{}  // bounds work handed off the workers (audits, queries)
	offWork   sync.WaitGroup // that work, waited for before the queues close
	unstreams sync.WaitGroup // deleted HIGH messages being removed from the stream (unstreamHigh)
	nonces    nonces
	secret    []byte // the cluster secret: MAC key of server API requests
	events    *callback.Publisher
	callbacks *callback.Dispatcher
	ready     chan struct{}

	metrics  *metrics
	pinsLost atomic.Int64    // as metrics.pinsLost, for Stats
	resumes  [2]atomic.Int64 // resumes that read HIGH messages: [0] from the stream, [1] from memory (Stats)
	// streamReads are the apps' HIGH stream gets for resumes
	// (Config.ResumeReadRate).
	streamReads *ratelimit.Keyed
	tracer      trace.Tracer
	tracing     bool           // the tracer records: spend time on spans
	audits      auditsInFlight // each app's audit-hook calls in flight
}

// maxHops bounds how often a group request is sent on to another owner.
const maxHops = 3

var workerSeed = maphash.MakeSeed()

// New returns a Router that serves requests arriving on nc from the
// gateways, keeping state in store.
func New(cfg Config, nc *nats.Conn, store storage.Store, logger *slog.Logger, opts ...Option) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || store == nil {
		return nil, errors.New("router: nil NATS connection or store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	cfg = cfg.WithDefaults()
	if cfg.ID == "" {
		cfg.ID = ids.New()
	} else if !ids.Valid(cfg.ID) {
		return nil, fmt.Errorf("router: ID %q: at most 64 of A-Z a-z 0-9 -", cfg.ID)
	}
	// An async HIGH offer not answered within highAttempt fails (the HIGH
	// chains offer it again); the workers' own bound keeps the offers in
	// flight under the client's.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(highAttempt),
		jetstream.WithPublishAsyncMaxPending(cfg.Workers*maxHighInFlight+1024))
	if err != nil {
		return nil, fmt.Errorf("router: jetstream: %w", err)
	}
	var r *Router
	m := newMetrics(o.reg, nc, func() Stats { return r.Stats() })
	tracer, tracing := newTracer(o.tp)
	// Every store call is timed, and traced under the request it serves.
	store = observed.Wrap(store, m.storeSeconds, tracer, tracing)
	r = &Router{
		cfg:         cfg,
		nc:          nc,
		js:          js,
		store:       store,
		log:         logger.With("component", "router", "router_id", cfg.ID),
		now:         time.Now,
		auditClient: callback.AppClient(cfg.AuditTimeout),
		c2c:         make(chan struct{}, 4096),
		authSlots:   make(chan struct{}, 4096),
		offSlots:    make(chan struct{}, 4096),
		streamReads: &ratelimit.Keyed{Rate: cfg.ResumeReadRate, Burst: cfg.ResumeReadRate, MaxDebt: 10 * cfg.ResumeReadRate},
		ready:       make(chan struct{}),
		quit:        make(chan struct{}),
	}
	r.metrics = m
	r.events = callback.NewPublisher(nc, "router", r.log, o.reg)
	r.callbacks = callback.NewDispatcher(cfg.Callbacks, js, store, r.log, o.reg)
	r.tracer, r.tracing = tracer, tracing
	r.apps = &appCache{store: store, ttl: 5 * time.Second, entries: make(map[string]appEntry)}
	r.gateways = newGatewayTracker(cfg.GatewayTimeout, r.now)
	r.parts = newPartitions(r)
	r.workers = make(workers, cfg.Workers)
	for i := range r.workers {
		r.workers[i] = newWorker(r)
	}
	return r, nil
}

// Stats is a snapshot of a router's counters.
type Stats struct {
	// PartitionsOwned is how many partitions the router serves now.
	PartitionsOwned int
	// PinsLost counts partitions NATS gave to another router while this
	// one still consumed them.
	PinsLost int64
	// GroupsCached is how many groups the router holds in memory, as of
	// its workers' last ticks.
	GroupsCached int
	// ResumeMemory is the bytes of the groups' recent HIGH messages the
	// router keeps for resumes, as of its workers' last ticks.
	ResumeMemory int64
	// ResumesFromMemory and ResumesFromStream count the resumes that
	// asked for HIGH messages, by where they read them.
	ResumesFromMemory, ResumesFromStream int64
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats {
	r.parts.mu.Lock()
	n := len(r.parts.consuming)
	r.parts.mu.Unlock()
	st := Stats{PartitionsOwned: n, PinsLost: r.pinsLost.Load(), ResumesFromMemory: r.resumes[1].Load(), ResumesFromStream: r.resumes[0].Load()}
	for _, w := range r.workers {
		st.GroupsCached += int(w.cachedGroups.Load())
		st.ResumeMemory += w.tailBytes.Load()
	}
	return st
}

// Ready is closed once Run serves requests.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// ID returns the router's ID.
func (r *Router) ID() string { return r.cfg.ID }

// Run sets up liveim's streams, takes its share of the partitions and
// serves until ctx ends; then it hands its partitions over, finishes
// queued requests and saves group state. When setup fails midway it
// stops what it started before it returns.
func (r *Router) Run(ctx context.Context) error {
	if err := r.setup(ctx); err != nil {
		return err
	}
	// Requests already taken finish even while the router stops.
	workCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	workerErrs := make([]error, len(r.workers))
	for i, w := range r.workers {
		wg.Go(func() { workerErrs[i] = w.run(workCtx) })
	}
	stopWorkers := func() error {
		r.offWork.Wait() // handed-off work comes back to its worker
		r.qmu.Lock()
		r.qclosed = true
		for _, w := range r.workers {
			close(w.jobs)
		}
		r.qmu.Unlock()
		wg.Wait()
		return errors.Join(workerErrs...)
	}
	subs, err := r.subscribe()
	if err != nil {
		return errors.Join(err, stopWorkers())
	}
	r.log.Info("router started", "partitions", r.cfg.Partitions, "workers", r.cfg.Workers)
	close(r.ready)
	cbCtx, stopCallbacks := context.WithCancel(ctx)
	cbDone := make(chan error, 1)
	go func() { cbDone <- r.callbacks.Run(cbCtx) }()

	partsDone := make(chan error, 1)
	go func() { partsDone <- r.parts.run(ctx) }()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	lastFlush := r.now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-ticker.C:
			flush := now.Sub(lastFlush) >= r.cfg.FlushInterval
			if flush {
				lastFlush = now
			}
			gen := r.gateways.generation(now)
			for _, w := range r.workers {
				if !w.ticking.Swap(true) && !w.post(func(w *worker) { w.tick(now, gen) }) {
					w.ticking.Store(false)
				}
				if flush && !w.flushing.Swap(true) && !w.post(func(w *worker) { w.flushJob(workCtx) }) {
					w.flushing.Store(false)
				}
			}
		}
	}

	partsErr := <-partsDone // stops consuming partitions and leaves the live set
	stopCallbacks()
	if err := <-cbDone; err != nil {
		r.log.Error("callbacks", "err", err)
	}
	for _, s := range subs {
		_ = s.Drain()
	}
	for _, s := range subs {
		for s.IsValid() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range cap(r.c2c) { // wait for C2C deliveries in flight
		r.c2c <- struct{}{}
	}
	for range cap(r.authSlots) { // and for credential checks
		r.authSlots <- struct{}{}
	}
	// Each worker saves its groups last; the HIGH messages of the last
	// requests then get a few seconds to reach the stream.
	err = stopWorkers()
	if !r.highChains.drain(5 * time.Second) {
		r.log.Warn("stopped with HIGH messages the stream has not taken")
	}
	close(r.quit)
	if !waitFor(&r.unstreams, 2*highAttempt) {
		r.log.Warn("stopped with deleted HIGH messages still in the stream")
	}
	if err != nil {
		return fmt.Errorf("router: save group state: %w", err)
	}
	r.events.Close(5 * time.Second) // the callback events of the last requests
	r.log.Info("router stopped")
	return partsErr
}

// subscribe subscribes the router's core NATS subjects; on failure it
// unsubscribes what it subscribed.
func (r *Router) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	sub := func(subj, queue string, h nats.MsgHandler) error {
		var s *nats.Subscription
		var err error
		if queue == "" {
			s, err = r.nc.Subscribe(subj, h)
		} else {
			s, err = r.nc.QueueSubscribe(subj, queue, h)
		}
		if err != nil {
			return fmt.Errorf("router: subscribe %s: %w", subj, err)
		}
		subs = append(subs, s)
		return nil
	}
	err := errors.Join(
		sub(subject.AnyWildcard, subject.QueueGroup, r.onAny),
		sub(subject.Auth, subject.QueueGroup, r.onAuth),
		sub(subject.GatewayHeartbeat, "", r.gateways.onHeartbeat),
	)
	if err == nil {
		err = r.nc.Flush()
	}
	if err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return nil, err
	}
	return subs, nil
}

// setup sets the streams up, retrying while JetStream cannot answer (a
// NATS node restarting, its streams electing leaders): a router started
// then waits, not ready, instead of exiting. A configuration JetStream
// refuses (partitions that differ from the stream's) ends it at once.
func (r *Router) setup(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		err := r.setupStreams(ctx)
		if err == nil || errors.Is(err, errPartitionsDiffer) || errors.Is(err, nats.ErrConnectionClosed) || ctx.Err() != nil {
			return err
		}
		r.log.Warn("JetStream setup failed; retrying", "err", err, "in", wait.String())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// errPartitionsDiffer: the RPC stream partitions groups another way than
// this router's configuration.
var errPartitionsDiffer = errors.New("router: the RPC stream's partitions differ from this router's")

// setupStreams creates or checks the streams and the router bucket.
func (r *Router) setupStreams(ctx context.Context) error {
	rpc := jetstream.StreamConfig{
		Name:      subject.RPCStream,
		Subjects:  []string{subject.RPCCapture},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.MemoryStorage,
		MaxAge:    time.Minute,
		MaxBytes:  r.cfg.RPCMaxBytes,
		Discard:   jetstream.DiscardNew,
		Replicas:  r.cfg.StreamReplicas,
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source: subject.RPCCapture, Destination: subject.RPCTransform(r.cfg.Partitions),
		},
	}
	if s, err := r.js.Stream(ctx, subject.RPCStream); err == nil {
		if tr := s.CachedInfo().Config.SubjectTransform; tr != nil && tr.Destination != rpc.SubjectTransform.Destination {
			return fmt.Errorf("%w: stream %s partitions groups as %q; this router uses %d partitions", errPartitionsDiffer, subject.RPCStream, tr.Destination, r.cfg.Partitions)
		}
	}
	if _, err := r.js.CreateOrUpdateStream(ctx, rpc); err != nil {
		return fmt.Errorf("router: stream %s: %w", subject.RPCStream, err)
	}
	if err := r.setupHighStreams(ctx); err != nil {
		return err
	}
	if err := r.nonces.setup(ctx, r.js, r.cfg.StreamReplicas, r.cfg.NonceWindow, r.cfg.NonceMaxBindings, r.log, r.metrics.unbound); err != nil {
		return err
	}
	if err := r.loadSecret(ctx); err != nil {
		return err
	}
	// Before the first login: gateways publish user.online into it.
	if _, err := callback.EnsureStream(ctx, r.js, r.cfg.Callbacks); err != nil {
		return err
	}
	return r.parts.setup(ctx)
}

// errHighStreamsDiffer stops a router whose HIGH stream count is not the
// one the cluster's streams were made with: the two would look for a
// group's HIGH messages in different streams.
var errHighStreamsDiffer = errors.New("router: the cluster's HIGH streams are more or fewer than this router's")

// highStreamsKey is the HIGH streams' metadata key holding their count.
const highStreamsKey = "liveim_high_streams"

// setupHighStreams creates or checks the HIGH stream shards, and finds the
// stream of before the shards: read while it is there, deleted once it is
// empty and unwritten for HighMaxAge.
func (r *Router) setupHighStreams(ctx context.Context) error {
	n := strconv.Itoa(r.cfg.HighStreams)
	switch s, err := r.js.Stream(ctx, subject.HighStream(0)); {
	case err == nil:
		if have := s.CachedInfo().Config.Metadata[highStreamsKey]; have != n {
			return fmt.Errorf("%w: %s says %s, this router --high-streams %s", errHighStreamsDiffer, subject.HighStream(0), have, n)
		}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		// Unchecked, the streams would take this router's count.
		return fmt.Errorf("router: stream %s: %w", subject.HighStream(0), err)
	}
	r.highs = make([]jetstream.Stream, r.cfg.HighStreams)
	for i := range r.highs {
		st, err := r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:       subject.HighStream(i),
			Subjects:   []string{subject.HighCapture(i)},
			Storage:    jetstream.FileStorage,
			MaxAge:     r.cfg.HighMaxAge,
			MaxBytes:   max(r.cfg.HighMaxBytes/int64(r.cfg.HighStreams), 1), // the cap is for all of them
			Duplicates: 2 * time.Minute,
			Replicas:   r.cfg.StreamReplicas,
			Metadata:   map[string]string{highStreamsKey: n},
		})
		if err != nil {
			return fmt.Errorf("router: stream %s: %w", subject.HighStream(i), err)
		}
		r.highs[i] = st
	}
	legacy, err := r.js.Stream(ctx, subject.LegacyHighStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("router: stream %s: %w", subject.LegacyHighStream, err)
	}
	// Deleted once empty, and written to by no router for --high-max-age:
	// a router of before the shards, still running in a rolling upgrade,
	// keeps publishing into it.
	if info, err := legacy.Info(ctx); err == nil && info.State.Msgs == 0 && r.now().Sub(info.State.LastTime) > r.cfg.HighMaxAge {
		if err := r.js.DeleteStream(ctx, subject.LegacyHighStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			r.log.Warn("delete the emptied HIGH stream of before its shards", "stream", subject.LegacyHighStream, "err", err)
		}
		return nil
	}
	r.log.Info("reading the HIGH stream of before its shards while it is there", "stream", subject.LegacyHighStream)
	r.legacyHigh.Store(&legacyStream{legacy})
	return nil
}

// legacyStream holds the HIGH stream of before the shards.
type legacyStream struct{ jetstream.Stream }

// legacy returns the HIGH stream of before the shards, nil once it is
// gone (deleted by another router or by hand).
func (r *Router) legacy() jetstream.Stream {
	if l := r.legacyHigh.Load(); l != nil {
		return l.Stream
	}
	return nil
}

// legacyGone reports whether err says the HIGH stream of before the
// shards is gone, and then stops reading it.
func (r *Router) legacyGone(err error) bool {
	if err != nil && (errors.Is(err, errNoHighStream) || errors.Is(err, jetstream.ErrStreamNotFound)) {
		r.legacyHigh.Store(nil)
		return true
	}
	return false
}

// highStream returns the HIGH stream shard of a group and the subject of
// its HIGH messages there.
func (r *Router) highStream(appID, groupID string) (jetstream.Stream, string) {
	shard := subject.HighShard(appID, groupID, len(r.highs))
	return r.highs[shard], subject.GroupHigh(appID, groupID, shard)
}

// onAny takes a request that names no group; any router may answer it.
// It runs on its own goroutine (bounded), since a C2C delivery waits for
// the receiver's gateway.
func (r *Router) onAny(m *nats.Msg) {
	j := job{appID: m.Subject[len("liveim.any."):], part: -1, data: m.Data, header: m.Header, reply: func(rep *liveimpb.Reply) { r.respond(m.Reply, rep) }}
	select {
	case r.c2c <- struct{}{}:
	default:
		j.reply(liveimpb.ErrorReply(liveimpb.ErrUnavailable.With("router busy")))
		return
	}
	go func() {
		defer func() { <-r.c2c }()
		r.work(context.Background(), j)
	}()
}

// enqueue hands a job to the worker of its group, so a group's requests
// stay in order.
//
// It never blocks: it runs on the JetStream consumer's goroutine, which
// must keep pulling (a consumer that stops pulling for PinnedTTL loses its
// partition to another router, however busy this one merely is). A
// worker with Config.MaxBacklog requests waiting sheds new ones with 503.
func (r *Router) enqueue(j job) {
	if !r.workerOf(j.appID, j.groupID).push(j) {
		j.reply(liveimpb.ErrorReply(liveimpb.ErrUnavailable.With("router overloaded or stopping")))
	}
}

// workerOf returns the worker that owns a group.
func (r *Router) workerOf(appID, groupID string) *worker {
	return r.workers[maphash.String(workerSeed, appID+"/"+groupID)%uint64(len(r.workers))]
}

func (r *Router) respond(to string, rep *liveimpb.Reply) {
	if to == "" || rep == nil {
		return
	}
	b, err := proto.Marshal(rep)
	if err != nil {
		r.log.Error("marshal reply", "err", err)
		return
	}
	err = r.nc.Publish(to, b)
	if errors.Is(err, nats.ErrMaxPayload) {
		// An answer too large for NATS: the client gets an error now
		// instead of a timeout.
		b, _ = proto.Marshal(liveimpb.ErrorReply(liveimpb.ErrInternal.With("the answer is %d bytes, over the NATS message limit", len(b))))
		err = r.nc.Publish(to, b)
	}
	if err != nil {
		r.log.Warn("publish reply", "err", err)
	}
}

// errLater is returned by an operation that answers later, through
// job.done: it handed slow work off its worker (worker.go).
var errLater = errors.New("router: answered later")

// work runs one request, on its group's worker (or, for requests that
// name no group, a goroutine of its own).
func (r *Router) work(ctx context.Context, j job) {
	if d, err := strconv.ParseInt(j.header.Get(subject.HeaderDeadline), 10, 64); err == nil && r.now().UnixMilli() > d {
		return // it waited too long: the gateway has already answered 503
	}
	var req liveimpb.RouterRequest
	if err := proto.Unmarshal(j.data, &req); err != nil || req.Caller == nil || req.Caller.AppId != j.appID {
		j.reply(liveimpb.ErrorReply(liveimpb.InvalidParam("frame", "malformed router request")))
		return
	}
	// Only a request the server API signed has server rights, whatever it
	// says; kicks and deletes need them.
	req.Caller.Server = r.fromServer(j.header, j.data)
	op, start := requestOp(&req), time.Now()
	ctx, span := r.startRequest(ctx, j, op)
	j.done = func(rep *liveimpb.Reply, err error) { r.finish(j, span, op, start, rep, err) }
	var rep *liveimpb.Reply
	var err error
	switch {
	case req.PresenceLeave != nil:
		err = r.presenceLeave(ctx, j, req.Caller)
		rep = &liveimpb.Reply{}
	case (req.Kick != nil || req.DeleteGroup != nil) && !req.Caller.Server:
		err = liveimpb.ErrForbidden.With("only the server API may kick or delete a group")
	case req.Kick != nil:
		rep, err = r.kickUser(ctx, j, req.Caller, req.Kick)
	case req.DeleteGroup != nil:
		rep, err = r.deleteGroup(ctx, j)
	case req.Touch != nil:
		_, err = j.w.group(ctx, j.appID, j.groupID, j.part)
		rep = &liveimpb.Reply{}
	case req.Frame != nil && r.appDisabled(ctx, j.appID):
		// Sessions logged in before the app was disabled: the operator
		// disabled it to stop it (a login is refused too).
		err = liveimpb.ErrUnauthorized.With("app disabled")
	case req.Frame != nil:
		rep, err = r.dispatch(ctx, j, &req)
	default:
		err = liveimpb.InvalidParam("frame", "empty router request")
	}
	if err == errLater {
		return
	}
	j.done(rep, err)
}

// appDisabled reports whether the app is disabled, as the app cache
// knows it (seconds old at most); an app that cannot be read is not.
func (r *Router) appDisabled(ctx context.Context, appID string) bool {
	app, err := r.apps.get(ctx, appID)
	return err == nil && app.Disabled
}

// finish answers a request. errMoved sends the request on to the group's
// current owner when it may still travel, and is 503 otherwise.
func (r *Router) finish(j job, span trace.Span, op string, start time.Time, rep *liveimpb.Reply, err error) {
	if errors.Is(err, errMoved) {
		if r.sendOn(j) {
			if span != nil {
				span.SetAttributes(attribute.Bool("liveim.sent_on", true))
				span.End()
			}
			return // the group's current owner answers
		}
		err = liveimpb.ErrUnavailable.With("the group moved to another router; retry")
	}
	if err != nil {
		if e := liveimpb.AsError(err); e == liveimpb.ErrInternal {
			ctx := context.Background()
			if span != nil {
				ctx = trace.ContextWithSpan(ctx, span)
			}
			r.log.ErrorContext(ctx, "request failed", telemetry.LogAppID, j.appID, telemetry.LogGroupID, j.groupID, "op", op, "err", err)
		}
		rep = liveimpb.ErrorReply(err)
	}
	r.endRequest(span, op, start, rep)
	j.reply(rep)
}

// offWorker runs slow work that needs no group state (an audit hook, a
// history query) on a goroutine of its own, bounded; it reports false
// (and runs nothing) when too much such work is in flight.
func (r *Router) offWorker(fn func()) bool {
	select {
	case r.offSlots <- struct{}{}:
	default:
		return false
	}
	r.offWork.Add(1)
	go func() {
		defer func() { <-r.offSlots; r.offWork.Done() }()
		fn()
	}()
	return true
}

// sendOn publishes a group request this router may not serve back into
// the RPC stream, where the group's current owner takes it. It reports
// false when the request has travelled enough.
func (r *Router) sendOn(j job) bool {
	if j.part < 0 || j.header == nil {
		return false
	}
	hops, _ := strconv.Atoi(j.header.Get(subject.HeaderHops))
	if hops >= maxHops {
		return false
	}
	out := nats.NewMsg(subject.RPC(j.appID, j.groupID))
	out.Data = j.data
	for k, v := range j.header {
		if !strings.HasPrefix(k, "Nats-") {
			out.Header[k] = v
		}
	}
	out.Header.Set(subject.HeaderHops, strconv.Itoa(hops+1))
	if err := r.nc.PublishMsg(out); err != nil {
		r.log.Warn("send request on", telemetry.LogAppID, j.appID, telemetry.LogGroupID, j.groupID, "err", err)
		return false
	}
	return true
}

// dispatch runs the client operation of req, its frame, for its caller.
func (r *Router) dispatch(ctx context.Context, j job, req *liveimpb.RouterRequest) (*liveimpb.Reply, error) {
	c, f := req.Caller, req.Frame
	// What only the server API may add to a frame.
	var admins []string
	replaceWhite := false
	if c.Server {
		admins, replaceWhite = req.CreateAdmins, req.ReplaceWhiteList
	}
	if j.groupID == "" {
		switch b := f.Body.(type) {
		case *liveimpb.ClientFrame_CreateGroup:
			return r.createGroup(ctx, j, c, b.CreateGroup, admins)
		case *liveimpb.ClientFrame_SendC2CMessage:
			return r.sendC2CMessage(ctx, c, b.SendC2CMessage)
		}
		return nil, liveimpb.InvalidParam("groupId", "required")
	}
	if g, ok := liveimpb.FrameGroupID(f); !ok || g != j.groupID {
		return nil, liveimpb.InvalidParam("groupId", "does not match the request subject")
	}
	switch b := f.Body.(type) {
	case *liveimpb.ClientFrame_CreateGroup:
		return r.createGroup(ctx, j, c, b.CreateGroup, admins)
	case *liveimpb.ClientFrame_CloseGroup:
		return r.closeGroup(ctx, j, c)
	case *liveimpb.ClientFrame_JoinGroup:
		return r.joinGroup(ctx, j, c)
	case *liveimpb.ClientFrame_LeaveGroup:
		return r.leaveGroup(ctx, j, c)
	case *liveimpb.ClientFrame_QueryGroup:
		return r.queryGroup(ctx, j)
	case *liveimpb.ClientFrame_ModifyGroup:
		return r.modifyGroup(ctx, j, c, b.ModifyGroup)
	case *liveimpb.ClientFrame_ListRecentGroupUser:
		return r.listRecentGroupUser(ctx, j)
	case *liveimpb.ClientFrame_ListGroupUser:
		return r.listGroupUser(ctx, j, c, b.ListGroupUser)
	case *liveimpb.ClientFrame_MuteAll:
		return r.changeMutes(ctx, j, c, func(g *storage.Group) error { return muteAll(g, b.MuteAll.WhiteUserList, true, replaceWhite) })
	case *liveimpb.ClientFrame_CancelMuteAll:
		return r.changeMutes(ctx, j, c, func(g *storage.Group) error { return muteAll(g, nil, false, false) })
	case *liveimpb.ClientFrame_MuteUser:
		return r.changeMutes(ctx, j, c, func(g *storage.Group) error {
			return muteUsers(g, b.MuteUser.UserList, true, b.MuteUser.DurationSeconds, r.now().UnixMilli())
		})
	case *liveimpb.ClientFrame_CancelMuteUser:
		return r.changeMutes(ctx, j, c, func(g *storage.Group) error {
			return muteUsers(g, b.CancelMuteUser.UserList, false, 0, 0)
		})
	case *liveimpb.ClientFrame_ListMuteUsers:
		return r.changeMutes(ctx, j, c, nil)
	case *liveimpb.ClientFrame_SendGroupMessage:
		return r.sendGroupMessage(ctx, j, c, b.SendGroupMessage)
	case *liveimpb.ClientFrame_DeleteMessage:
		return r.deleteMessage(ctx, j, c, b.DeleteMessage)
	case *liveimpb.ClientFrame_ListRecentMessage:
		return r.listRecentMessage(ctx, j, c, b.ListRecentMessage)
	case *liveimpb.ClientFrame_ListMessage:
		return r.listMessage(ctx, j, c, b.ListMessage)
	case *liveimpb.ClientFrame_ListHistoryMessage:
		return r.listHistoryMessage(ctx, j, b.ListHistoryMessage)
	case *liveimpb.ClientFrame_ResumeGroup:
		return r.resumeGroup(ctx, j, c, b.ResumeGroup)
	}
	return nil, liveimpb.InvalidParam("body", "%T is not a router operation", f.Body)
}
