package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
)

// Publisher publishes events into the callback stream.
//
// Publish never waits: it queues the event, and one goroutine publishes
// the queue in order as JetStream messages, several in flight at once,
// each with its event ID as Nats-Msg-Id. One JetStream did not take (a
// stream leader changing, NATS restarting) is published again, with
// backoff, until it is: the stream drops a repeat of one it stored. A
// plain publish would be lost silently in such a moment.
type Publisher struct {
	js      jetstream.JetStream
	log     *slog.Logger
	now     func() time.Time
	dropped prometheus.Counter
	// maxPayload is the NATS message limit: a larger event is never
	// stored, and is refused when queued.
	maxPayload func() int64
	queued     atomic.Int64 // bytes of the events in queue
	maxQueued  int64        // publishQueueBytes

	queue   chan *outEvent
	stop    chan struct{}
	done    chan struct{}
	start   sync.Once // the goroutine starts with the first event
	started atomic.Bool
	once    sync.Once // stop closes once
}

// outEvent is a queued event.
type outEvent struct {
	subject, id, appID, kind string
	data                     []byte
	// stored, when set, hears once whether JetStream took the event
	// (Stored returns it).
	stored chan error
	failed error // a publish that failed for good (permanent)
}

// settle tells a Stored channel how the event ended.
func (e *outEvent) settle(err error) {
	if e.stored != nil {
		e.stored <- err // buffered: never blocks
	}
}

// Sizes of the publishing pipeline.
const (
	publishQueue = 1 << 16 // events waiting (a pointer each); more are dropped (counted, logged)
	// publishQueueBytes bounds the bytes of the events waiting: 65,536
	// events of messages near the data limit held a gigabyte while the
	// stream could not take them (a leader election, NATS down).
	publishQueueBytes = 256 << 20
	publishWindow     = 256 // events in flight
)

// NewPublisher returns a Publisher on nc for component ("router",
// "gateway": its metric is liveim_<component>_callback_publish_errors_total).
// Its goroutine starts with the first event; Close stops it. reg may be
// nil.
func NewPublisher(nc *nats.Conn, component string, log *slog.Logger, reg prometheus.Registerer) *Publisher {
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*publishWindow), // fails only on a nil connection
		jetstream.WithPublishAsyncTimeout(5*time.Second))
	p := &Publisher{js: js, log: log, now: time.Now, maxPayload: nc.MaxPayload, maxQueued: publishQueueBytes,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveim_" + component + "_callback_publish_errors_total",
			Help: "Callback events that could not be published (the queue full, or NATS down at shutdown).",
		}),
		queue: make(chan *outEvent, publishQueue), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if reg != nil {
		reg.MustRegister(p.dropped)
	}
	return p
}

// Publish queues ev (ID and time filled in when empty) for the stream, on
// the subject of its group, or of its user when it has no group, so a
// group's events stay in order. It never waits; an event that does not
// fit the queue is counted and logged, never returned: an event must not
// fail the operation it reports.
func (p *Publisher) Publish(ev Event) {
	p.enqueue(ev, nil)
}

// Stored is Publish that tells when JetStream holds the event, in its
// place in the queue's order: an operation whose event must outlive this
// process (a sent message's) is answered only then. The channel hears
// once: nil when the stream took the event, an error when it could not
// be queued or was given up at Close. While NATS is down it hears nothing,
// the event still queued.
func (p *Publisher) Stored(ev Event) <-chan error {
	stored := make(chan error, 1)
	if !p.enqueue(ev, stored) {
		stored <- errors.New("callback event not queued")
	}
	return stored
}

// WaitStored waits up to timeout for what a Stored channel hears.
func WaitStored(stored <-chan error, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-stored:
		return err
	case <-t.C:
		return fmt.Errorf("callback event not stored within %v", timeout)
	}
}

// enqueue queues ev; it reports whether it did.
func (p *Publisher) enqueue(ev Event, stored chan error) bool {
	if ev.ID == "" {
		ev.ID = ids.New()
	}
	if ev.TimeMs == 0 {
		ev.TimeMs = p.now().UnixMilli()
	}
	subj := subject.CallbackGroup(ev.AppID, ev.GroupID)
	if ev.GroupID == "" {
		subj = subject.CallbackUser(ev.AppID, ev.User.UserID)
	}
	b, err := encode(ev)
	if err == nil && int64(len(b)) > p.maxPayload() {
		err = fmt.Errorf("%d bytes, over the NATS message limit: %w", len(b), nats.ErrMaxPayload)
	}
	if err != nil {
		p.lost(&outEvent{appID: ev.AppID, kind: ev.Type}, err)
		return false
	}
	p.start.Do(func() {
		p.started.Store(true)
		go p.run()
	})
	if n := p.queued.Add(int64(len(b))); n > p.maxQueued {
		p.queued.Add(-int64(len(b)))
		p.lost(&outEvent{appID: ev.AppID, kind: ev.Type}, fmt.Errorf("publish queue full: %d bytes waiting", n-int64(len(b))))
		return false
	}
	select {
	case p.queue <- &outEvent{subject: subj, id: ev.ID, appID: ev.AppID, kind: ev.Type, data: b, stored: stored}:
		return true
	default:
		p.queued.Add(-int64(len(b)))
		p.lost(&outEvent{appID: ev.AppID, kind: ev.Type}, errors.New("publish queue full"))
		return false
	}
}

// dequeued uncounts an event taken off the queue and returns it.
func (p *Publisher) dequeued(e *outEvent) *outEvent {
	p.queued.Add(-int64(len(e.data)))
	return e
}

// encode is an event's JSON, with '<', '>' and '&' as they are: escaped,
// each is six bytes, and a message of them made an event six times its
// size, over the NATS message limit (TestAuditCBOversizedEventBlocksOthers).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodedSize is the size of ev's JSON in the callback stream.
func EncodedSize(ev Event) (int, error) {
	b, err := encode(ev)
	return len(b), err
}

