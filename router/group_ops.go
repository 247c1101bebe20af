package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// createGroup creates a group, or opens a closed one again for a new live
// session (docs/protocol.md): members, admins, mutes and statistics start
// afresh, name, meta and creator come from this request, history and
// seqnums go on. An open group is left as it is (alreadyExist). With an ID
// it runs on the group's worker (j.w); without one, on any router. admins
// (the server API's) are checked before anything is made and set with it.
func (r *Router) createGroup(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.CreateGroupRequest, admins []string) (*liveimpb.Reply, error) {
	if c.Role != auth.RoleAdmin && !c.Server {
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
	if err := r.checkAdmins(admins); err != nil {
		return nil, err
	}
	existing, err := r.store.GetGroup(ctx, c.AppId, groupID)
	switch {
	case err == nil && !existing.Closed:
		return createReply(groupID, true), nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("get group: %w", err)
	}
	if err := r.checkGroupQuota(ctx, c.AppId, false); err != nil {
		return nil, err
	}
	if err == nil { // closed: a new session in the same room
		return r.reopenGroup(ctx, j, c, req, admins)
	}
	_, created, err := r.store.CreateGroup(ctx, storage.Group{
		AppID:        c.AppId,
		ID:           groupID,
		Name:         req.GroupName,
		Meta:         req.GroupMeta,
		Creator:      c.UserId,
		Admins:       adminSet(admins),
		CreateTimeMs: r.now().UnixMilli(),
	})
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	if created {
		if err := r.checkGroupQuota(ctx, c.AppId, true); err != nil {
			if derr := r.store.DeleteGroup(ctx, c.AppId, groupID); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
				r.log.Warn("a group made past the app's limit stays", telemetry.LogAppID, c.AppId, telemetry.LogGroupID, groupID, "err", derr)
			}
			return nil, err
		}
		r.emit(ctx, c.AppId, callback.Event{Type: callback.GroupCreated, GroupID: groupID, User: &callback.User{UserID: c.UserId, UserExtension: c.UserExtension}})
	}
	return createReply(groupID, !created), nil
}

// checkAdmins checks a group's new admins: at most MaxAdmins user IDs.
func (r *Router) checkAdmins(admins []string) error {
	if len(admins) > r.cfg.MaxAdmins {
		return liveimpb.InvalidParam("admins", "at most %d", r.cfg.MaxAdmins)
	}
	for _, a := range admins {
		if err := ids.Check("admins", a); err != nil {
			return err
		}
	}
	return nil
}

// adminSet is admins sorted, each once, as a group keeps them.
func adminSet(admins []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(admins)))
}

// checkGroupQuota refuses (443) a group the app has no room for: its open
// groups are at its limit (made false), or, counted again once the group
// was made or opened (made), past it. Creates of different groups run on
// different workers and routers at once, each counting before any has
// made its group: the count after undoes what went past the limit (both
// of two that raced for the last place, which a retry settles), so the
// limit holds (e2e.TestAuditAPIGroupQuotaHoldsUnderConcurrency).
func (r *Router) checkGroupQuota(ctx context.Context, appID string, made bool) error {
	app, err := r.apps.get(ctx, appID)
	if err != nil {
		return err
	}
	limit := r.cfg.MaxGroups
	if app.MaxGroups > 0 {
		limit = app.MaxGroups
	}
	n, err := r.store.CountGroups(ctx, appID)
	if err != nil {
		return fmt.Errorf("count groups: %w", err)
	}
	if made {
		n--
	}
	if n >= limit {
		return liveimpb.ErrLimitReached.With("the app has %d open groups, its limit", limit)
	}
	return nil
}

// reopenGroup opens a closed group again for a new session, on the
// group's worker.
func (r *Router) reopenGroup(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.CreateGroupRequest, admins []string) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, c.AppId, req.GroupId, j.part)
	if err != nil {
		return nil, err
	}
	if !gs.g.Closed { // reopened meanwhile
		return createReply(req.GroupId, true), nil
	}
	old := gs.g
	g := &gs.g
	g.Closed, g.Name, g.Meta, g.Creator, g.CreateTimeMs = false, req.GroupName, req.GroupMeta, c.UserId, r.now().UnixMilli()
	g.Admins, g.MuteAll, g.MutedUsers, g.MuteUntil, g.WhiteUsers, g.PV, g.MsgAmount = adminSet(admins), false, nil, nil, nil, 0, nil
	if err := j.w.save(ctx, gs); err != nil {
		gs.g = old
		return nil, err
	}
	if err := r.checkGroupQuota(ctx, c.AppId, true); err != nil {
		gs.g.Closed = true
		if serr := j.w.save(ctx, gs); serr != nil {
			r.log.Warn("a group opened past the app's limit stays open", telemetry.LogAppID, c.AppId, telemetry.LogGroupID, req.GroupId, "err", serr)
		}
		return nil, err
	}
	for id := range gs.members { // closing emptied them; whatever came back is stale
		r.removeMember(gs, id)
	}
	gs.change = memberChange{}
	r.emit(ctx, c.AppId, callback.Event{Type: callback.GroupCreated, GroupID: req.GroupId, User: &callback.User{UserID: c.UserId, UserExtension: c.UserExtension}})
	return createReply(req.GroupId, false), nil
}

