package callback

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
)

// Publisher publishes events into the callback stream.
type Publisher struct {
	nc      *nats.Conn
	log     *slog.Logger
	now     func() time.Time
	dropped prometheus.Counter
}

// NewPublisher returns a Publisher on nc for component ("router",
// "gateway": its metric is liveim_<component>_callback_publish_errors_total).
// reg may be nil.
func NewPublisher(nc *nats.Conn, component string, log *slog.Logger, reg prometheus.Registerer) *Publisher {
	p := &Publisher{nc: nc, log: log, now: time.Now, dropped: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "liveim_" + component + "_callback_publish_errors_total",
		Help: "Callback events that could not be published (NATS down or its buffer full).",
	})}
	if reg != nil {
		reg.MustRegister(p.dropped)
	}
	return p
}

// Publish sends ev (ID and time filled in when empty) to the stream on the
// subject of its group, or of its user when it has no group. It never
// waits: the message goes out with the connection's next flush, and
// JetStream stores it as it stores every message on the stream's
// subjects. A failure (the connection down and its reconnect buffer full)
// is logged and counted, never returned: an event must not fail the
// operation it reports.
func (p *Publisher) Publish(ev Event) {
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
	b, err := json.Marshal(ev)
	if err == nil {
		err = p.nc.Publish(subj, b)
	}
	if err != nil {
		p.dropped.Inc()
		p.log.Error("callback event lost", "app_id", ev.AppID, "type", ev.Type, "err", err)
	}
}

// EnsureStream creates or updates the callback stream: file storage,
// replicas copies, events kept for maxAge at most (a receiver down longer
// loses the oldest); dispatchers remove them once delivered.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int, maxAge time.Duration) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        subject.CallbackStream,
		Description: "liveim callback events, per app, until the app's backend takes them",
		Subjects:    []string{subject.CallbackWildcard},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      maxAge,
	})
	if err != nil {
		return nil, fmt.Errorf("callback: stream %s: %w", subject.CallbackStream, err)
	}
	return st, nil
}
