package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// minClientType is the lowest message type a client may use; lower types
// are reserved for the server API's system messages.
const minClientType = 10001

func (r *Router) checkContent(msgType int32, data string) error {
	if msgType < minClientType {
		return liveimpb.InvalidParam("type", "must be above 10000")
	}
	if len(data) > r.cfg.MaxDataBytes {
		return liveimpb.ErrTooLarge.With("data: larger than %d bytes", r.cfg.MaxDataBytes)
	}
	return nil
}

func (r *Router) sendGroupMessage(ctx context.Context, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("groupId", req.GroupId); err != nil {
		return nil, err
	}
	if err := r.checkContent(req.Type, req.Data); err != nil {
		return nil, err
	}
	repeat := req.RepeatCount
	if repeat < 0 {
		return nil, liveimpb.InvalidParam("repeatCount", "must not be negative")
	}
	if repeat == 0 {
		repeat = 1
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
	if isMuted(&gs.g, c.UserId) && !(req.SkipMuteCheck && isManager(&gs.g, c.UserId)) {
		return nil, liveimpb.ErrMuted
	}
	seq, err := r.groups.nextSeq(ctx, gs)
	if err != nil {
		return nil, err
	}
	if gs.g.MsgAmount == nil {
		gs.g.MsgAmount = make(map[int32]int64)
	}
	gs.g.MsgAmount[req.Type] += int64(repeat)
	gs.dirty = true
	msg := &liveimpb.Message{
		MessageId:   ids.New(),
		GroupId:     req.GroupId,
		Type:        req.Type,
		Sender:      &liveimpb.User{UserId: c.UserId, UserExtension: c.UserExtension},
		Data:        req.Data,
		Seqnum:      seq,
		Timestamp:   r.now().UnixMilli(),
		Level:       req.Level,
		RepeatCount: repeat,
		TotalMsgs:   gs.g.MsgAmount[req.Type],
	}
	if !req.NoStorage {
		if err := r.store.AppendMessage(ctx, storedMessage(c.AppId, msg)); err != nil {
			return nil, fmt.Errorf("store message: %w", err)
		}
	}
	frame, err := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
		Body: &liveimpb.Event_GroupMessage{GroupMessage: msg},
	}}})
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	out := nats.NewMsg(subject.Group(c.AppId, req.GroupId))
	out.Data = frame
	out.Header.Set(subject.HeaderSeq, strconv.FormatInt(seq, 10))
	if req.Level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
		out.Header.Set(subject.HeaderLevel, "1")
	}
	if err := r.nc.PublishMsg(out); err != nil {
		return nil, liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_SendMessage{SendMessage: &liveimpb.SendMessageReply{
		MessageId: msg.MessageId, Seqnum: seq, Timestamp: msg.Timestamp,
	}}}, nil
}

// sendC2CMessage delivers a message to every online session of the
// receiver as a NATS request on the user's subject; "no responders" means
// the receiver is offline (424).
func (r *Router) sendC2CMessage(ctx context.Context, c *liveimpb.Caller, req *liveimpb.SendC2CMessageRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("receiverId", req.ReceiverId); err != nil {
		return nil, err
	}
	if err := r.checkContent(req.Type, req.Data); err != nil {
		return nil, err
	}
	msg := &liveimpb.Message{
		MessageId:  ids.New(),
		Type:       req.Type,
		Sender:     &liveimpb.User{UserId: c.UserId, UserExtension: c.UserExtension},
		Data:       req.Data,
		Timestamp:  r.now().UnixMilli(),
		Level:      req.Level,
		ReceiverId: req.ReceiverId,
	}
	frame, err := proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{
		Body: &liveimpb.Event_C2CMessage{C2CMessage: msg},
	}}})
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	out := nats.NewMsg(subject.User(c.AppId, req.ReceiverId))
	out.Data = frame
	out.Header.Set(subject.HeaderKind, subject.KindC2C)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.C2CTimeout)
	defer cancel()
	if _, err := r.nc.RequestMsgWithContext(ctx, out); err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, liveimpb.ErrReceiverOffline
		}
		return nil, liveimpb.ErrUnavailable.With("deliver: %v", err)
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_SendMessage{SendMessage: &liveimpb.SendMessageReply{
		MessageId: msg.MessageId, Timestamp: msg.Timestamp,
	}}}, nil
}

// listRecentMessage returns the group's last stored messages below
// req.Seqnum (newest when 0), oldest first.
func (r *Router) listRecentMessage(ctx context.Context, c *liveimpb.Caller, req *liveimpb.ListRecentMessageRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("groupId", req.GroupId); err != nil {
		return nil, err
	}
	size := int(req.PageSize)
	if size <= 0 || size > r.cfg.RecentPageSize {
		size = r.cfg.RecentPageSize
	}
	if _, err := r.groups.get(ctx, c.AppId, req.GroupId); err != nil {
		return nil, err
	}
	page, err := r.store.ListMessages(ctx, storage.MessageQuery{
		AppID: c.AppId, GroupID: req.GroupId, BeforeSeq: req.Seqnum, Desc: true, Limit: size,
	})
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	list := make([]*liveimpb.Message, 0, len(page.Messages))
	for _, m := range page.Messages {
		list = append(list, wireMessage(m))
	}
	slices.Reverse(list)
	return &liveimpb.Reply{Body: &liveimpb.Reply_ListMessage{ListMessage: &liveimpb.ListMessageReply{
		GroupId: req.GroupId, HasMore: page.NextPageToken != "", MessageList: list,
	}}}, nil
}

func storedMessage(appID string, m *liveimpb.Message) storage.Message {
	return storage.Message{
		AppID: appID, GroupID: m.GroupId, ID: m.MessageId, Seq: m.Seqnum, Type: m.Type,
		SenderID: m.Sender.GetUserId(), SenderExt: m.Sender.GetUserExtension(), Data: m.Data,
		TimestampMs: m.Timestamp, Level: int32(m.Level), RepeatCount: m.RepeatCount, TotalMsgs: m.TotalMsgs,
	}
}

func wireMessage(m storage.Message) *liveimpb.Message {
	return &liveimpb.Message{
		MessageId: m.ID, GroupId: m.GroupID, Type: m.Type,
		Sender: &liveimpb.User{UserId: m.SenderID, UserExtension: m.SenderExt},
		Data:   m.Data, Seqnum: m.Seq, Timestamp: m.TimestampMs,
		Level: liveimpb.MessageLevel(m.Level), RepeatCount: m.RepeatCount, TotalMsgs: m.TotalMsgs,
	}
}
