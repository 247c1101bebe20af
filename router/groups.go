package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/liveim/liveim/internal/ratelimit"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// groupState is the hot state of a group this router owns. Only its
// worker touches it (worker.go).
type groupState struct {
	part    int
	g       storage.Group
	lastSeq int64 // highest seqnum handed out
	// sentSeq is the highest seqnum whose send has finished: stored and
	// delivered, or failed. Until then a HIGH message may not be in the
	// stream yet, so resumes and group queries report sentSeq.
	sentSeq int64
	lastTs  int64     // timestamp (ms) of the last message: timestamps never go back within a group
	dirty   bool      // counters in g differ from the store
	savedAt time.Time // when g was last written or loaded
	// lookUpUntil is DedupeWindow after this router loaded the group:
	// until then, sends the group does not remember are looked up in the
	// store (the previous owner may have stored them); zero for a group
	// this router evicted and loaded again.
	lookUpUntil time.Time
	// usedAt is when a request last used the group (worker.idle).
	usedAt time.Time
	sent   sentCache // recent sends with a client message ID
	high   highTail  // recent HIGH messages, for resumes (tail.go)
	// removals are the group's deleted HIGH messages on their way out of
	// the stream (unstreamHigh): resumes leave them out meanwhile.
	removals []*highRemoval

	members      map[string]*member
	savedMembers map[string]bool // user IDs whose record must be written
	removed      map[string]bool // user IDs whose record must be deleted
	// byJoin is the members in join order (joinOrder), built at the first
	// member list and kept up to date after: a join is nearly always an
	// append, a leave only marks its member gone (gone counts them) until
	// they are half the list. nil until a list needs it (memberPage).
	byJoin []*member
	gone   int
	// listedAt is when a member list last used byJoin; a tick drops it
	// after a minute unused.
	listedAt time.Time

	change     memberChange
	lastChange time.Time
	// nextExpiry is when the members need looking at next (a grace period
	// ending), zero when no member waits for anything. Ticks look at a
	// group's members only then, or when a gateway died, so idle members
	// cost nothing between events (worker.tick).
	nextExpiry time.Time

	rate ratelimit.Bucket // NORMAL messages
}

// member is a user present in the group. A router holds one for every
// member of its groups, so it is kept small (BenchmarkMemberMemory): the
// user ID is the members map's key, sessions are a slice (nearly always
// one), and gateway IDs are interned.
type member struct {
	id       string // the user ID, the same string as its key in groupState.members
	ext      string // the user's extension
	joinTime int64  // ms
	sessions []storage.MemberSession
	leaveAt  time.Time // set while no session is left: the grace period
	gone     bool      // it left the group (its place in groupState.byJoin waits for a compaction)
}

// membersSaved empties the sets of member records to write. A set the
// size of a join storm is dropped rather than cleared, which would keep
// its buckets for as long as the group is cached.
func (gs *groupState) membersSaved() {
	for _, set := range []*map[string]bool{&gs.savedMembers, &gs.removed} {
		if len(*set) > 64 {
			*set = make(map[string]bool)
		} else {
			clear(*set)
		}
	}
}

// user returns the member as the protocol's User.
func (m *member) user() *liveimpb.User {
	return &liveimpb.User{UserId: m.id, UserExtension: m.ext}
}

// addSession adds s unless the member has it.
func (m *member) addSession(s storage.MemberSession) {
	if !slices.Contains(m.sessions, s) {
		m.sessions = append(m.sessions, s)
	}
}

// removeSession removes s if the member has it.
func (m *member) removeSession(s storage.MemberSession) {
	if i := slices.Index(m.sessions, s); i >= 0 {
		m.sessions = slices.Delete(m.sessions, i, i+1)
	}
}

// memberChange accumulates joins and leaves until the next memberchange.
type memberChange struct {
	joins, leaves         []*liveimpb.User
	joinCount, leaveCount int64
}

func (m *memberChange) empty() bool { return m.joinCount == 0 && m.leaveCount == 0 }

// errMoved reports that this router may not serve a group now: its
// partition moved away, or its cached state was stale. It is returned
// only before a request changed anything, so Router.work may send the
// request back through the stream to the group's current owner; it is an
// internal sentinel, not a catalogue error, so no other 503 (a failed
// publish after the message was stored) is ever mistaken for it. The
// client sees 503 only if the request cannot be sent on.
var errMoved = errors.New("router: the group moved to another router")

