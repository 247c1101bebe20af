package gateway

import (
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go"
)

// Lock order of the gateway. Every lock is a leaf: no code path holds two
// of them at once. Registries copy what they need under their shard lock
// and write to sockets (conn.mu) only after releasing it:
//
//	roomShard.mu     rooms and their members
//	sessionShard.mu  sessions by user
//	loop.mu          a loop's fd table
//	conn.mu          one socket
//	rpcTable.mu      pending router requests
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
	joining int // joins sent to the router and not answered yet
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
	users map[string][]*conn
}

// sessions is the sharded registry of logged-in connections by app/user.
type sessions struct {
	shards [registryShards]sessionShard
}

func newSessions() *sessions {
	s := &sessions{}
	for i := range s.shards {
		s.shards[i].users = make(map[string][]*conn)
	}
	return s
}

func (s *sessions) add(userKey string, c *conn) {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	sh.users[userKey] = append(sh.users[userKey], c)
	sh.mu.Unlock()
}

func (s *sessions) remove(userKey string, c *conn) {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.users[userKey]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(sh.users, userKey)
	} else {
		sh.users[userKey] = list
	}
}

// conns appends the user's local connections to buf.
func (s *sessions) conns(userKey string, buf []*conn) []*conn {
	sh := &s.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return append(buf, sh.users[userKey]...)
}
