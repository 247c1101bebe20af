package client

import (
	"context"
	"sync"

	"github.com/liveim/liveim/proto/liveimpb"
)

// HighTracker delivers a group's HIGH messages exactly once and in order
// across reconnects: it remembers the last seqnum delivered, drops what
// it has seen, and on Resume fetches what was missed. Safe for concurrent
// use.
type HighTracker struct {
	mu   sync.Mutex
	last map[string]int64 // group -> last HIGH seqnum delivered
}

// NewHighTracker returns an empty tracker.
func NewHighTracker() *HighTracker { return &HighTracker{last: make(map[string]int64)} }

// Last returns the last HIGH seqnum delivered for the group.
func (t *HighTracker) Last(groupID string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[groupID]
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
// delivered. Call it after (re)joining the group, and hold back live
// messages of the group until it returns: pass them to Accept afterwards,
// which drops those Resume already delivered.
func (t *HighTracker) Resume(ctx context.Context, c *Client, groupID string) ([]*liveimpb.Message, error) {
	var out []*liveimpb.Message
	for {
		rep, err := c.ResumeGroup(ctx, groupID, t.Last(groupID))
		if err != nil {
			return out, err
		}
		for _, m := range rep.Messages {
			if m.GroupId == "" {
				m.GroupId = groupID
			}
			if t.Accept(m) {
				out = append(out, m)
			}
		}
		if !rep.HasMore {
			return out, nil
		}
	}
}
