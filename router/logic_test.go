package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/pebble"
)

// TestOwnerSpreadsAndMovesLittle: rendezvous placement gives every live
// router a share of the partitions, and a router joining takes partitions
// only for itself: no partition moves between the others.
func TestOwnerSpreadsAndMovesLittle(t *testing.T) {
	live := []string{"r1", "r2", "r3"}
	count := map[string]int{}
	before := map[int]string{}
	for p := range 1024 {
		o := owner(live, p)
		count[o]++
		before[p] = o
		if again := owner(slices.Clone([]string{"r3", "r1", "r2"}), p); again != o {
			t.Fatalf("partition %d: owner %s depends on the order of the live set (%s)", p, o, again)
		}
	}
	for _, id := range live {
		if c := count[id]; c < 1024/3-100 || c > 1024/3+100 {
			t.Fatalf("router %s owns %d of 1024 partitions: %v", id, c, count)
		}
	}
	for p := range 1024 {
		if now := owner(append(slices.Clone(live), "r4"), p); now != before[p] && now != "r4" {
			t.Fatalf("partition %d moved from %s to %s when r4 joined", p, before[p], now)
		}
	}
	if owner(nil, 3) != "" {
		t.Fatal("an empty live set has an owner")
	}
}

func TestMutes(t *testing.T) {
	g := &storage.Group{Creator: "owner", Admins: []string{"admin"}}
	if err := muteUsers(g, []string{"bob", "carol", "bob"}, true, 0, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.MutedUsers, []string{"bob", "carol"}) {
		t.Fatalf("muted %v", g.MutedUsers)
	}
	for user, want := range map[string]bool{"bob": true, "dave": false, "owner": false, "admin": false} {
		if got := isMuted(g, user, 0); got != want {
			t.Errorf("isMuted(%s) = %v", user, got)
		}
	}
	if err := muteAll(g, []string{"dave"}, true, false); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]bool{"erin": true, "dave": false, "owner": false, "bob": true} {
		if got := isMuted(g, user, 0); got != want {
			t.Errorf("muteAll: isMuted(%s) = %v", user, got)
		}
	}
	if err := muteUsers(g, []string{"bob"}, false, 0, 0); err != nil || slices.Contains(g.MutedUsers, "bob") {
		t.Fatalf("cancel mute: %v %v", g.MutedUsers, err)
	}
	if err := muteUsers(g, nil, true, 0, 0); err == nil {
		t.Fatal("muting nobody is not an error")
	}
	if err := muteUsers(g, []string{"a.b"}, true, 0, 0); err == nil {
		t.Fatal("a bad user ID is not an error")
	}
	many := make([]string, maxMuteList+1)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	if err := muteUsers(g, many, true, 0, 0); liveimpb.AsError(err) != liveimpb.ErrLimitReached && liveimpb.AsError(err).Code != liveimpb.ErrLimitReached.Code {
		t.Fatalf("over the mute list cap: %v", err)
	}
}

