package e2e

import (
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestUserNoticesSurviveARoomFlood: user notices (a kick here) have a
// dispatcher of their own, so a flood of room events that overflows the
// rooms' NATS buffer never drops them.
func TestUserNoticesSurviveARoomFlood(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{Dispatchers: 1, DispatchBuffer: 256, MergeWindow: -1}})
	admin := c.Login(t, 0, "admin", "admin")
	createGroup(t, admin, "hot")
	createGroup(t, admin, "quiet")
	join(t, admin, "hot")
	kicked := c.Login(t, 0, "kicked", "")
	join(t, kicked, "quiet")
	// The quiet room's own event (its memberchange) first: arriving in the
	// flood, it would be dropped with the hot room's events, and its
	// members rightly told to reconnect.
	waitEvent(t, kicked, memberChange)

	nc := c.Connect()
	flood, _ := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{Body: &liveimpb.Event_GroupMessage{
		GroupMessage: &liveimpb.Message{Type: chatType, Data: "flood"},
	}}}})
	hot := subject.GroupEvents(testcluster.AppID, "hot")
	for range 5000 {
		if err := nc.Publish(hot, flood); err != nil {
			t.Fatal(err)
		}
	}
	kick := nats.NewMsg(subject.User(testcluster.AppID, "kicked"))
	kick.Header.Set(subject.HeaderKind, subject.KindKick)
	kick.Header.Set(subject.HeaderGroup, "quiet")
	kick.Data, _ = proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{Body: &liveimpb.Event_Exit{
		Exit: &liveimpb.ExitEvent{GroupId: "quiet", Reason: liveimpb.ExitReason_EXIT_REASON_KICKED},
	}}}})
	if err := nc.PublishMsg(kick); err != nil {
		t.Fatal(err)
	}
	if ex := waitEvent(t, kicked, exitEvent); ex.GroupId != "quiet" || ex.Reason != liveimpb.ExitReason_EXIT_REASON_KICKED {
		t.Fatalf("exit %v", ex)
	}
}
