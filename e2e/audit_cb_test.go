package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/serverapi"
)

// TestAuditCBLargeMessageWedgesCallbacks: with --max-data-bytes raised to
// 200,000 (the server API takes bodies up to 1 MiB), one message of
// 200,000 '<' is accepted by the router, but its group.message event is
// 1.2 MB of JSON ('<' escaped to "\u003c"), over NATS's 1 MiB payload:
// the router's callback Publisher retries it forever, and every event
// after it on that router, for every app, is stuck behind it; sends of
// apps with group.message callbacks are answered 503 from then on.
func TestAuditCBLargeMessageWedgesCallbacks(t *testing.T) {
	rcv := newReceiver(t)
	rc := fastPresence()
	rc.MaxDataBytes = 200_000
	_, api := callbackClusterWith(t, rcv, rc, callback.GroupMessage, callback.GroupCreated)
	app := api.AppClient()
	do(t, app, "POST", "/groups", map[string]any{"group_id": "live", "group_name": "Live"}, nil)
	rcv.waitFor(30*time.Second, "group.created", has(callback.GroupCreated, "live"))

	// Accepted by the router (under MaxDataBytes), its event never stored.
	// The body as a backend not written in Go sends it (Python's
	// json.dumps, JavaScript's JSON.stringify): '<' as it is, 200 KB.
	body := []byte(`{"type":1,"client_msg_id":"large-1","data":"` + strings.Repeat("<", 200_000) + `"}`)
	req, err := http.NewRequestWithContext(ctxT(t), "POST", api.URL+serverapi.Prefix+"/groups/live/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	auth.SignRequest(req, testcluster.AppID, testcluster.AppKey, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("the large send: %s %s", resp.Status, answer)
	if resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusBadRequest {
		t.Fatalf("the large send was refused: %s %s", resp.Status, answer)
	}

	// A small message afterwards, in the same group (same router).
	var lastErr error
	for i := 0; i < 3; i++ {
		if lastErr = app.Do(ctxT(t), "POST", "/groups/live/messages", nil, map[string]any{"type": 1, "data": "small", "client_msg_id": "small-1"}, nil); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Errorf("a small send after the large one: %v", lastErr)
	}
	rcv.waitFor(60*time.Second, "the small message's event", func(evs []callback.Event) bool {
		for _, e := range evs {
			if e.Type == callback.GroupMessage && e.Message.Data == "small" {
				return true
			}
		}
		return false
	})
}
