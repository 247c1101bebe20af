package client

import (
	"context"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
)

// Ping asks the gateway for its time; it also keeps the session alive.
func (c *Client) Ping(ctx context.Context) (*liveimpb.PongReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_Ping{Ping: &liveimpb.PingRequest{}}})
	return rep.GetPong(), err
}

// Logout ends the session; the gateway then closes the connection.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_Logout{Logout: &liveimpb.LogoutRequest{}}})
	return err
}

// CreateGroup creates a group (login role admin).
func (c *Client) CreateGroup(ctx context.Context, req *liveimpb.CreateGroupRequest) (*liveimpb.CreateGroupReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CreateGroup{CreateGroup: req}})
	return rep.GetCreateGroup(), err
}

// JoinGroup joins a group and returns its info.
func (c *Client) JoinGroup(ctx context.Context, groupID string) (*liveimpb.GroupInfo, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_JoinGroup{JoinGroup: &liveimpb.JoinGroupRequest{GroupId: groupID}}})
	return rep.GetGroupInfo(), err
}

// LeaveGroup leaves a group.
func (c *Client) LeaveGroup(ctx context.Context, groupID string) error {
	_, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_LeaveGroup{LeaveGroup: &liveimpb.LeaveGroupRequest{GroupId: groupID}}})
	return err
}

// QueryGroup returns a group's info.
func (c *Client) QueryGroup(ctx context.Context, groupID string) (*liveimpb.GroupInfo, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_QueryGroup{QueryGroup: &liveimpb.QueryGroupRequest{GroupId: groupID}}})
	return rep.GetGroupInfo(), err
}

// SendGroupMessage sends a message to a joined group. A request without
// a ClientMsgId gets a random one, written into req: sending the same req
// again after a 503 or a timeout is a retry, which the server answers with
// the first send's reply, storing and delivering nothing new.
func (c *Client) SendGroupMessage(ctx context.Context, req *liveimpb.SendGroupMessageRequest) (*liveimpb.SendMessageReply, error) {
	if req.ClientMsgId == "" {
		req.ClientMsgId = ids.New()
	}
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: req}})
	return rep.GetSendMessage(), err
}

// SendC2CMessage sends a message to one user; 424 when they are offline.
// Like SendGroupMessage it gives req a ClientMsgId, so a retry of req has
// the same message ID and the receiver can drop the repeat.
func (c *Client) SendC2CMessage(ctx context.Context, req *liveimpb.SendC2CMessageRequest) (*liveimpb.SendMessageReply, error) {
	if req.ClientMsgId == "" {
		req.ClientMsgId = ids.New()
	}
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: req}})
	return rep.GetSendMessage(), err
}

// ListRecentMessage returns a joined group's last stored messages, oldest
// first.
func (c *Client) ListRecentMessage(ctx context.Context, req *liveimpb.ListRecentMessageRequest) (*liveimpb.ListMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListRecentMessage{ListRecentMessage: req}})
	return rep.GetListMessage(), err
}

// RefreshToken hands the gateway new credentials for the session's user.
func (c *Client) RefreshToken(ctx context.Context, auth *liveimpb.UserAuth) error {
	_, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_RefreshToken{RefreshToken: &liveimpb.RefreshTokenRequest{Auth: auth}}})
	return err
}

// CloseGroup closes a group (owner and admins); members get exit(groupId, 1).
func (c *Client) CloseGroup(ctx context.Context, groupID string) error {
	_, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CloseGroup{CloseGroup: &liveimpb.CloseGroupRequest{GroupId: groupID}}})
	return err
}

// ModifyGroup changes admins and/or meta (owner and admins).
func (c *Client) ModifyGroup(ctx context.Context, req *liveimpb.ModifyGroupRequest) (*liveimpb.GroupInfo, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ModifyGroup{ModifyGroup: req}})
	return rep.GetGroupInfo(), err
}

