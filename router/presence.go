package router

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// gatewayTracker remembers when each gateway was last heard from.
type gatewayTracker struct {
	timeout time.Duration
	now     func() time.Time
	started time.Time

	mu       sync.Mutex // leaf lock
	lastSeen map[string]time.Time
	stopped  map[string]bool
	// gen counts gateway deaths (and the end of the start grace);
	// counted marks the dead ones counted, until they are heard again.
	gen       uint64
	counted   map[string]bool
	graceOver bool
}

func newGatewayTracker(timeout time.Duration, now func() time.Time) *gatewayTracker {
	return &gatewayTracker{timeout: timeout, now: now, started: now(), lastSeen: make(map[string]time.Time), stopped: make(map[string]bool), counted: make(map[string]bool)}
}

func (t *gatewayTracker) onHeartbeat(m *nats.Msg) {
	var hb liveimpb.GatewayHeartbeat
	if proto.Unmarshal(m.Data, &hb) != nil || hb.GatewayId == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastSeen[hb.GatewayId] = t.now()
	if hb.Stopping {
		t.stopped[hb.GatewayId] = true
	} else {
		delete(t.stopped, hb.GatewayId)
		delete(t.counted, hb.GatewayId) // alive again: its next death counts
	}
}

// deadFunc returns whether a gateway's sessions are over at now: it is
// stopped, silent for the timeout, or never heard from once the start
// grace is over. It reads the tracker once, so a walk over many sessions
// takes the lock once.
func (t *gatewayTracker) deadFunc(now time.Time) func(gatewayID string) bool {
	t.mu.Lock()
	alive := make(map[string]bool, len(t.lastSeen))
	for id, seen := range t.lastSeen {
		alive[id] = !t.stopped[id] && now.Sub(seen) < t.timeout
	}
	inGrace := now.Sub(t.started) < t.timeout
	t.mu.Unlock()
	return func(id string) bool {
		a, known := alive[id]
		if !known {
			return !inGrace
		}
		return !a
	}
}

// generation counts the times a gateway died (or the start grace ended):
// a worker that saw an older one walks its groups' members once.
func (t *gatewayTracker) generation(now time.Time) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, seen := range t.lastSeen {
		if (t.stopped[id] || now.Sub(seen) >= t.timeout) && !t.counted[id] {
			t.counted[id] = true
			t.gen++
		}
	}
	if !t.graceOver && now.Sub(t.started) >= t.timeout {
		t.graceOver = true
		t.gen++
	}
	return t.gen
}

// live counts the gateways heard from within timeout and not stopping.
func (t *gatewayTracker) live(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, seen := range t.lastSeen {
		if !t.stopped[id] && now.Sub(seen) < t.timeout {
			n++
		}
	}
	return n
}

// interner hands out one copy of each of a few strings. Every session
// names its gateway, and a router holds every member's sessions: the
// gateway IDs are few, so members share their copies. The zero value is
// ready; past maxInterned strings it hands back what it is given.
type interner struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxInterned = 4096

