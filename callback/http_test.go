package callback

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
)

// TestDispatcherRedirectNotFollowed: an app's callback receiver that
// answers with a redirect cannot send liveim's signed POST on to an
// address of its choosing (an internal service of the operator's
// network): a redirect is a failed delivery, retried to the receiver.
func TestDispatcherRedirectNotFollowed(t *testing.T) {
	var internalHits, posts atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { internalHits.Add(1) }))
	defer internal.Close()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Redirect(w, r, internal.URL+"/admin", http.StatusTemporaryRedirect)
	}))
	defer rcv.Close()
	nc, js, st := appWithReceiver(t, rcv.URL)
	d := NewDispatcher(Config{Rescan: 50 * time.Millisecond, MinBackoff: 50 * time.Millisecond, LeaseTTL: time.Second}, js, st, slog.New(slog.DiscardHandler), nil)
	pub := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	t.Cleanup(func() { pub.Close(time.Second) })
	f := &dispatcherFixture{d: d}
	done := f.run(t.Context())
	defer func() { f.stop(); <-done }()
	if err := WaitStored(pub.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", Message: &Message{MessageID: "m1"}}), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a retry after the redirect, or the redirect followed", func() bool { return posts.Load() >= 2 || internalHits.Load() > 0 })
	if n := internalHits.Load(); n > 0 {
		t.Fatalf("the receiver's redirect was followed: the internal service got %d requests", n)
	}
}

// TestAppClientLimits: the client liveim calls apps' backends with
// follows no redirect and takes no answer with more header bytes than
// MaxAnswerHeaderBytes.
func TestAppClientLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/headers":
			w.Header().Set("X-Pad", strings.Repeat("x", MaxAnswerHeaderBytes))
		}
	}))
	defer srv.Close()
	c := AppClient(5 * time.Second)
	resp, err := c.Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a redirect answered %d, want the 302 itself", resp.StatusCode)
	}
	if resp, err := c.Get(srv.URL + "/headers"); err == nil {
		resp.Body.Close()
		t.Fatalf("an answer with %d header bytes was taken", MaxAnswerHeaderBytes)
	}
	resp, err = c.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestSlowReceiverOneDispatcher: a receiver slower than the lease's TTL
// (but within the POST's timeout) still gets an app's events from one
// dispatcher at a time: the one posting keeps its lease while it waits.
func TestSlowReceiverOneDispatcher(t *testing.T) {
	var inFlight, most, posts atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(7 * time.Second) // over twice the lease TTL
		posts.Add(1)
	}))
	defer rcv.Close()
	nc, js, st := appWithReceiver(t, rcv.URL)
	cfg := Config{Rescan: 50 * time.Millisecond, MinBackoff: 50 * time.Millisecond, LeaseTTL: 3 * time.Second, Timeout: 20 * time.Second}
	for range 2 {
		f := &dispatcherFixture{d: NewDispatcher(cfg, js, st, slog.New(slog.DiscardHandler), nil)}
		done := f.run(t.Context())
		defer func() { f.stop(); <-done }()
	}
	pub := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	t.Cleanup(func() { pub.Close(time.Second) })
	if err := WaitStored(pub.Stored(Event{Type: GroupMessage, AppID: "app", GroupID: "g", Message: &Message{MessageID: "m1"}}), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the event posted", func() bool { return posts.Load() >= 1 })
	if m := most.Load(); m > 1 {
		t.Fatalf("%d dispatchers posted the app's events at once", m)
	}
}

func TestFromItsPublisher(t *testing.T) {
	online := Event{Type: UserOnline, AppID: "app", User: &User{UserID: "u"}}
	msg := Event{Type: GroupMessage, AppID: "app", GroupID: "g", Message: &Message{MessageID: "m"}}
	for _, tc := range []struct {
		name string
		subj string
		ev   Event
		ok   bool
	}{
		{"a user's online event", "liveim.cb.app.u.u", online, true},
		{"a group's message", "liveim.cb.app.g.g", msg, true},
		{"a message on a user subject (a gateway's forgery)", "liveim.cb.app.u.u", msg, false},
		{"another user's online event", "liveim.cb.app.u.v", online, false},
		{"another app's event", "liveim.cb.other.u.u", online, false},
		{"no user", "liveim.cb.app.u.u", Event{Type: UserOffline, AppID: "app"}, false},
	} {
		if err := fromItsPublisher(tc.subj, tc.ev); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// appWithReceiver connects to an in-process NATS server and opens a
// store holding the app "app", whose group messages go to url.
func appWithReceiver(t *testing.T, url string) (*nats.Conn, jetstream.JetStream, storage.Store) {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.PutApp(t.Context(), storage.App{ID: "app", Key: "key", CallbackURL: url, CallbackEvents: []string{GroupMessage}}); err != nil {
		t.Fatal(err)
	}
	return nc, js, st
}
