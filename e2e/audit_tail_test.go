package e2e

import (
	"testing"
	"time"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage"
)

// TestAuditDeleteOfQueuedHighResurfaces (found by an audit; older than
// the tail): a group's HIGH message B is stored but waits in the worker's
// send queue behind an earlier message A still at the store. An admin
// sees B in listMessage and deletes it. deleteMessage did not wait for
// the group's queued sends, so highTail.deleted and unstreamHigh found
// nothing, and the deletion event went out; then A was stored and B
// delivered after its own deletion: published live, stored in the HIGH
// stream and added to the tail unflagged, so a resume that names the
// deletion (afterDeleteSeq) got B back. Now the deletion waits for the
// sends queued before it, off the worker's time.
func TestAuditDeleteOfQueuedHighResurfaces(t *testing.T) {
	held := newHeldStore("room")
	c := testcluster.Start(t, testcluster.Options{
		Router:      router.Config{Workers: 1},
		RouterStore: func(_ int, s storage.Store) storage.Store { held.Store = s; return held },
	})
	owner := c.Login(t, 0, "owner", "admin")
	viewer := c.Login(t, 0, "viewer", "")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	join(t, viewer, "room")
	high := func(data string, out chan<- sendResult) {
		rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
		out <- sendResult{rep, err}
	}
	aSent, bSent := make(chan sendResult, 1), make(chan sendResult, 1)
	go high("A", aSent)
	seqA := held.next(t, aSent) // A waits at the store
	defer held.release(seqA)
	go high("B", bSent)
	seqB := held.next(t, bSent)
	held.release(seqB) // B is stored, queued behind A

	var bID string
	for deadline := time.Now().Add(10 * time.Second); bID == "" && time.Now().Before(deadline); {
		page, err := owner.ListMessage(ctxT(t), &liveimpb.ListMessageRequest{GroupId: "room", SortType: liveimpb.SortType_SORT_TYPE_DESC})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.MessageList {
			if m.Data == "B" {
				bID = m.MessageId
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if bID == "" {
		t.Fatal("B never reached the store")
	}
	// The deletion, taken by the router while A is held, waits for the
	// group's sends queued before it (A, then B); then A is stored.
	taken := rpcTaken(t, c)
	deletion := make(chan error, 1)
	go func() { deletion <- owner.DeleteMessage(ctxT(t), "room", bID) }()
	for deadline := time.Now().Add(10 * time.Second); rpcTaken(t, c) == taken; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the router never took the deletion")
		}
	}
	held.release(seqA)
	if err := <-deletion; err != nil {
		t.Fatal(err)
	}
	del := waitEvent(t, viewer, deleted)
	if del.MessageId != bID {
		t.Fatalf("deletion of %s, want %s", del.MessageId, bID)
	}
	for _, ch := range []chan sendResult{aSent, bSent} {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	// The viewer knew the deletion; it resumes from before both.
	ids, _ := resumeAll(t, viewer, "room", seqA-1, del.DeleteSeq)
	for _, id := range ids {
		if id == bID {
			t.Fatalf("resume after seqnum %d naming deletion %d gives the deleted message B back (resume: %d messages)", seqA-1, del.DeleteSeq, len(ids))
		}
	}
}

// rpcTaken is how many requests the routers have taken from the RPC
// stream, over every partition's consumer.
func rpcTaken(t *testing.T, c *testcluster.Cluster) uint64 {
	t.Helper()
	s, err := c.JetStream().Stream(ctxT(t), subject.RPCStream)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for info := range s.ListConsumers(ctxT(t)).Info() {
		n += info.Delivered.Consumer
	}
	return n
}