func (in *interner) intern(s string) string {
	in.mu.RLock()
	v, ok := in.m[s]
	in.mu.RUnlock()
	if ok {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.m[s]; ok {
		return v
	}
	if len(in.m) >= maxInterned {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	in.m[s] = s
	return s
}

// addSession records that caller's session joined the group; it reports
// whether the user is new to the group (a rejoin inside the grace period
// is not).
func (r *Router) addSession(gs *groupState, c *liveimpb.Caller) bool {
	s := storage.MemberSession{GatewayID: r.gatewayIDs.intern(c.GatewayId), SessionID: c.SessionId}
	m := gs.members[c.UserId]
	isNew := m == nil
	if isNew {
		m = &member{id: c.UserId, ext: c.UserExtension, joinTime: r.now().UnixMilli()}
		gs.members[m.id] = m
		gs.joined(m)
		gs.change.joinCount++
		if len(gs.change.joins) < r.cfg.MemberChangeUsers {
			gs.change.joins = append(gs.change.joins, m.user())
		}
		r.emitUser(gs.g.AppID, gs.g.ID, callback.GroupJoin, m.user())
	}
	m.ext = c.UserExtension // a rejoin may bring a new one
	m.addSession(s)
	m.leaveAt = time.Time{}
	gs.savedMembers[c.UserId] = true
	delete(gs.removed, c.UserId)
	return isNew
}

// dropSession removes one session of a member. With graceful, a member
// left without sessions stays for the grace period; otherwise it leaves
// now.
func (r *Router) dropSession(gs *groupState, userID string, s storage.MemberSession, graceful bool) {
	m := gs.members[userID]
	if m == nil {
		return
	}
	m.removeSession(s)
	gs.savedMembers[userID] = true
	if len(m.sessions) > 0 {
		return
	}
	if graceful {
		if m.leaveAt.IsZero() {
			m.leaveAt = r.now().Add(r.cfg.MemberGrace)
			gs.expireAt(m.leaveAt)
		}
		return
	}
	r.removeMember(gs, userID)
}

// removeMember takes a user out of the group now.
func (r *Router) removeMember(gs *groupState, userID string) {
	m := gs.members[userID]
	if m == nil {
		return
	}
	delete(gs.members, userID)
	gs.left(m)
	delete(gs.savedMembers, userID)
	gs.removed[userID] = true
	gs.change.leaveCount++
	if len(gs.change.leaves) < r.cfg.MemberChangeUsers {
		gs.change.leaves = append(gs.change.leaves, m.user())
	}
	r.emitUser(gs.g.AppID, gs.g.ID, callback.GroupLeave, m.user())
}

// expireMembers ends sessions on gateways that went silent and removes
// members whose grace period is over; it sets when to look again
// (nextExpiry). It walks every member: ticks call it only for a group
// whose nextExpiry came, or after a gateway died.
func (r *Router) expireMembers(gs *groupState, now time.Time) {
	gs.nextExpiry = time.Time{}
	dead := r.gateways.deadFunc(now)
	for id, m := range gs.members {
		for i := len(m.sessions) - 1; i >= 0; i-- { // dropSession removes the i-th
			if s := m.sessions[i]; dead(s.GatewayID) {
				r.dropSession(gs, id, s, true)
			}
		}
		if m.leaveAt.IsZero() {
			continue
		}
		if now.After(m.leaveAt) {
			r.removeMember(gs, id)
		} else {
			gs.expireAt(m.leaveAt)
		}
	}
}

// expireAt makes the group's members be looked at by t at the latest.
func (gs *groupState) expireAt(t time.Time) {
	if gs.nextExpiry.IsZero() || t.Before(gs.nextExpiry) {
		gs.nextExpiry = t
	}
}

// publishMemberChange sends the pending joins and leaves as one
// memberchange event.
func (r *Router) publishMemberChange(gs *groupState) {
	ch := gs.change
	gs.change = memberChange{}
	r.publishEvent(gs.g.AppID, gs.g.ID, &liveimpb.Event{Body: &liveimpb.Event_MemberChange{MemberChange: &liveimpb.MemberChangeEvent{
		GroupId:     gs.g.ID,
		MemberCount: int64(len(gs.members)),
		JoinUsers:   ch.joins,
		LeaveUsers:  ch.leaves,
		JoinCount:   ch.joinCount,
		LeaveCount:  ch.leaveCount,
	}}}, nil)
}

// presenceLeave handles a session that went away without leaveGroup.
func (r *Router) presenceLeave(ctx context.Context, j job, c *liveimpb.Caller) error {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return err
	}
	r.dropSession(gs, c.UserId, storage.MemberSession{GatewayID: c.GatewayId, SessionID: c.SessionId}, true)
	return nil
}

// kickUser removes a user from a group at once; each of its sessions gets
// exit(groupId, 2). With a ban the user may not join again before it
// ends; the ban is saved before the answer. It is a server API operation
// (no client frame).
func (r *Router) kickUser(ctx context.Context, j job, c *liveimpb.Caller, k *liveimpb.KickUser) (*liveimpb.Reply, error) {
	if err := ids.Check("userId", k.UserId); err != nil {
		return nil, err
	}
	if k.BanSeconds < 0 || k.BanSeconds > maxMuteSeconds {
		return nil, liveimpb.InvalidParam("banSeconds", "between 0 and %d", maxMuteSeconds)
	}
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	now := r.now().UnixMilli()
	if k.BanSeconds > 0 {
		old := maps.Clone(gs.g.Bans)
		maps.DeleteFunc(gs.g.Bans, func(_ string, until int64) bool { return until <= now })
		if gs.g.Bans == nil {
			gs.g.Bans = make(map[string]int64)
		}
		if _, again := gs.g.Bans[k.UserId]; !again && len(gs.g.Bans) >= r.cfg.MaxBans {
			gs.g.Bans = old
			return nil, liveimpb.ErrLimitReached.With("a group may ban at most %d users at once", r.cfg.MaxBans)
		}
		gs.g.Bans[k.UserId] = now + k.BanSeconds*1000
		if err := j.w.save(ctx, gs); err != nil {
			gs.g.Bans = old
			return nil, err
		}
	}
	r.removeMember(gs, k.UserId)
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_Exit{Exit: &liveimpb.ExitEvent{GroupId: j.groupID, Reason: liveimpb.ExitReason_EXIT_REASON_KICKED}}})
	if err != nil {
		return nil, err
	}
	out := nats.NewMsg(subject.User(j.appID, k.UserId))
	out.Data = frame
	out.Header.Set(subject.HeaderKind, subject.KindKick)
	out.Header.Set(subject.HeaderGroup, j.groupID)
	if err := r.nc.PublishMsg(out); err != nil {
		return nil, liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	return &liveimpb.Reply{}, nil
}

