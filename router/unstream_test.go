package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// answerNow runs a request of worker w's as the worker would (op, given
// j), running the jobs the worker gets meanwhile, and returns its answer,
// made on the worker or later (errLater).
func answerNow(t *testing.T, w *worker, j job, op func(job) (*liveimpb.Reply, error)) (*liveimpb.Reply, error) {
	t.Helper()
	type answer struct {
		rep *liveimpb.Reply
		err error
	}
	got := make(chan answer, 1)
	j.w = w
	j.done = func(rep *liveimpb.Reply, err error) { got <- answer{rep, err} }
	rep, err := op(j)
	if err != errLater {
		return rep, err
	}
	for {
		select {
		case jb := <-w.jobs:
			jb.j(w)
		case a := <-got:
			return a.rep, a.err
		case <-time.After(30 * time.Second):
			t.Fatal("no answer")
		}
	}
}

// groupOfPartition0 creates group g of app "app" and loads it on the
// router's first worker, in partition 0.
func groupOfPartition0(t *testing.T, r *Router, g string) *groupState {
	t.Helper()
	ctx := context.Background()
	if err := r.store.PutApp(ctx, storage.App{ID: "app"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.store.CreateGroup(ctx, storage.Group{AppID: "app", ID: g, Name: g, Creator: "owner"}); err != nil {
		t.Fatal(err)
	}
	gs, err := r.workers[0].group(ctx, "app", g, 0)
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// TestDeletedHighThatLandsLateLeavesTheStream: a HIGH message that the
// stream takes only after highAckTimeout (here it refuses large messages
// until takeLarge) and that is deleted meanwhile must leave the stream
// once its chain lands it. The deletion waited highAckTimeout for it, on
// the worker (every group of the worker waited too), looked for it in the
// stream, found nothing, and the chain's next offer put it there after:
// a client resuming from the group's last deletion (one that joined after
// it) was given the deleted message. While its removal is under way,
// resumes leave it out.
func TestDeletedHighThatLandsLateLeavesTheStream(t *testing.T) {
	r, takeLarge := refusingHighRouter(t)
	ctx := context.Background()
	w := r.workers[0]
	gs := groupOfPartition0(t, r, "g")
	j := job{appID: "app", groupID: "g", part: 0}
	sender := &liveimpb.Caller{AppId: "app", UserId: "sender"}
	req := &liveimpb.SendGroupMessageRequest{GroupId: "g", Type: 10001, Data: strings.Repeat("x", 2000), Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: "c1"}
	// Stored and delivered; the stream refuses it, and its chain keeps
	// offering it: 503 after highAckTimeout.
	if _, err := answerNow(t, w, j, func(j job) (*liveimpb.Reply, error) { return r.sendGroupMessage(ctx, j, sender, req) }); !errors.Is(err, liveimpb.ErrUnavailable) {
		t.Fatalf("setup: the send was answered %v, want 503", err)
	}
	id := derivedMessageID("app", "g", "sender", "c1")
	server := &liveimpb.Caller{AppId: "app", Server: true}
	if _, err := answerNow(t, w, j, func(j job) (*liveimpb.Reply, error) {
		return r.deleteMessage(ctx, j, server, &liveimpb.DeleteMessageRequest{GroupId: "g", MessageId: id})
	}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if gs.g.DeleteSeq != 1 {
		t.Fatalf("setup: DeleteSeq %d", gs.g.DeleteSeq)
	}

	// While its chain has not landed it, the message (as a previous
	// owner's retry could) reaches the stream: a resume from the stream
	// by a client that knows the deletion leaves it out.
	stream, subj := r.highStream("app", "g")
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: &liveimpb.Message{
		MessageId: id, GroupId: "g", Seqnum: 1, Data: "x", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	landed := nats.NewMsg(subj)
	landed.Data = frame
	landed.Header.Set(subject.HeaderSeq, "1")
	landed.Header.Set(subject.HeaderLevel, "1")
	if _, err := r.js.PublishMsg(ctx, landed, jetstream.WithMsgID("landed-"+id)); err != nil {
		t.Fatal(err)
	}
	// Resumes from before seqnum 2 read the stream, as on a router that
	// loaded the group after the message.
	w.dropTail(gs)
	gs.high.from = 1
	rep, err := resumeNow(r, job{appID: "app", groupID: "g", part: 0, w: w}, &liveimpb.Caller{AppId: "app", UserId: "late"},
		&liveimpb.ResumeGroupRequest{GroupId: "g", AfterDeleteSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Messages) > 0 {
		t.Fatalf("a resume after the deletion gave the deleted message back from the stream: seqnums %v", auditSeqs(rep.Messages))
	}

	// The stream takes large messages again; the chain lands the message.
	takeLarge()
	if !r.highChains.drain(30 * time.Second) {
		t.Fatal("chains still running")
	}
	var held []*liveimpb.Message
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if held, _, err = r.highAfter(ctx, "app", "g", 0, 0); err != nil {
			t.Fatal(err)
		}
		if len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			info, _ := stream.Info(ctx)
			t.Fatalf("the deleted HIGH message (DeleteSeq 1) is in the HIGH stream (%d messages) after its chain landed it: seqnums %v",
				info.State.Msgs, auditSeqs(held))
		}
	}
}

// TestContentFitsItsCallbackEvent: a server caller's sender extension is
// bounded as a login's is (a server API caller's was not, and twelve
// messages with 100 KB ones made every member's listRecentMessage over
// the NATS limit), and data whose callback event could not be one NATS
// message is refused before it is stored: the event's publish failed for
// good, and its send was answered 503 on every retry.
func TestContentFitsItsCallbackEvent(t *testing.T) {
	r := testRouter(t, Config{MaxDataBytes: 4 << 20})
	server := &liveimpb.Caller{AppId: "app", Server: true}
	if err := r.checkContent(&liveimpb.Caller{AppId: "app", Server: true, UserExtension: strings.Repeat("x", liveimpb.MaxUserExtension+1)}, 1, "hi"); !errors.Is(err, liveimpb.InvalidParam("senderExtension", "")) {
		t.Fatalf("a sender extension of %d bytes: %v, want 400", liveimpb.MaxUserExtension+1, err)
	}
	limit := int(r.nc.MaxPayload())
	if err := r.checkContent(server, 1, strings.Repeat("<", limit/2)); err != nil {
		t.Fatalf("%d bytes of '<' (an event of the same size): %v", limit/2, err)
	}
	if err := r.checkContent(server, 1, strings.Repeat("\x01", limit/2)); !errors.Is(err, liveimpb.ErrTooLarge) {
		t.Fatalf("%d control characters (an event six times that): %v, want 413", limit/2, err)
	}
}
