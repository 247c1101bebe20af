package e2e

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

// readFrames reads server frames from c until want group messages came
// or the deadline passes; it returns the frames and the messages in
// arrival order.
func readFrames(t *testing.T, c *rawConn, want int) (frames []*liveimpb.ServerFrame, msgs []*liveimpb.Message) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for len(msgs) < want {
		data, err := wsutil.ReadServerBinary(struct {
			io.Reader
			io.Writer
		}{c.r, c.Conn})
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(data, &sf); err != nil {
			t.Fatal(err)
		}
		events := sf.GetBatch().GetEvents()
		if ev := sf.GetEvent(); ev != nil {
			events = []*liveimpb.Event{ev}
		}
		counted := false
		for _, ev := range events {
			if m := ev.GetGroupMessage(); m != nil {
				msgs = append(msgs, m)
				counted = true
			}
		}
		if counted {
			frames = append(frames, &sf)
		}
	}
	return frames, msgs
}

// TestMergingBigRoom: in a room with MergeMinMembers local members, a
// burst of messages reaches a member in fewer frames than messages, as
// EventBatch frames, every message once and in seqnum order, NORMAL and
// HIGH alike; a room below the threshold gets one frame per message.
func TestMergingBigRoom(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		Router:  router.Config{RoomRate: 1e6},
		Gateway: gateway.Config{MergeWindow: 300 * time.Millisecond, MergeMinMembers: 3},
	})
	sender := c.Login(t, 0, "sender", "admin")
	createGroup(t, sender, "big")
	createGroup(t, sender, "small")
	join(t, sender, "big")
	join(t, c.Login(t, 0, "third", ""), "big")

	member := dialRaw(t, c.Gateway(0).URL)
	if err := member.login("member"); err != nil {
		t.Fatal(err)
	}
	if err := member.join("big"); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
		if i%3 == 0 {
			level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
		}
		if _, err := sender.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
			GroupId: "big", Type: chatType, Data: fmt.Sprint(i), Level: level, NoStorage: true,
		}); err != nil {
			t.Fatal(err)
		}
	}
	frames, msgs := readFrames(t, member, n)
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Data != fmt.Sprint(i) || (i > 0 && m.Seqnum <= msgs[i-1].Seqnum) {
			t.Fatalf("message %d: data %q seqnum %d after %d", i, m.Data, m.Seqnum, msgs[max(i-1, 0)].Seqnum)
		}
	}
	batches := 0
	for _, f := range frames {
		if f.GetBatch() != nil {
			batches++
		}
	}
	if batches == 0 || len(frames) >= n {
		t.Fatalf("%d messages came in %d frames (%d batches): not merged", n, len(frames), batches)
	}
	t.Logf("%d messages in %d frames, %d of them batches", n, len(frames), batches)

	// A room with two local members is below MergeMinMembers: no batches.
	if err := member.join("small"); err != nil {
		t.Fatal(err)
	}
	solo := c.Login(t, 0, "solo", "")
	join(t, solo, "small")
	for i := range 5 {
		send(t, solo, "small", fmt.Sprint(i))
	}
	frames, msgs = readFrames(t, member, 5)
	if len(frames) != len(msgs) {
		t.Fatalf("small room: %d messages in %d frames, want one frame each", len(msgs), len(frames))
	}
}
