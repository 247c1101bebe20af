package client

import (
	"context"

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

// SendGroupMessage sends a message to a joined group.
func (c *Client) SendGroupMessage(ctx context.Context, req *liveimpb.SendGroupMessageRequest) (*liveimpb.SendMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: req}})
	return rep.GetSendMessage(), err
}

// SendC2CMessage sends a message to one user; 424 when they are offline.
func (c *Client) SendC2CMessage(ctx context.Context, req *liveimpb.SendC2CMessageRequest) (*liveimpb.SendMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: req}})
	return rep.GetSendMessage(), err
}

// ListRecentMessage returns a joined group's last stored messages, oldest
// first.
func (c *Client) ListRecentMessage(ctx context.Context, req *liveimpb.ListRecentMessageRequest) (*liveimpb.ListMessageReply, error) {
	rep, err := c.Do(ctx, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListRecentMessage{ListRecentMessage: req}})
	return rep.GetListMessage(), err
}
