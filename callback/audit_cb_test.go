package callback

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/subject"
)

// TestAuditCBOversizedEventBlocksOthers: one event the stream can never
// take (its JSON over the NATS max payload: a message's data is escaped
// by encoding/json, '<' to "\u003c", six bytes each, so a message of
// 200,000 bytes (allowed with --max-data-bytes 200000 and a 1 MiB server
// API body) makes an event of 1.2 MB) must not hold back every later
// event of every app on the same Publisher forever. Today publishNow
// retries nats.ErrMaxPayload, a permanent error, with backoff forever, on
// the Publisher's one goroutine: nothing after it is ever stored, and
// every send waiting for its event is answered 503 from then on.
func TestAuditCBOversizedEventBlocksOthers(t *testing.T) {
	nc, _ := callbackStream(t)
	p := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(time.Second)

	// An event with a message of 200,000 '<' (well below NATS's 1 MiB as
	// raw bytes: it fits a router request and a server API body).
	big := Event{Type: GroupMessage, AppID: "app-a", GroupID: "g", ID: "big",
		Message: &Message{MessageID: "big", Data: strings.Repeat("<", 200_000)}}
	bigStored := p.Stored(big)

	// Another app's event, queued after it.
	other := p.Stored(Event{Type: GroupMessage, AppID: "app-b", GroupID: "g", ID: "small", Message: &Message{MessageID: "small", Data: "hi"}})
	if err := WaitStored(other, 30*time.Second); err != nil {
		t.Fatalf("an event of another app queued after an oversized one: %v", err)
	}
	if err := WaitStored(bigStored, 30*time.Second); err != nil {
		t.Fatalf("200,000 '<' (200 KB as they are): %v", err)
	}

	// Control characters stay escaped, six bytes each: an event over the
	// NATS limit. It is refused at once, and what comes after it is
	// stored.
	huge := p.Stored(Event{Type: GroupMessage, AppID: "app-a", GroupID: "g", ID: "huge",
		Message: &Message{MessageID: "huge", Data: strings.Repeat("\x01", 200_000)}})
	after := p.Stored(Event{Type: GroupMessage, AppID: "app-b", GroupID: "g", ID: "after", Message: &Message{MessageID: "after", Data: "hi"}})
	if err := WaitStored(huge, 30*time.Second); err == nil || !strings.Contains(err.Error(), "not queued") {
		t.Fatalf("an event over the NATS limit: %v, want it refused", err)
	}
	if err := WaitStored(after, 30*time.Second); err != nil {
		t.Fatalf("an event after one over the NATS limit: %v", err)
	}
}

// TestPublisherGivesUpOnlyPermanentFailures: a publish NATS refuses for
// its size (a server whose limit is below the one the Publisher knew) is
// settled with its error, not tried forever ahead of the events behind
// it.
func TestPublisherGivesUpOnlyPermanentFailures(t *testing.T) {
	nc, _ := callbackStream(t)
	p := NewPublisher(nc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(time.Second)
	p.maxPayload = func() int64 { return 1 << 40 } // as if NATS took anything: the publish itself fails
	big := p.Stored(Event{Type: GroupMessage, AppID: "app-a", GroupID: "g", ID: "big",
		Message: &Message{MessageID: "big", Data: strings.Repeat("x", int(nc.MaxPayload()))}})
	small := p.Stored(Event{Type: GroupMessage, AppID: "app-b", GroupID: "g", ID: "small", Message: &Message{MessageID: "small", Data: "hi"}})
	if err := WaitStored(big, 30*time.Second); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("a publish over the NATS limit: %v, want %v", err, nats.ErrMaxPayload)
	}
	if err := WaitStored(small, 30*time.Second); err != nil {
		t.Fatalf("an event queued after it: %v", err)
	}
}

