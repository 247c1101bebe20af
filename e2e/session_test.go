package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

// closeStatus waits for cl's connection to end and returns the close
// status the gateway sent.
func closeStatus(t testing.TB, cl *client.Client) ws.StatusCode {
	t.Helper()
	select {
	case <-cl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open")
	}
	var ce wsutil.ClosedError
	if !errors.As(cl.Err(), &ce) {
		t.Fatalf("connection ended with %v, want a close frame", cl.Err())
	}
	return ce.Code
}

func TestLoginRefused(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	good := testcluster.Auth("alice", "")
	tests := []struct {
		name      string
		appID     string
		userID    string
		ext       string
		device    string
		auth      func() *liveimpb.UserAuth
		code      int32
		field     string // the 400 message must name it
		mustClose bool
	}{
		{name: "forged token", userID: "alice", auth: func() *liveimpb.UserAuth {
			a := testcluster.Auth("alice", "")
			a.Token = strings.Repeat("0", 64)
			return a
		}, code: 401, mustClose: true},
		{name: "token of another user", userID: "mallory", auth: func() *liveimpb.UserAuth { return good }, code: 401, mustClose: true},
		{name: "role raised", userID: "alice", auth: func() *liveimpb.UserAuth {
			a := testcluster.Auth("alice", "")
			a.Role = "admin"
			return a
		}, code: 401, mustClose: true},
		{name: "expired token", userID: "alice", auth: func() *liveimpb.UserAuth {
			a := testcluster.Auth("alice", "")
			a.Timestamp = time.Now().Add(-time.Minute).Unix()
			return a
		}, code: 401, mustClose: true},
		{name: "unknown app", appID: "no-such-app", userID: "alice", auth: func() *liveimpb.UserAuth { return good }, code: 401, mustClose: true},
		{name: "user id with a dot", userID: "al.ice", auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "userId"},
		{name: "user id too long", userID: strings.Repeat("a", 65), auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "userId"},
		{name: "app id with space", appID: "my app", userID: "alice", auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "appId"},
		{name: "user extension too big", userID: "alice", ext: strings.Repeat("x", 513), auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "userExtension"},
		// A device ID travels in a NATS header to the user's other
		// sessions, which trims it and turns line breaks into spaces: "phone "
		// would never match itself, "a\nb" would match "a b".
		{name: "device id with a trailing space", userID: "alice", device: "phone ", auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "deviceId"},
		{name: "device id with a line break", userID: "alice", device: "tablet\nA", auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "deviceId"},
		{name: "device id too long", userID: "alice", device: strings.Repeat("d", 129), auth: func() *liveimpb.UserAuth { return good }, code: 400, field: "deviceId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := testcluster.Dial(t, c.Gateway(0).URL)
			if err != nil {
				t.Fatal(err)
			}
			appID := tt.appID
			if appID == "" {
				appID = testcluster.AppID
			}
			_, err = cl.Login(ctxT(t), client.Login{AppID: appID, UserID: tt.userID, UserExtension: tt.ext, DeviceID: tt.device, Auth: tt.auth()})
			if code := testcluster.ErrCode(err); code != tt.code {
				t.Fatalf("login: %v (code %d), want %d", err, code, tt.code)
			}
			if tt.field != "" && !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name field %s", err, tt.field)
			}
			if tt.mustClose {
				if st := closeStatus(t, cl); st != 4001 {
					t.Fatalf("close status %d, want 4001", st)
				}
			}
		})
	}
}

func TestRequestsNeedLoginAndValidIDs(t *testing.T) {
	c := cluster2(t, router.Config{})
	anon, err := testcluster.Dial(t, c.Gateway(0).URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.JoinGroup(ctxT(t), "room-1"); testcluster.ErrCode(err) != 404 {
		t.Fatalf("join before login: %v, want 404", err)
	}
	alice := c.Login(t, 0, "alice", "admin")
	if _, err := alice.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: "alice", Auth: testcluster.Auth("alice", "")}); testcluster.ErrCode(err) != 304 {
		t.Fatalf("second login: %v, want 304", err)
	}
	tests := []struct {
		name  string
		do    func() error
		code  int32
		field string
	}{
		{"join bad group id", func() error { _, err := alice.JoinGroup(ctxT(t), "room/1"); return err }, 400, "groupId"},
		{"join missing group", func() error { _, err := alice.JoinGroup(ctxT(t), "nope"); return err }, 440, ""},
		{"create bad group id", func() error {
			_, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "a b", GroupName: "x"})
			return err
		}, 400, "groupId"},
		{"create without name", func() error {
			_, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-x"})
			return err
		}, 400, "groupName"},
		{"send without joining", func() error {
			_, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "x"})
			return err
		}, 425, ""},
		{"c2c bad receiver", func() error {
			_, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "b*b", Type: chatType, Data: "x"})
			return err
		}, 400, "receiverId"},
		{"c2c system type", func() error {
			_, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "bob", Type: 10000, Data: "x"})
			return err
		}, 400, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if code := testcluster.ErrCode(err); code != tt.code {
				t.Fatalf("got %v (code %d), want %d", err, code, tt.code)
			}
			if tt.field != "" && !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
	// Non-admins may not create groups.
	bob := c.Login(t, 0, "bob", "")
	if _, err := bob.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-b", GroupName: "b"}); testcluster.ErrCode(err) != 403 {
		t.Fatalf("create as non-admin: %v, want 403", err)
	}
}

