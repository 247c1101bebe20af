package gateway

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestJoinReplyBeforeRoomEvents: an event the router sends right after
// it answered a join (the joiner's own memberchange, say) reaches the new
// member even when the gateway's reply inbox is behind, here with a
// backlog of stale replies. The join reply used to be taken on the shared
// inbox's goroutine while the room's dispatcher served the event to a
// room without the member yet.
func TestJoinReplyBeforeRoomEvents(t *testing.T) {
	g, addr, _ := runGateway(t, Config{})
	rt, err := nats.Connect(g.nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	// A router that accepts every credential and answers each join at
	// once, then sends an event to the room.
	if _, err := rt.Subscribe(subject.Auth, func(m *nats.Msg) {
		b, _ := proto.Marshal(&liveimpb.AuthReply{})
		_ = m.Respond(b)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Subscribe("liveim.rpc.>", func(m *nats.Msg) {
		var req liveimpb.RouterRequest
		if proto.Unmarshal(m.Data, &req) != nil || req.GetFrame().GetJoinGroup() == nil {
			return
		}
		appID, groupID := req.GetCaller().GetAppId(), req.GetFrame().GetJoinGroup().GetGroupId()
		for i := range 20000 { // replies to requests long timed out
			_ = rt.Publish(g.inbox+strconv.Itoa(1_000_000_000+i), nil)
		}
		rep, _ := proto.Marshal(&liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: &liveimpb.GroupInfo{GroupId: groupID}}})
		_ = rt.Publish(m.Header.Get(subject.HeaderReply), rep)
		ev, _ := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
			Body: &liveimpb.Event_GroupMessage{GroupMessage: &liveimpb.Message{GroupId: groupID, Seqnum: 1}},
		}}})
		_ = rt.Publish(subject.GroupEvents(appID, groupID), ev)
	}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Flush(); err != nil {
		t.Fatal(err)
	}

	for i := range 5 {
		conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr.String()+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		user := fmt.Sprintf("u%d", i)
		sendFrame(t, conn, &liveimpb.ClientFrame{Id: 1, Body: &liveimpb.ClientFrame_Login{Login: &liveimpb.LoginRequest{
			AppId: "app", User: &liveimpb.User{UserId: user}, Auth: &liveimpb.UserAuth{Nonce: "n", Token: "t", Timestamp: time.Now().Add(time.Hour).Unix()},
		}}})
		if rep := nextFrame(t, conn).GetReply(); rep.GetId() != 1 || rep.GetCode() != 0 {
			t.Fatalf("login: %v", rep)
		}
		room := "room" + strconv.Itoa(i)
		sendFrame(t, conn, &liveimpb.ClientFrame{Id: 2, Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: room}}})
		if rep := nextFrame(t, conn).GetReply(); rep.GetId() != 2 || rep.GetCode() != 0 {
			t.Fatalf("join: %v", rep)
		}
		if m := nextFrame(t, conn).GetEvent().GetGroupMessage(); m.GetGroupId() != room {
			t.Fatalf("%s got %v after its join, want the event of %s", user, m, room)
		}
	}
}

func sendFrame(t *testing.T, conn net.Conn, f *liveimpb.ClientFrame) {
	t.Helper()
	b, _ := proto.Marshal(f)
	if err := wsutil.WriteClientBinary(conn, b); err != nil {
		t.Fatal(err)
	}
}

// nextFrame reads the next server frame, or fails the test when none
// comes within 10 seconds.
func nextFrame(t *testing.T, conn net.Conn) *liveimpb.ServerFrame {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := wsutil.ReadServerBinary(conn)
	if err != nil {
		t.Fatalf("no frame: %v", err)
	}
	var sf liveimpb.ServerFrame
	if err := proto.Unmarshal(data, &sf); err != nil {
		t.Fatal(err)
	}
	return &sf
}
