package router

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
)

// BenchmarkMemberMemory reports the router's heap per member of a room of
// 10,000, each with one session, after their records were saved (the
// state a router holds for an idle room): B/member.
func BenchmarkMemberMemory(b *testing.B) {
	st, err := pebble.Open(b.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	now := time.Unix(5000, 0)
	r := &Router{cfg: Config{MemberGrace: 10 * time.Second, MemberChangeUsers: 20}, now: func() time.Time { return now }}
	r.gateways = newGatewayTracker(time.Hour, r.now)
	r.apps = &appCache{store: st, ttl: time.Hour, entries: map[string]appEntry{}} // no app: no callback events
	const members = 10_000
	var groups []*groupState
	b.ReportAllocs()
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		gs := &groupState{members: map[string]*member{}, savedMembers: map[string]bool{}, removed: map[string]bool{}}
		for i := range members {
			// The strings of each request are its own, as unmarshalling
			// makes them; what the member keeps of them counts.
			r.addSession(gs, &liveimpb.Caller{
				AppId: "app", UserId: fmt.Sprintf("user-%07d", i),
				GatewayId: strings.Clone("0123456789abcdef0123456789abcdef"), SessionId: fmt.Sprintf("%032x", i),
			})
		}
		gs.change = memberChange{} // published
		gs.membersSaved()          // flushed
		groups = append(groups, gs)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/members, "B/member")
	}
	runtime.KeepAlive(groups)
}

// BenchmarkNonceMemory reports the heap one login's nonce binding holds in
// the NonceStream, which lives in the NATS server's memory (here the
// in-process server), B/binding, and in the router's own cache of recent
// tokens (at most maxSeenTokens), B/cached. Tokens and nonces have the
// sizes of real ones (64 and 32 characters).
func BenchmarkNonceMemory(b *testing.B) {
	ctx := context.Background()
	n := newTestNonces(b, nonceJetStream(b), time.Hour, 1_000_000)
	const bindings = 20_000
	now := time.Now()
	var before, after runtime.MemStats
	round := 0
	for b.Loop() {
		round++
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range bindings {
			token := fmt.Sprintf("%064x", round*bindings+i)
			if err := n.bind(ctx, "app1", fmt.Sprintf("%032d", round*bindings+i), token, now); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		var cached runtime.MemStats
		runtime.ReadMemStats(&cached)
		n.seen = nil // the cache goes; the stream stays
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/bindings, "B/binding")
		b.ReportMetric(float64(cached.HeapAlloc-after.HeapAlloc)/bindings, "B/cached")
		n.seen = make(map[[sha256.Size]byte]int64)
	}
}

// BenchmarkListMembers100k: a page of a room of 100,000 members, the most
// recent 50 (listRecentGroupUser, which every member may call) and an
// admin's page from the middle (listGroupUser), while nobody joins or
// leaves; then with a join and a leave between pages.
func BenchmarkListMembers100k(b *testing.B) {
	st, err := pebble.Open(b.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	clock := time.UnixMilli(1_700_000_000_000)
	r := &Router{cfg: Config{MemberChangeUsers: 20}, now: func() time.Time { return clock }}
	r.apps = &appCache{store: st, ttl: time.Hour, entries: map[string]appEntry{}} // no app: no callback events
	gs := &groupState{members: map[string]*member{}, savedMembers: map[string]bool{}, removed: map[string]bool{}}
	join := func(id string) {
		r.addSession(gs, &liveimpb.Caller{AppId: "app", UserId: id, GatewayId: "gw", SessionId: "s-" + id})
	}
	for i := range 100_000 {
		if i%10 == 0 {
			clock = clock.Add(time.Millisecond)
		}
		join(fmt.Sprintf("user-%d", i))
	}
	b.Run("recent", func(b *testing.B) {
		for b.Loop() {
			if page, _ := memberPage(gs, 0, "", true, 50, clock); len(page) != 50 {
				b.Fatal(len(page))
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			if page, more := memberPage(gs, 1_700_000_005_000, "user-50000", false, 50, clock); len(page) != 50 || !more {
				b.Fatal(len(page))
			}
		}
	})
	b.Run("recent-churn", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			clock = clock.Add(time.Millisecond)
			join(fmt.Sprintf("churn-%d", i))
			r.removeMember(gs, fmt.Sprintf("user-%d", i))
			if page, _ := memberPage(gs, 0, "", true, 50, clock); len(page) != 50 {
				b.Fatal(len(page))
			}
		}
	})
}

// BenchmarkResume1000: a resume that reads a full batch of 1,000 HIGH
// messages (200 bytes each) back from the HIGH stream, among another
// group's: what one member's resumeGroup costs the router and NATS.
func BenchmarkResume1000(b *testing.B) {
	nc := natstest.Connect(b)
	st, err := pebble.Open(b.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	r, err := New(Config{}, nc, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := r.setupStreams(ctx); err != nil {
		b.Fatal(err)
	}
	data := strings.Repeat("d", 200)
	for seq := int64(1); seq <= 1000; seq++ {
		for _, g := range []string{"room", "other"} {
			msg := &liveimpb.Message{MessageId: fmt.Sprint(g, seq), GroupId: g, Seqnum: seq, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
			frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.publishHigh(ctx, "app", g, -1, msg, frame, false).wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		if msgs, _, err := r.highAfter(ctx, "app", "room", 0, 0); err != nil || len(msgs) != 1000 {
			b.Fatal(len(msgs), err)
		}
	}
}

// BenchmarkResumeFromMemory1000: the same full batch of 1,000 HIGH
// messages (200 bytes each) read from the group's tail in memory, as a
// resume after a short absence does (tail.go), and the reply encoded.
func BenchmarkResumeFromMemory1000(b *testing.B) {
	r := &Router{cfg: Config{ResumeMemory: 64 << 20, Workers: 1, ResumeBatch: 1000}}
	w := newWorker(r)
	gs := &groupState{g: storage.Group{AppID: "app", ID: "room"}}
	w.groups[groupKey("app", "room")] = gs
	data := strings.Repeat("d", 200)
	for seq := int64(1); seq <= 1000; seq++ {
		done := &highAck{done: make(chan struct{})}
		close(done.done)
		msg := &liveimpb.Message{MessageId: fmt.Sprint("room", seq), GroupId: "room", Seqnum: seq, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
		w.addHigh(gs, msg, done, false)
	}
	for b.Loop() {
		v, ok := gs.high.view(0, 0, r.cfg.ResumeBatch, 512<<10)
		msgs, _ := v.taken()
		if !ok || len(msgs) != 1000 {
			b.Fatal(ok, len(msgs))
		}
		rep := &liveimpb.Reply{Body: &liveimpb.Reply_ResumeGroup{ResumeGroup: &liveimpb.ResumeGroupReply{GroupId: "room", Messages: msgs}}}
		if _, err := proto.Marshal(rep); err != nil {
			b.Fatal(err)
		}
	}
}
