package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/serverapi"
)

// receiver is an app's callback endpoint: a real HTTP server that checks
// each POST's signature and records the events. It can go down (its
// listener closed: connection refused) and come back on the same address.
type receiver struct {
	t    testing.TB
	addr string

	mu     sync.Mutex
	srv    *http.Server
	events []callback.Event
	bad    int // POSTs with a bad signature
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.up()
	t.Cleanup(r.down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/liveim/events" }

func (r *receiver) up() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	testcluster.WaitFor(r.t, 10*time.Second, func() (err error) { // the old socket may linger a moment
		ln, err = net.Listen("tcp", addr)
		return err
	})
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	sr, err := auth.RequestHeaders(req)
	if err == nil {
		err = auth.VerifyRequest([]string{testcluster.AppKey}, sr, req.Method, req.URL.EscapedPath(), req.URL.Query(), body, time.Now())
	}
	var b callback.Batch
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || b.AppID != testcluster.AppID {
		r.bad++
		http.Error(w, "bad", http.StatusUnauthorized)
		return
	}
	r.events = append(r.events, b.Events...)
}

// got returns the events received so far, repeats (same ID) dropped as
// an app would.
func (r *receiver) got() []callback.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []callback.Event
	for _, e := range r.events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until the received events satisfy ok.
func (r *receiver) waitFor(timeout time.Duration, what string, ok func([]callback.Event) bool) []callback.Event {
	r.t.Helper()
	var evs []callback.Event
	testcluster.WaitFor(r.t, timeout, func() error {
		if evs = r.got(); !ok(evs) {
			return fmt.Errorf("%s: have %d events: %v", what, len(evs), kinds(evs))
		}
		return nil
	})
	return evs
}

func kinds(evs []callback.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+":"+e.GroupID)
	}
	return out
}

func has(kind, groupID string) func([]callback.Event) bool {
	return func(evs []callback.Event) bool {
		return slices.ContainsFunc(evs, func(e callback.Event) bool { return e.Type == kind && e.GroupID == groupID })
	}
}

// callbackCluster starts two routers and gateways whose callbacks retry
// fast, the server API, and an app whose events go to rcv.
func callbackCluster(t *testing.T, rcv *receiver, events ...string) (*testcluster.Cluster, *testcluster.API) {
	t.Helper()
	rc := fastPresence()
	rc.Callbacks = callback.Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Rescan: 200 * time.Millisecond}
	c := cluster2(t, rc)
	api := c.StartAPI(0, serverapi.Config{})
	settings := map[string]any{"callback_url": rcv.URL()}
	if events != nil {
		settings["callback_events"] = events
	}
	if err := api.AdminClient().Do(ctxT(t), "PATCH", "/admin/apps/"+testcluster.AppID, nil, settings, nil); err != nil {
		t.Fatal(err)
	}
	return c, api
}

// TestCallbacks: every kind of event reaches the app's URL, signed, with
// what it is about, and a group's events in the order they happened.
func TestCallbacks(t *testing.T) {
	rcv := newReceiver(t)
	c, api := callbackCluster(t, rcv)
	app := api.AppClient()
	do(t, app, "POST", "/groups", map[string]any{"group_id": "room", "group_name": "Room", "creator": "host"}, nil)
	host := c.Login(t, 0, "host", "")
	fan := c.Login(t, 1, "fan", "")
	join(t, host, "room")
	join(t, fan, "room")
	var sent []string
	for i := range 5 {
		sent = append(sent, send(t, fan, "room", fmt.Sprint("msg ", i)).MessageId)
	}
	do(t, app, "DELETE", "/groups/room/messages/"+sent[0], nil, nil)
	if err := fan.LeaveGroup(ctxT(t), "room"); err != nil {
		t.Fatal(err)
	}
	_ = fan.Close()
	do(t, app, "POST", "/groups/room/close", nil, nil)
	do(t, app, "DELETE", "/groups/room", nil, nil)

	evs := rcv.waitFor(30*time.Second, "every kind", func(evs []callback.Event) bool {
		return has(callback.GroupDeleted, "room")(evs) && slices.ContainsFunc(evs, func(e callback.Event) bool {
			return e.Type == callback.UserOffline && e.User.UserID == "fan"
		})
	})
	var room []string
	for _, e := range evs {
		if e.GroupID != "room" {
			continue
		}
		switch e.Type {
		case callback.GroupMessage:
			room = append(room, e.Type+" "+e.Message.Data)
		case callback.MessageDeleted:
			room = append(room, e.Type+" "+e.MessageID)
		case callback.GroupJoin, callback.GroupLeave, callback.GroupCreated:
			room = append(room, e.Type+" "+e.User.UserID)
		default:
			room = append(room, e.Type)
		}
	}
	want := []string{"group.created host", "group.join host", "group.join fan"}
	for i := range 5 {
		want = append(want, fmt.Sprint("group.message msg ", i))
	}
	want = append(want, "message.deleted "+sent[0], "group.leave fan", "group.closed", "group.deleted")
	if !slices.Equal(room, want) {
		t.Fatalf("the room's events:\n%q\nwant\n%q", room, want)
	}
	for _, e := range evs {
		if e.ID == "" || e.AppID != testcluster.AppID || e.TimeMs == 0 {
			t.Fatalf("event without id, app or time: %+v", e)
		}
	}
	online := slices.IndexFunc(evs, func(e callback.Event) bool { return e.Type == callback.UserOnline && e.User.UserID == "fan" })
	offline := slices.IndexFunc(evs, func(e callback.Event) bool { return e.Type == callback.UserOffline && e.User.UserID == "fan" })
	if online < 0 || offline < online || evs[online].SessionID == "" || evs[online].SessionID != evs[offline].SessionID {
		t.Fatalf("fan's online at %d, offline at %d: %+v", online, offline, evs)
	}
	if rcv.bad != 0 {
		t.Fatalf("%d POSTs with a bad signature", rcv.bad)
	}
}