func createReply(groupID string, exists bool) *liveimpb.Reply {
	return &liveimpb.Reply{Body: &liveimpb.Reply_CreateGroup{CreateGroup: &liveimpb.CreateGroupReply{GroupId: groupID, AlreadyExist: exists}}}
}

// manage locks a group for an owner/admin operation.
func (r *Router) manage(ctx context.Context, j job, c *liveimpb.Caller) (*groupState, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	if !mayBypass(&gs.g, c) {
		return nil, liveimpb.ErrForbidden.With("only the group's owner and admins may do this")
	}
	return gs, nil
}

func (r *Router) closeGroup(ctx context.Context, j job, c *liveimpb.Caller) (*liveimpb.Reply, error) {
	gs, err := r.manage(ctx, j, c)
	if err != nil {
		return nil, err
	}
	if gs.g.Closed {
		return &liveimpb.Reply{}, nil
	}
	j.w.finishSends(groupKey(j.appID, j.groupID), true) // messages sent before the close reach the members before their exit
	gs.g.Closed = true
	if err := j.w.save(ctx, gs); err != nil {
		gs.g.Closed = false
		return nil, err
	}
	for id := range gs.members {
		delete(gs.members, id)
		gs.removed[id] = true
	}
	gs.byJoin, gs.gone = nil, 0
	clear(gs.savedMembers)
	gs.change = memberChange{}
	r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_Exit{Exit: &liveimpb.ExitEvent{GroupId: j.groupID, Reason: liveimpb.ExitReason_EXIT_REASON_GROUP_CLOSED}}},
		nats.Header{subject.HeaderExit: []string{"1"}})
	r.emit(ctx, j.appID, callback.Event{Type: callback.GroupClosed, GroupID: j.groupID})
	return &liveimpb.Reply{}, nil
}

func (r *Router) joinGroup(ctx context.Context, j job, c *liveimpb.Caller) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	if gs.g.Closed {
		return nil, liveimpb.ErrGroupClosed
	}
	r.endMutes(gs, r.now())
	if banned(&gs.g, c.UserId, r.now().UnixMilli()) {
		return nil, liveimpb.ErrForbidden.With("banned from the group until %s", time.UnixMilli(gs.g.Bans[c.UserId]).UTC().Format(time.RFC3339))
	}
	if r.addSession(gs, c) {
		gs.g.PV++
		gs.dirty = true
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: groupInfo(gs)}}, nil
}

func (r *Router) leaveGroup(ctx context.Context, j job, c *liveimpb.Caller) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	r.dropSession(gs, c.UserId, storage.MemberSession{GatewayID: c.GatewayId, SessionID: c.SessionId}, false)
	return &liveimpb.Reply{}, nil
}

func (r *Router) queryGroup(ctx context.Context, j job) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	r.endMutes(gs, r.now())
	return &liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: groupInfo(gs)}}, nil
}

func (r *Router) modifyGroup(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ModifyGroupRequest) (*liveimpb.Reply, error) {
	if req.ForceUpdateAdmins {
		if err := r.checkAdmins(req.Admins); err != nil {
			return nil, err
		}
	}
	if req.ForceUpdateGroupMeta && len(req.GroupMeta) > r.cfg.MaxGroupMetaBytes {
		return nil, liveimpb.ErrTooLarge.With("groupMeta: larger than %d bytes", r.cfg.MaxGroupMetaBytes)
	}
	gs, err := r.manage(ctx, j, c)
	if err != nil {
		return nil, err
	}
	if gs.g.Closed {
		return nil, liveimpb.ErrGroupClosed
	}
	old := gs.g
	if req.ForceUpdateAdmins {
		gs.g.Admins = adminSet(req.Admins)
	}
	if req.ForceUpdateGroupMeta {
		gs.g.Meta = req.GroupMeta
	}
	if err := j.w.save(ctx, gs); err != nil {
		gs.g = old
		return nil, err
	}
	r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_InfoChange{InfoChange: &liveimpb.InfoChangeEvent{
		GroupId: j.groupID, GroupMeta: gs.g.Meta, AdminList: slices.Clone(gs.g.Admins),
	}}}, nil)
	return &liveimpb.Reply{Body: &liveimpb.Reply_GroupInfo{GroupInfo: groupInfo(gs)}}, nil
}

