package e2e

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// TestFailedHighPublishStoresOneCopy: a HIGH send whose JetStream publish
// fails after the message was stored is answered 503 once; the router
// must not send the request round again (as it did for every 503), which
// stored a copy with a new seqnum each time.
func TestFailedHighPublishStoresOneCopy(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), subject.HighStream); err != nil {
		t.Fatal(err)
	}
	_, err = owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "once", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
	wantCode(t, err, 503)
	page, err := c.Store.ListMessages(context.Background(), storage.MessageQuery{AppID: testcluster.AppID, GroupID: "room", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) > 1 {
		t.Fatalf("%d stored copies of one send (seqnums %v)", len(page.Messages), seqs(page.Messages))
	}
}

func seqs(ms []storage.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}
