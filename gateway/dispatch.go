package gateway

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
)

// dispatcher takes the group messages of the rooms hashed to it off NATS,
// in order per room, and writes them to the local sockets.
//
// Two goroutines: intake moves each message from the NATS channel into
// its room's backlog at once, so the channel never fills behind a busy
// room; the writer serves the rooms with a backlog in turn, all of one
// room's waiting events in one turn (merged into one frame in big rooms).
// A hot room therefore cannot starve the others, nor make NATS drop their
// messages: it only grows its own backlog, which is bounded
// (Config.MaxRoomBacklog): past it the room's NORMAL events are shed, and
// HIGH ones, past twice that, make its members reconnect and resume.
//
// The writer alone owns the merge buffers of its rooms and its member
// buffer, so neither needs a lock; backlogs are guarded by mu.
//
// Merging: a room with at least Config.MergeMinMembers local members gets
// at most one frame per Config.MergeWindow. An event that finds the room
// quiet for a window goes out at once (leading edge); events that follow
// within the window are gathered and go out as one EventBatch frame when
// it ends, built once and written once per member socket. A socket write
// costs the same for one event or twenty, so in a busy room merging
// divides the gateway's work by the number of events per window, for at
// most MergeWindow of latency, and a quiet room adds none. Small rooms get
// each event at once.
type dispatcher struct {
	gw      *Gateway
	ch      chan *nats.Msg // NATS delivers here (ChanSubscribe)
	members []*conn        // reused for every broadcast

	mu      sync.Mutex // leaf lock: guards backlog and ready
	backlog map[string]*backlog
	ready   []*backlog    // rooms with waiting events, in turn order
	wake    chan struct{} // signals the writer that ready is not empty

	pending map[string]*merge // rooms with events waiting for their window
	queue   []*merge          // the same, oldest deadline first
	timer   *time.Timer
	spare   [][]byte             // merge buffers to reuse: a pool only this goroutine uses
	flushed map[string]time.Time // when big rooms last got a frame
}

// backlog is one room's events waiting for the writer.
type backlog struct {
	key  string
	msgs []arrival
	high int // HIGH events among msgs
}

// arrival is an event and when the gateway took it off NATS: the
// liveim_gateway_room_frame_seconds{stage="wait"} histogram starts there.
type arrival struct {
	m  *nats.Msg
	at time.Time
}

// merge is one room's events waiting for the end of its window, as the
// bytes of EventBatch.events (field 1, one entry per event).
type merge struct {
	key      string
	body     []byte
	events   int
	high     bool      // a HIGH event is inside: the frame must not be dropped
	first    time.Time // when the oldest event inside arrived
	deadline time.Time
	spans    []trace.Span // delivery spans of traced events, ended at flush
}

func newDispatcher(gw *Gateway) *dispatcher {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &dispatcher{gw: gw, ch: make(chan *nats.Msg, gw.cfg.DispatchBuffer), pending: make(map[string]*merge), timer: t,
		flushed: make(map[string]time.Time), backlog: make(map[string]*backlog), wake: make(chan struct{}, 1)}
}

// run runs intake and the writer until stop closes, then writes what is
// still waiting.
func (d *dispatcher) run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	wg.Go(func() { d.intake(stop) })
	for {
		select {
		case <-d.wake:
			d.serve()
		case now := <-d.timer.C:
			d.flushDue(now)
		case <-stop:
			wg.Wait()
			d.serve()
			d.flushDue(time.Now().Add(time.Hour))
			return
		}
	}
}

// intake moves messages from the NATS channel to their rooms' backlogs.
func (d *dispatcher) intake(stop <-chan struct{}) {
	for {
		select {
		case m := <-d.ch:
			if strings.HasPrefix(m.Subject, d.gw.inbox) {
				d.gw.onReply(m) // a join's, in order with its room's events
				continue
			}
			d.enqueue(m)
		case <-stop:
			return
		}
	}
}

