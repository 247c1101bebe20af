package e2e

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestHighStreamKeepsOrderAfterARefusal: the HIGH stream refuses a
// group's message (a JetStream leader election: no acknowledgement),
// then takes the group's next one. The stream must still hold the
// group's messages in seqnum order, or a client resuming from before
// them delivers the later one and then drops the earlier one as "at or
// below what it delivered": an acknowledged HIGH message lost.
func TestHighStreamKeepsOrderAfterARefusal(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	watcher := c.Login(t, 0, "watcher", "")
	join(t, watcher, "room")

	ctx := ctxT(t)
	hear := deafHighStream(t, c)
	high := func(data string) *liveimpb.SendGroupMessageRequest {
		return &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: data}
	}
	type result struct {
		rep *liveimpb.SendMessageReply
		err error
	}
	first := make(chan result, 1)
	go func() {
		rep, err := sendRetrying(context.Background(), owner, high("a"))
		first <- result{rep, err}
	}()
	// The watcher gets "a" live: the router has offered it to the stream,
	// which did not take it.
	if m := waitEvent(t, watcher, groupMsg); m.Data != "a" {
		t.Fatalf("watcher got %q first, want a", m.Data)
	}
	hear()
	b, err := sendRetrying(ctx, owner, high("b"))
	if err != nil {
		t.Fatal(err)
	}
	a := <-first
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.rep.Seqnum >= b.Seqnum {
		t.Fatalf("seqnums a %d, b %d", a.rep.Seqnum, b.Seqnum)
	}

	// The stream holds the group's messages once each, in seqnum order.
	name, subj := highStream("room")
	s, err := c.JetStream().Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var inStream []int64
	for next := uint64(1); ; {
		m, err := s.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := strconv.ParseInt(m.Header.Get(subject.HeaderSeq), 10, 64)
		inStream = append(inStream, seq)
		next = m.Sequence + 1
	}
	if want := []int64{a.rep.Seqnum, b.Seqnum}; !slices.Equal(inStream, want) {
		t.Fatalf("the HIGH stream holds seqnums %v, want %v", inStream, want)
	}

	// A client resuming from before both gets both, in order.
	late := c.Login(t, 0, "late", "")
	join(t, late, "room")
	got, _, err := client.NewHighTracker().Resume(ctx, late, "room")
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, m := range got {
		data = append(data, m.Data)
	}
	if len(data) != 2 || data[0] != "a" || data[1] != "b" {
		t.Fatalf("resume delivered %q, want [a b]", data)
	}
}

// TestLiveOrderWhileHighUnsettled: while a room's HIGH messages wait for
// the stream (here it hears nothing of the room), members still get the
// room's messages live in seqnum order, HIGH and NORMAL alike: a HIGH
// message whose place in the stream is not settled must not be held back
// behind a NORMAL message sequenced after it.
func TestLiveOrderWhileHighUnsettled(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	watcher := c.Login(t, 0, "watcher", "")
	join(t, watcher, "room")

	deafHighStream(t, c)

	// Three sends in one burst, in this order on the owner's worker:
	// requests published straight into the RPC stream, as a gateway does.
	nc := c.Connect()
	inbox := nats.NewInbox()
	deadline := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	for _, m := range []struct {
		data  string
		level liveimpb.MessageLevel
	}{{"a", liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}, {"b", liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}, {"n", liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL}} {
		env, err := proto.Marshal(&liveimpb.RouterRequest{
			Caller: &liveimpb.Caller{AppId: testcluster.AppID, UserId: "owner", SessionId: "s", GatewayId: "g"},
			Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{
				GroupId: "room", Type: chatType, Data: m.data, Level: m.level, SkipAudit: true,
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := nats.NewMsg(subject.RPC(testcluster.AppID, "room"))
		req.Data = env
		req.Header.Set(subject.HeaderReply, inbox)
		req.Header.Set(subject.HeaderDeadline, deadline)
		if err := nc.PublishMsg(req); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string // first sight of each message; a repeat after the stream takes it again is dropped by seqnum
	for len(seen) < 3 {
		if m := waitEvent(t, watcher, groupMsg); !slices.Contains(seen, m.Data) {
			seen = append(seen, m.Data)
		}
	}
	if want := []string{"a", "b", "n"}; !slices.Equal(seen, want) {
		t.Fatalf("the watcher got %q live, want %q", seen, want)
	}
}

// deafHighStream makes the HIGH stream of group room hear nothing of the groups (a
// stream without a leader answers nothing either) until the returned
// function, or the test's end, gives it its subjects back.
func deafHighStream(t *testing.T, c *testcluster.Cluster) (hear func()) {
	t.Helper()
	ctx := ctxT(t)
	js := c.JetStream()
	name, _ := highStream("room")
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	deaf := cfg
	deaf.Subjects = []string{"liveim.refusing.>"}
	if _, err := js.UpdateStream(ctx, deaf); err != nil {
		t.Fatal(err)
	}
	heard := false
	hear = func() {
		if heard {
			return
		}
		heard = true
		if _, err := js.UpdateStream(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(hear)
	return hear
}
