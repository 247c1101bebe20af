package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nats-io/nats.go"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// minClientType is the lowest message type a client may use; lower types
// are reserved for the server API's system messages.
const minClientType = 10001

// checkContent checks a message's type and size: clients use types above
// 10000, the server API any positive type (1 to 10000 are its system
// messages).
func (r *Router) checkContent(c *liveimpb.Caller, msgType int32, data string) error {
	switch {
	case c.Server && msgType < 1:
		return liveimpb.InvalidParam("type", "must be positive")
	case !c.Server && msgType < minClientType:
		return liveimpb.InvalidParam("type", "must be above 10000 (lower types are the server API's)")
	}
	if len(data) > r.cfg.MaxDataBytes {
		return liveimpb.ErrTooLarge.With("data: larger than %d bytes", r.cfg.MaxDataBytes)
	}
	// A login's is checked by its gateway; a server API sender's here.
	if len(c.UserExtension) > liveimpb.MaxUserExtension {
		return liveimpb.InvalidParam("senderExtension", "larger than %d bytes", liveimpb.MaxUserExtension)
	}
	// The message's callback event, JSON with control characters six
	// bytes each, must fit one NATS message (--max-data-bytes may be
	// raised that far). Measured only for data that could reach it.
	limit := r.nc.MaxPayload() - eventMargin
	if int64(len(data))*6 > limit {
		n, err := callback.EncodedSize(callback.Event{Type: callback.GroupMessage, Message: &callback.Message{Data: data, SenderExtension: c.UserExtension}})
		if err != nil || int64(n) > limit {
			return liveimpb.ErrTooLarge.With("data: its callback event would be over the NATS message limit of %d bytes", r.nc.MaxPayload())
		}
	}
	return nil
}

// eventMargin is what a message's callback event holds besides its data
// and sender extension, at most: IDs, type, times, headers.
const eventMargin = 4 << 10

