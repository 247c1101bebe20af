package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// groupState is the hot state of a group this router owns. mu guards
// every field.
type groupState struct {
	mu      sync.Mutex
	part    int
	g       storage.Group
	lastSeq int64 // highest seqnum handed out
	lastTs  int64 // timestamp (ms) of the last message: timestamps never go back within a group
	dirty   bool  // counters in g differ from the store
	dropped bool  // removed from the cache: the partition moved

	members      map[string]*member
	savedMembers map[string]bool // user IDs whose record must be written
	removed      map[string]bool // user IDs whose record must be deleted

	change     memberChange
	lastChange time.Time

	rate tokenBucket // NORMAL messages
}

// member is a user present in the group.
type member struct {
	user     *liveimpb.User
	joinTime int64 // ms
	sessions map[storage.MemberSession]struct{}
	leaveAt  time.Time // set while no session is left: the grace period
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

// groupCache holds the groups of the partitions this router owns. Lock
// order: groupState.mu, then groupCache.mu. groupCache.mu is a leaf: no
// code waits for a group's mutex while holding it.
type groupCache struct {
	r *Router

	mu     sync.Mutex
	groups map[string]*groupState
}

func newGroupCache(r *Router) *groupCache {
	return &groupCache{r: r, groups: make(map[string]*groupState)}
}

// lock returns the group's state, loaded on first use, with its mutex
// held. A group that does not exist is liveimpb.ErrGroupNotFound; a group
// whose partition this router no longer owns is liveimpb.ErrUnavailable.
//
// Ownership is checked with the group's mutex held: partitions.stop
// forgets the partition before dropPartition saves its groups, so a state
// that passes the check is saved by that drop, and a request that fails it
// changes nothing.
func (c *groupCache) lock(ctx context.Context, appID, groupID string, part int) (*groupState, error) {
	key := appID + "/" + groupID
	for {
		c.mu.Lock()
		gs, ok := c.groups[key]
		c.mu.Unlock()
		if !ok {
			var err error
			if gs, err = c.load(ctx, appID, groupID, part); err != nil {
				return nil, err
			}
			c.mu.Lock()
			if prev, ok := c.groups[key]; ok {
				gs = prev // loaded concurrently
			} else {
				c.groups[key] = gs
			}
			c.mu.Unlock()
		}
		gs.mu.Lock()
		if !c.r.parts.owns(part) {
			// The partition moved to another router after this request was
			// queued: serving it here could fork the group's state. The
			// state stays cached: dropPartition (running or about to run)
			// saves what it holds, and taking the partition again drops it.
			gs.mu.Unlock()
			return nil, errMoved
		}
		if !gs.dropped {
			return gs, nil
		}
		gs.mu.Unlock() // dropped meanwhile: load again
	}
}

func (c *groupCache) load(ctx context.Context, appID, groupID string, part int) (*groupState, error) {
	st := c.r.store
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
	streamLast, err := c.r.lastHighSeq(ctx, appID, groupID)
	if err != nil {
		return nil, err
	}
	if streamLast > max(last, g.SeqReserved) {
		c.r.log.Warn("the store is behind the HIGH stream; seqnums continue after the stream's", "app_id", appID, "group_id", groupID,
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
		members:      make(map[string]*member, len(list)),
		savedMembers: make(map[string]bool),
		removed:      make(map[string]bool),
		rate:         newTokenBucket(c.r.cfg.RoomRate, c.r.now()),
	}
	now := c.r.now()
	for _, m := range list {
		mb := &member{
			user:     &liveimpb.User{UserId: m.UserID, UserExtension: m.UserExt},
			joinTime: m.JoinTimeMs,
			sessions: make(map[storage.MemberSession]struct{}, len(m.Sessions)),
		}
		for _, s := range m.Sessions {
			mb.sessions[s] = struct{}{}
		}
		if len(mb.sessions) == 0 {
			mb.leaveAt = now.Add(c.r.cfg.MemberGrace)
		}
		gs.members[m.UserID] = mb
	}
	return gs, nil
}

// nextSeq hands out the group's next seqnum, first reserving a new block
// in the store when the current one is used up. gs.mu must be held.
func (c *groupCache) nextSeq(ctx context.Context, gs *groupState) (int64, error) {
	next := gs.lastSeq + 1
	if next > gs.g.SeqReserved {
		reserved := gs.g.SeqReserved
		gs.g.SeqReserved = gs.lastSeq + c.r.cfg.SeqBlock
		if err := c.save(ctx, gs); err != nil {
			gs.g.SeqReserved = reserved
			return 0, fmt.Errorf("reserve seqnums: %w", err)
		}
	}
	gs.lastSeq = next
	return next, nil
}

// save writes the group record now, compare-and-set on its version.
// Changes clients must not lose (mutes, admins, meta, closing) are saved
// before they are answered. A conflict means another router wrote the
// group since this one loaded it: the state here is stale, so it is
// dropped and the request fails with 503 (the client retries and reaches
// the current owner). gs.mu must be held.
func (c *groupCache) save(ctx context.Context, gs *groupState) error {
	v, err := c.r.store.PutGroup(ctx, gs.g)
	if errors.Is(err, storage.ErrConflict) {
		c.r.log.Warn("group changed under this router; reloading", "group", gs.g.ID)
		c.forget(gs)
		return errMoved
	}
	if err != nil {
		return fmt.Errorf("save group: %w", err)
	}
	gs.g.Version = v
	gs.dirty = false
	return nil
}

// forget drops a stale state from the cache. gs.mu must be held; c.mu is
// taken after it, which is safe because no code holds c.mu while waiting
// for a group's mutex.
func (c *groupCache) forget(gs *groupState) {
	gs.dropped = true
	key := gs.g.AppID + "/" + gs.g.ID
	c.mu.Lock()
	if c.groups[key] == gs {
		delete(c.groups, key)
	}
	c.mu.Unlock()
}

func (c *groupCache) snapshot() []*groupState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.groups))
}

