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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveim/liveim/internal/natstest"
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
	stream, subj := r.highStream("app", "g")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := stream.GetLastMsgForSubject(ctx, subj); err == nil {
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
	if err := r.scanHigh(ctx, stream, subj, 0, nil, func(_ *jetstream.RawStreamMsg, seq int64) bool {
		inStream = append(inStream, seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []int64{7, 8}; !slices.Equal(inStream, want) {
		t.Fatalf("the stream holds seqnums %v, want %v", inStream, want)
	}
	got, _, err := r.highAfter(ctx, "app", "g", 0, 0)
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
		stream, subj := r.highStream("app", fmt.Sprint("g", g))
		if err := r.scanHigh(ctx, stream, subj, 0, nil, func(_ *jetstream.RawStreamMsg, seq int64) bool {
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
	var configs []jetstream.StreamConfig
	for _, st := range r.highs {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		configs = append(configs, info.Config)
		small := info.Config
		small.MaxMsgSize = 1024
		if _, err := r.js.UpdateStream(ctx, small); err != nil {
			t.Fatal(err)
		}
	}
	return r, func() {
		for _, c := range configs {
			if _, err := r.js.UpdateStream(ctx, c); err != nil {
				t.Fatal(err)
			}
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

// TestHighStreamOfBeforeTheShards: a cluster upgraded from one HIGH
// stream to shards keeps the old stream while it holds messages. A
// resume reads a group's messages there first, then its shard's; a
// group's last seqnum at load counts them; a deleted message leaves it
// too. Once empty and unwritten for --high-max-age, the next router to
// start deletes it. Routers with another HIGH stream count refuse to
// start.
func TestHighStreamOfBeforeTheShards(t *testing.T) {
	ctx := context.Background()
	nc, js, legacy := withLegacyHighStream(t)
	publish := func(subj string, seq int64) {
		msg := &liveimpb.Message{MessageId: fmt.Sprint("m", seq), GroupId: "room", Seqnum: seq, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
		frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
		if err != nil {
			t.Fatal(err)
		}
		out := nats.NewMsg(subj)
		out.Data = frame
		out.Header.Set(subject.HeaderSeq, fmt.Sprint(seq))
		if _, err := js.PublishMsg(ctx, out); err != nil {
			t.Fatal(err)
		}
	}
	for seq := int64(1); seq <= 5; seq++ { // as a router of before the shards did
		publish(subject.LegacyGroupHigh("app", "room"), seq)
	}
	publish(subject.LegacyGroupHigh("app", "old"), 3)
	r, err := routerOn(t, nc, Config{ResumeBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.legacy() == nil {
		t.Fatal("the stream of before the shards, with messages, is not read")
	}
	for seq := int64(6); seq <= 8; seq++ {
		if _, err := publishTestHigh(r, "room", 0, fmt.Sprint("m", seq), seq, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if !r.highChains.drain(30 * time.Second) {
		t.Fatal("the chain never finished")
	}
	var got []int64
	for after := int64(0); ; {
		page, more, err := r.highAfter(ctx, "app", "room", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			got = append(got, m.Seqnum)
			after = m.Seqnum
		}
		if !more {
			break
		}
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("resumed %v, want %v", got, want)
	}
	for group, want := range map[string]int64{"room": 8, "old": 3, "none": 0} {
		if last, err := r.lastHighSeq(ctx, "app", group); err != nil || last != want {
			t.Fatalf("last seqnum of %s: %d, %v; want %d", group, last, err, want)
		}
	}
	r.unstreamHigh(job{appID: "app", groupID: "room", w: r.workers[0]}, &groupState{}, 2, func() {})
	if !waitFor(&r.unstreams, 30*time.Second) {
		t.Fatal("the removal of 2 never finished")
	}
	if page, _, err := r.highAfter(ctx, "app", "room", 1, 0); err != nil || len(page) == 0 || page[0].Seqnum != 3 {
		t.Fatalf("after the deletion of 2, a resume after 1 gives %d messages starting %v, %v", len(page), page, err)
	}

	if _, err := routerOn(t, nc, Config{HighStreams: 4}); !errors.Is(err, errHighStreamsDiffer) {
		t.Fatalf("a router with 4 HIGH streams beside 8: %v", err)
	}
	if err := legacy.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	// Emptied, it stays while a router of before the shards may still
	// publish into it: until nothing was written for --high-max-age.
	if r2, err := routerOn(t, nc, Config{}); err != nil || r2.legacy() == nil {
		t.Fatalf("a router starting as the stream of before the shards emptied: %v; reads it: %v", err, r2.legacy() != nil)
	}
	later, err := New(Config{}, nc, r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	later.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	if err := later.setupStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if later.legacy() != nil {
		t.Fatal("the stream of before the shards, empty and unwritten for --high-max-age, is still read")
	}
	if _, err := js.Stream(ctx, subject.LegacyHighStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the emptied stream of before the shards: %v, want it deleted", err)
	}
}

// withLegacyHighStream is a NATS server holding the HIGH stream of before
// the shards, as a cluster upgraded from it does.
func withLegacyHighStream(t *testing.T) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: subject.LegacyHighStream, Subjects: []string{"liveim.grp.*.*.h"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, legacy
}

// storedHigh publishes a HIGH message of app "app" as a send does, and
// waits for the stream to take it.
func storedHigh(t *testing.T, r *Router, groupID, id string, seq int64) {
	t.Helper()
	a, err := publishTestHigh(r, groupID, 0, id, seq, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.wait(); err != nil {
		t.Fatal(err)
	}
}
