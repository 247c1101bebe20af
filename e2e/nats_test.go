package e2e

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
)

// TestNATSIsLockedDown: NATS takes no client without credentials, and a
// gateway's credentials reach no further than a gateway needs: it cannot
// publish into a room, read or write JetStream (streams, the nonce and
// router buckets), or take requests meant for routers; and no reply it can
// get carries an app key.
func TestNATSIsLockedDown(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo(subject.GatewayUser, "guess")},
		"unknown user":   {nats.UserInfo("admin", "admin")},
	} {
		if nc, err := nats.Connect(c.NATS.ClientURL(), opts...); err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want an authorization error", name, err)
		}
	}

	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")

	violations := make(chan error, 16)
	gw := c.ConnectAs(subject.GatewayUser)
	gw.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err })
	denied := func(what string, do func() error) {
		t.Helper()
		if err := do(); err != nil && !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "ermission") {
			t.Fatalf("%s: %v", what, err)
		}
		_ = gw.Flush()
		select {
		case err := <-violations:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: allowed", what)
		}
	}
	forged, _ := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{Body: &liveimpb.Event_GroupMessage{
		GroupMessage: &liveimpb.Message{GroupId: "room", Type: chatType, Data: "forged", Sender: &liveimpb.User{UserId: "owner"}},
	}}}})
	denied("publish into a room", func() error { return gw.Publish(subject.GroupEvents(testcluster.AppID, "room"), forged) })
	denied("publish on a user's subject (whose frames reach the user's sessions)", func() error {
		m := nats.NewMsg(subject.User(testcluster.AppID, "owner"))
		m.Header.Set(subject.HeaderKind, subject.KindC2C)
		m.Data = forged
		return gw.PublishMsg(m)
	})
	_, highSubj := highStream("room")
	denied("publish a HIGH message into the stream", func() error { return gw.Publish(highSubj, forged) })
	denied("read the login nonces", func() error {
		_, err := gw.Subscribe("liveim.nonce.>", func(*nats.Msg) {})
		return err
	})
	denied("call the JetStream API", func() error {
		return gw.PublishRequest("$JS.API.STREAM.INFO."+subject.HighStream(0), nats.NewInbox(), nil)
	})
	denied("take partitioned router requests", func() error {
		_, err := gw.Subscribe("liveim.rpcp.>", func(*nats.Msg) {})
		return err
	})
	denied("answer credential checks", func() error {
		_, err := gw.QueueSubscribe(subject.Auth, subject.QueueGroup, func(*nats.Msg) {})
		return err
	})
	denied("read routers' inboxes (JetStream deliveries, the cluster secret)", func() error {
		_, err := gw.Subscribe("_INBOX.>", func(*nats.Msg) {})
		return err
	})
	denied("listen to router replies on the RPC subjects", func() error {
		_, err := gw.Subscribe("liveim.rpc.>", func(*nats.Msg) {})
		return err
	})

	// The room never saw the forged event: the next message is the real one.
	send(t, owner, "room", "real")
	if m := waitEvent(t, owner, groupMsg); m.Data != "real" {
		t.Fatalf("room got %q", m.Data)
	}

	// A credential check answers with no key, only a verdict.
	rep, err := gw.Request(subject.Auth, mustMarshal(t, &liveimpb.AuthRequest{AppId: testcluster.AppID, UserId: "x", Auth: testcluster.Auth("x", "")}), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rep.Data), testcluster.AppKey) {
		t.Fatal("an AuthReply carries the app key")
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGatewayCannotForgeCallbackEvents: a gateway may publish users'
// online and offline events, and nothing else reaches an app's backend
// from it: a group message it publishes on a user's subject is dropped,
// not posted signed with the app key.
func TestGatewayCannotForgeCallbackEvents(t *testing.T) {
	rcv := newReceiver(t)
	c, _ := callbackCluster(t, rcv)
	gw := c.ConnectAs(subject.GatewayUser)
	forged, _ := json.Marshal(callback.Event{ID: "forged-1", Type: callback.GroupMessage, AppID: testcluster.AppID, GroupID: "room",
		TimeMs: time.Now().UnixMilli(), Message: &callback.Message{MessageID: "m1", GroupID: "room", Type: chatType, SenderID: "host", Data: "gift x1000"}})
	if err := gw.Publish(subject.CallbackUser(testcluster.AppID, "anyone"), forged); err != nil {
		t.Fatal(err)
	}
	_ = gw.Flush()
	// A real event published after it: once it has come, so would have
	// the forged one.
	c.Login(t, 0, "someone", "")
	rcv.waitFor(time.Minute, "someone's user.online", func(evs []callback.Event) bool {
		return slices.ContainsFunc(evs, func(e callback.Event) bool {
			return e.Type == callback.UserOnline && e.User != nil && e.User.UserID == "someone"
		})
	})
	if slices.ContainsFunc(rcv.got(), func(e callback.Event) bool { return e.ID == "forged-1" }) {
		t.Fatal("the app's backend got a group.message a gateway forged")
	}
}

// TestSharedStreamsBounded: every JetStream stream that apps or clients
// write into has a byte or message cap, so that no app fills the NATS
// disks or memory every app's streams share (LIVEIM_HIGH, the RPC stream
// and the server API's nonce bucket had only ages). At its cap the HIGH
// stream lets its oldest messages go and still takes new ones.
func TestSharedStreamsBounded(t *testing.T) {
	rc := router.Config{HighMaxBytes: 64 << 10}
	c := testcluster.Start(t, testcluster.Options{Router: rc})
	c.StartAPI(0, serverapi.Config{})
	js := c.JetStream()
	var unbounded []string
	for name := range js.StreamNames(ctxT(t)).Name() {
		switch name {
		case "KV_liveim_routers", "KV_liveim_cluster", "KV_liveim_callback_cursors", "KV_liveim_callback_leases":
			continue // keys only routers choose, or one per app
		}
		s, err := js.Stream(ctxT(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxBytes <= 0 && cfg.MaxMsgs <= 0 {
			unbounded = append(unbounded, name)
		}
	}
	if len(unbounded) > 0 {
		t.Fatalf("streams apps and clients write into with no cap: %v", unbounded)
	}
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	data := strings.Repeat("h", 1024)
	for i := range 200 { // ~200 KiB of HIGH messages into a 64 KiB stream
		if _, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, NoStorage: i%2 == 0}); err != nil {
			t.Fatalf("HIGH %d past the stream's cap: %v", i, err)
		}
	}
	name, _ := highStream("room")
	s, err := js.Stream(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > 64<<10 || info.State.Msgs == 0 {
		t.Fatalf("the HIGH stream of the room holds %d bytes in %d messages, cap 64 KiB for all", info.State.Bytes, info.State.Msgs)
	}
}
