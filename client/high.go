package client

import (
	"context"
	"sync"

	"github.com/liveim/liveim/proto/liveimpb"
)

// HighTracker delivers a group's HIGH messages exactly once and in order
// across reconnects, and the deletions a client missed while it was away:
// it remembers the last seqnum delivered and the last deletion known per
// group, drops what it has seen, and on Resume fetches what was missed.
// Safe for concurrent use.
type HighTracker struct {
	mu         sync.Mutex
	last       map[string]int64 // group -> last HIGH seqnum delivered
	lastDelete map[string]int64 // group -> last deletion known (delete_seq)
}

// NewHighTracker returns an empty tracker.
func NewHighTracker() *HighTracker {
	return &HighTracker{last: make(map[string]int64), lastDelete: make(map[string]int64)}
}

// Last returns the last HIGH seqnum delivered for the group.
func (t *HighTracker) Last(groupID string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[groupID]
}

// Joined records the deletions a group had when the client first joined
// it (GroupInfo.last_delete_seq): older ones are none of its business.
// A rejoin changes nothing.
func (t *HighTracker) Joined(info *liveimpb.GroupInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.lastDelete[info.GroupId]; !ok {
		t.lastDelete[info.GroupId] = info.LastDeleteSeq
	}
}

// Deleted records a live deletion event.
func (t *HighTracker) Deleted(ev *liveimpb.DeleteGroupMessageEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastDelete[ev.GroupId] = max(t.lastDelete[ev.GroupId], ev.DeleteSeq)
}

// Accept reports whether a live HIGH message is new, and records it.
// A message at or below the last seqnum delivered is a duplicate.
func (t *HighTracker) Accept(m *liveimpb.Message) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.Seqnum <= t.last[m.GroupId] {
		return false
	}
	t.last[m.GroupId] = m.Seqnum
	return true
}

// Resume fetches, through c, every HIGH message of the group after the
// last one delivered and returns them in order, recording them as
// delivered, with the IDs of the messages deleted since the last deletion
// known (forget them). Call it after (re)joining the group, and hold back
// live messages of the group until it returns: pass them to Accept
// afterwards, which drops those Resume already delivered.
func (t *HighTracker) Resume(ctx context.Context, c *Client, groupID string) (msgs []*liveimpb.Message, deleted []string, err error) {
	for {
		t.mu.Lock()
		afterDelete := t.lastDelete[groupID]
		t.mu.Unlock()
		rep, err := c.ResumeGroup(ctx, groupID, t.Last(groupID), afterDelete)
		if err != nil {
			return msgs, deleted, err
		}
		for _, m := range rep.Messages {
			if m.GroupId == "" {
				m.GroupId = groupID
			}
			if t.Accept(m) {
				msgs = append(msgs, m)
			}
		}
		deleted = append(deleted, rep.DeletedMessageIds...)
		t.mu.Lock()
		t.lastDelete[groupID] = max(t.lastDelete[groupID], rep.LastDeleteSeq)
		t.mu.Unlock()
		if !rep.HasMore {
			return msgs, deleted, nil
		}
	}
}
