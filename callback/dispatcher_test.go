package callback

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
)

// TestDispatcherStopsWithoutItsStream: a dispatcher whose stream is gone
// (deleted, or lost with its NATS nodes) still stops when asked. Its
// ordered consumer used to try to make its consumer again forever,
// ignoring the dispatcher's context, so a router could never stop (and
// never saved its groups, which it does after its dispatcher stopped).
func TestDispatcherStopsWithoutItsStream(t *testing.T) {
	f := newDispatcherFixture(t)
	// The receiver holds the first POST until the stream is gone, so the
	// dispatcher's next read finds no stream.
	posted, release := make(chan struct{}), make(chan struct{})
	f.hold = func(n int) {
		if n == 1 {
			close(posted)
			<-release
		}
	}
	// Requests about the stream (its info, its consumers, pulls), as NATS
	// sees them.
	var asks atomic.Int32
	sub, err := f.nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		if strings.Contains(m.Subject, "."+subject.CallbackStream) {
			asks.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	done := f.run(t.Context())
	f.publish(t, "m1")
	select {
	case <-posted:
	case <-time.After(time.Minute):
		t.Fatal("the event was not posted within a minute")
	}
	if err := f.js.DeleteStream(t.Context(), subject.CallbackStream); err != nil {
		t.Fatal(err)
	}
	before := asks.Load()
	close(release)
	waitUntil(t, "request of the dispatcher about the gone stream", func() bool { return asks.Load() > before+2 })
	f.stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dispatcher did not stop within 30 s of being asked, its stream gone")
	}
}

// TestDispatcherAfterStreamMadeAgain: when the stream is deleted and made
// again (an operator's mistake, its NATS nodes' disks lost), its
// sequences start at 1 again; an app's cursor into the old stream must
// not make the dispatcher skip the new stream's first events.
func TestDispatcherAfterStreamMadeAgain(t *testing.T) {
	f := newDispatcherFixture(t)
	f.run(t.Context())
	for _, id := range []string{"m1", "m2", "m3"} {
		f.publish(t, id)
	}
	waitUntil(t, "three events posted", func() bool { return len(f.received()) == 3 })
	if err := f.js.DeleteStream(t.Context(), subject.CallbackStream); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStream(t.Context(), f.js, Config{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.publish(t, "m4") // sequence 1 of the new stream
	waitUntil(t, "the new stream's first event posted", func() bool { return len(f.received()) == 4 })
	if got := f.received(); got[3] != "m4" {
		t.Fatalf("posted %q", got)
	}
}

// TestIdleDispatcherMakesNoConsumers: an app's events are read through
// one consumer while its dispatcher holds the lease, not a new consumer
// per read. An ordered consumer's Fetch made (and deleted) one each time:
// for an idle app, one pair every LeaseTTL/3, and in a NATS cluster each
// a proposal of the meta layer, so idle apps × time loaded NATS.
func TestIdleDispatcherMakesNoConsumers(t *testing.T) {
	f := newDispatcherFixture(t)
	var creates, pulls atomic.Int32
	sub, err := f.nc.Subscribe("$JS.API.CONSUMER.>", func(m *nats.Msg) {
		switch {
		case strings.Contains(m.Subject, ".CREATE."+subject.CallbackStream):
			creates.Add(1)
		case strings.Contains(m.Subject, ".MSG.NEXT."+subject.CallbackStream):
			pulls.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	f.run(t.Context())
	f.publish(t, "m1")
	waitUntil(t, "the event posted", func() bool { return len(f.received()) == 1 })
	before := creates.Load()
	// Idle: the dispatcher waits for events, pull after pull.
	start := pulls.Load()
	waitUntil(t, "ten more pulls", func() bool { return pulls.Load() >= start+10 })
	if n := creates.Load() - before; n > 0 {
		t.Fatalf("the idle dispatcher made %d consumers over 10 pulls", n)
	}
	f.publish(t, "m2")
	waitUntil(t, "the next event posted", func() bool { return len(f.received()) == 2 })
}

// dispatcherFixture is a dispatcher on an in-process NATS with JetStream
// and a pebble store, delivering the events of app "app" to a real HTTP
// receiver.
type dispatcherFixture struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	d    *Dispatcher
	pub  *Publisher
	stop context.CancelFunc
	// hold, when set, is called with each POST's number (from 1) before
	// it is answered.
	hold func(n int)
	// bodyLimit, when set, refuses (413) a POST of more bytes, as nginx
	// does past its client_max_body_size.
	bodyLimit int64

	mu    sync.Mutex
	posts int
	ids   []string // message IDs of the events posted, in order
}

func newDispatcherFixture(t *testing.T) *dispatcherFixture {
	f := &dispatcherFixture{nc: natstest.Connect(t)}
	var err error
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.bodyLimit > 0 && r.ContentLength > f.bodyLimit {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		var b Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.posts++
		n := f.posts
		for _, e := range b.Events {
			f.ids = append(f.ids, e.Message.MessageID)
		}
		f.mu.Unlock()
		if f.hold != nil {
			f.hold(n)
		}
	}))
	t.Cleanup(rcv.Close)
	if err := st.PutApp(t.Context(), storage.App{ID: "app", Key: "key", CallbackURL: rcv.URL, CallbackEvents: []string{GroupMessage}}); err != nil {
		t.Fatal(err)
	}
	f.d = NewDispatcher(Config{Rescan: 50 * time.Millisecond, MinBackoff: 50 * time.Millisecond, LeaseTTL: time.Second}, f.js, st, slog.New(slog.DiscardHandler), nil)
	f.pub = NewPublisher(f.nc, "test", slog.New(slog.DiscardHandler), nil)
	t.Cleanup(func() { f.pub.Close(time.Second) })
	return f
}

// run runs the dispatcher until ctx ends or stop is called; the channel
// hears what Run returned.
func (f *dispatcherFixture) run(ctx context.Context) <-chan error {
	ctx, f.stop = context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx) }()
	return done
}

// publish stores a group.message event of the app for message id.
func (f *dispatcherFixture) publish(t *testing.T, id string) {
	t.Helper()
	if err := WaitStored(f.pub.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", Message: &Message{MessageID: id}}), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func (f *dispatcherFixture) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

// waitUntil polls ok until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
	}
}

// TestDispatcherBatchesWithinBytes: a POST holds at most BatchBytes of
// events. 100 events of messages near the 15 KiB data limit made one
// 1.5 MB POST, which a receiver behind nginx (1 MiB bodies) refuses with
// 413, again on every retry: the app got no event from then on.
func TestDispatcherBatchesWithinBytes(t *testing.T) {
	f := newDispatcherFixture(t)
	f.bodyLimit = 1 << 20
	if _, err := EnsureStream(t.Context(), f.js, Config{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("x", 15<<10)
	var want []string
	var last <-chan error
	for i := range 100 {
		id := fmt.Sprint("m", i)
		want = append(want, id)
		last = f.pub.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", Message: &Message{MessageID: id, Data: data}})
	}
	if err := WaitStored(last, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	f.run(t.Context())
	waitUntil(t, "the 100 events posted", func() bool { return len(f.received()) >= 100 })
	if got := f.received(); !slices.Equal(got, want) {
		t.Fatalf("posted %d events %v, want the 100 in order", len(got), got)
	}
}