// TestAuditCBLostPublishReordersGroup: a group's events must stay in the
// order they were published (doc.go: "one subject per group or user, so
// events of a group stay in order"). The Publisher sends up to 256
// events in flight; when JetStream does not take one of them (its
// publish lost on the way: a NATS node or stream leader changing, which
// is what the retry is there for) but takes the later ones, run()
// publishes the lost one again only after those later ones are stored,
// so the stream, and the app, get the group's events out of order.
//
// A TCP proxy between the Publisher's connection and the (real, in
// process) NATS server drops the one publish of event e05, once; every
// other byte passes.
func TestAuditCBLostPublishReordersGroup(t *testing.T) {
	nc, st := callbackStream(t)
	gate := make(chan struct{})
	proxy := newDroppingProxy(t, nc.ConnectedUrl(), `"id":"e05"`, `"id":"gate"`, gate)
	pnc, err := nats.Connect(proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pnc.Close)
	p := NewPublisher(pnc, "test", slog.New(slog.DiscardHandler), nil)
	defer p.Close(time.Second)

	// The gate event's publish is held in the proxy until the ten events
	// are queued, so that they go out in one window, as a busy router's do.
	p.Publish(Event{Type: GroupJoin, AppID: "app", GroupID: "g", ID: "gate", User: &User{UserID: "gate"}})
	var last <-chan error
	want := []string{"gate"}
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("e%02d", i)
		want = append(want, id)
		last = p.Stored(Event{Type: GroupJoin, AppID: "app", GroupID: "g", ID: id, User: &User{UserID: "u" + id}})
	}
	close(gate)
	if err := WaitStored(last, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Every event is in the stream once the Publisher got past e05; read
	// them in stream order.
	var got []string
	waitUntil(t, "the eleven events in the stream", func() bool {
		info, err := st.Info(t.Context())
		return err == nil && info.State.Msgs == 11
	})
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // one taken out of order, deleted, and stored again
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("group g's events in the stream (the order the app gets them): %q, want %q", got, want)
	}
}

// newDroppingProxy forwards a NATS client connection to server, dropping
// the first PUB/HPUB whose payload contains marker, and holding one whose
// payload contains holdMarker until hold is closed; it returns the URL to
// connect to.
func newDroppingProxy(t *testing.T, server, marker, holdMarker string, hold <-chan struct{}) string {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var dropped atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go func() { _, _ = io.Copy(c, s) }()
			go func() {
				defer s.Close()
				r := bufio.NewReaderSize(c, 1<<20)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					if len(f) >= 3 && (strings.EqualFold(f[0], "PUB") || strings.EqualFold(f[0], "HPUB")) {
						n, err := strconv.Atoi(f[len(f)-1])
						if err != nil {
							return
						}
						payload := make([]byte, n+2) // and its CRLF
						if _, err := io.ReadFull(r, payload); err != nil {
							return
						}
						if strings.Contains(string(payload), marker) && dropped.CompareAndSwap(false, true) {
							continue // lost on its way
						}
						if strings.Contains(string(payload), holdMarker) {
							<-hold
						}
						if _, err := s.Write(append([]byte(line), payload...)); err != nil {
							return
						}
						continue
					}
					if _, err := s.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String()
}

// TestAuditCBPurgeAfterStreamMadeAgain: a dispatcher posting a batch read
// from the stream before it was deleted and made again (the case
// TestDispatcherAfterStreamMadeAgain covers for the cursor) must not,
// once the app takes that batch, purge the new stream's undelivered
// events. post() purges the app's subjects below the old batch's last
// sequence + 1 in whatever stream now has the name: the new stream's
// first events (sequences from 1) go, never posted.
func TestAuditCBPurgeAfterStreamMadeAgain(t *testing.T) {
	f := newDispatcherFixture(t)
	if _, err := EnsureStream(t.Context(), f.js, Config{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// Three events in the old stream, sequences 1 to 3, taken in one batch.
	for _, id := range []string{"m1", "m2", "m3"} {
		f.publish(t, id)
	}
	posted, release := make(chan struct{}), make(chan struct{})
	f.hold = func(n int) {
		if n == 1 {
			close(posted)
			<-release
		}
	}
	f.run(t.Context())
	select {
	case <-posted:
	case <-time.After(time.Minute):
		t.Fatal("the first batch was not posted within a minute")
	}
	// While the app's backend holds the first batch, the stream is
	// deleted and made again, and two new events come: sequences 1, 2.
	if err := f.js.DeleteStream(t.Context(), subject.CallbackStream); err != nil {
		t.Fatal(err)
	}
	st, err := EnsureStream(t.Context(), f.js, Config{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.publish(t, "m4")
	f.publish(t, "m5")
	close(release)
	waitUntil(t, "the first batch taken", func() bool { return len(f.received()) >= 3 })
	// Either the new events reach the app, or at least they are still in
	// the stream for it; today they are purged and never posted.
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(f.received(), "m5") {
		if time.Now().After(deadline) {
			info, _ := st.Info(t.Context())
			var msgs uint64
			if info != nil {
				msgs = info.State.Msgs
			}
			t.Fatalf("the new stream's events m4, m5 were never posted (posted %q; the stream holds %d events)", f.received(), msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