// sortedMembers returns the members ordered by join time (then user ID).
func sortedMembers(gs *groupState) []*member {
	list := make([]*member, 0, len(gs.members))
	for _, m := range gs.members {
		list = append(list, m)
	}
	slices.SortFunc(list, joinOrder)
	return list
}

// joinOrder orders members by join time, then user ID.
func joinOrder(a, b *member) int {
	return cmp.Or(cmp.Compare(a.joinTime, b.joinTime), strings.Compare(a.id, b.id))
}

// joined puts a new member into the group's join order, if it is built:
// at the end, unless the clock stepped back.
func (gs *groupState) joined(m *member) {
	if gs.byJoin == nil {
		return
	}
	if n := len(gs.byJoin); n == 0 || joinOrder(gs.byJoin[n-1], m) < 0 {
		gs.byJoin = append(gs.byJoin, m)
		return
	}
	i, _ := slices.BinarySearchFunc(gs.byJoin, m, joinOrder)
	gs.byJoin = slices.Insert(gs.byJoin, i, m)
}

// left marks a member that left the group gone in its join order; once
// gone members are half of it, they are dropped.
func (gs *groupState) left(m *member) {
	if gs.byJoin == nil {
		return
	}
	m.gone = true
	if gs.gone++; gs.gone > len(gs.byJoin)/2 {
		gs.byJoin = slices.DeleteFunc(gs.byJoin, func(m *member) bool { return m.gone })
		gs.gone = 0
	}
}

func groupUser(m *member) *liveimpb.GroupUser {
	return &liveimpb.GroupUser{UserId: m.id, UserExtension: m.ext, JoinTime: m.joinTime}
}

func (r *Router) listRecentGroupUser(ctx context.Context, j job) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	rep := &liveimpb.ListRecentGroupUserReply{GroupId: j.groupID, Total: int64(len(gs.members))}
	page, _ := memberPage(gs, 0, "", true, r.cfg.RecentUsers, r.now())
	for _, m := range page {
		rep.UserList = append(rep.UserList, groupUser(m))
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_ListRecentGroupUser{ListRecentGroupUser: rep}}, nil
}

// maxGroupUserPage is listGroupUser's largest page.
const maxGroupUserPage = 50

// listGroupUser pages through the members by join time. The page token is
// "<joinTimeMs>_<userId>" of the last user returned; a token that is a
// plain number (as in the seed's samples) starts at the first page.
func (r *Router) listGroupUser(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ListGroupUserRequest) (*liveimpb.Reply, error) {
	size := int(req.PageSize)
	switch {
	case size < 0 || size > maxGroupUserPage:
		return nil, liveimpb.InvalidParam("pageSize", "must be 1..%d", maxGroupUserPage)
	case size == 0:
		size = 20
	}
	afterTime, afterUser, err := parseMemberPageToken(req.NextPageToken)
	if err != nil {
		return nil, err
	}
	gs, err := r.manage(ctx, j, c)
	if err != nil {
		return nil, err
	}
	page, more := memberPage(gs, afterTime, afterUser, req.SortType == liveimpb.SortType_SORT_TYPE_DESC, size, r.now())
	rep := &liveimpb.ListGroupUserReply{GroupId: j.groupID, HasMore: more}
	for _, m := range page {
		rep.UserList = append(rep.UserList, groupUser(m))
	}
	if more {
		last := page[len(page)-1]
		rep.NextPageToken = strconv.FormatInt(last.joinTime, 10) + "_" + last.id
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_ListGroupUser{ListGroupUser: rep}}, nil
}

// memberPage returns up to size members in join order (by join time, then
// user ID; desc: newest first) after the member (afterTime, afterUser),
// from the first with afterUser empty, and whether more follow.
//
// It reads the group's join order (groupState.byJoin), built at the first
// list and kept since: a page costs a binary search and its members, not
// a sort of every member (in a room of 100,000, any member's
// listRecentGroupUser took 50-80 ms of the worker other apps' groups
// share).
func memberPage(gs *groupState, afterTime int64, afterUser string, desc bool, size int, now time.Time) ([]*member, bool) {
	if gs.byJoin == nil {
		gs.byJoin, gs.gone = sortedMembers(gs), 0
	}
	gs.listedAt = now
	list, tok := gs.byJoin, &member{joinTime: afterTime, id: afterUser}
	i, step := 0, 1
	switch {
	case desc:
		i, step = len(list)-1, -1
		if afterUser != "" {
			j, _ := slices.BinarySearchFunc(list, tok, joinOrder)
			i = j - 1 // before the token, whether it is there or not
		}
	case afterUser != "":
		i, _ = slices.BinarySearchFunc(list, tok, joinOrder)
		for i < len(list) && joinOrder(list[i], tok) == 0 { // it, and its gone twin of a leave and rejoin within a millisecond
			i++
		}
	}
	var out []*member
	for ; i >= 0 && i < len(list); i += step {
		if list[i].gone {
			continue
		}
		if len(out) == size {
			return out, true
		}
		out = append(out, list[i])
	}
	return out, false
}