// ListRecentGroupUser returns the most recently joined members.
func (c *Client) ListRecentGroupUser(ctx context.Context, groupID string) (*liveimpb.ListRecentGroupUserReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListRecentGroupUser{ListRecentGroupUser: &liveimpb.ListRecentGroupUserRequest{GroupId: groupID}}})
	return rep.GetListRecentGroupUser(), err
}

// ListGroupUser pages through the members by join time (owner and admins).
func (c *Client) ListGroupUser(ctx context.Context, req *liveimpb.ListGroupUserRequest) (*liveimpb.ListGroupUserReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListGroupUser{ListGroupUser: req}})
	return rep.GetListGroupUser(), err
}

// MuteAll mutes the group but for owner, admins and whitelisted users.
func (c *Client) MuteAll(ctx context.Context, groupID string, whiteList ...string) (*liveimpb.MuteStatus, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_MuteAll{MuteAll: &liveimpb.MuteAllRequest{GroupId: groupID, WhiteUserList: whiteList}}})
	return rep.GetMuteStatus(), err
}

// CancelMuteAll lifts muteAll.
func (c *Client) CancelMuteAll(ctx context.Context, groupID string) (*liveimpb.MuteStatus, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CancelMuteAll{CancelMuteAll: &liveimpb.CancelMuteAllRequest{GroupId: groupID}}})
	return rep.GetMuteStatus(), err
}

// MuteUser mutes users of the group.
func (c *Client) MuteUser(ctx context.Context, groupID string, users ...string) (*liveimpb.MuteStatus, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_MuteUser{MuteUser: &liveimpb.MuteUserRequest{GroupId: groupID, UserList: users}}})
	return rep.GetMuteStatus(), err
}

// CancelMuteUser unmutes users of the group.
func (c *Client) CancelMuteUser(ctx context.Context, groupID string, users ...string) (*liveimpb.MuteStatus, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CancelMuteUser{CancelMuteUser: &liveimpb.CancelMuteUserRequest{GroupId: groupID, UserList: users}}})
	return rep.GetMuteStatus(), err
}

// ListMuteUsers returns the group's mute state (owner and admins).
func (c *Client) ListMuteUsers(ctx context.Context, groupID string) (*liveimpb.MuteStatus, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListMuteUsers{ListMuteUsers: &liveimpb.ListMuteUsersRequest{GroupId: groupID}}})
	return rep.GetMuteStatus(), err
}

// DeleteMessage deletes (owner, admins) or recalls (sender) a message.
func (c *Client) DeleteMessage(ctx context.Context, groupID, messageID string) error {
	_, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_DeleteMessage{DeleteMessage: &liveimpb.DeleteMessageRequest{GroupId: groupID, MessageId: messageID}}})
	return err
}

// ListMessage pages through a group's stored messages (owner and admins).
func (c *Client) ListMessage(ctx context.Context, req *liveimpb.ListMessageRequest) (*liveimpb.ListMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListMessage{ListMessage: req}})
	return rep.GetListMessage(), err
}

// ListHistoryMessage pages through a group's stored messages in a time
// range, without joining.
func (c *Client) ListHistoryMessage(ctx context.Context, req *liveimpb.ListHistoryMessageRequest) (*liveimpb.ListMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListHistoryMessage{ListHistoryMessage: req}})
	return rep.GetListMessage(), err
}

// ResumeGroup returns the HIGH messages of a joined group after seqnum,
// and the IDs of its messages deleted after the afterDeleteSeq-th
// deletion.
func (c *Client) ResumeGroup(ctx context.Context, groupID string, afterSeqnum, afterDeleteSeq int64) (*liveimpb.ResumeGroupReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ResumeGroup{ResumeGroup: &liveimpb.ResumeGroupRequest{
		GroupId: groupID, AfterSeqnum: afterSeqnum, AfterDeleteSeq: afterDeleteSeq,
	}}})
	return rep.GetResumeGroup(), err
}
