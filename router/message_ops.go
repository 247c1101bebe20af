package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

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

func (r *Router) sendGroupMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest) (*liveimpb.Reply, error) {
	if err := r.checkContent(req.Type, req.Data); err != nil {
		return nil, err
	}
	repeat := req.RepeatCount
	if repeat < 0 || repeat > r.cfg.MaxRepeatCount {
		return nil, liveimpb.InvalidParam("repeatCount", "must be 0..%d", r.cfg.MaxRepeatCount)
	}
	if repeat == 0 {
		repeat = 1
	}
	high := req.Level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
	if !high && req.Level != liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL {
		return nil, liveimpb.InvalidParam("level", "must be NORMAL (0) or HIGH (1)")
	}
	// Audit before taking the group lock for the send: a slow hook delays
	// only this sender's request, not the group's other work.
	if req.SkipAudit {
		gs, err := r.groups.lock(ctx, j.appID, j.groupID, j.part)
		if err != nil {
			return nil, err
		}
		privileged := mayBypass(&gs.g, c)
		gs.mu.Unlock()
		if !privileged {
			req.SkipAudit = false // a member's skipAudit is ignored, not refused: the message is audited
		}
	}
	if !req.SkipAudit {
		if err := r.moderate(ctx, c, j.groupID, req.Type, req.Data); err != nil {
			return nil, err
		}
	}
	gs, err := r.groups.lock(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	defer gs.mu.Unlock()
	if gs.g.Closed {
		return nil, liveimpb.ErrGroupClosed
	}
	if isMuted(&gs.g, c.UserId) && !(req.SkipMuteCheck && mayBypass(&gs.g, c)) {
		return nil, liveimpb.ErrMuted
	}
	now := r.now()
	if !high && !gs.rate.allow(now) {
		return nil, liveimpb.ErrTooFast.With("the group is over its rate of %.0f NORMAL messages/s; message shed", r.cfg.RoomRate)
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
	// Timestamps follow seqnum order even if the clock steps back, so
	// stores that bucket history by time keep it in order.
	gs.lastTs = max(now.UnixMilli(), gs.lastTs)
	msg := &liveimpb.Message{
		MessageId:   ids.New(),
		GroupId:     j.groupID,
		Type:        req.Type,
		Sender:      &liveimpb.User{UserId: c.UserId, UserExtension: c.UserExtension},
		Data:        req.Data,
		Seqnum:      seq,
		Timestamp:   gs.lastTs,
		Level:       req.Level,
		RepeatCount: repeat,
		TotalMsgs:   gs.g.MsgAmount[req.Type],
	}
	if !req.NoStorage {
		sctx, span := r.child(ctx, "storage.append_message", trace.SpanKindClient)
		err := r.store.AppendMessage(sctx, storedMessage(j.appID, msg))
		endChild(span, err)
		if err != nil {
			return nil, fmt.Errorf("store message: %w", err)
		}
	}
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	pctx, span := r.child(ctx, "nats.publish group_message", trace.SpanKindProducer)
	level := "normal"
	if high {
		// Durable in JetStream before the sender hears back; gateways see
		// it live through their core subscription on the same subject.
		level = "high"
		err = r.publishHigh(pctx, j.appID, j.groupID, msg, frame)
	} else {
		out := nats.NewMsg(subject.GroupEvents(j.appID, j.groupID))
		out.Data = frame
		out.Header.Set(subject.HeaderSeq, strconv.FormatInt(seq, 10))
		r.injectTrace(pctx, out.Header)
		if err = r.nc.PublishMsg(out); err != nil {
			err = liveimpb.ErrUnavailable.With("publish: %v", err)
		}
	}
	endChild(span, err)
	if err != nil {
		return nil, err
	}
	r.metrics.messages.WithLabelValues(level).Inc()
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
	// A C2C message has no group, so no owner or admin: clients never
	// skip its audit.
	if err := r.moderate(ctx, c, "", req.Type, req.Data); err != nil {
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
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_C2CMessage{C2CMessage: msg}})
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	out := nats.NewMsg(subject.User(c.AppId, req.ReceiverId))
	out.Data = frame
	out.Header.Set(subject.HeaderKind, subject.KindC2C)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.C2CTimeout)
	defer cancel()
	ctx, span := r.child(ctx, "nats.request c2c_message", trace.SpanKindProducer)
	r.injectTrace(ctx, out.Header)
	_, err = r.nc.RequestMsgWithContext(ctx, out)
	endChild(span, err)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, liveimpb.ErrReceiverOffline
		}
		return nil, liveimpb.ErrUnavailable.With("deliver: %v", err)
	}
	r.metrics.messages.WithLabelValues("c2c").Inc()
	return &liveimpb.Reply{Body: &liveimpb.Reply_SendMessage{SendMessage: &liveimpb.SendMessageReply{
		MessageId: msg.MessageId, Timestamp: msg.Timestamp,
	}}}, nil
}