// TestCallbacksReceiverDown: while the app's receiver is down (connection
// refused), and while the router delivering its events is stopped, events
// wait in the stream; once the receiver is back every one arrives, once
// as far as the app sees (by ID), and a group's in order.
func TestCallbacksReceiverDown(t *testing.T) {
	rcv := newReceiver(t)
	c, api := callbackCluster(t, rcv, callback.GroupMessage, callback.GroupCreated)
	app := api.AppClient()
	do(t, app, "POST", "/groups", map[string]any{"group_id": "live", "group_name": "Live"}, nil)
	rcv.waitFor(30*time.Second, "group.created", has(callback.GroupCreated, "live"))

	rcv.down()
	const n = 60
	for i := range n / 2 {
		do(t, app, "POST", "/groups/live/messages", map[string]any{"type": 1, "data": fmt.Sprint(i)}, nil)
	}
	// The router that delivers the app's events may be either: stop the
	// first (the API's router keeps serving requests through the other).
	if err := c.Router(1).Stop(); err != nil {
		t.Fatal(err)
	}
	for i := n / 2; i < n; i++ {
		do(t, app, "POST", "/groups/live/messages", map[string]any{"type": 1, "data": fmt.Sprint(i)}, nil)
	}
	rcv.up()
	evs := rcv.waitFor(60*time.Second, "every message", func(evs []callback.Event) bool {
		return len(evs) >= n+1
	})
	var data []string
	for _, e := range evs {
		if e.Type == callback.GroupMessage {
			data = append(data, e.Message.Data)
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(data, want) {
		t.Fatalf("messages after the outage: %q", data)
	}
	// Only the kinds asked for came.
	for _, e := range evs {
		if e.Type != callback.GroupMessage && e.Type != callback.GroupCreated {
			t.Fatalf("an event the app did not ask for: %+v", e)
		}
	}
}

// TestCallbacksHangingReceiver: a receiver that never answers holds up
// only its own events: messages still flow to the room's members, and
// once it answers again the held events arrive.
func TestCallbacksHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	t.Cleanup(stop)
	rcv := newReceiver(t)
	hang := newHangingServer(t, release)
	c, api := callbackCluster(t, rcv, callback.GroupMessage)
	app := api.AppClient()
	if err := api.AdminClient().Do(ctxT(t), "PATCH", "/admin/apps/"+testcluster.AppID, nil, map[string]any{"callback_url": hang}, nil); err != nil {
		t.Fatal(err)
	}
	do(t, app, "POST", "/groups", map[string]any{"group_id": "busy", "group_name": "Busy", "creator": "host"}, nil)
	host := c.Login(t, 0, "host", "")
	viewer := c.Login(t, 1, "viewer", "")
	join(t, host, "busy")
	join(t, viewer, "busy")
	const n = 50
	for i := range n {
		send(t, host, "busy", fmt.Sprint(i))
	}
	for got := 0; got < n; {
		if m := waitEvent(t, viewer, groupMsg); m.GroupId == "busy" {
			got++
		}
	}
	// Back to the working receiver; the held events follow.
	if err := api.AdminClient().Do(ctxT(t), "PATCH", "/admin/apps/"+testcluster.AppID, nil, map[string]any{"callback_url": rcv.URL()}, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	rcv.waitFor(60*time.Second, "the held messages", func(evs []callback.Event) bool { return len(evs) >= n })
}

// newHangingServer returns the URL of a server that answers nothing until
// release closes.
func newHangingServer(t testing.TB, release <-chan struct{}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "hung", http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/hang"
}
