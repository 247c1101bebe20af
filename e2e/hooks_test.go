package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
)

// auditedRoom starts a cluster of routers rc whose app's audit hook is
// hook, and an owner joined to a room.
func auditedRoom(t *testing.T, hook string, rc router.Config) *client.Client {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{Router: rc})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.AuditURL = hook
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	return owner
}

// TestAuditHookRedirectNotFollowed: an app's audit hook that answers
// with a redirect cannot send the router's request on to an address of
// its choosing (an internal service of the operator's network), nor
// read that service's answer back through the send's result: the
// redirect is no answer, and the send is refused (fail closed).
func TestAuditHookRedirectNotFollowed(t *testing.T) {
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"pass": false, "reason": "internal says hi"})
	}))
	defer internal.Close()
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.URL+"/private", code)
		}))
		owner := auditedRoom(t, hook.URL, router.Config{AuditTimeout: 5 * time.Second})
		_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "hello"})
		hook.Close()
		wantCode(t, err, 451)
		if strings.Contains(err.Error(), "internal says hi") || internalHits.Load() > 0 {
			t.Fatalf("redirect %d followed: the internal service got %d requests; the sender saw %v", code, internalHits.Load(), err)
		}
	}
}

// TestAuditHookHugeHeadersRefused: an audit hook answering with more
// header bytes than any real answer has is no answer (the router would
// otherwise hold up to 10 MiB per audit in flight, thousands at once).
func TestAuditHookHugeHeadersRefused(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 64 {
			w.Header().Set("X-Pad-"+string(rune('a'+i%26))+strings.Repeat("b", i), strings.Repeat("x", 4000))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"pass": true})
	}))
	defer hook.Close()
	owner := auditedRoom(t, hook.URL, router.Config{AuditTimeout: 5 * time.Second})
	_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "hello"})
	wantCode(t, err, 451)
}

// TestBannedUserRefusedWhateverTheGateway: a user kicked with a ban is
// refused by the router when it sends, reads the recent messages or
// resumes, even when its gateway still counts it joined (a join's answer
// that reached the gateway after the kick's notice did): requests sent
// as that gateway would send them.
func TestBannedUserRefusedWhateverTheGateway(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	viewer := c.Login(t, 0, "viewer", "")
	join(t, viewer, "room")
	api := c.StartAPI(0, serverapi.Config{}).AppClient()
	if err := api.Do(ctxT(t), "POST", "/groups/room/kick", nil, map[string]any{"user_id": "viewer", "ban_seconds": 3600}, nil); err != nil {
		t.Fatal(err)
	}
	nc := c.Connect()
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, f := range []*liveimpb.ClientFrame{
		{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "still here"}}},
		{Body: &liveimpb.ClientFrame_ListRecentMessage{ListRecentMessage: &liveimpb.ListRecentMessageRequest{GroupId: "room"}}},
		{Body: &liveimpb.ClientFrame_ResumeGroup{ResumeGroup: &liveimpb.ResumeGroupRequest{GroupId: "room"}}},
	} {
		env, _ := proto.Marshal(&liveimpb.RouterRequest{
			Caller: &liveimpb.Caller{AppId: testcluster.AppID, UserId: "viewer", SessionId: "s", GatewayId: "g"},
			Frame:  f,
		})
		m := nats.NewMsg(subject.RPC(testcluster.AppID, "room"))
		m.Data = env
		m.Header.Set(subject.HeaderReply, inbox)
		m.Header.Set(subject.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-replies:
			var rep liveimpb.Reply
			if err := proto.Unmarshal(m.Data, &rep); err != nil || rep.Code != 403 {
				t.Fatalf("%T of the banned user: %v %v, want 403", f.Body, &rep, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%T: no answer within a minute", f.Body)
		}
	}
	page, _ := owner.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	if len(page.GetMessageList()) != 0 {
		t.Fatalf("the banned user's message was stored: %v", dataOf(page.MessageList))
	}
}

// TestTokensOfThePreviousKeyDuringGrace: after an app's key is rotated
// with a grace period, tokens signed with the previous key still log in
// until the grace period ends (as server API signatures do), so a
// rotation does not log every user of the app out at once; after it,
// they are refused.
func TestTokensOfThePreviousKeyDuringGrace(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	login := func(key string) error {
		cl, err := testcluster.Dial(t, c.Gateway(0).URL)
		if err != nil {
			return err
		}
		defer cl.Close()
		cr := auth.Issue(testcluster.AppID, key, "u", "", auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
		_, err = cl.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: "u",
			Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}})
		return err
	}
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.PreviousKey, app.PreviousKeyUntilMs, app.Key = app.Key, time.Now().Add(time.Hour).UnixMilli(), "rotated-key"
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	// Once the routers see the new key (they cache an app for seconds)...
	testcluster.WaitFor(t, time.Minute, func() error { return login("rotated-key") })
	// ...the previous one still logs in.
	if err := login(testcluster.AppKey); err != nil {
		t.Fatalf("a token of the previous key during the grace period: %v", err)
	}
	app.PreviousKeyUntilMs = time.Now().Add(-time.Second).UnixMilli()
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, time.Minute, func() error {
		if err := login(testcluster.AppKey); err == nil {
			return errors.New("a token of the previous key still logs in after the grace period")
		}
		return nil
	})
}

// TestDisabledAppSessionsRefused: disabling an app stops its sessions
// logged in before: their requests are refused (401), as new logins are,
// instead of going on until their tokens expire (up to 7 days).
func TestDisabledAppSessionsRefused(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.Disabled = true
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	// Once a new login is refused (the router caches an app for seconds),
	// so is the session logged in before.
	testcluster.WaitFor(t, time.Minute, func() error {
		cl, err := testcluster.Dial(t, c.Gateway(0).URL)
		if err != nil {
			return err
		}
		defer cl.Close()
		if _, err := cl.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: "late", Auth: testcluster.Auth("late", "")}); err == nil {
			return errors.New("a login to the disabled app was taken")
		}
		return nil
	})
	_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "still on"})
	wantCode(t, err, 401)
}

// TestSlowAuditHookHoldsOnlyItsApp: an app whose audit hook hangs holds
// at most AuditsPerApp of a router's calls; its next sends are 503 at
// once (retry), instead of taking the router's shared slots and then
// its workers, which every app's groups need.
func TestSlowAuditHookHoldsOnlyItsApp(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"pass": true})
	}))
	defer hook.Close()
	defer close(release)
	owner := auditedRoom(t, hook.URL, router.Config{Workers: 1, AuditTimeout: time.Minute, AuditsPerApp: 2})
	held := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: fmt.Sprint("held ", i)})
			held <- err
		}()
	}
	testcluster.WaitFor(t, time.Minute, func() error {
		if n := calls.Load(); n < 2 {
			return fmt.Errorf("%d hook calls in flight", n)
		}
		return nil
	})
	_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "one too many"})
	wantCode(t, err, 503)
	// The worker is free: the group's other requests are served.
	if _, err := owner.QueryGroup(ctxT(t), "room"); err != nil {
		t.Fatal(err)
	}
	release <- struct{}{}
	release <- struct{}{}
	for range 2 {
		if err := <-held; err != nil {
			t.Fatalf("a held send once the hook answered: %v", err)
		}
	}
}
