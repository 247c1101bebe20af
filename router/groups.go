package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// groupState is a group's hot state. mu guards every field.
type groupState struct {
	mu      sync.Mutex
	g       storage.Group
	lastSeq int64 // highest seqnum handed out
	dirty   bool  // g differs from what the store holds
}

// groupCache holds the state of groups this router has touched. Lock
// order: groupCache.mu, then groupState.mu; never the reverse.
type groupCache struct {
	store    storage.Store
	seqBlock int64

	mu     sync.Mutex
	groups map[string]*groupState
}

func newGroupCache(store storage.Store, seqBlock int64) *groupCache {
	return &groupCache{store: store, seqBlock: seqBlock, groups: make(map[string]*groupState)}
}

// get returns the group's state, loading it on first use. A group that
// does not exist is liveimpb.ErrGroupNotFound.
func (c *groupCache) get(ctx context.Context, appID, groupID string) (*groupState, error) {
	key := appID + "/" + groupID
	c.mu.Lock()
	gs, ok := c.groups[key]
	c.mu.Unlock()
	if ok {
		return gs, nil
	}
	g, err := c.store.GetGroup(ctx, appID, groupID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, liveimpb.ErrGroupNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load group: %w", err)
	}
	last, err := c.store.LastSeq(ctx, appID, groupID)
	if err != nil {
		return nil, fmt.Errorf("load last seq: %w", err)
	}
	gs = &groupState{g: g, lastSeq: max(last, g.SeqReserved)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.groups[key]; ok {
		return prev, nil // loaded concurrently by another worker
	}
	c.groups[key] = gs
	return gs, nil
}

// nextSeq hands out the group's next seqnum, first reserving a new block
// in the store when the current one is used up. gs.mu must be held.
func (c *groupCache) nextSeq(ctx context.Context, gs *groupState) (int64, error) {
	next := gs.lastSeq + 1
	if next > gs.g.SeqReserved {
		g := gs.g
		g.SeqReserved = gs.lastSeq + c.seqBlock
		if err := c.store.PutGroup(ctx, g); err != nil {
			return 0, fmt.Errorf("reserve seqnums: %w", err)
		}
		gs.g = g
		gs.dirty = false
	}
	gs.lastSeq = next
	return next, nil
}

// flush writes every changed group back to the store.
func (c *groupCache) flush(ctx context.Context) error {
	c.mu.Lock()
	states := slices.Collect(maps.Values(c.groups))
	c.mu.Unlock()
	var errs []error
	for _, gs := range states {
		gs.mu.Lock()
		if gs.dirty {
			if err := c.store.PutGroup(ctx, gs.g); err != nil {
				errs = append(errs, err)
			} else {
				gs.dirty = false
			}
		}
		gs.mu.Unlock()
	}
	return errors.Join(errs...)
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
			Pv:        g.PV,
			MsgAmount: maps.Clone(g.MsgAmount),
		},
		MuteStatus: &liveimpb.MuteStatus{
			GroupId:       g.ID,
			MuteAll:       g.MuteAll,
			MuteUserList:  slices.Clone(g.MutedUsers),
			WhiteUserList: slices.Clone(g.WhiteUsers),
		},
		Closed:     g.Closed,
		LastSeqnum: gs.lastSeq,
	}
}

// isManager reports whether userID is the group's owner or an admin.
func isManager(g *storage.Group, userID string) bool {
	return g.Creator == userID || slices.Contains(g.Admins, userID)
}

// isMuted reports whether userID may not send: owner and admins never are;
// with muteAll everyone else is unless whitelisted.
func isMuted(g *storage.Group, userID string) bool {
	if isManager(g, userID) {
		return false
	}
	if g.MuteAll {
		return !slices.Contains(g.WhiteUsers, userID)
	}
	return slices.Contains(g.MutedUsers, userID)
}
