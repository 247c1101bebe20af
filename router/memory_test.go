package router

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
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
