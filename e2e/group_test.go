package e2e

import (
	"testing"
	"time"

	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

func TestGroupLifecycle(t *testing.T) {
	c := cluster2(t, router.Config{})
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 0, "bob", "")

	rep, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-1", GroupName: "Room", GroupMeta: "meta"})
	if err != nil || rep.GroupId != "room-1" || rep.AlreadyExist {
		t.Fatalf("create: %+v, %v", rep, err)
	}
	rep, err = alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-1", GroupName: "Other"})
	if err != nil || !rep.AlreadyExist {
		t.Fatalf("create again: %+v, %v; want alreadyExist", rep, err)
	}
	gen, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupName: "Generated"})
	if err != nil || gen.GroupId == "" || gen.AlreadyExist {
		t.Fatalf("create with empty id: %+v, %v", gen, err)
	}
	if _, err := bob.JoinGroup(ctxT(t), gen.GroupId); err != nil {
		t.Fatalf("join generated group: %v", err)
	}

	info := join(t, bob, "room-1")
	if info.GroupName != "Room" || info.GroupMeta != "meta" || info.Creator != "alice" || info.Statistics.GetPv() != 1 {
		t.Fatalf("join info: %+v", info)
	}
	join(t, alice, "room-1")
	q, err := bob.QueryGroup(ctxT(t), "room-1")
	if err != nil || q.Statistics.GetPv() != 2 || q.GroupName != "Room" {
		t.Fatalf("query: %+v, %v", q, err)
	}
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "like", RepeatCount: 5}); err != nil {
		t.Fatal(err)
	}
	m := testcluster.NextEvent(t, bob, 10*time.Second, isGroupMessage).GetGroupMessage()
	if m.RepeatCount != 5 || m.TotalMsgs != 5 {
		t.Fatalf("repeat: %+v", m)
	}
	q, _ = bob.QueryGroup(ctxT(t), "room-1")
	if got := q.Statistics.GetMsgAmount()[chatType]; got != 5 {
		t.Fatalf("msgAmount[%d] = %d, want 5", chatType, got)
	}

	if err := bob.LeaveGroup(ctxT(t), "room-1"); err != nil {
		t.Fatal(err)
	}
	if err := bob.LeaveGroup(ctxT(t), "room-1"); testcluster.ErrCode(err) != 425 {
		t.Fatalf("second leave: %v, want 425", err)
	}
	if _, err := bob.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "x"}); testcluster.ErrCode(err) != 425 {
		t.Fatalf("send after leave: %v, want 425", err)
	}
	if _, err := bob.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room-1"}); testcluster.ErrCode(err) != 425 {
		t.Fatalf("listRecentMessage after leave: %v, want 425", err)
	}
	// After leaving, bob gets nothing more from the room; a C2C message
	// sent afterwards arrives first.
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "after bob left"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "bob", Type: chatType, Data: "marker"}); err != nil {
		t.Fatal(err)
	}
	ev := testcluster.NextEvent(t, bob, 10*time.Second, func(ev *liveimpb.Event) bool {
		return ev.GetGroupMessage() != nil || ev.GetC2CMessage() != nil // memberchange may still trail in
	})
	if ev.GetC2CMessage().GetData() != "marker" {
		t.Fatalf("bob got %v after leaving, want only the C2C marker", ev)
	}
	if got := c.Gateway(0).Stats().Rooms; got != 2 {
		t.Fatalf("gateway holds %d room subscriptions, want 2 (room-1 for alice, the generated room for bob)", got)
	}
}
