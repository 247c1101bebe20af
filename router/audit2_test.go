package router

// Tests from a second audit of the resume tail's prepend (52c8c31),
// worker.afterSends and the resume read credit (a94e683). Each failed on
// the code audited; the comments tell what happened then, and the end
// of each what the code does now.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// runPosted runs the internal jobs the worker has queued (the worker
// itself is not running in these tests).
func runPosted(w *worker) {
	for {
		select {
		case jb := <-w.jobs:
			jb.j(w)
		default:
			return
		}
	}
}

func (j job) j(w *worker) {
	j.w = w
	if j.fn != nil {
		j.fn(w)
	}
}

// TestAudit2ReofferAfterPrependMissingFromMemory: the previous owner of a
// group stored HIGH seqnum 7 and died before publishing it (the failure
// the prepend was made for: a node with a router and a gateway). This
// router loads the group (tail.from 7). The members resume from 0: the
// stream read gives 1..6 and reaches 7, so the tail is made to start at 0.
// The sender's SDK then retries seqnum 7 with its clientMsgId:
// repeatedSend finds it in the store and delivers it (the stream takes it,
// the sender gets 200). highTail.offered only bumps the counter and sets
// the ack of an entry that exists; seqnum 7 has none. From then on a
// stream read from 0 gave 1..7 and a resume from this router's memory
// 1..6: an acknowledged HIGH message was never resumed. Now a tail is
// extended from a stream read only DedupeWindow after the group's load,
// and a message offered again that the tail lacks moves its start past
// it (TestOfferedOutsideTheTail).
func TestAudit2ReofferAfterPrependMissingFromMemory(t *testing.T) {
	r := ownerOfPartition0(t, Config{})
	ctx := context.Background()
	w := r.workers[0]
	if err := r.store.PutApp(ctx, storage.App{ID: "app"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.store.CreateGroup(ctx, storage.Group{AppID: "app", ID: "g", Name: "g", Creator: "owner"}); err != nil {
		t.Fatal(err)
	}
	id7 := derivedMessageID("app", "g", "sender", "c7")
	// The previous owner: 1..7 stored, 1..6 in the stream.
	for seq := int64(1); seq <= 7; seq++ {
		id := fmt.Sprint("m", seq)
		if seq == 7 {
			id = id7
		}
		m := &liveimpb.Message{MessageId: id, GroupId: "g", Type: 10001, Sender: &liveimpb.User{UserId: "sender"}, Data: "x",
			Seqnum: seq, Timestamp: r.now().UnixMilli(), Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, RepeatCount: 1}
		if err := r.store.AppendMessage(ctx, storedMessage("app", m)); err != nil {
			t.Fatal(err)
		}
		if seq == 7 {
			break // it died before publishing it
		}
		storedHigh(t, r, "g", id, seq)
	}
	gs, err := w.group(ctx, "app", "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	gs.members["viewer"] = &member{id: "viewer"}
	if gs.high.from != 7 {
		t.Fatalf("setup: tail from %d, want 7", gs.high.from)
	}
	viewer := &liveimpb.Caller{AppId: "app", UserId: "viewer"}
	jr := job{appID: "app", groupID: "g", part: 0, w: w}
	if _, err := resumeNow(r, jr, viewer, &liveimpb.ResumeGroupRequest{GroupId: "g"}); err != nil {
		t.Fatal(err)
	}
	runPosted(w) // a prepend, if the resume posted one

	// The sender retries seqnum 7.
	sent := make(chan error, 1)
	js := job{appID: "app", groupID: "g", part: 0, w: w, done: func(_ *liveimpb.Reply, err error) { sent <- err }}
	rep, err := r.sendGroupMessage(ctx, js, &liveimpb.Caller{AppId: "app", UserId: "sender"},
		&liveimpb.SendGroupMessageRequest{GroupId: "g", Type: 10001, Data: "x", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: "c7"})
	if err == errLater {
		err = <-sent
	}
	if err != nil {
		t.Fatalf("retry of seqnum 7: %v", err)
	}
	if got := rep.GetSendMessage().GetSeqnum(); rep != nil && got != 7 {
		t.Fatalf("retry answered seqnum %d", got)
	}
	if !r.highChains.drain(10 * time.Second) {
		t.Fatal("chains still running")
	}
	resumesAsTheStream(t, r, jr, viewer)
}

// TestAudit2ResumeReadCreditForgiven: the resume read rate bounds an
// app's HIGH stream gets. A page reads on credit (Keyed.Owe) while it has
// nothing to give, and "the next page waits for the credit to be paid
// back" (docs/architecture.md). But Bucket.Take in debt adds the debt
// back (got := min(n, int(tokens)) is negative, tokens -= got), and
// Owe's own refill is Take(0, now): each Owe forgives the ones before
// it, so a page that reads N gets on credit owes ~1. Here the rate is 20
// gets/s and a member that joined after 200 noStorage HIGH messages
// resumes from 0 every 100 ms: each page reads ~210 gets (the search and
// the 200 skipped), which should keep the app's resumes off the stream
// for ~10 s; every try read 210 more. Now Take gives nothing in debt.
func TestAudit2ResumeReadCreditForgiven(t *testing.T) {
	r, clock := roomAfterNoStorage(t, 200)
	ctx := context.Background()
	const since = 2000
	pages, gets := 0, 0
	for try := 0; try < 20; try++ { // 2 s
		msgs, _, err := r.highAfter(ctx, "app", "room", 0, since)
		if err == nil {
			if !slices.Equal(auditSeqs(msgs), []int64{201}) {
				t.Fatalf("try %d: %v", try, auditSeqs(msgs))
			}
			pages++
			gets += 201
		}
		clock.Add(int64(100 * time.Millisecond))
	}
	if pages > 2 {
		t.Fatalf("in 2 s at 20 gets/s the app's resumes read %d pages (>= %d stream gets, %d/s): what each page read on credit was forgiven (Bucket.Take in debt)",
			pages, gets, gets/2)
	}
}

// TestAudit2PreviousOwnersLateOfferAfterPrepend: the previous owner's
// chain keeps offering a refused HIGH message while it still owns the
// partition, and retryHigh makes its next attempt before it looks at
// ownership again (op first, then parts.owns): an offer it sent before
// or just after the partition moved can land in the stream after this
// router loaded the group. Here it lands after a members' resume read
// the stream back to the tail's start: the tail now claims (0, 7] and
// lacked seqnum 7; the stream gives it. (Without the prepend a resume
// from before 7 read the stream.) Now a tail is extended from a stream
// read only DedupeWindow after the group's load.
func TestAudit2PreviousOwnersLateOfferAfterPrepend(t *testing.T) {
	r := ownerOfPartition0(t, Config{})
	ctx := context.Background()
	w := r.workers[0]
	if _, _, err := r.store.CreateGroup(ctx, storage.Group{AppID: "app", ID: "g", Name: "g", Creator: "owner", SeqReserved: 7}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 6; seq++ {
		storedHigh(t, r, "g", fmt.Sprint("m", seq), seq)
	}
	gs, err := w.group(ctx, "app", "g", 0)
	if err != nil {
		t.Fatal(err)
	}
	gs.members["viewer"] = &member{id: "viewer"}
	viewer := &liveimpb.Caller{AppId: "app", UserId: "viewer"}
	jr := job{appID: "app", groupID: "g", part: 0, w: w}
	if _, err := resumeNow(r, jr, viewer, &liveimpb.ResumeGroupRequest{GroupId: "g"}); err != nil {
		t.Fatal(err)
	}
	runPosted(w) // a prepend, if the resume posted one
	// The previous owner's last attempt at seqnum 7 lands now.
	msg := &liveimpb.Message{MessageId: "m7", GroupId: "g", Seqnum: 7, Data: "x", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
	if err != nil {
		t.Fatal(err)
	}
	stream, subj := r.highStream("app", "g")
	_ = stream
	old := &highAck{id: "m7", seq: 7, subject: subj, frame: frame}
	if _, err := r.js.PublishMsg(ctx, old.offer()); err != nil {
		t.Fatal(err)
	}
	resumesAsTheStream(t, r, jr, viewer)
}

// TestAudit2DeletedGivenUpMessageRetriedBack: a HIGH send is stored, but
// the stream refuses it until the router gives it up (503 to the
// sender). The owner (here the server API) deletes the message: stored
// deletion, DeleteSeq, tail entry marked, unstreamHigh finds nothing. The
// sender's SDK retries with its clientMsgId: repeatedSend finds the send
// in the group's sent cache (delivered false, its message kept) and
// delivers it again. The deleted message goes to every member live and
// into the HIGH stream, where any resume from the stream gives it to a
// client that already knows the deletion (after_delete_seq past it):
// deletes did not stick. Now a deletion settles the send's entry, and
// the retry gets the first answer and delivers nothing.
func TestAudit2DeletedGivenUpMessageRetriedBack(t *testing.T) {
	r, takeLarge := refusingHighRouter(t)
	var clock atomic.Int64
	clock.Store(time.Unix(100_000, 0).UnixNano())
	r.now = func() time.Time { return time.Unix(0, clock.Load()) }
	ctx := context.Background()
	w := r.workers[0]
	gs := groupOfPartition0(t, r, "g")
	sender := &liveimpb.Caller{AppId: "app", UserId: "sender"}
	req := &liveimpb.SendGroupMessageRequest{GroupId: "g", Type: 10001, Data: strings.Repeat("x", 2000), Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: "c1"}
	sj := job{appID: "app", groupID: "g", part: 0}
	send := func() (*liveimpb.Reply, error) {
		return answerNow(t, w, sj, func(j job) (*liveimpb.Reply, error) { return r.sendGroupMessage(ctx, j, sender, req) })
	}
	// The first send: stored, refused by the stream, given up.
	go func() {
		time.Sleep(300 * time.Millisecond)
		clock.Add(int64(highRetryFor + time.Second))
	}()
	if _, err := send(); err == nil {
		t.Fatal("setup: the first send was answered 200")
	}
	for _, a := range w.highAcks {
		_ = a.waitFor(10 * time.Second)
		if !a.failed() {
			t.Fatal("setup: not given up")
		}
	}
	takeLarge() // the stream is back
	id := derivedMessageID("app", "g", "sender", "c1")
	if _, err := answerNow(t, w, sj, func(j job) (*liveimpb.Reply, error) {
		return r.deleteMessage(ctx, j, &liveimpb.Caller{AppId: "app", Server: true}, &liveimpb.DeleteMessageRequest{GroupId: "g", MessageId: id})
	}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if gs.g.DeleteSeq != 1 {
		t.Fatalf("setup: DeleteSeq %d", gs.g.DeleteSeq)
	}
	// The sender's retry.
	rep, err := send()
	if !r.highChains.drain(10 * time.Second) {
		t.Fatal("chains still running")
	}
	fromStream, _, serr := r.highAfter(ctx, "app", "g", 0, 0)
	if serr != nil {
		t.Fatal(serr)
	}
	if len(fromStream) > 0 {
		t.Fatalf("the message deleted (DeleteSeq 1) is back in the HIGH stream after its sender's retry (retry answered %v, %v): the stream gives %v to resumes after delete seq 1",
			rep.GetSendMessage(), err, auditSeqs(fromStream))
	}
}

// resumesAsTheStream fails unless a resume of group g from 0, answered as
// the router answers it, gives what a read of the HIGH stream gives.
func resumesAsTheStream(t *testing.T, r *Router, j job, c *liveimpb.Caller) {
	t.Helper()
	fromStream, _, err := r.highAfter(context.Background(), "app", "g", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	fromMemory, err := resumeNow(r, j, c, &liveimpb.ResumeGroupRequest{GroupId: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(auditSeqs(fromMemory.Messages), auditSeqs(fromStream)) {
		t.Fatalf("resume after 0: the router gives %v (hasMore %v), the stream %v",
			auditSeqs(fromMemory.Messages), fromMemory.HasMore, auditSeqs(fromStream))
	}
}