// parseMemberPageToken reads a listGroupUser page token:
// "<joinTimeMs>_<userId>" of the last user of the previous page. Empty, or
// a bare number (the seed's samples pass 12), is the first page (afterUser
// empty); anything else is 400.
func parseMemberPageToken(tok string) (afterTime int64, afterUser string, err error) {
	if tok == "" {
		return 0, "", nil
	}
	ts, user, ok := strings.Cut(tok, "_")
	t, perr := strconv.ParseInt(ts, 10, 64)
	switch {
	case !ok && perr == nil:
		return 0, "", nil
	case !ok || perr != nil || !ids.Valid(user):
		return 0, "", liveimpb.InvalidParam("nextPageToken", "not a token this server returned")
	}
	return t, user, nil
}

// changeMutes applies change (nil only reads) to the group's mute state as
// an owner/admin, saves it and tells the members with mutechange.
func (r *Router) changeMutes(ctx context.Context, j job, c *liveimpb.Caller, change func(*storage.Group) error) (*liveimpb.Reply, error) {
	gs, err := r.manage(ctx, j, c)
	if err != nil {
		return nil, err
	}
	r.endMutes(gs, r.now())
	if change != nil {
		if gs.g.Closed {
			return nil, liveimpb.ErrGroupClosed
		}
		old := gs.g
		old.MutedUsers, old.WhiteUsers, old.MuteUntil = slices.Clone(gs.g.MutedUsers), slices.Clone(gs.g.WhiteUsers), maps.Clone(gs.g.MuteUntil)
		if err := change(&gs.g); err != nil {
			gs.g = old
			return nil, err
		}
		if err := j.w.save(ctx, gs); err != nil {
			gs.g = old
			return nil, err
		}
		r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_MuteChange{MuteChange: &liveimpb.MuteChangeEvent{
			GroupId: j.groupID, Status: muteStatus(&gs.g),
		}}}, nil)
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_MuteStatus{MuteStatus: muteStatus(&gs.g)}}, nil
}

// maxMuteList caps the muted and whitelisted users of a group.
const maxMuteList = 1000

// muteAll mutes (on) or unmutes the group; on, a white list that is not
// nil, or any with replace, becomes the group's.
func muteAll(g *storage.Group, white []string, on, replace bool) error {
	if on && (white != nil || replace) {
		for _, u := range white {
			if err := ids.Check("whiteUserList", u); err != nil {
				return err
			}
		}
		if len(white) > maxMuteList {
			return liveimpb.ErrLimitReached.With("whiteUserList: at most %d users", maxMuteList)
		}
		g.WhiteUsers = slices.Compact(slices.Sorted(slices.Values(white)))
	}
	g.MuteAll = on
	return nil
}

// maxMuteSeconds caps a timed mute and a ban: a year.
const maxMuteSeconds = 366 * 24 * 3600

// muteUsers mutes (on) or unmutes users. With durationSec > 0 the mute
// ends by itself durationSec after nowMs; 0 mutes until cancelled.
func muteUsers(g *storage.Group, users []string, on bool, durationSec, nowMs int64) error {
	if len(users) == 0 {
		return liveimpb.InvalidParam("userList", "required")
	}
	if durationSec < 0 || durationSec > maxMuteSeconds {
		return liveimpb.InvalidParam("durationSeconds", "between 0 and %d", maxMuteSeconds)
	}
	for _, u := range users {
		if err := ids.Check("userList", u); err != nil {
			return err
		}
	}
	set := slices.Clone(g.MutedUsers)
	for _, u := range users {
		if on {
			set = append(set, u)
		} else {
			set = slices.DeleteFunc(set, func(x string) bool { return x == u })
		}
	}
	set = slices.Compact(slices.Sorted(slices.Values(set)))
	if len(set) > maxMuteList {
		return liveimpb.ErrLimitReached.With("userList: at most %d muted users", maxMuteList)
	}
	g.MutedUsers = set
	for _, u := range users {
		if on && durationSec > 0 {
			if g.MuteUntil == nil {
				g.MuteUntil = make(map[string]int64)
			}
			g.MuteUntil[u] = nowMs + durationSec*1000
		} else {
			delete(g.MuteUntil, u)
		}
	}
	return nil
}