func TestTimedMutesAndBans(t *testing.T) {
	g := &storage.Group{Creator: "owner"}
	if err := muteUsers(g, []string{"bob"}, true, 60, 1000); err != nil {
		t.Fatal(err)
	}
	if err := muteUsers(g, []string{"carol"}, true, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if !isMuted(g, "bob", 60_999) || isMuted(g, "bob", 61_000) {
		t.Fatalf("a 60 s mute from 1000 ms: muted at 60999 %v, at 61000 %v", isMuted(g, "bob", 60_999), isMuted(g, "bob", 61_000))
	}
	if endTimedMutes(g, 60_999) {
		t.Fatal("a mute ended early")
	}
	if !endTimedMutes(g, 61_000) || !slices.Equal(g.MutedUsers, []string{"carol"}) || len(g.MuteUntil) != 0 {
		t.Fatalf("after the timed mute: muted %v until %v", g.MutedUsers, g.MuteUntil)
	}
	if !isMuted(g, "carol", 1<<50) {
		t.Fatal("a mute without duration ended")
	}
	// Muting again without a duration makes a timed mute permanent.
	_ = muteUsers(g, []string{"bob"}, true, 5, 0)
	_ = muteUsers(g, []string{"bob"}, true, 0, 0)
	if !isMuted(g, "bob", 1<<50) {
		t.Fatal("a timed mute made permanent still ends")
	}
	for _, d := range []int64{-1, maxMuteSeconds + 1} {
		if err := muteUsers(g, []string{"bob"}, true, d, 0); liveimpb.AsError(err).Code != liveimpb.ErrInvalidParameter.Code {
			t.Errorf("duration %d: %v", d, err)
		}
	}
	g.Bans = map[string]int64{"mallory": 5000}
	if !banned(g, "mallory", 4999) || banned(g, "mallory", 5000) || banned(g, "bob", 0) {
		t.Fatal("ban window wrong")
	}
}

func TestSecondsToMs(t *testing.T) {
	for _, tc := range []struct{ sec, extra, want int64 }{
		{0, 0, 0}, {-5, 0, 0}, {1, 999, 1999}, {1 << 62, 999, 0}, {9223372036854775, 0, 9223372036854775000}, {9223372036854775, 999, 0},
	} {
		if got := secondsToMs(tc.sec, tc.extra); got != tc.want {
			t.Errorf("secondsToMs(%d, %d) = %d, want %d", tc.sec, tc.extra, got, tc.want)
		}
	}
}

func TestDerivedMessageID(t *testing.T) {
	a := derivedMessageID("app", "room", "alice", "m1")
	if a != derivedMessageID("app", "room", "alice", "m1") || len(a) != 32 {
		t.Fatalf("not stable or not 32 characters: %s", a)
	}
	for _, other := range []string{
		derivedMessageID("app", "room", "bob", "m1"),
		derivedMessageID("app", "room2", "alice", "m1"),
		derivedMessageID("app2", "room", "alice", "m1"),
		derivedMessageID("app", "room", "alice", "m2"),
		derivedMessageID("app", "roo", "malice", "m1"), // fields do not run together
	} {
		if other == a {
			t.Fatal("two sends share a message ID")
		}
	}
}

func TestSentCache(t *testing.T) {
	var s sentCache
	s.pending("p")
	if e := s.get("p"); e == nil || e.msg.Load() != nil || s.stored("p") {
		t.Fatal("a pending send")
	}
	m := &liveimpb.Message{MessageId: "p", Seqnum: 1, Timestamp: 7, Data: "body"}
	e := s.add("p", m)
	e.eventPending.Store(true)
	if !s.stored("p") || e.delivered.Load() || e.msg.Load() != m {
		t.Fatal("a stored send")
	}
	// Delivered, its event not stored yet: a retry may publish the event
	// again, so the message stays.
	s.delivered("p")
	if !e.delivered.Load() || e.msg.Load() != m {
		t.Fatal("a delivered send")
	}
	// Settled: only its reply is kept.
	e.setEventStored()
	if e.msg.Load() != nil || e.id != "p" || e.seq != 1 || e.ts != 7 || !s.stored("p") {
		t.Fatalf("a settled send keeps %v (reply %s %d %d)", e.msg.Load(), e.id, e.seq, e.ts)
	}
	// The other order: the event first, then the delivery (HIGH's ack).
	e2 := s.add("q", &liveimpb.Message{MessageId: "q", Data: "body"})
	e2.setEventStored()
	if e2.msg.Load() == nil {
		t.Fatal("an undelivered send lost its message")
	}
	e2.setDelivered()
	if e2.msg.Load() != nil {
		t.Fatal("a settled send kept its message")
	}
	s.forget("p")
	if s.get("p") != nil {
		t.Fatal("forgotten")
	}
	for i := range maxSentPerGroup + 10 {
		s.add(fmt.Sprint(i), m)
	}
	if s.get("0") != nil || s.get(fmt.Sprint(maxSentPerGroup+9)) == nil || len(s.byID) > maxSentPerGroup {
		t.Fatalf("eviction: %d remembered", len(s.byID))
	}
}

// testRouter is a router on an embedded NATS server, its streams set up,
// not running.
func testRouter(t *testing.T, cfg Config) *Router {
	t.Helper()
	r, err := routerOn(t, natstest.Connect(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ownerOfPartition0 is testRouter owning partition 0, its groups served.
func ownerOfPartition0(t *testing.T, cfg Config) *Router {
	t.Helper()
	r := testRouter(t, cfg)
	r.parts.mu.Lock()
	r.parts.consuming[0] = &consumption{}
	r.parts.mu.Unlock()
	return r
}

// routerOn is a router on nc with a store of its own, not running; the
// error is its streams' set-up's.
func routerOn(t *testing.T, nc *nats.Conn, cfg Config) (*Router, error) {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r, err := New(cfg, nc, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.setupStreams(context.Background())
}

// TestHighAfter reads HIGH messages back from a real JetStream stream:
// only the group's, after the seqnum asked, in order, a batch at a time.
func TestHighAfter(t *testing.T) {
	r := testRouter(t, Config{ResumeBatch: 4})
	ctx := context.Background()
	publish := func(groupID string, seq int64) {
		msg := &liveimpb.Message{MessageId: fmt.Sprint(groupID, "-", seq), GroupId: groupID, Seqnum: seq, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
		frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.publishHigh(ctx, "app", groupID, -1, msg, frame, false).wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Two groups interleaved; seqnums with gaps, as after a failover.
	for _, seq := range []int64{1, 2, 3, 1001, 1002, 1003, 1004, 2001} {
		publish("a", seq)
		publish("b", seq*10)
	}
	seqs := func(ms []*liveimpb.Message) []int64 {
		out := make([]int64, len(ms))
		for i, m := range ms {
			out[i] = m.Seqnum
		}
		return out
	}
	for _, tc := range []struct {
		after int64
		want  []int64
		more  bool
	}{
		{0, []int64{1, 2, 3, 1001}, true},
		{3, []int64{1001, 1002, 1003, 1004}, true},
		{500, []int64{1001, 1002, 1003, 1004}, true},
		{1003, []int64{1004, 2001}, false},
		{2001, nil, false},
		{5000, nil, false},
	} {
		got, more, err := r.highAfter(ctx, "app", "a", tc.after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), tc.want) || more != tc.more {
			t.Errorf("highAfter(%d) = %v more %v, want %v more %v", tc.after, seqs(got), more, tc.want, tc.more)
		}
	}
	if last, err := r.lastHighSeq(ctx, "app", "b"); err != nil || last != 20010 {
		t.Fatalf("lastHighSeq(b) = %d, %v", last, err)
	}
	if last, err := r.lastHighSeq(ctx, "app", "none"); err != nil || last != 0 {
		t.Fatalf("lastHighSeq(none) = %d, %v", last, err)
	}
}

// TestResumeStreamReadsPerApp: the HIGH stream gets of one app's resumes
// are bounded by Config.ResumeReadRate (each get, the search for the
// first message included, takes one): past it a page ends early with
// more, then resumes are 412 until time refills the app's reads; another
// app's resumes are not held up.
func TestResumeStreamReadsPerApp(t *testing.T) {
	r := testRouter(t, Config{ResumeBatch: 100, ResumeReadRate: 50})
	now := time.Unix(5000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	for _, app := range []string{"app", "other"} {
		for seq := int64(1); seq <= 200; seq++ {
			msg := &liveimpb.Message{MessageId: fmt.Sprint(app, seq), GroupId: "room", Seqnum: seq, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
			frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.publishHigh(ctx, app, "room", -1, msg, frame, false).wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, more, err := r.highAfter(ctx, "app", "room", 0, 0)
	if err != nil || !more || len(got) == 0 || len(got) >= 50 {
		t.Fatalf("first page: %d messages, more %v, %v; want fewer than the 50 reads, and more", len(got), more, err)
	}
	if _, _, err := r.highAfter(ctx, "app", "room", got[len(got)-1].Seqnum, 0); !errors.Is(err, liveimpb.ErrTooFast) {
		t.Fatalf("with the app's reads used up: %v, want 412", err)
	}
	if other, _, err := r.highAfter(ctx, "other", "room", 0, 0); err != nil || len(other) == 0 {
		t.Fatalf("another app's resume: %d messages, %v", len(other), err)
	}
	now = now.Add(time.Second)
	if next, _, err := r.highAfter(ctx, "app", "room", got[len(got)-1].Seqnum, 0); err != nil || len(next) == 0 || next[0].Seqnum != got[len(got)-1].Seqnum+1 {
		t.Fatalf("a second later: %d messages, %v", len(next), err)
	}
}

// TestGatewayTrackerGenerations: the generation moves when a gateway
// stops or goes silent, and once when the start grace ends; dead gateways
// are told apart from live and never-heard ones.
func TestGatewayTrackerGenerations(t *testing.T) {
	start := time.Unix(1000, 0)
	now := start
	tr := newGatewayTracker(3*time.Second, func() time.Time { return now })
	hb := func(id string, stopping bool) {
		b, _ := proto.Marshal(&liveimpb.GatewayHeartbeat{GatewayId: id, Stopping: stopping})
		tr.onHeartbeat(&nats.Msg{Data: b})
	}
	hb("gw-a", false)
	hb("gw-b", false)
	g0 := tr.generation(now)
	if dead := tr.deadFunc(now); dead("gw-a") || dead("gw-unknown") {
		t.Fatal("dead within the start grace")
	}
	now = now.Add(time.Second)
	hb("gw-b", true) // stopping
	g1 := tr.generation(now)
	if g1 == g0 || !tr.deadFunc(now)("gw-b") || tr.deadFunc(now)("gw-a") {
		t.Fatalf("after gw-b stopped: generation %d → %d", g0, g1)
	}
	if tr.generation(now) != g1 {
		t.Fatal("the generation moved without a new death")
	}
	// Past the start grace: gw-a (last heard at 1000) is silent, and a
	// gateway never heard from is dead too; one bump each, not per tick.
	now = start.Add(3 * time.Second)
	g2 := tr.generation(now)
	if g2 <= g1 || !tr.deadFunc(now)("gw-a") || !tr.deadFunc(now)("gw-unknown") {
		t.Fatalf("after the grace: generation %d → %d", g1, g2)
	}
	if tr.generation(now.Add(time.Second)) != g2 {
		t.Fatal("the generation moved again for the same deaths")
	}
	// gw-a comes back, then dies again: that counts again.
	hb("gw-a", false)
	if tr.deadFunc(now)("gw-a") {
		t.Fatal("gw-a heard again but dead")
	}
	now = now.Add(4 * time.Second)
	if g3 := tr.generation(now); g3 == g2 {
		t.Fatal("a second death of gw-a did not count")
	}
}

// presenceRouter is a router without NATS for presence logic: 10 s grace,
// gateways dead after gatewayTimeout, the clock at *now, an app cache on
// an empty store (no app: no callback events); and an empty group.
func presenceRouter(t *testing.T, now *time.Time, gatewayTimeout time.Duration) (*Router, *groupState) {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := &Router{cfg: Config{MemberGrace: 10 * time.Second, MemberChangeUsers: 10}, now: func() time.Time { return *now }}
	r.gateways = newGatewayTracker(gatewayTimeout, r.now)
	r.apps = &appCache{store: st, ttl: time.Second, entries: map[string]appEntry{}}
	return r, &groupState{members: map[string]*member{}, savedMembers: map[string]bool{}, removed: map[string]bool{}}
}

// TestExpireOnlyWhenDue: a group's members are looked at when a grace
// period ends, not before; a session drop sets when.
func TestExpireOnlyWhenDue(t *testing.T) {
	now := time.Unix(5000, 0)
	r, gs := presenceRouter(t, &now, time.Hour)
	c := &liveimpb.Caller{AppId: "app", UserId: "alice", GatewayId: "gw", SessionId: "s1"}
	r.addSession(gs, c)
	if !gs.nextExpiry.IsZero() {
		t.Fatal("a present member needs looking at")
	}
	r.dropSession(gs, "alice", storage.MemberSession{GatewayID: "gw", SessionID: "s1"}, true)
	if want := now.Add(10 * time.Second); !gs.nextExpiry.Equal(want) {
		t.Fatalf("nextExpiry %v, want %v", gs.nextExpiry, want)
	}
	now = now.Add(5 * time.Second)
	r.expireMembers(gs, now)
	if gs.members["alice"] == nil || gs.nextExpiry.IsZero() {
		t.Fatal("alice left before her grace ended")
	}
	now = now.Add(6 * time.Second)
	r.expireMembers(gs, now)
	if gs.members["alice"] != nil || !gs.nextExpiry.IsZero() {
		t.Fatalf("alice still there after her grace: next %v", gs.nextExpiry)
	}
}

// TestMemberSessions: a member keeps each of its sessions once, stays
// while one is left, and loses those of a dead gateway on the walk; its
// sessions share their gateway's ID.
func TestMemberSessions(t *testing.T) {
	now := time.Unix(5000, 0)
	r, gs := presenceRouter(t, &now, time.Second)
	caller := func(gw, session string) *liveimpb.Caller {
		return &liveimpb.Caller{AppId: "app", UserId: "alice", UserExtension: session, GatewayId: strings.Clone(gw), SessionId: session}
	}
	if !r.addSession(gs, caller("gw1", "s1")) || r.addSession(gs, caller("gw1", "s1")) || r.addSession(gs, caller("gw2", "s2")) {
		t.Fatal("only the first session is a new member")
	}
	m := gs.members["alice"]
	if len(m.sessions) != 2 || m.ext != "s2" || gs.change.joinCount != 1 {
		t.Fatalf("sessions %v, extension %q, joins %d", m.sessions, m.ext, gs.change.joinCount)
	}
	r.addSession(gs, &liveimpb.Caller{AppId: "app", UserId: "bob", GatewayId: strings.Clone("gw1"), SessionId: "s3"})
	if a, b := m.sessions[0].GatewayID, gs.members["bob"].sessions[0].GatewayID; unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("two sessions of gw1 hold two copies of its ID")
	}
	r.dropSession(gs, "alice", storage.MemberSession{GatewayID: "gw1", SessionID: "s1"}, true)
	if len(m.sessions) != 1 || !m.leaveAt.IsZero() {
		t.Fatalf("after one of two sessions left: %v, leaveAt %v", m.sessions, m.leaveAt)
	}
	// Both gateways were heard; then gw1 again, gw2 not for longer than
	// the timeout: gw2 is dead.
	hb := func(id string) {
		b, _ := proto.Marshal(&liveimpb.GatewayHeartbeat{GatewayId: id})
		r.gateways.onHeartbeat(&nats.Msg{Data: b})
	}
	hb("gw1")
	hb("gw2")
	now = now.Add(2 * time.Second)
	hb("gw1")
	r.expireMembers(gs, now)
	if len(gs.members["bob"].sessions) != 1 {
		t.Fatal("bob lost his session on the live gateway")
	}
	if len(m.sessions) != 0 || m.leaveAt.IsZero() || gs.members["alice"] == nil {
		t.Fatalf("after gw2 died: sessions %v, leaveAt %v", m.sessions, m.leaveAt)
	}
	if got := storedMember(m); got.UserID != "alice" || got.UserExt != "s2" || len(got.Sessions) != 0 {
		t.Fatalf("stored %+v", got)
	}
}

// TestMemberChangeEvery: memberchange comes every MemberChangeInterval
// in a group of up to MemberChangeFanout members, then less often, so a
// group's memberchange costs about MemberChangeFanout deliveries a
// second, up to MemberChangeMaxInterval; a tick holds a big group's
// pending joins until its interval is over.
func TestMemberChangeEvery(t *testing.T) {
	cfg := Config{}.WithDefaults()
	for _, tc := range []struct {
		members int
		want    time.Duration
	}{{0, time.Second}, {200, time.Second}, {500, 2500 * time.Millisecond}, {2000, 10 * time.Second}, {100_000, 10 * time.Second}} {
		if got := cfg.memberChangeEvery(tc.members); got != tc.want {
			t.Errorf("%d members: every %v, want %v", tc.members, got, tc.want)
		}
	}

	r := testRouter(t, Config{})
	events, err := r.nc.SubscribeSync(subject.GroupEvents("app", "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(5000, 0)
	w := r.workers[0]
	gs := &groupState{g: storage.Group{AppID: "app", ID: "big"}, members: map[string]*member{}, savedMembers: map[string]bool{}, removed: map[string]bool{}, lastChange: now}
	for i := range 600 {
		gs.members[fmt.Sprintf("u%d", i)] = &member{id: fmt.Sprintf("u%d", i)}
	}
	gs.change = memberChange{joinCount: 1, joins: []*liveimpb.User{{UserId: "u0"}}}
	w.groups["app/big"] = gs
	w.tick(now.Add(2*time.Second), 0)
	if gs.change.empty() {
		t.Fatal("a group of 600 got its memberchange 2 s after the last")
	}
	w.tick(now.Add(3*time.Second), 0)
	if !gs.change.empty() {
		t.Fatal("no memberchange 3 s after the last")
	}
	m, err := events.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sf liveimpb.ServerFrame
	if err := proto.Unmarshal(m.Data, &sf); err != nil || sf.GetEvent().GetMemberChange().GetMemberCount() != 600 {
		t.Fatalf("event %v, %v", &sf, err)
	}
}

// TestStatisticsWrittenAtStatsInterval: a group whose only change is its
// statistics is written once StatsInterval has passed since it was last
// written, not at every flush; member changes are written at every flush
// still; a forced flush (the worker stopping, a partition moving away)
// writes everything.
func TestStatisticsWrittenAtStatsInterval(t *testing.T) {
	r := testRouter(t, Config{StatsInterval: 5 * time.Second})
	now := time.Unix(5000, 0)
	r.now = func() time.Time { return now }
	ctx := t.Context()
	g, _, err := r.store.CreateGroup(ctx, storage.Group{AppID: "app", ID: "room"})
	if err != nil {
		t.Fatal(err)
	}
	w := r.workers[0]
	gs := &groupState{g: g, savedAt: now, members: map[string]*member{}, savedMembers: map[string]bool{}, removed: map[string]bool{}}
	w.groups["app/room"] = gs
	stored := func() int64 {
		t.Helper()
		got, err := r.store.GetGroup(ctx, "app", "room")
		if err != nil {
			t.Fatal(err)
		}
		return got.PV
	}
	flush := func() {
		t.Helper()
		w.flushing.Store(true)
		if err := w.flush(ctx, flushChunk); err != nil {
			t.Fatal(err)
		}
	}

	gs.g.PV, gs.dirty = 7, true
	now = now.Add(time.Second)
	flush()
	if pv := stored(); pv != 0 {
		t.Fatalf("statistics written 1 s after the last write: PV %d", pv)
	}
	gs.members["alice"] = &member{id: "alice", sessions: []storage.MemberSession{{GatewayID: "gw", SessionID: "s"}}}
	gs.savedMembers["alice"] = true
	flush()
	if ms, err := r.store.ListMembers(ctx, "app", "room"); err != nil || len(ms) != 1 {
		t.Fatalf("members after a flush: %v, %v; want alice", ms, err)
	}
	if pv := stored(); pv != 0 {
		t.Fatalf("statistics written with the members: PV %d", pv)
	}
	now = now.Add(4 * time.Second)
	flush()
	if pv := stored(); pv != 7 || gs.dirty {
		t.Fatalf("5 s after the last write: PV %d stored, dirty %v; want 7 written", pv, gs.dirty)
	}
	gs.g.PV, gs.dirty = 9, true
	now = now.Add(time.Second)
	if err := w.flushGroups(ctx, []*groupState{gs}, true); err != nil {
		t.Fatal(err)
	}
	if pv := stored(); pv != 9 {
		t.Fatalf("a forced flush left PV %d stored; want 9", pv)
	}
}

// TestRoomForHigh: a worker with maxHighInFlight HIGH messages on their
// way to the stream waits for the oldest before it sequences another,
// but refuses at once (503, before anything is stored) when the oldest
// has waited highAckTimeout already: a stream that stopped taking
// messages must not stall the worker for every HIGH send.
func TestRoomForHigh(t *testing.T) {
	r := testRouter(t, Config{})
	fill := func(w *worker, since time.Time) []*highAck {
		acks := make([]*highAck, maxHighInFlight)
		for i := range acks {
			acks[i] = &highAck{since: since, done: make(chan struct{})}
			w.trackHigh(acks[i])
		}
		return acks
	}

	stale := r.workers[0]
	acks := fill(stale, r.now().Add(-highAckTimeout-time.Second))
	if err := stale.roomForHigh(); liveimpb.AsError(err).Code != liveimpb.ErrUnavailable.Code {
		t.Fatalf("full of stale messages: %v, want 503", err)
	}
	close(acks[7].done) // any one taken makes room
	if err := stale.roomForHigh(); err != nil {
		t.Fatalf("one taken: %v", err)
	}

	fresh := r.workers[1]
	acks = fill(fresh, r.now())
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(acks[0].done)
	}()
	if err := fresh.roomForHigh(); err != nil { // waits for the oldest
		t.Fatalf("full of fresh messages: %v", err)
	}
	if !acks[0].finished() {
		t.Fatal("roomForHigh returned before the oldest was taken")
	}
}

// TestEvictedGroupsRemembered: a group that leaves a worker idle for at
// least DedupeWindow is remembered (loaded again, its sends need no
// look-up in the store); one idle for less is not, since a retry of its
// last send may still come. Dropping its partition (another router may
// own it next) and an hour forget it.
func TestEvictedGroupsRemembered(t *testing.T) {
	now := time.Unix(5000, 0)
	r, _ := presenceRouter(t, &now, time.Hour)
	r.cfg.DedupeWindow = 2 * time.Minute
	w := newWorker(r)
	long := &groupState{part: 1, usedAt: now.Add(-3 * time.Minute)}
	short := &groupState{part: 1, usedAt: now.Add(-time.Minute)}
	other := &groupState{part: 2, usedAt: now.Add(-3 * time.Minute)}
	w.evict("a/long", long, now)
	w.evict("a/short", short, now)
	w.evict("a/other", other, now)
	if _, ok := w.evicted["a/long"]; !ok || len(w.evicted) != 2 {
		t.Fatalf("evicted %v, want a/long and a/other", w.evicted)
	}
	w.dropPartition(context.Background(), 1)
	if _, ok := w.evicted["a/other"]; !ok || len(w.evicted) != 1 {
		t.Fatalf("after dropping partition 1: %v, want a/other", w.evicted)
	}
	now = now.Add(61 * time.Minute)
	w.pruneEvicted(now)
	if len(w.evicted) != 0 {
		t.Fatalf("after an hour: %v", w.evicted)
	}
}

// TestMemberPagesFollowJoinsAndLeaves: the join order member lists read
// (built once, then kept by joins and leaves) pages exactly as a sort of
// the current members does, through joins, leaves, rejoins, a clock that
// steps back and compactions, in both directions.
func TestMemberPagesFollowJoinsAndLeaves(t *testing.T) {
	now := time.Unix(5000, 0)
	r, gs := presenceRouter(t, &now, time.Hour)
	rnd := rand.New(rand.NewPCG(1, 2))
	want := func(afterTime int64, afterUser string, desc bool, size int) ([]string, bool) {
		list := sortedMembers(gs)
		if desc {
			slices.Reverse(list)
		}
		start := 0
		if afterUser != "" {
			start = len(list)
			for i, m := range list {
				c := joinOrder(m, &member{joinTime: afterTime, id: afterUser})
				if (!desc && c > 0) || (desc && c < 0) {
					start = i
					break
				}
			}
		}
		end := min(len(list), start+size)
		var ids []string
		for _, m := range list[start:end] {
			ids = append(ids, m.id)
		}
		return ids, end < len(list)
	}
	for step := range 3000 {
		switch op := rnd.IntN(10); {
		case op < 5:
			if rnd.IntN(20) == 0 {
				now = now.Add(-time.Duration(rnd.IntN(50)) * time.Millisecond) // the clock steps back
			} else if rnd.IntN(2) == 0 {
				now = now.Add(time.Millisecond)
			}
			id := fmt.Sprintf("u%d", rnd.IntN(400))
			r.addSession(gs, &liveimpb.Caller{AppId: "app", UserId: id, GatewayId: "gw", SessionId: "s"})
		case op < 8:
			r.removeMember(gs, fmt.Sprintf("u%d", rnd.IntN(400)))
		default:
			desc, size := rnd.IntN(2) == 0, 1+rnd.IntN(30)
			var afterTime int64
			var afterUser string
			if list := sortedMembers(gs); len(list) > 0 && rnd.IntN(3) > 0 {
				m := list[rnd.IntN(len(list))]
				afterTime, afterUser = m.joinTime, m.id
				if rnd.IntN(4) == 0 {
					afterUser += "x" // a token of someone who left
				}
			}
			page, more := memberPage(gs, afterTime, afterUser, desc, size, now)
			var got []string
			for _, m := range page {
				got = append(got, m.id)
			}
			wantIDs, wantMore := want(afterTime, afterUser, desc, size)
			if !slices.Equal(got, wantIDs) || more != wantMore {
				t.Fatalf("step %d: page after %d_%s desc=%v size %d = %v (more %v), want %v (more %v)", step, afterTime, afterUser, desc, size, got, more, wantIDs, wantMore)
			}
		}
	}
	if gs.byJoin == nil || gs.gone > len(gs.byJoin)/2 {
		t.Fatalf("join order %d entries, %d gone", len(gs.byJoin), gs.gone)
	}
}