// sendC2CMessage delivers a message to every online session of the
// receiver as a NATS request on the user's subject; "no responders" means
// the receiver is offline (424).
func (r *Router) sendC2CMessage(ctx context.Context, c *liveimpb.Caller, req *liveimpb.SendC2CMessageRequest) (*liveimpb.Reply, error) {
	if err := ids.Check("receiverId", req.ReceiverId); err != nil {
		return nil, err
	}
	if err := r.checkContent(c, req.Type, req.Data); err != nil {
		return nil, err
	}
	// A C2C message has no group, so no owner or admin: clients never
	// skip its audit.
	if err := r.moderate(ctx, c, "", req.Type, req.Data); err != nil {
		return nil, err
	}
	msgID := ids.New()
	if req.ClientMsgId != "" {
		// A retry carries the same ID, so the receiver can drop a repeat.
		if err := ids.Check("clientMsgId", req.ClientMsgId); err != nil {
			return nil, err
		}
		msgID = derivedMessageID(c.AppId, "~c2c/"+req.ReceiverId, c.UserId, req.ClientMsgId)
	}
	msg := &liveimpb.Message{
		MessageId:  msgID,
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
	span := r.startSend(ctx, telemetry.Request, out.Subject, out.Header, semconv.MessagingMessageID(msg.MessageId),
		semconv.MessagingMessageBodySize(len(frame)), telemetry.AppIDKey.String(c.AppId), telemetry.UserIDKey.String(req.ReceiverId))
	_, err = r.nc.RequestMsgWithContext(ctx, out)
	endSpan(span, err)
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
	// A message stored but not yet delivered (its send queued behind the
	// group's earlier ones at the store) would be delivered, and a HIGH
	// one put in the stream and the tail, after its deletion
	// (e2e.TestAuditDeleteOfQueuedHighResurfaces): the deletion waits for
	// the group's sends queued now, without holding up the worker.
	if j.w.afterSends(groupKey(j.appID, j.groupID), func(*worker) {
		if rep, err := r.deleteStoredMessage(ctx, j, c, req); err != errLater {
			j.done(rep, err)
		}
	}) {
		return nil, errLater
	}
	return r.deleteStoredMessage(ctx, j, c, req)
}

// deleteStoredMessage is deleteMessage once the group's sends queued
// before it are finished.
func (r *Router) deleteStoredMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.DeleteMessageRequest) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	m, err := r.store.GetMessage(ctx, j.appID, j.groupID, req.MessageId)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, liveimpb.InvalidParam("messageId", "no such message in the group")
	}
	if err != nil {
		return nil, fmt.Errorf("get message: %w", err)
	}
	if !mayBypass(&gs.g, c) {
		if m.SenderID != c.UserId {
			return nil, liveimpb.ErrForbidden.With("only owner, admins and the sender may delete a message")
		}
		if r.now().UnixMilli()-m.TimestampMs > r.cfg.RecallWindow.Milliseconds() {
			return nil, liveimpb.ErrForbidden.With("the recall window of %v has passed", r.cfg.RecallWindow)
		}
	}
	// The deletion gets the group's next number, saved before it is used,
	// so a client that was away asks for the deletions after the last it
	// knew (resumeGroup). A number saved but not used leaves a gap only.
	gs.g.DeleteSeq++
	if err := j.w.save(ctx, gs); err != nil {
		gs.g.DeleteSeq--
		return nil, err
	}
	if _, err := r.store.DeleteMessage(ctx, j.appID, j.groupID, req.MessageId, gs.g.DeleteSeq); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("delete message: %w", err)
	}
	// A retry of its send (the same clientMsgId) gets the first send's
	// answer and delivers nothing: a HIGH message given up and deleted
	// was offered again by its sender's retry, back into the stream.
	if e := gs.sent.get(req.MessageId); e != nil && e.sequenced {
		e.setDelivered()
		e.setEventStored()
	}
	r.publishEvent(j.appID, j.groupID, &liveimpb.Event{Body: &liveimpb.Event_DeleteGroupMessage{DeleteGroupMessage: &liveimpb.DeleteGroupMessageEvent{
		GroupId: j.groupID, MessageId: req.MessageId, DeleteSeq: gs.g.DeleteSeq,
	}}}, nil)
	r.emit(ctx, j.appID, callback.Event{Type: callback.MessageDeleted, GroupID: j.groupID, MessageID: req.MessageId})
	if m.Level != int32(liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH) {
		return &liveimpb.Reply{}, nil
	}
	gs.high.deleted(m.Seq)
	r.unstreamHigh(j, gs, m.Seq, func() { j.done(&liveimpb.Reply{}, nil) })
	return nil, errLater
}

// listRecentMessage returns the group's last stored messages below
// req.Seqnum (newest when 0), oldest first.
func (r *Router) listRecentMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ListRecentMessageRequest) (*liveimpb.Reply, error) {
	size := int(req.PageSize)
	if size <= 0 || size > r.cfg.RecentPageSize {
		size = r.cfg.RecentPageSize
	}
	if req.Seqnum < 0 {
		return nil, liveimpb.InvalidParam("seqnum", "must not be negative")
	}
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	if err := notBanned(gs, c, r.now().UnixMilli()); err != nil {
		return nil, err
	}
	return r.answerLater(j, func() (*liveimpb.Reply, error) {
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
	})
}

// maxListPage is listMessage's and listHistoryMessage's largest page.
const maxListPage = 30

func (r *Router) listMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ListMessageRequest) (*liveimpb.Reply, error) {
	if _, err := r.manage(ctx, j, c); err != nil {
		return nil, err
	}
	return r.answerLater(j, func() (*liveimpb.Reply, error) {
		return r.queryMessages(ctx, j, req.Type, req.PageSize, req.SortType, req.NextPageToken, 0, 0)
	})
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
	return r.answerLater(j, func() (*liveimpb.Reply, error) {
		return r.queryMessages(ctx, j, req.Type, req.PageSize, req.SortType, req.NextPageToken, from, to)
	})
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
	_, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	return err
}

// answerLater runs a read that needs no group state (a history query, a
// resume) off the worker, so the worker's other groups do not wait for
// it, and answers the request with its result. With too many such reads
// in flight it runs here instead: the worker's queue then backs up, which
// is the backpressure wanted.
func (r *Router) answerLater(j job, read func() (*liveimpb.Reply, error)) (*liveimpb.Reply, error) {
	if r.offWorker(func() { j.done(read()) }) {
		return nil, errLater
	}
	return read()
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
