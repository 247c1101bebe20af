package e2e

import (
	"context"
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
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
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
	return callbackClusterWith(t, rcv, fastPresence(), events...)
}

// callbackClusterWith is callbackCluster with the routers' config rc.
func callbackClusterWith(t *testing.T, rcv *receiver, rc router.Config, events ...string) (*testcluster.Cluster, *testcluster.API) {
	t.Helper()
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

// TestCallbackOfRetriedSendAfterFailover: a message's event is stored
// before its send is acknowledged, also when the router that stored the
// message dies before its event is out. The callback stream cannot take
// events (as when it has no leader), so the send is answered 503, not
// acknowledged; its router stops and loses the queued event; the sender's
// retry (same client message ID) reaches the router that took the group
// over, which finds the message stored and must publish its event before
// acknowledging it. The app hears of the message once (by event ID), with
// the acknowledged seqnum. While the send waits for its event, its
// group's other requests are answered.
func TestCallbackOfRetriedSendAfterFailover(t *testing.T) {
	rcv := newReceiver(t)
	rc := fastPresence()
	rc.EventWait = 6 * time.Second // room for the request behind it on a busy machine
	c, _ := callbackClusterWith(t, rcv, rc, callback.GroupMessage)
	host := c.Login(t, 0, "host", "admin")
	createGroup(t, host, "room")
	join(t, host, "room")
	first := send(t, host, "room", "first")
	rcv.waitFor(30*time.Second, "the first message's event", has(callback.GroupMessage, "room"))

	// The stream refuses every event, as one without a leader would.
	js := c.JetStream()
	cbs, err := js.Stream(context.Background(), subject.CallbackStream)
	if err != nil {
		t.Fatal(err)
	}
	refusing := cbs.CachedInfo().Config
	refusing.MaxMsgSize = 1
	if _, err := js.UpdateStream(context.Background(), refusing); err != nil {
		t.Fatal(err)
	}
	req := &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "retried", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: "cmid-retried"}
	sent := make(chan error, 1)
	go func() {
		_, err := host.SendGroupMessage(ctxT(t), req)
		sent <- err
	}()
	testcluster.WaitFor(t, 30*time.Second, func() error { // stored: it waits for its event now
		page, err := c.Store.ListMessages(context.Background(), storage.MessageQuery{AppID: testcluster.AppID, GroupID: "room", Limit: 10})
		if err == nil && len(page.Messages) < 2 {
			err = fmt.Errorf("%d messages stored", len(page.Messages))
		}
		return err
	})
	if _, err := host.ListMuteUsers(ctxT(t), "room"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		t.Fatalf("the send was answered (%v) before a request of its group behind it: its group's worker waited for the event", err)
	default:
	}
	wantCode(t, <-sent, 503) // stored, but its event is not: not acknowledged
	for i := range 2 {
		if err := c.Router(i).Stop(); err != nil {
			t.Fatal(err)
		}
	}
	c.StartRouter() // sets the stream right again
	var acked *liveimpb.SendMessageReply
	testcluster.WaitFor(t, 30*time.Second, func() (err error) {
		acked, err = host.SendGroupMessage(ctxT(t), req)
		return err
	})
	if acked.Seqnum != first.Seqnum+1 {
		t.Fatalf("retry acknowledged with seqnum %d, want %d", acked.Seqnum, first.Seqnum+1)
	}
	isRetried := func(e callback.Event) bool {
		return e.Type == callback.GroupMessage && e.Message.MessageID == acked.MessageId
	}
	evs := rcv.waitFor(30*time.Second, "the retried message's event", func(evs []callback.Event) bool {
		return slices.ContainsFunc(evs, isRetried)
	})
	if e := evs[slices.IndexFunc(evs, isRetried)]; e.Message.Seqnum != acked.Seqnum {
		t.Fatalf("event of the retried message has seqnum %d, acknowledged %d", e.Message.Seqnum, acked.Seqnum)
	}
	// Another retry, now that the event is out, adds no event.
	if _, err := host.SendGroupMessage(ctxT(t), req); err != nil {
		t.Fatal(err)
	}
	send(t, host, "room", "sentinel")
	evs = rcv.waitFor(30*time.Second, "the sentinel's event", func(evs []callback.Event) bool {
		return slices.ContainsFunc(evs, func(e callback.Event) bool { return e.Type == callback.GroupMessage && e.Message.Data == "sentinel" })
	})
	var data []string
	for _, e := range evs {
		data = append(data, e.Message.Data)
	}
	if want := []string{"first", "retried", "sentinel"}; !slices.Equal(data, want) {
		t.Fatalf("the app heard of %q (repeats by event ID dropped), want %q", data, want)
	}
}
