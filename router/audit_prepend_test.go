package router

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// TestAuditPrependMissesStaleGroupStateSend (found by an audit of commit
// 52c8c31): a group's state is dropped (a save conflict: worker.forget)
// while a HIGH send of that state is still at the store; worker.sends is
// keyed by group and keeps it. The group is loaded again (tail.from = the
// reservation). A resume from 0 reads the stream (which lacks the queued
// message: it has no highAck yet, so "settled" held) and prependHigh made
// the tail start at 0. The old send then finished, stored in the stream,
// but addHigh skips it (its groupState is not the worker's): resumes from
// memory never gave it. Now a resume does not extend the tail while a
// send of a dropped state of the group is queued.
func TestAuditPrependMissesStaleGroupStateSend(t *testing.T) {
	r := ownerOfPartition0(t, Config{})
	ctx := context.Background()
	w := r.workers[0]
	key := groupKey("app", "g")
	for seq := int64(1); seq <= 5; seq++ {
		storedHigh(t, r, "g", fmt.Sprint("m", seq), seq)
	}
	viewer := map[string]*member{"viewer": {id: "viewer"}}
	old := &groupState{part: 0, g: storage.Group{AppID: "app", ID: "g", SeqReserved: 1000}, lastSeq: 6, sentSeq: 5, usedAt: r.now(), members: viewer}
	w.groups[key] = old
	msg6 := &liveimpb.Message{MessageId: "m6", GroupId: "g", Seqnum: 6, Data: "six", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
	sendDone := make(chan error, 1)
	p := &pendingSend{ctx: ctx, gs: old, msg: msg6, stored: make(chan struct{}),
		req: &liveimpb.SendGroupMessageRequest{GroupId: "g", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH},
		j:   job{appID: "app", groupID: "g", part: 0, w: w, done: func(_ *liveimpb.Reply, err error) { sendDone <- err }}}
	w.sends[key] = []*pendingSend{p} // seqnum 6 at the store
	w.storing++
	w.forget(old) // a save conflict drops the state
	cur := &groupState{part: 0, g: old.g, lastSeq: 1000, sentSeq: 1000, high: highTail{from: 1000}, usedAt: r.now(), members: viewer}
	w.groups[key] = cur // loaded again

	resume := func(after int64) *liveimpb.ResumeGroupReply {
		got := make(chan *liveimpb.ResumeGroupReply, 1)
		j := job{appID: "app", groupID: "g", part: 0, w: w, done: func(rep *liveimpb.Reply, err error) {
			if err != nil {
				t.Error(err)
			}
			got <- rep.GetResumeGroup()
		}}
		rep, err := r.resumeGroup(ctx, j, &liveimpb.Caller{AppId: "app", UserId: "viewer"}, &liveimpb.ResumeGroupRequest{GroupId: "g", AfterSeqnum: after})
		if err == errLater {
			return <-got
		}
		if err != nil {
			t.Fatal(err)
		}
		return rep.GetResumeGroup()
	}
	resume(0) // from the stream: 1..5
	// A prepend, if the resume posted one, is queued before its answer.
	select {
	case jb := <-w.jobs:
		jb.fn(w)
	default:
	}
	close(p.stored) // the old state's send is stored at last
	w.finishSends(key, false)
	<-sendDone
	for _, a := range w.highInFlight(key) {
		_ = a.wait()
	}
	fromStream, _, err := r.highAfter(ctx, "app", "g", 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	fromTail := resume(5)
	if !slices.Equal(auditSeqs(fromTail.Messages), auditSeqs(fromStream)) {
		t.Fatalf("resume after 5: memory gives %v (hasMore %v), the stream %v: HIGH seqnum 6, acknowledged, is never resumed from this router",
			auditSeqs(fromTail.Messages), fromTail.HasMore, auditSeqs(fromStream))
	}
}