// flush writes changed counters and member lists of every cached group.
func (c *groupCache) flush(ctx context.Context) error {
	var errs []error
	for _, gs := range c.snapshot() {
		gs.mu.Lock()
		errs = append(errs, c.flushLocked(ctx, gs))
		gs.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (c *groupCache) flushLocked(ctx context.Context, gs *groupState) error {
	if gs.dropped {
		return nil
	}
	if gs.dirty {
		if err := c.save(ctx, gs); err != nil {
			return err // a stale state writes no members either
		}
	}
	if len(gs.savedMembers) == 0 && len(gs.removed) == 0 {
		return nil
	}
	var ups []storage.Member
	for id := range gs.savedMembers {
		if m := gs.members[id]; m != nil {
			ups = append(ups, storedMember(m))
		}
	}
	if err := c.r.store.SaveMembers(ctx, gs.g.AppID, gs.g.ID, ups, slices.Collect(maps.Keys(gs.removed))); err != nil {
		return err
	}
	clear(gs.savedMembers)
	clear(gs.removed)
	return nil
}

// dropPartition saves and forgets the groups of partition p.
func (c *groupCache) dropPartition(ctx context.Context, p int) {
	c.mu.Lock()
	var drop []*groupState
	for k, gs := range c.groups {
		if gs.part == p {
			drop = append(drop, gs)
			delete(c.groups, k)
		}
	}
	c.mu.Unlock()
	for _, gs := range drop {
		gs.mu.Lock()
		if err := c.flushLocked(ctx, gs); err != nil {
			c.r.log.Error("save group state", "group", gs.g.ID, "err", err)
		}
		gs.dropped = true
		touch := len(gs.members) > 0 && !gs.g.Closed
		gs.mu.Unlock()
		if touch && !c.r.parts.owns(p) {
			c.r.touch(gs.g.AppID, gs.g.ID)
		}
	}
}

// tick runs the timed work of every cached group: members whose grace
// ran out leave, sessions of dead gateways end, and pending member
// changes go out as one memberchange per interval.
func (c *groupCache) tick(ctx context.Context, now time.Time) {
	for _, gs := range c.snapshot() {
		gs.mu.Lock()
		if !gs.dropped && !gs.g.Closed {
			c.r.expireMembers(gs, now)
			if !gs.change.empty() && now.Sub(gs.lastChange) >= c.r.cfg.MemberChangeInterval {
				c.r.publishMemberChange(gs)
				gs.lastChange = now
			}
		}
		gs.mu.Unlock()
	}
}

func storedMember(m *member) storage.Member {
	sm := storage.Member{UserID: m.user.UserId, UserExt: m.user.UserExtension, JoinTimeMs: m.joinTime}
	for s := range m.sessions {
		sm.Sessions = append(sm.Sessions, s)
	}
	return sm
}

// groupInfo renders the state for a client. gs.mu must be held.
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
		MuteStatus: muteStatus(&g),
		Closed:     g.Closed,
		LastSeqnum: gs.lastSeq,
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

// mayBypass reports whether caller may skip the group's moderation and
// mute check: its owner and admins may.
func mayBypass(g *storage.Group, c *liveimpb.Caller) bool {
	return isManager(g, c.UserId)
}

// isMuted reports whether userID may not send: owner and admins never are;
// with muteAll everyone else is unless whitelisted.
func isMuted(g *storage.Group, userID string) bool {
	if isManager(g, userID) {
		return false
	}
	if g.MuteAll && !slices.Contains(g.WhiteUsers, userID) {
		return true
	}
	return slices.Contains(g.MutedUsers, userID)
}

// tokenBucket limits a rate; it is guarded by its owner's lock.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newTokenBucket(rate float64, now time.Time) tokenBucket {
	return tokenBucket{rate: rate, burst: rate, tokens: rate, last: now}
}

// allow takes a token if one is there.
func (b *tokenBucket) allow(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
