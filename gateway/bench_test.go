package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// groupEventFrame is a ServerFrame{event: group message} as routers
// publish it, with data bytes of payload.
func groupEventFrame(tb testing.TB, seq int64, data int) []byte {
	tb.Helper()
	b, err := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
		Body: &liveimpb.Event_GroupMessage{GroupMessage: &liveimpb.Message{
			MessageId: "m1234567890", GroupId: "live", Type: 10001, Seqnum: seq, Timestamp: 1764000000000,
			Sender: &liveimpb.User{UserId: "alice"}, Data: string(make([]byte, data)),
		}},
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkParseFrame(b *testing.B) {
	payload, _ := proto.Marshal(&liveimpb.ClientFrame{Id: 7, Body: &liveimpb.ClientFrame_SendGroupMessage{
		SendGroupMessage: &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: string(make([]byte, 100))}}})
	frame := clientFrame(b, ws.OpBinary, true, payload)
	buf := make([]byte, len(frame))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		copy(buf, frame) // parseFrame unmasks in place
		if _, _, n, err := parseFrame(buf, 64<<10); err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	payload, _ := proto.Marshal(&liveimpb.ClientFrame{Id: 7, Body: &liveimpb.ClientFrame_SendGroupMessage{
		SendGroupMessage: &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: string(make([]byte, 100))}}})
	b.ReportAllocs()
	for b.Loop() {
		var f liveimpb.ClientFrame
		if err := proto.Unmarshal(payload, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeReply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		encodeServerFrame(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Reply{Reply: &liveimpb.Reply{Id: 7,
			Body: &liveimpb.Reply_SendMessage{SendMessage: &liveimpb.SendMessageReply{MessageId: "m1234567890", Seqnum: 42}}}}})
	}
}

// BenchmarkMergeBatch: ten group events merged into one EventBatch
// frame, as a big room's window does; per event.
func BenchmarkMergeBatch(b *testing.B) {
	ev := groupEventFrame(b, 1, 100)
	b.ReportAllocs()
	var body []byte
	for b.Loop() {
		body = body[:0]
		for range 10 {
			inner, ok := eventOf(ev)
			if !ok {
				b.Fatal("not an event")
			}
			body = protowire.AppendBytes(protowire.AppendTag(body, 1, protowire.BytesType), inner)
		}
		batchFrame(body, 10)
	}
}

// benchGateway is a gateway with no NATS: enough for an engine (start it
// with runEngine), rooms and dispatchers.
func benchGateway(tb testing.TB) *Gateway {
	g := &Gateway{cfg: Config{}.WithDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now}
	g.metrics = newMetrics(g, prometheus.NewRegistry())
	g.rooms = newRooms(func(string) (*nats.Subscription, error) { return nil, nil })
	g.sessions = newSessions(func(string) (*nats.Subscription, error) { return nil, nil })
	g.perIP = newIPLimits(-1, -1, 0)
	return g
}

// BenchmarkBroadcast writes one event frame to every member of a room of
// real sockets (Unix stream socket pairs, loopback TCP where there are
// none, drained by readers) on each I/O path; ns/op and allocs are per
// broadcast, ns/member per socket write (epoll) or queued frame
// (portable, whose writer goroutines write them).
func BenchmarkBroadcast(b *testing.B) {
	for _, path := range ioPaths() {
		for _, members := range []int{100, 1000} {
			b.Run(fmt.Sprint(path, "/", members), func(b *testing.B) { benchBroadcast(b, path, members) })
		}
	}
}

func benchBroadcast(b *testing.B, path string, members int) {
	g := benchGateway(b)
	runEngine(b, g, path)
	const key = "app/live"
	for range members {
		peer := memberSocket(b, g, key)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
	}
	d := newDispatcher(g)
	ev := groupEventFrame(b, 1, 100)
	frame := appendFrame(nil, ws.OpBinary, ev)
	b.ReportAllocs()
	for b.Loop() {
		d.release(d.broadcast(key, frame, true, time.Now()))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/member")
}