// deleteGroup removes a group and everything of it (server API only): its
// members get exit(groupId, 1), its messages, members and record go from
// the store and its HIGH messages from the stream, and the ID and the
// app's quota are free again.
func (r *Router) deleteGroup(ctx context.Context, j job) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	key := groupKey(j.appID, j.groupID)
	j.w.finishSends(key, true) // a message still at the store would outlive its group
	if inFlight := j.w.highInFlight(key); len(inFlight) > 0 {
		_ = inFlight[len(inFlight)-1].wait() // and those on their way to the HIGH stream, the purge (they go in order)
	}
	if err := r.store.DeleteGroup(ctx, j.appID, j.groupID); err != nil {
		return nil, fmt.Errorf("delete group: %w", err)
	}
	j.w.forget(gs)
	stream, subj := r.highStream(j.appID, j.groupID)
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		r.log.Warn("purge the deleted group's HIGH messages", "app_id", j.appID, "group_id", j.groupID, "err", err)
	}
	if legacy := r.legacy(); legacy != nil {
		if err := legacy.Purge(ctx, jetstream.WithPurgeSubject(subject.LegacyGroupHigh(j.appID, j.groupID))); err != nil && !r.legacyGone(err) {
			r.log.Warn("purge the deleted group's HIGH messages", "app_id", j.appID, "group_id", j.groupID, "stream", subject.LegacyHighStream, "err", err)
		}
	}
	r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_Exit{Exit: &liveimpb.ExitEvent{GroupId: j.groupID, Reason: liveimpb.ExitReason_EXIT_REASON_GROUP_CLOSED}}},
		nats.Header{subject.HeaderExit: []string{"1"}})
	r.emit(ctx, j.appID, callback.Event{Type: callback.GroupDeleted, GroupID: j.groupID})
	return &liveimpb.Reply{}, nil
}

// eventFrame encodes ev as the ServerFrame gateways write to sockets.
func eventFrame(ev *liveimpb.Event) ([]byte, error) {
	return proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: ev}})
}

// publishEvent sends an event to every member of the group (core NATS,
// best effort like any live event). hdr may add headers.
func (r *Router) publishEvent(appID, groupID string, ev *liveimpb.Event, hdr nats.Header) {
	frame, err := eventFrame(ev)
	if err != nil {
		r.log.Error("marshal event", "err", err)
		return
	}
	out := nats.NewMsg(subject.GroupEvents(appID, groupID))
	out.Data = frame
	for k, v := range hdr {
		out.Header[k] = v
	}
	if err := r.nc.PublishMsg(out); err != nil {
		r.log.Warn("publish event", telemetry.LogAppID, appID, telemetry.LogGroupID, groupID, "err", err)
	}
}

// touch asks the group's next owner to load it, so presence timers (grace
// periods, dead gateways) keep running after a partition moves.
func (r *Router) touch(appID, groupID string) {
	env, err := proto.Marshal(&liveimpb.RouterRequest{
		Caller: &liveimpb.Caller{AppId: appID},
		Touch:  &liveimpb.TouchGroup{GroupId: groupID},
	})
	if err != nil {
		return
	}
	out := nats.NewMsg(subject.RPC(appID, groupID))
	out.Data = env
	if err := r.nc.PublishMsg(out); err != nil {
		r.log.Warn("touch group", telemetry.LogAppID, appID, telemetry.LogGroupID, groupID, "err", err)
	}
}
