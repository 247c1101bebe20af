package scylla

import (
	"context"
	"testing"

	"github.com/liveim/liveim/storage"
)

// TestAppendCutShort: an append cut short between its two writes (the
// router killed there) leaves the message either in the history and
// findable by ID, or in neither. A message in the history that its ID
// does not find is stored again by the retry of its send, under a new
// seqnum: the fault test saw a message stored twice so.
func TestAppendCutShort(t *testing.T) {
	s := openTest(t, randomKeyspace())
	ctx := context.Background()
	if err := s.PutApp(ctx, storage.App{ID: "app", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	m := storage.Message{AppID: "app", GroupID: "room", ID: "m-retried", Seq: 7, Type: 10001, Data: "once", TimestampMs: 1_700_000_000_000}
	cut, cancel := context.WithCancel(ctx)
	testHookBetweenAppendWrites = cancel
	err := s.AppendMessage(cut, m)
	testHookBetweenAppendWrites = nil
	if err == nil {
		t.Fatal("the append cut short between its writes succeeded")
	}
	history := func() []storage.Message {
		t.Helper()
		page, err := s.ListMessages(ctx, storage.MessageQuery{AppID: "app", GroupID: "room", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return page.Messages
	}
	_, getErr := s.GetMessage(ctx, "app", "room", m.ID)
	if inHistory := len(history()) > 0; inHistory != (getErr == nil) {
		t.Fatalf("after an append cut short: in the history %v, found by ID: %v", inHistory, getErr)
	}
	// The retry looks the ID up; not finding it, it stores the message
	// under the next seqnum.
	if getErr == nil {
		return
	}
	m.Seq = 8
	if err := s.AppendMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMessage(ctx, "app", "room", m.ID)
	if err != nil || got.Seq != 8 {
		t.Fatalf("after the retry: %+v, %v", got, err)
	}
	if h := history(); len(h) != 1 || h[0].Seq != 8 {
		t.Fatalf("after the retry the history holds %d messages: %+v", len(h), h)
	}
}
