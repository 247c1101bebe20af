package callback

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/subject"
)

// TestStored: when a Stored channel says so, the event is in the
// callback stream, after the events queued before it.
func TestStored(t *testing.T) {
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := EnsureStream(t.Context(), js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
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
