package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage/scylla"
)

// eventSink is an app's callback receiver for the fault test: it checks
// each POST's signature and records the group messages' events.
type eventSink struct {
	url string

	mu     sync.Mutex
	events []callback.Event
	bad    int
}

func startEventSink(t *testing.T, appKey string) *eventSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &eventSink{url: "http://" + ln.Addr().String() + "/events"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sr, err := auth.RequestHeaders(r)
		if err == nil {
			err = auth.VerifyRequest([]string{appKey}, sr, r.Method, r.URL.EscapedPath(), r.URL.Query(), body, time.Now())
		}
		var b callback.Batch
		if err == nil {
			err = json.Unmarshal(body, &b)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.bad++
			http.Error(w, "bad", http.StatusUnauthorized)
			return
		}
		s.events = append(s.events, b.Events...)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// subscribeApp points the app's callbacks at the sink (routers see it
// within their rescan interval).
func (s *eventSink) subscribeApp(t *testing.T, cfg scylla.Config, appID string) {
	t.Helper()
	ctx := context.Background()
	st, err := scylla.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app, err := st.GetApp(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	app.CallbackURL, app.CallbackEvents = s.url, []string{callback.GroupMessage}
	if err := st.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
}

// waitSubscribed sends probe messages to the group until the sink hears
// of one: routers cache an app for a few seconds, so a new callback URL
// takes that long to reach the group's owner.
func (s *eventSink) waitSubscribed(t *testing.T, c *liveCluster) {
	t.Helper()
	ctx := context.Background()
	admin, err := login(ctx, c.wsURLs[0], c.app, "probe", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.events)
		s.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("callbacks: no event within 60 s of setting the callback URL")
		}
		if _, err := admin.JoinGroup(ctx, "live"); err == nil {
			_, _ = admin.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: "probe"})
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// check waits until an event came for every message in want (message ID
// → seqnum) and checks that, repeats dropped, the group's messages came
// in seqnum order; events of messages that may be gone (recalled) need
// not come.
func (s *eventSink) check(t *testing.T, want map[string]int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing, order := s.verify(want)
		if missing == "" || time.Now().After(deadline) {
			if missing != "" {
				t.Errorf("callbacks: %s", missing)
			}
			if order != "" {
				t.Errorf("callbacks: %s", order)
			}
			s.mu.Lock()
			t.Logf("callbacks: %d events received (repeats included), %d POSTs with a bad signature", len(s.events), s.bad)
			if s.bad > 0 {
				t.Errorf("callbacks: %d POSTs with a bad signature", s.bad)
			}
			s.mu.Unlock()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *eventSink) verify(want map[string]int64) (missing, order string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	got := map[string]bool{}
	var seqs []int64
	for _, e := range s.events {
		if seen[e.ID] || e.Message == nil {
			continue
		}
		seen[e.ID] = true
		got[e.Message.MessageID] = true
		seqs = append(seqs, e.Message.Seqnum)
	}
	if !slices.IsSorted(seqs) {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				order = fmt.Sprintf("seqnum %d came after %d", seqs[i], seqs[i-1])
				break
			}
		}
	}
	var lost []int64
	for id, seq := range want {
		if !got[id] {
			lost = append(lost, seq)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		missing = fmt.Sprintf("no event for %d of %d acknowledged messages (seqnums %v)", len(lost), len(want), lost)
	}
	return missing, order
}