// loadGroup reads a group's state, members and last seqnum from the store
// (and the HIGH stream, which may be ahead of a restored store).
func (r *Router) loadGroup(ctx context.Context, appID, groupID string, part int) (*groupState, error) {
	st := r.store
	g, err := st.GetGroup(ctx, appID, groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, liveimpb.ErrGroupNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load group: %w", err)
	}
	last, err := st.LastSeq(ctx, appID, groupID)
	if err != nil {
		return nil, fmt.Errorf("load last seq: %w", err)
	}
	// A store older than the HIGH stream (restored from a backup, a lost
	// keyspace) must not hand out seqnums the stream already holds.
	streamLast, err := r.lastHighSeq(ctx, appID, groupID)
	if err != nil {
		return nil, err
	}
	if streamLast > max(last, g.SeqReserved) {
		r.log.Warn("the store is behind the HIGH stream; seqnums continue after the stream's", "app_id", appID, "group_id", groupID,
			"store_seq", max(last, g.SeqReserved), "stream_seq", streamLast)
		last = streamLast
	}
	list, err := st.ListMembers(ctx, appID, groupID)
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	gs := &groupState{
		part:         part,
		g:            g,
		lastSeq:      max(last, g.SeqReserved),
		sentSeq:      max(last, g.SeqReserved),
		high:         highTail{from: max(last, g.SeqReserved)},
		members:      make(map[string]*member, len(list)),
		savedMembers: make(map[string]bool),
		removed:      make(map[string]bool),
		rate:         ratelimit.New(r.cfg.RoomRate, r.cfg.RoomRate, r.now()),
		usedAt:       r.now(),
		lookUpUntil:  r.now().Add(r.cfg.DedupeWindow),
		savedAt:      r.now(),
		// Loaded members may be on gateways that died before: look at
		// them on the next tick.
		nextExpiry: r.now(),
	}
	now := r.now()
	for _, m := range list {
		mb := &member{id: m.UserID, ext: m.UserExt, joinTime: m.JoinTimeMs}
		for _, s := range m.Sessions {
			s.GatewayID = r.gatewayIDs.intern(s.GatewayID)
			mb.addSession(s)
		}
		if len(mb.sessions) == 0 {
			mb.leaveAt = now.Add(r.cfg.MemberGrace)
		}
		gs.members[m.UserID] = mb
	}
	return gs, nil
}

func storedMember(m *member) storage.Member {
	return storage.Member{UserID: m.id, UserExt: m.ext, JoinTimeMs: m.joinTime, Sessions: slices.Clone(m.sessions)}
}

// groupInfo renders the state for a client.
func groupInfo(gs *groupState) *liveimpb.GroupInfo {
	g := gs.g
	return &liveimpb.GroupInfo{
		GroupId:    g.ID,
		GroupName:  g.Name,
		GroupMeta:  g.Meta,
		CreateTime: g.CreateTimeMs,
		Creator:    g.Creator,
		Admins:     slices.Clone(g.Admins),
		Statistics: &liveimpb.Statistics{
			Pv:          g.PV,
			OnlineCount: int64(len(gs.members)),
			MsgAmount:   maps.Clone(g.MsgAmount),
		},
		MuteStatus:    muteStatus(&g),
		Closed:        g.Closed,
		LastSeqnum:    gs.sentSeq,
		LastDeleteSeq: g.DeleteSeq,
	}
}

func muteStatus(g *storage.Group) *liveimpb.MuteStatus {
	return &liveimpb.MuteStatus{
		GroupId:       g.ID,
		MuteAll:       g.MuteAll,
		MuteUserList:  slices.Clone(g.MutedUsers),
		WhiteUserList: slices.Clone(g.WhiteUsers),
	}
}

// isManager reports whether userID is the group's owner or an admin.
func isManager(g *storage.Group, userID string) bool {
	return g.Creator == userID || slices.Contains(g.Admins, userID)
}

// mayBypass reports whether caller may do what owner and admins may:
// skip the group's moderation and mute check, manage the group. The server
// API may too.
func mayBypass(g *storage.Group, c *liveimpb.Caller) bool {
	return c.Server || isManager(g, c.UserId)
}

// isMuted reports whether userID may not send at nowMs: owner and admins
// never are; with muteAll everyone else is unless whitelisted; a timed
// mute ends by itself.
func isMuted(g *storage.Group, userID string, nowMs int64) bool {
	if isManager(g, userID) {
		return false
	}
	if g.MuteAll && !slices.Contains(g.WhiteUsers, userID) {
		return true
	}
	if !slices.Contains(g.MutedUsers, userID) {
		return false
	}
	until, timed := g.MuteUntil[userID]
	return !timed || nowMs < until
}

// endTimedMutes removes the timed mutes over at nowMs and reports whether
// there were any.
func endTimedMutes(g *storage.Group, nowMs int64) bool {
	ended := false
	for u, until := range g.MuteUntil {
		if nowMs >= until {
			delete(g.MuteUntil, u)
			g.MutedUsers = slices.DeleteFunc(g.MutedUsers, func(x string) bool { return x == u })
			ended = true
		}
	}
	return ended
}

// endMutes ends the group's timed mutes that are over at now and tells
// the members with mutechange. It runs on ticks and before the mute state
// is shown, so nobody sees a mute that is over.
func (r *Router) endMutes(gs *groupState, now time.Time) {
	if len(gs.g.MuteUntil) == 0 || !endTimedMutes(&gs.g, now.UnixMilli()) {
		return
	}
	gs.dirty = true // a flush saves it; a mute over is over even unsaved
	r.publishEvent(gs.g.AppID, gs.g.ID, &liveimpb.Event{Body: &liveimpb.Event_MuteChange{MuteChange: &liveimpb.MuteChangeEvent{
		GroupId: gs.g.ID, Status: muteStatus(&gs.g),
	}}}, nil)
}

// notBanned refuses a client caller banned from the group (403). The
// gateway lets only a session joined to a group send to it or read it,
// but a kick's notice and a join's answer reach a gateway by different
// paths: the router is where a ban holds whatever the gateway believes.
func notBanned(gs *groupState, c *liveimpb.Caller, nowMs int64) error {
	if c.Server || !banned(&gs.g, c.UserId, nowMs) {
		return nil
	}
	return liveimpb.ErrForbidden.With("banned from the group")
}

// banned reports whether userID is banned from the group at nowMs.
func banned(g *storage.Group, userID string, nowMs int64) bool {
	until, ok := g.Bans[userID]
	return ok && nowMs < until
}
