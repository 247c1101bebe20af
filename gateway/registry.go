package gateway

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
)

// Lock order of the gateway. Every lock is a leaf: no code path holds two
// of them at once. Registries copy what they need under their shard lock
// and write to sockets (conn.mu) only after releasing it:
//
//	roomShard.mu     rooms and their members
//	sessionShard.mu  sessions by user
//	loop.mu          a loop's fd table (epoll)
//	portable.mu      the portable engine's connection set
//	conn.mu          one socket (closeNow drops it before loop.mu or portable.mu)
//	rpcTable.mu      pending router requests
//	dispatcher.mu    a dispatcher's room backlogs
//	ipLimits.mu      connections and upgrades per client address
//	session.mu       a session's rate buckets
const registryShards = 64

var registrySeed = maphash.MakeSeed()

func shardOf(key string) int {
	return int(maphash.String(registrySeed, key) % registryShards)
}

// roomKey identifies a group across apps.
func roomKey(appID, groupID string) string { return appID + "/" + groupID }

// room is a group with local members: one NATS subscription, however many
// members.
type room struct {
	sub     *nats.Subscription
	members map[*conn]struct{}
	joining int   // joins sent to the router and not answered yet
	high    int64 // seqnum of the last HIGH message delivered to the room
}

type roomShard struct {
	mu    sync.Mutex
	rooms map[string]*room
}

// rooms is the sharded registry of groups with local members.
type rooms struct {
	shards    [registryShards]roomShard
	subscribe func(key string) (*nats.Subscription, error)
}

func newRooms(subscribe func(key string) (*nats.Subscription, error)) *rooms {
	r := &rooms{subscribe: subscribe}
	for i := range r.shards {
		r.shards[i].rooms = make(map[string]*room)
	}
	return r
}

// beginJoin makes sure the room is subscribed before the join request goes
// to the router, so no message published after the router accepts the
// join can be missed.
func (r *rooms) beginJoin(key string) error {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rm := sh.rooms[key]
	if rm == nil {
		sub, err := r.subscribe(key)
		if err != nil {
			return err
		}
		rm = &room{sub: sub, members: make(map[*conn]struct{})}
		sh.rooms[key] = rm
	}
	rm.joining++
	return nil
}

// endJoin settles a join begun with beginJoin: on success c becomes a
// member. It reports whether c is a member.
func (r *rooms) endJoin(key string, c *conn, ok bool) bool {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rm := sh.rooms[key]
	if rm == nil {
		return false
	}
	rm.joining--
	if ok {
		rm.members[c] = struct{}{}
	}
	r.dropIfEmptyLocked(sh, key, rm)
	return ok
}

// leave removes c from the room, unsubscribing when nobody is left.
func (r *rooms) leave(key string, c *conn) {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rm := sh.rooms[key]
	if rm == nil {
		return
	}
	delete(rm.members, c)
	r.dropIfEmptyLocked(sh, key, rm)
}

func (r *rooms) dropIfEmptyLocked(sh *roomShard, key string, rm *room) {
	if len(rm.members) == 0 && rm.joining == 0 {
		_ = rm.sub.Unsubscribe()
		delete(sh.rooms, key)
	}
}

// acceptHigh reports whether a HIGH message with seqnum seq is new to the
// room (above every HIGH seqnum delivered to it) and records it. A group's
// HIGH messages arrive in seqnum order, so a repeat is never new.
func (r *rooms) acceptHigh(key string, seq int64) bool {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rm := sh.rooms[key]
	if rm == nil {
		return true
	}
	if seq <= rm.high {
		return false
	}
	rm.high = seq
	return true
}

// members appends the room's members to buf and returns it.
func (r *rooms) members(key string, buf []*conn) []*conn {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if rm := sh.rooms[key]; rm != nil {
		for c := range rm.members {
			buf = append(buf, c)
		}
	}
	return buf
}

// size returns the number of local members of the room.
func (r *rooms) size(key string) int {
	sh := &r.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if rm := sh.rooms[key]; rm != nil {
		return len(rm.members)
	}
	return 0
}

// count returns the number of rooms with local members or joins.
func (r *rooms) count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.rooms)
		sh.mu.Unlock()
	}
	return n
}

type sessionShard struct {
	mu    sync.Mutex
	users map[string]*localUser
}

// localUser is a user with sessions on this gateway: ONE subscription to
// the user's subject, however many sessions (devices), so each C2C
// message or notice arrives once.
type localUser struct {
	sub   *nats.Subscription
	conns []*conn
	// logins acquired the subscription and wait for their check (add or
	// abandon ends them); takeover notices reach them too.
	logins []*session
}

// sessions is the sharded registry of logged-in connections by app/user.
type sessions struct {
	shards    [registryShards]sessionShard
	subscribe func(userKey string) (*nats.Subscription, error)
}

func newSessions(subscribe func(userKey string) (*nats.Subscription, error)) *sessions {
	s := &sessions{subscribe: subscribe}
	for i := range s.shards {
		s.shards[i].users = make(map[string]*localUser)
	}
	return s
}

// acquire makes sure the user's subject is subscribed before a login
// completes; the login then calls add, or abandon if it fails.
func (s *sessions) acquire(userKey string, login *session) error {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.users[userKey]
	if u == nil {
		sub, err := s.subscribe(userKey)
		if err != nil {
			return err
		}
		u = &localUser{sub: sub}
		sh.users[userKey] = u
	}
	u.logins = append(u.logins, login)
	return nil
}

// add turns an acquired login into a session of the user, on c.
func (s *sessions) add(userKey string, login *session, c *conn) {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users[userKey]; u != nil {
		u.logins = deleteSession(u.logins, login)
		u.conns = append(u.conns, c)
	}
}

// abandon gives up an acquired login that failed.
func (s *sessions) abandon(userKey string, login *session) {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users[userKey]; u != nil {
		u.logins = deleteSession(u.logins, login)
		dropIfIdleLocked(sh, userKey, u)
	}
}

func deleteSession(ss []*session, s *session) []*session {
	if i := slices.Index(ss, s); i >= 0 {
		return slices.Delete(ss, i, i+1)
	}
	return ss
}

// loginsOf appends the user's logins waiting for their check to buf.
func (s *sessions) loginsOf(userKey string, buf []*session) []*session {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users[userKey]; u != nil {
		buf = append(buf, u.logins...)
	}
	return buf
}

// remove forgets c's session; the last session of a user unsubscribes
// its subject. Removing a conn twice is harmless.
func (s *sessions) remove(userKey string, c *conn) {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.users[userKey]
	if u == nil {
		return
	}
	if i := slices.Index(u.conns, c); i >= 0 {
		u.conns = slices.Delete(u.conns, i, i+1)
	}
	dropIfIdleLocked(sh, userKey, u)
}

func dropIfIdleLocked(sh *sessionShard, userKey string, u *localUser) {
	if len(u.conns) == 0 && len(u.logins) == 0 {
		_ = u.sub.Unsubscribe()
		delete(sh.users, userKey)
	}
}

// conns appends the user's local connections to buf.
func (s *sessions) conns(userKey string, buf []*conn) []*conn {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users[userKey]; u != nil {
		buf = append(buf, u.conns...)
	}
	return buf
}