// permanent reports whether a publish failed for good: another try would
// fail the same way, and would hold up every event behind it.
func permanent(err error) bool { return errors.Is(err, nats.ErrMaxPayload) }

func (p *Publisher) lost(e *outEvent, err error) {
	p.dropped.Inc()
	p.log.Error("callback event lost", "app_id", e.appID, "type", e.kind, "err", err)
}

// Close publishes what is queued (for up to timeout) and stops. Events
// published after it wait in the queue, unpublished.
func (p *Publisher) Close(timeout time.Duration) {
	p.once.Do(func() { close(p.stop) })
	p.start.Do(func() {}) // no goroutine starts any more
	if !p.started.Load() {
		return
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.log.Warn("callback events still queued at shutdown", "queued", len(p.queue))
	}
}

// run publishes the queue in batches of up to publishWindow in flight,
// in order, until Close; then it publishes what is left.
func (p *Publisher) run() {
	defer close(p.done)
	batch := make([]*outEvent, 0, publishWindow)
	futures := make([]jetstream.PubAckFuture, 0, publishWindow)
	// A batch's events are taken in order, a subject's each at a higher
	// stream sequence than the one before: last is the latest, per subject.
	last := make(map[string]uint64)
	for {
		batch = batch[:0]
		select {
		case e := <-p.queue:
			batch = append(batch, p.dequeued(e))
		case <-p.stop:
			for { // what is queued still goes out
				select {
				case e := <-p.queue:
					if p.publishNow(p.dequeued(e), true) > 0 {
						e.settle(nil)
					}
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < publishWindow {
			select {
			case e := <-p.queue:
				batch = append(batch, p.dequeued(e))
			default:
				break fill
			}
		}
		futures = futures[:0]
		for _, e := range batch {
			f, err := p.js.PublishMsgAsync(p.msg(e), jetstream.WithMsgID(e.id))
			if err != nil {
				f = nil // published again below
				if permanent(err) {
					e.failed = err
				}
			}
			futures = append(futures, f)
		}
		clear(last)
		for i, f := range futures {
			var seq uint64
			if f != nil {
				select {
				case ack := <-f.Ok():
					seq = ack.Sequence
				case <-f.Err():
				}
			}
			e := batch[i]
			switch {
			case e.failed != nil:
				p.lost(e, e.failed)
				e.settle(e.failed)
				continue
			case seq == 0:
				if seq = p.publishNow(e, false); seq == 0 {
					continue
				}
			}
			if seq <= last[e.subject] {
				// Taken ahead of an event of its subject published
				// before it, which the stream took only when offered
				// again: put it back behind.
				seq = p.storeAgain(e, seq)
			}
			if seq > 0 {
				last[e.subject] = seq
				e.settle(nil)
			}
		}
	}
}

// storeAgain moves event e, stored at stream sequence seq ahead of an
// earlier event of its subject, behind it: it deletes it and publishes it
// again under another de-duplication ID (the stream would drop a repeat
// of its own), keeping its event ID, by which the app drops a copy it
// may have been given meanwhile. It returns e's new sequence, 0 if it
// could not store it again: then it stays where it is, out of order but
// stored (e settled then). A publisher without the right to delete from
// the stream (a gateway's) gives up after a few tries.
func (p *Publisher) storeAgain(e *outEvent, seq uint64) uint64 {
	p.log.Warn("callback event stored out of order; storing it again behind the earlier ones", "app_id", e.appID, "type", e.kind)
	deadline := time.Now().Add(10 * time.Second)
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := p.js.Stream(ctx, subject.CallbackStream)
		if err == nil {
			if err = st.DeleteMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
				err = nil // taken by the app already, or aged out
			}
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.log.Warn("callback event left out of order", "app_id", e.appID, "type", e.kind, "err", err)
			e.settle(nil)
			return 0
		}
		select {
		case <-time.After(backoff):
		case <-p.stop:
			e.settle(nil)
			return 0
		}
	}
	e.id += "~" + strconv.FormatUint(seq, 10)
	return p.publishNow(e, false)
}

func (p *Publisher) msg(e *outEvent) *nats.Msg {
	m := nats.NewMsg(e.subject)
	m.Data = e.data
	return m
}

// publishNow publishes e and waits for JetStream to take it, trying again
// with backoff; at shutdown (stopping) it tries for a few seconds only.
// It returns e's stream sequence; 0 when it gave e up (e settled then).
// The caller settles a stored e.
func (p *Publisher) publishNow(e *outEvent, stopping bool) uint64 {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := p.js.PublishMsg(ctx, p.msg(e), jetstream.WithMsgID(e.id))
		cancel()
		if err == nil {
			return ack.Sequence
		}
		if permanent(err) || stopping && time.Now().After(deadline) {
			p.lost(e, err)
			e.settle(err)
			return 0
		}
		select {
		case <-time.After(backoff):
		case <-p.stop:
			if !stopping {
				stopping, deadline = true, time.Now().Add(5*time.Second)
			}
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// EnsureStream creates or updates the callback stream: file storage,
// cfg.StreamReplicas copies, events kept for cfg.MaxAge and within
// cfg.MaxBytes at most (a receiver down longer loses the oldest; a
// publish is never refused for room); dispatchers remove them once
// delivered.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        subject.CallbackStream,
		Description: "liveim callback events, per app, until the app's backend takes them",
		Subjects:    []string{subject.CallbackWildcard},
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  2 * time.Minute, // a repeated publish (Publisher) is stored once
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.StreamReplicas,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("callback: stream %s: %w", subject.CallbackStream, err)
	}
	return st, nil
}
