package callback

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/subject"
)

// callbackStream connects to a NATS server of its own with the callback
// stream.
func callbackStream(t *testing.T) (*nats.Conn, jetstream.Stream) {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := EnsureStream(t.Context(), js, Config{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return nc, st
}

// TestStored: when a Stored channel says so, the event is in the
// callback stream, after the events queued before it.
func TestStored(t *testing.T) {
	nc, st := callbackStream(t)
	p := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(5 * time.Second)
	for i := range 100 {
		p.Publish(Event{Type: GroupJoin, AppID: "app", GroupID: "g", User: &User{UserID: "u"}, ID: fmt.Sprintf("join-%d", i)})
	}
	if err := WaitStored(p.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", ID: "the-message", Message: &Message{MessageID: "m1"}}), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), subject.CallbackGroup("app", "g"))
	if err != nil {
		t.Fatalf("the event is not in the stream: %v", err)
	}
	var ev Event
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID != "the-message" || m.Sequence != 101 {
		t.Fatalf("last event %q at %d (%v), want the-message after the 100 queued before it", ev.ID, m.Sequence, err)
	}
}

// TestStreamBounded: events no backend takes (an app's receiver dead)
// stay within Config.MaxBytes, the oldest going first, and events are
// still stored once the stream is full: one app cannot fill the NATS
// nodes' storage, nor stop the other apps' events.
func TestStreamBounded(t *testing.T) {
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10
	st, err := EnsureStream(t.Context(), js, Config{MaxAge: time.Hour, MaxBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(5 * time.Second)
	data := strings.Repeat("x", 1000)
	for i := range 300 {
		p.Publish(Event{Type: GroupMessage, AppID: "dead", GroupID: "g", ID: fmt.Sprintf("m-%d", i), Message: &Message{MessageID: fmt.Sprint(i), Data: data}})
	}
	if err := WaitStored(p.Stored(Event{Type: GroupMessage, AppID: "live", GroupID: "g", ID: "live-1", Message: &Message{MessageID: "l1"}}), 10*time.Second); err != nil {
		t.Fatalf("an event after the stream filled: %v", err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > limit || info.State.FirstSeq == 1 {
		t.Fatalf("the stream holds %d bytes from seq %d, want at most %d with the oldest gone", info.State.Bytes, info.State.FirstSeq, limit)
	}
	if _, err := st.GetLastMsgForSubject(t.Context(), subject.CallbackGroup("live", "g")); err != nil {
		t.Fatalf("the other app's event is not in the stream: %v", err)
	}
}

// TestPublisherQueueBoundedInBytes: while the stream takes nothing (here
// there is none yet), the events waiting hold at most maxQueued bytes;
// past it an event is refused at once (its send is answered 503, and its
// retry queues it again), and those queued go out once the stream is
// there. The queue was bounded in events only: 65,536 of up to ~16 KB.
func TestPublisherQueueBoundedInBytes(t *testing.T) {
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(time.Second)
	p.maxQueued = 100 << 10
	data := strings.Repeat("x", 10<<10)
	var queued []<-chan error
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		stored := p.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", ID: fmt.Sprint("e", i), Message: &Message{MessageID: fmt.Sprint("e", i), Data: data}})
		select {
		case err := <-stored:
			if err == nil {
				t.Fatalf("event %d stored with no stream", i)
			}
			refused = true
		default:
			queued = append(queued, stored)
		}
	}
	if !refused {
		t.Fatalf("50 events of 10 KiB queued within a bound of 100 KiB")
	}
	if q := p.queued.Load(); q > p.maxQueued {
		t.Fatalf("%d bytes queued, over the bound of %d", q, p.maxQueued)
	}
	if _, err := EnsureStream(t.Context(), js, Config{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for i, stored := range queued {
		if err := WaitStored(stored, 60*time.Second); err != nil {
			t.Fatalf("queued event %d once the stream is there: %v", i, err)
		}
	}
	if q := p.queued.Load(); q != 0 {
		t.Fatalf("%d bytes still counted as queued", q)
	}
}