// enqueue adds a message to its room's backlog, shedding NORMAL events of
// a room over Config.MaxRoomBacklog and making the members of a room over
// twice that in HIGH events reconnect (they resume what they miss).
func (d *dispatcher) enqueue(m *nats.Msg) {
	appID, groupID, ok := subject.ParseGroup(m.Subject)
	if !ok {
		return
	}
	key := roomKey(appID, groupID)
	high := m.Header.Get(subject.HeaderLevel) == "1"
	limit := d.gw.cfg.MaxRoomBacklog
	d.mu.Lock()
	b := d.backlog[key]
	if b == nil {
		b = &backlog{key: key}
		d.backlog[key] = b
		d.ready = append(d.ready, b)
	}
	switch {
	case high && b.high >= 2*limit:
		delete(d.backlog, key) // the writer finds it gone and skips it
		d.mu.Unlock()
		d.gw.metrics.natsErrors.Add(1)
		go d.gw.onSlowSubscription(m.Subject)
		return
	case !high && len(b.msgs) >= limit:
		d.mu.Unlock()
		d.gw.metrics.dropped.Add(int64(d.gw.rooms.size(key))) // a NORMAL event none of the room's members get
		return
	}
	b.msgs = append(b.msgs, arrival{m: m, at: time.Now()})
	if high {
		b.high++
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// maxTurn is how many events of one room the writer handles in a turn
// before the next room with a backlog gets its own.
const maxTurn = 64

// serve gives every room with a backlog its turn, until none is left:
// rooms in the order they got events, at most maxTurn events per turn (a
// big room merges them into one frame), a room with more going to the
// back of the line.
func (d *dispatcher) serve() {
	var turn []arrival
	for {
		d.mu.Lock()
		if len(d.ready) == 0 {
			d.ready = nil
			d.mu.Unlock()
			return
		}
		b := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		if d.backlog[b.key] != b {
			d.mu.Unlock() // dropped for overflow
			continue
		}
		n := min(len(b.msgs), maxTurn)
		turn = append(turn[:0], b.msgs[:n]...)
		clear(b.msgs[:n])
		b.msgs = b.msgs[n:]
		for _, a := range turn {
			if a.m.Header.Get(subject.HeaderLevel) == "1" {
				b.high--
			}
		}
		if len(b.msgs) > 0 {
			d.ready = append(d.ready, b)
		} else {
			delete(d.backlog, b.key)
		}
		d.mu.Unlock()
		for i, a := range turn {
			d.groupEvent(b.key, a)
			turn[i] = arrival{}
		}
	}
}

// groupEvent merges a group event into its room's window, or writes it
// at once when the room is small, merging is off, or the group closed.
func (d *dispatcher) groupEvent(key string, a arrival) {
	m := a.m
	high := m.Header.Get(subject.HeaderLevel) == "1"
	if high {
		// A router that took a group over delivers a stored HIGH message
		// again when its sender retries; members got it once already.
		seq, err := strconv.ParseInt(m.Header.Get(subject.HeaderSeq), 10, 64)
		if err == nil && !d.gw.rooms.acceptHigh(key, seq) {
			return
		}
	}
	exit := m.Header.Get(subject.HeaderExit) != ""
	cfg := &d.gw.cfg
	var span trace.Span
	if d.gw.tracing && telemetry.Traced(m.Header) {
		_, span = d.gw.startDeliver(m)
	}
	if !exit && cfg.MergeWindow > 0 {
		if ev, ok := eventOf(m.Data); ok {
			mg := d.pending[key]
			if mg == nil && d.gw.rooms.size(key) >= cfg.MergeMinMembers {
				now := time.Now()
				last, ok := d.flushed[key]
				if !ok || now.Sub(last) >= cfg.MergeWindow {
					// Quiet room: this event goes at once, and opens a window.
					d.send(key, a, high, false, span)
					d.flushed[key] = time.Now()
					return
				}
				mg = &merge{key: key, first: a.at, deadline: last.Add(cfg.MergeWindow)}
				if n := len(d.spare); n > 0 {
					mg.body, d.spare = d.spare[n-1], d.spare[:n-1]
				}
				d.pending[key] = mg
				d.schedule(mg, now)
			}
			if mg != nil {
				mg.body = protowire.AppendBytes(protowire.AppendTag(mg.body, 1, protowire.BytesType), ev)
				mg.events++
				mg.high = mg.high || high
				if span != nil {
					mg.spans = append(mg.spans, span)
				}
				if len(mg.body) >= cfg.MergeMaxBytes {
					d.flushRoom(mg)
				}
				return
			}
		}
	}
	if mg := d.pending[key]; mg != nil {
		d.flushRoom(mg) // what was merged goes first: order is kept
	}
	d.send(key, a, high, exit, span)
}

// send writes one event to the room at once; an exit event also ends
// every local membership.
func (d *dispatcher) send(key string, a arrival, high, exit bool, span trace.Span) {
	m := a.m
	frame := appendFrame(make([]byte, 0, headerLen(len(m.Data))+len(m.Data)), ws.OpBinary, m.Data)
	members := d.broadcast(key, frame, !high, a.at)
	if span != nil {
		span.SetAttributes(attribute.Int("liveim.members", len(members)))
		span.End()
	}
	if exit {
		// The group closed: its members are members no more.
		appID, groupID := splitKey(key)
		for _, c := range members {
			c.leaveRoom(appID, groupID)
		}
	}
	d.release(members)
}

// schedule puts mg in the queue in deadline order (rooms' windows start
// at their last frame, so deadlines do not come in arrival order) and
// re-arms the timer when mg is now the first due.
func (d *dispatcher) schedule(mg *merge, now time.Time) {
	i, _ := slices.BinarySearchFunc(d.queue, mg.deadline, func(q *merge, t time.Time) int { return q.deadline.Compare(t) })
	d.queue = slices.Insert(d.queue, i, mg)
	if i == 0 {
		d.timer.Reset(mg.deadline.Sub(now))
	}
}

// flushDue writes every room whose window ended by now and re-arms the
// timer for the next one.
func (d *dispatcher) flushDue(now time.Time) {
	for len(d.queue) > 0 && !d.queue[0].deadline.After(now) {
		mg := d.queue[0]
		if d.pending[mg.key] == mg { // not flushed early
			d.flushRoom(mg)
		}
		d.queue[0] = nil
		d.queue = d.queue[1:]
	}
	if len(d.flushed) > 2*len(d.pending)+1024 {
		for key, at := range d.flushed {
			if now.Sub(at) >= d.gw.cfg.MergeWindow {
				delete(d.flushed, key)
			}
		}
	}
	if len(d.queue) == 0 {
		d.queue = nil
		return
	}
	d.timer.Reset(d.queue[0].deadline.Sub(now))
}

// flushRoom writes a room's merged events as one frame: a lone event as
// the plain ServerFrame it came as, several as one EventBatch.
func (d *dispatcher) flushRoom(mg *merge) {
	delete(d.pending, mg.key)
	if mg.events == 0 {
		return
	}
	members := d.broadcast(mg.key, batchFrame(mg.body, mg.events), !mg.high, mg.first)
	// A window opens when the last frame is written, not when its writing
	// began: a broadcast that takes longer than a window (an overloaded
	// gateway) must not be followed by extra frames, which would only
	// overload it more.
	d.flushed[mg.key] = time.Now()
	for _, span := range mg.spans {
		span.SetAttributes(attribute.Int("liveim.members", len(members)), attribute.Int("liveim.merged_events", mg.events))
		span.End()
	}
	d.release(members)
	// The frame is a copy: the buffer goes back to the pool.
	if len(d.spare) < maxSpare && cap(mg.body) <= 2*d.gw.cfg.MergeMaxBytes {
		d.spare = append(d.spare, mg.body[:0])
	}
	mg.body, mg.events, mg.spans = nil, 0, nil
}

// maxSpare bounds a dispatcher's pool of merge buffers.
const maxSpare = 64

// startDeliver starts the delivery span of a traced event: a CONSUMER
// span "process <subject template>", a child of the router's publish span.
// It serves group subjects and user subjects (C2C) alike.
func (g *Gateway) startDeliver(m *nats.Msg) (context.Context, trace.Span) {
	ctx := telemetry.Extract(context.Background(), m.Header)
	attrs := []attribute.KeyValue{semconv.MessagingMessageBodySize(len(m.Data)), telemetry.GatewayIDKey.String(g.cfg.ID)}
	if appID, groupID, ok := subject.ParseGroup(m.Subject); ok {
		attrs = append(attrs, telemetry.AppIDKey.String(appID), telemetry.GroupIDKey.String(groupID))
	} else if appID, userID, ok := subject.ParseUser(m.Subject); ok {
		attrs = append(attrs, telemetry.AppIDKey.String(appID), telemetry.UserIDKey.String(userID))
	}
	return telemetry.StartMessaging(ctx, g.tracer, telemetry.Process, m.Subject, attrs...)
}

// broadcast writes frame to every local member of the room and returns
// the members it wrote to; hand them back with release. arrived is when
// the frame's oldest event came off NATS: the wait from then to the
// start of the loop, and the loop itself (the last write handed to the
// kernel or queued), are observed apart, so a benchmark can tell the
// gateway's time from the clients'.
func (d *dispatcher) broadcast(key string, frame []byte, droppable bool, arrived time.Time) []*conn {
	start := time.Now()
	members := d.gw.rooms.members(key, d.members[:0])
	sent := 0
	for _, c := range members {
		if c.send(frame, droppable) {
			sent++
		}
	}
	d.gw.metrics.delivered(sent, droppable)
	d.gw.metrics.frameTimes(start.Sub(arrived), time.Since(start))
	return members
}

// release keeps the member buffer for the next broadcast without keeping
// its connections alive.
func (d *dispatcher) release(members []*conn) {
	clear(members)
	d.members = members[:0]
}

// eventOf returns the Event inside a ServerFrame{event} encoding, without
// decoding it: routers publish every group event that way.
func eventOf(frame []byte) ([]byte, bool) {
	num, typ, n := protowire.ConsumeTag(frame)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return nil, false
	}
	ev, m := protowire.ConsumeBytes(frame[n:])
	if m < 0 || n+m != len(frame) {
		return nil, false
	}
	return ev, true
}

// batchFrame returns the WebSocket frame of merged events: body holds
// EventBatch.events entries. One event goes out as ServerFrame{event}
// (field 2), several as ServerFrame{batch} (field 3).
func batchFrame(body []byte, events int) []byte {
	payload := body
	field := protowire.Number(3)
	if events == 1 {
		_, _, n := protowire.ConsumeTag(body)
		payload, _ = protowire.ConsumeBytes(body[n:])
		field = 2
	}
	size := protowire.SizeTag(field) + protowire.SizeBytes(len(payload))
	frame := appendHeader(make([]byte, 0, headerLen(size)+size), ws.OpBinary, size)
	return protowire.AppendBytes(protowire.AppendTag(frame, field, protowire.BytesType), payload)
}
