package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestHighChainPutsLaterMessagesBack: of two HIGH messages of a group
// published one after the other the stream refuses the first (here: too
// large for the stream for a moment; in production a leader election)
// and takes the second. The second must not stay ahead of the first: a
// resume reads the stream in its order, and a client drops what is at or
// below the last seqnum it delivered. The chain stores the first once the
// stream takes it, then deletes the second and stores it again.
func TestHighChainPutsLaterMessagesBack(t *testing.T) {
	r, takeLarge := refusingHighRouter(t)
	ctx := context.Background()
	publish := func(seq int64, data string) *highAck {
		a, err := publishTestHigh(r, "g", 0, "m"+data[:1], seq, data)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	big, next := publish(7, "a"+strings.Repeat("x", 2000)), publish(8, "b")
	both := []*highAck{big, next}

	// The stream takes the second while it refuses the first.
	subj := subject.GroupHigh("app", "g")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := r.high.GetLastMsgForSubject(ctx, subj); err == nil {
			break
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) || time.Now().After(deadline) {
			t.Fatalf("the second message never reached the stream: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if big.finished() || next.finished() {
		t.Fatal("a message finished while the stream refuses the first")
	}
	takeLarge() // the stream takes it now
	if !r.highChains.drain(30 * time.Second) {
		t.Fatal("the chain never finished")
	}
	for _, a := range both {
		if err := a.wait(); err != nil {
			t.Fatalf("seqnum %d: %v", a.seq, err)
		}
	}
	var inStream []int64
	if err := r.scanHigh(ctx, subj, 0, nil, func(_ *jetstream.RawStreamMsg, seq int64) bool {
		inStream = append(inStream, seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []int64{7, 8}; !slices.Equal(inStream, want) {
		t.Fatalf("the stream holds seqnums %v, want %v", inStream, want)
	}
	got, _, err := r.highAfter(ctx, "app", subj, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Data[:1] != "a" || got[1].Data != "b" {
		t.Fatalf("resume reads %d messages, want a then b", len(got))
	}
}

// TestHighChainsInOrderUnderChurn: messages offered to a few groups
// while their chains empty and start again, over and over; every message
// is taken once and each group's are in the stream in seqnum order. (A
// chain ending in one lock hold and seeing its queue empty in the next
// once let an offer between the two start a second chain beside it.)
func TestHighChainsInOrderUnderChurn(t *testing.T) {
	r := testRouter(t, Config{})
	ctx := context.Background()
	const groups, per = 4, 300
	var wg sync.WaitGroup
	for g := range groups {
		groupID := fmt.Sprint("g", g)
		wg.Go(func() {
			var last *highAck
			for seq := int64(1); seq <= per; seq++ {
				var err error
				if last, err = publishTestHigh(r, groupID, -1, fmt.Sprint(groupID, "-", seq), seq, ""); err != nil {
					t.Error(err)
					return
				}
				if seq%3 == 0 { // let the chain run dry now and then
					if err := last.wait(); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := last.wait(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if !r.highChains.drain(30 * time.Second) {
		t.Fatal("chains still running")
	}
	for g := range groups {
		var got []int64
		if err := r.scanHigh(ctx, subject.GroupHigh("app", fmt.Sprint("g", g)), 0, nil, func(_ *jetstream.RawStreamMsg, seq int64) bool {
			got = append(got, seq)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != per || !slices.IsSorted(got) || got[0] != 1 || got[per-1] != per {
			t.Fatalf("group g%d: %d messages in the stream (first %v), want seqnums 1..%d once each, in order", g, len(got), got[:min(len(got), 5)], per)
		}
	}
}

// TestHighGivenUpWhenPartitionMoves: a message the stream keeps refusing
// is offered again while the router owns the group's partition, and
// given up (503 to whoever waits) as soon as it does not: the next owner
// answers for the group now, and two routers offering one group's
// messages would put them out of order.
func TestHighGivenUpWhenPartitionMoves(t *testing.T) {
	r, _ := refusingHighRouter(t) // refused for as long as the test lasts
	a, err := publishTestHigh(r, "g", 0, "big", 1, strings.Repeat("x", 2000))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(r.metrics.highRetries) < 2 { // refused, and offered again
		if time.Now().After(deadline) {
			t.Fatal("the refused message was not offered again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.finished() {
		t.Fatalf("given up while the router owns the partition: %v", a.err)
	}
	r.parts.mu.Lock()
	delete(r.parts.consuming, 0) // the partition moved
	r.parts.mu.Unlock()
	if err := a.waitFor(20 * time.Second); !a.finished() || liveimpb.AsError(err).Code != liveimpb.ErrUnavailable.Code {
		t.Fatalf("after the partition moved: finished %v, %v; want given up with 503", a.finished(), err)
	}
}

// refusingHighRouter returns a test router that owns partition 0, so it
// keeps offering a refused message of a group there, and whose HIGH
// stream refuses messages over 1 KiB (in production: a leader election)
// until takeLarge.
func refusingHighRouter(t *testing.T) (r *Router, takeLarge func()) {
	t.Helper()
	r = testRouter(t, Config{})
	r.parts.mu.Lock()
	r.parts.consuming[0] = &consumption{}
	r.parts.mu.Unlock()
	ctx := context.Background()
	info, err := r.high.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	small := info.Config
	small.MaxMsgSize = 1024
	if _, err := r.js.UpdateStream(ctx, small); err != nil {
		t.Fatal(err)
	}
	return r, func() {
		if _, err := r.js.UpdateStream(ctx, info.Config); err != nil {
			t.Fatal(err)
		}
	}
}

// publishTestHigh publishes a HIGH message of app "app" as a send does.
func publishTestHigh(r *Router, groupID string, part int, id string, seq int64, data string) (*highAck, error) {
	msg := &liveimpb.Message{MessageId: id, GroupId: groupID, Seqnum: seq, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
	if err != nil {
		return nil, err
	}
	return r.publishHigh(context.Background(), "app", groupID, part, msg, frame, false), nil
}
