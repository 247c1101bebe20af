package gateway

import (
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// memberSocket adds a connection on a real socket pair, run by g's
// engine, to the rooms keys and returns the peer end, where the test
// reads what the gateway wrote.
func memberSocket(tb testing.TB, g *Gateway, keys ...string) net.Conn {
	tb.Helper()
	// Room enough for the frames of a test, so no write is dropped.
	c, peer := adoptPair(tb, g, 4<<20, nil)
	for _, key := range keys {
		if err := g.rooms.beginJoin(key); err != nil {
			tb.Fatal(err)
		}
		g.rooms.endJoin(key, c, true)
	}
	return peer
}

// TestHotRoomTakesTurns: a room with a long backlog is served maxTurn
// events at a time; a quiet room's event, queued behind a thousand of the
// hot room's, goes out after the hot room's first turn, not its last.
func TestHotRoomTakesTurns(t *testing.T) {
	forEachPath(t, testHotRoomTakesTurns)
}

func testHotRoomTakesTurns(t *testing.T, path string) {
	g := benchGateway(t)
	g.cfg.MergeWindow = 0 // every event its own frame, so turns are visible
	runEngine(t, g, path)
	const hot, quiet = "app/hot", "app/quiet"
	for range 20 {
		peer := memberSocket(t, g, hot)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
	}
	probe := memberSocket(t, g, hot, quiet) // in both rooms: its stream shows the order
	d := newDispatcher(g)
	event := func(key string, seq int64) *nats.Msg {
		appID, groupID := splitKey(key)
		b, _ := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
			Body: &liveimpb.Event_GroupMessage{GroupMessage: &liveimpb.Message{GroupId: groupID, Seqnum: seq}},
		}}})
		m := nats.NewMsg(subject.GroupEvents(appID, groupID))
		m.Data = b
		return m
	}
	const hotEvents = 1000
	for i := range hotEvents {
		d.enqueue(event(hot, int64(i+1)))
	}
	d.enqueue(event(quiet, 1))
	d.serve()

	_ = probe.SetReadDeadline(time.Now().Add(10 * time.Second))
	quietAt := -1
	for i := 0; i <= hotEvents; i++ {
		f, err := ws.ReadFrame(probe)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(f.Payload, &sf); err != nil {
			t.Fatal(err)
		}
		if sf.GetEvent().GetGroupMessage().GetGroupId() == "quiet" {
			quietAt = i
		}
	}
	if quietAt != maxTurn {
		t.Fatalf("the quiet room's event was frame %d, want %d (after the hot room's first turn)", quietAt, maxTurn)
	}
	// Every frame's wait and broadcast loop were observed; the quiet
	// room's event waited at least as long as the test took from queuing
	// it to the end of serve.
	for stage, h := range map[string]prometheus.Observer{"wait": g.metrics.frameWait, "write": g.metrics.frameWrite} {
		var m dto.Metric
		if err := h.(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetHistogram().GetSampleCount(); n != hotEvents+1 {
			t.Errorf("%s: %d frames observed, want %d", stage, n, hotEvents+1)
		}
	}
}

// TestFrameWaitCountsFromArrival: a frame's wait starts when its event
// came off NATS, not when the writer took it.
func TestFrameWaitCountsFromArrival(t *testing.T) {
	g := benchGateway(t)
	d := newDispatcher(g)
	m := nats.NewMsg(subject.GroupEvents("app", "room"))
	queued := time.Now()
	d.enqueue(m)
	enqueued := time.Now() // the arrival is stamped between queued and enqueued
	// However long the machine takes to get here, the wait covers it.
	waitFor(t, 10*time.Second, func() error {
		if time.Since(enqueued) < 5*time.Millisecond {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	d.serve()
	elapsed := time.Since(queued)
	var dm dto.Metric
	if err := g.metrics.frameWait.(prometheus.Histogram).Write(&dm); err != nil {
		t.Fatal(err)
	}
	h := dm.GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() < 0.005 || h.GetSampleSum() > elapsed.Seconds() {
		t.Fatalf("wait observed %d frames, %.6f s; want 1 frame of 0.005 s to %.6f s", h.GetSampleCount(), h.GetSampleSum(), elapsed.Seconds())
	}
}

// TestRoomBacklogIsBounded: past MaxRoomBacklog a room's NORMAL events
// are shed, and HIGH ones still queue.
func TestRoomBacklogIsBounded(t *testing.T) {
	g := benchGateway(t)
	g.cfg.MaxRoomBacklog = 10
	d := newDispatcher(g)
	msg := func(high bool) *nats.Msg {
		m := nats.NewMsg(subject.GroupEvents("app", "room"))
		if high {
			m.Header.Set(subject.HeaderLevel, "1")
		}
		return m
	}
	for range 15 {
		d.enqueue(msg(false))
	}
	for range 5 {
		d.enqueue(msg(true))
	}
	b := d.backlog["app/room"]
	if len(b.msgs) != 15 || b.high != 5 {
		t.Fatalf("backlog holds %d events, %d HIGH; want 10 NORMAL and 5 HIGH", len(b.msgs), b.high)
	}
}

// TestMergeScheduling: merge windows are queued by deadline whatever order
// they open in, and flushDue writes exactly the rooms whose window ended.
func TestMergeScheduling(t *testing.T) {
	g := benchGateway(t)
	d := newDispatcher(g)
	now := time.Unix(1000, 0)
	for i, at := range []time.Duration{30, 10, 20, 40} {
		mg := &merge{key: fmt.Sprint("app/r", i), deadline: now.Add(at * time.Millisecond)}
		d.pending[mg.key] = mg
		d.schedule(mg, now)
	}
	var order []string
	for _, mg := range d.queue {
		order = append(order, mg.key)
	}
	if want := []string{"app/r1", "app/r2", "app/r0", "app/r3"}; !slices.Equal(order, want) {
		t.Fatalf("queue %v, want %v", order, want)
	}
	d.flushDue(now.Add(25 * time.Millisecond))
	if len(d.queue) != 2 || d.queue[0].key != "app/r0" {
		t.Fatalf("after flushing to 25 ms the queue holds %d, first %v", len(d.queue), d.queue[0].key)
	}
	if _, ok := d.pending["app/r1"]; ok {
		t.Fatal("a room whose window ended is still pending")
	}
}