// deleteMessage lets owner and admins delete any message and a sender
// recall its own within RecallWindow; members get deletegroupmessage.
func (r *Router) deleteMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.DeleteMessageRequest) (*liveimpb.Reply, error) {
	if req.MessageId == "" {
		return nil, liveimpb.InvalidParam("messageId", "required")
	}
	gs, err := r.groups.lock(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	defer gs.mu.Unlock()
	m, err := r.store.GetMessage(ctx, j.appID, j.groupID, req.MessageId)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, liveimpb.InvalidParam("messageId", "no such message in the group")
	}
	if err != nil {
		return nil, fmt.Errorf("get message: %w", err)
	}
	if !isManager(&gs.g, c.UserId) {
		if m.SenderID != c.UserId {
			return nil, liveimpb.ErrForbidden.With("only owner, admins and the sender may delete a message")
		}
		if r.now().UnixMilli()-m.TimestampMs > r.cfg.RecallWindow.Milliseconds() {
			return nil, liveimpb.ErrForbidden.With("the recall window of %v has passed", r.cfg.RecallWindow)
		}
	}
	if _, err := r.store.DeleteMessage(ctx, j.appID, j.groupID, req.MessageId); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("delete message: %w", err)
	}
	r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_DeleteGroupMessage{DeleteGroupMessage: &liveimpb.DeleteGroupMessageEvent{
		GroupId: j.groupID, MessageId: req.MessageId,
	}}}, nil)
	return &liveimpb.Reply{}, nil
}

// listRecentMessage returns the group's last stored messages below
// req.Seqnum (newest when 0), oldest first.
func (r *Router) listRecentMessage(ctx context.Context, j job, req *liveimpb.ListRecentMessageRequest) (*liveimpb.Reply, error) {
	size := int(req.PageSize)
	if size <= 0 || size > r.cfg.RecentPageSize {
		size = r.cfg.RecentPageSize
	}
	if req.Seqnum < 0 {
		return nil, liveimpb.InvalidParam("seqnum", "must not be negative")
	}
	if err := r.groupExists(ctx, j); err != nil {
		return nil, err
	}
	page, err := r.store.ListMessages(ctx, storage.MessageQuery{
		AppID: j.appID, GroupID: j.groupID, BeforeSeq: req.Seqnum, Desc: true, Limit: size,
	})
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	rep := messagePage(j.groupID, page)
	slices.Reverse(rep.MessageList)
	rep.NextPageToken = ""
	return &liveimpb.Reply{Body: &liveimpb.Reply_ListMessage{ListMessage: rep}}, nil
}

// maxListPage is listMessage's and listHistoryMessage's largest page.
const maxListPage = 30

func (r *Router) listMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ListMessageRequest) (*liveimpb.Reply, error) {
	gs, err := r.manage(ctx, j, c)
	if err != nil {
		return nil, err
	}
	gs.mu.Unlock()
	return r.queryMessages(ctx, j, req.Type, req.PageSize, req.SortType, req.NextPageToken, 0, 0)
}

// listHistoryMessage serves replay after the stream: any logged-in user,
// no membership, a time range in seconds (0 = unbounded).
func (r *Router) listHistoryMessage(ctx context.Context, j job, req *liveimpb.ListHistoryMessageRequest) (*liveimpb.Reply, error) {
	if req.BeginTime < 0 || req.EndTime < 0 || (req.EndTime != 0 && req.EndTime < req.BeginTime) {
		return nil, liveimpb.InvalidParam("beginTime", "must be a range of Unix seconds (0 = unbounded)")
	}
	if err := r.groupExists(ctx, j); err != nil {
		return nil, err
	}
	from, to := secondsToMs(req.BeginTime, 0), secondsToMs(req.EndTime, 999)
	if req.BeginTime > 0 && from == 0 {
		return &liveimpb.Reply{Body: &liveimpb.Reply_ListMessage{ListMessage: &liveimpb.ListMessageReply{GroupId: j.groupID}}}, nil // begins after the last representable instant
	}
	return r.queryMessages(ctx, j, req.Type, req.PageSize, req.SortType, req.NextPageToken, from, to)
}

// secondsToMs turns a bound in Unix seconds into milliseconds plus extra;
// 0, and a bound too large for milliseconds, are 0: no bound.
func secondsToMs(sec, extra int64) int64 {
	if sec <= 0 || sec > (math.MaxInt64-extra)/1000 {
		return 0
	}
	return sec*1000 + extra
}

func (r *Router) queryMessages(ctx context.Context, j job, msgType, pageSize int32, sort liveimpb.SortType, token string, from, to int64) (*liveimpb.Reply, error) {
	switch {
	case pageSize < 0 || pageSize > maxListPage:
		return nil, liveimpb.InvalidParam("pageSize", "must be 1..%d", maxListPage)
	case pageSize == 0:
		pageSize = 10
	}
	if msgType < 0 {
		return nil, liveimpb.InvalidParam("type", "must not be negative")
	}
	page, err := r.store.ListMessages(ctx, storage.MessageQuery{
		AppID: j.appID, GroupID: j.groupID, Type: msgType, FromMs: from, ToMs: to,
		Desc: sort == liveimpb.SortType_SORT_TYPE_DESC, Limit: int(pageSize), PageToken: token,
	})
	if errors.Is(err, storage.ErrInvalidQuery) {
		return nil, liveimpb.InvalidParam("nextPageToken", "not a token this server returned")
	}
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return &liveimpb.Reply{Body: &liveimpb.Reply_ListMessage{ListMessage: messagePage(j.groupID, page)}}, nil
}

func (r *Router) groupExists(ctx context.Context, j job) error {
	gs, err := r.groups.lock(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return err
	}
	gs.mu.Unlock()
	return nil
}

func messagePage(groupID string, page storage.MessagePage) *liveimpb.ListMessageReply {
	rep := &liveimpb.ListMessageReply{GroupId: groupID, NextPageToken: page.NextPageToken, HasMore: page.NextPageToken != ""}
	for _, m := range page.Messages {
		rep.MessageList = append(rep.MessageList, wireMessage(m))
	}
	return rep
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