func TestSecondLoginClosesOlderSession(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateways: 2})
	old := c.Login(t, 0, "alice", "")
	_ = c.Login(t, 1, "alice", "")
	ev := testcluster.NextEvent(t, old, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetDisconnect() != nil })
	if code := ev.GetDisconnect().Code; code != 4 {
		t.Fatalf("disconnect code %d, want 4", code)
	}
	if st := closeStatus(t, old); st != 4004 {
		t.Fatalf("close status %d, want 4004", st)
	}
}

func TestOversizedInput(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 0, "bob", "")
	mallory := c.Login(t, 0, "mallory", "")
	createGroup(t, alice, "room-1")
	for _, cl := range []*client.Client{alice, bob, mallory} {
		join(t, cl, "room-1")
	}

	// Data over 15 KiB inside an acceptable frame: 413, connection kept.
	_, err := mallory.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: strings.Repeat("x", 15<<10+1)})
	if code := testcluster.ErrCode(err); code != 413 {
		t.Fatalf("big data: %v, want 413", err)
	}
	if _, err := mallory.Ping(ctxT(t)); err != nil {
		t.Fatalf("connection lost after 413: %v", err)
	}

	// A frame over the gateway's limit: closed with 1009.
	if err := mallory.WriteRaw(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if st := closeStatus(t, mallory); st != ws.StatusMessageTooBig {
		t.Fatalf("close status %d, want 1009", st)
	}

	// Nobody else noticed.
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "still here"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{alice, bob} {
		m := testcluster.NextEvent(t, cl, 10*time.Second, isGroupMessage).GetGroupMessage()
		if m.Data != "still here" {
			t.Fatalf("got %q", m.Data)
		}
	}
}

func TestMalformedFrameGetsErrorAndKeepsConnection(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	alice := c.Login(t, 0, "alice", "")
	if err := alice.WriteRaw([]byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	select {
	case rep := <-alice.Errors():
		if rep.Code != 400 || !strings.Contains(rep.Msg, "frame") {
			t.Fatalf("got %v, want 400 naming the frame", rep)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reply for a malformed frame")
	}
	if _, err := alice.Ping(context.Background()); err != nil {
		t.Fatalf("connection lost: %v", err)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{HeartbeatTimeout: 2 * time.Second}})
	silent := c.Login(t, 0, "silent", "")
	chatty := c.Login(t, 0, "chatty", "")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				_, _ = chatty.Ping(context.Background())
			}
		}
	}()
	ev := testcluster.NextEvent(t, silent, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetDisconnect() != nil })
	if ev.GetDisconnect().Code != 3 {
		t.Fatalf("disconnect %v, want code 3", ev.GetDisconnect())
	}
	closeStatus(t, silent)
	// The client that pings is still served after the silent one was cut.
	if _, err := chatty.Ping(ctxT(t)); err != nil {
		t.Fatalf("pinging client was closed: %v", err)
	}
}

func TestRefreshToken(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	alice := c.Login(t, 0, "alice", "")
	if err := alice.RefreshToken(ctxT(t), testcluster.Auth("alice", "")); err != nil {
		t.Fatalf("refresh with a valid token: %v", err)
	}
	forged := testcluster.Auth("alice", "")
	forged.Token = strings.Repeat("0", 64)
	wantCode(t, alice.RefreshToken(ctxT(t), forged), 401)
	wantCode(t, alice.RefreshToken(ctxT(t), testcluster.Auth("bob", "")), 401)        // another user's token
	wantCode(t, alice.RefreshToken(ctxT(t), testcluster.Auth("alice", "admin")), 400) // no role change
	if _, err := alice.Ping(ctxT(t)); err != nil {
		t.Fatalf("session lost after refreshes: %v", err)
	}
}

// TestMultiDeviceLogin: with the app's multi-device login on, sessions of
// one user on different devices coexist and a new login closes only the
// older session of the same device.
func TestMultiDeviceLogin(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateways: 2})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.MultiDevice = true
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	login := func(gw int, device string) *client.Client {
		cl, err := testcluster.Dial(t, c.Gateway(gw).URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: "alice", DeviceID: device, Auth: testcluster.Auth("alice", "")}); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	phone := login(0, "phone")
	laptop := login(1, "Laptop (work) 2")
	phoneAgain := login(1, "phone")
	ev := testcluster.NextEvent(t, phone, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetDisconnect() != nil })
	if ev.GetDisconnect().Code != 4 {
		t.Fatalf("older phone session: %v, want disconnect(4)", ev)
	}
	for name, cl := range map[string]*client.Client{"laptop": laptop, "new phone": phoneAgain} {
		if _, err := cl.Ping(ctxT(t)); err != nil {
			t.Fatalf("%s session closed: %v", name, err)
		}
	}
	// Both devices get C2C messages.
	bob := c.Login(t, 0, "bob", "")
	if _, err := bob.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "alice", Type: chatType, Data: "to every device"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "alice", Type: chatType, Data: "second"}); err != nil {
		t.Fatal(err)
	}
	// Both sessions are on one gateway: each gets each message once.
	for _, cl := range []*client.Client{laptop, phoneAgain} {
		for _, want := range []string{"to every device", "second"} {
			if m := waitEvent(t, cl, func(ev *liveimpb.Event) *liveimpb.Message { return ev.GetC2CMessage() }); m.Data != want {
				t.Fatalf("got %q, want %q", m.Data, want)
			}
		}
	}
}
