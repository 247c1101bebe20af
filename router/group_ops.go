package router

import (
	"context"
	"fmt"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

func (r *Router) createGroup(ctx context.Context, c *liveimpb.Caller, req *liveimpb.CreateGroupRequest) (*liveimpb.Reply, error) {
	if c.Role != auth.RoleAdmin {
		return nil, liveimpb.ErrForbidden.With("createGroup needs login role admin")
	}
	groupID := req.GroupId
	if groupID == "" {
		groupID = ids.New()
	} else if err := ids.Check("groupId", groupID); err != nil {
		return nil, err
	}
	switch {
	case req.GroupName == "":
		return nil, liveimpb.InvalidParam("groupName", "required")
	case len(req.GroupName) > r.cfg.MaxGroupNameBytes:
		return nil, liveimpb.InvalidParam("groupName", "longer than %d bytes", r.cfg.MaxGroupNameBytes)
	case len(req.GroupMeta) > r.cfg.MaxGroupMetaBytes:
		return nil, liveimpb.ErrTooLarge.With("groupMeta: larger than %d bytes", r.cfg.MaxGroupMetaBytes)
	}
	_, created, err := r.store.CreateGroup(ctx, storage.Group{
		AppID:        c.AppId,
		ID:           groupID,
		Name:         req.GroupName,
		Meta:         req.GroupMeta,
		Creator:      c.UserId,
		CreateTimeMs: r.now().UnixMilli(),
	})
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_CreateGroup{CreateGroup: &liveimpb.CreateGroupReply{
		GroupId: groupID, AlreadyExist: !created,
	}}}, nil
}

func (r *Router) joinGroup(ctx context.Context, c *liveimpb.Caller, req *liveimpb.JoinGroupRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("groupId", req.GroupId); err != nil {
		return nil, err
	}
	gs, err := r.groups.get(ctx, c.AppId, req.GroupId)
	if err != nil {
		return nil, err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.g.Closed {
		return nil, liveimpb.ErrGroupClosed
	}
	gs.g.PV++
	gs.dirty = true
	return &liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: groupInfo(gs)}}, nil
}

func (r *Router) leaveGroup(ctx context.Context, c *liveimpb.Caller, req *liveimpb.LeaveGroupRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("groupId", req.GroupId); err != nil {
		return nil, err
	}
	if _, err := r.groups.get(ctx, c.AppId, req.GroupId); err != nil {
		return nil, err
	}
	return &liveimpb.Reply{}, nil
}

func (r *Router) queryGroup(ctx context.Context, c *liveimpb.Caller, req *liveimpb.QueryGroupRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("groupId", req.GroupId); err != nil {
		return nil, err
	}
	gs, err := r.groups.get(ctx, c.AppId, req.GroupId)
	if err != nil {
		return nil, err
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return &liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: groupInfo(gs)}}, nil
}
