package serverapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// sendRequest is a message the app's backend sends, to a group or a user.
type sendRequest struct {
	Type int32  `json:"type"`
	Data string `json:"data"`
	// Level is "normal" (default) or "high"; group messages only.
	Level string `json:"level,omitempty"`
	// SenderID names the user the message is from; empty: the system,
	// which no mute stops.
	SenderID        string `json:"sender_id,omitempty"`
	SenderExtension string `json:"sender_extension,omitempty"`
	SkipAudit       bool   `json:"skip_audit,omitempty"`
	SkipMuteCheck   bool   `json:"skip_mute_check,omitempty"`
	NoStorage       bool   `json:"no_storage,omitempty"`
	RepeatCount     int32  `json:"repeat_count,omitempty"`
	// ClientMsgID names the send: a retry with the same ID is answered
	// with the first send's result and sends nothing new. Default: one
	// per request (the API's own retries are then safe too).
	ClientMsgID string `json:"client_msg_id,omitempty"`
}

// SendReply answers a send.
type SendReply struct {
	MessageID   string `json:"message_id"`
	Seqnum      int64  `json:"seqnum"`
	TimestampMs int64  `json:"timestamp"`
}

func (req *sendRequest) check() (liveimpb.MessageLevel, error) {
	if req.Type < 1 {
		return 0, liveimpb.InvalidParam("type", "required, from 1")
	}
	if req.SenderID != "" {
		if err := ids.Check("sender_id", req.SenderID); err != nil {
			return 0, err
		}
	}
	if len(req.SenderExtension) > liveimpb.MaxUserExtension {
		return 0, liveimpb.InvalidParam("sender_extension", "larger than %d bytes", liveimpb.MaxUserExtension)
	}
	if req.ClientMsgID == "" {
		req.ClientMsgID = ids.New()
	}
	switch req.Level {
	case "", "normal":
		return liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL, nil
	case "high":
		return liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, nil
	}
	return 0, liveimpb.InvalidParam("level", "normal or high")
}

func (s *Server) sendGroup(ctx context.Context, appID, groupID string, req sendRequest, level liveimpb.MessageLevel) (SendReply, error) {
	caller := serverCaller(appID, req.SenderID)
	caller.UserExtension = req.SenderExtension
	rep, err := s.rpc.call(ctx, appID, groupID, &liveimpb.RouterRequest{Caller: caller, Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{
		GroupId: groupID, Data: req.Data, Type: req.Type, Level: level,
		SkipAudit: req.SkipAudit, SkipMuteCheck: req.SkipMuteCheck || req.SenderID == "",
		NoStorage: req.NoStorage, RepeatCount: req.RepeatCount, ClientMsgId: req.ClientMsgID,
	}}}})
	if err != nil {
		return SendReply{}, err
	}
	m := rep.GetSendMessage()
	return SendReply{MessageID: m.GetMessageId(), Seqnum: m.GetSeqnum(), TimestampMs: m.GetTimestamp()}, nil
}

// sendGroupMessage sends a message to a group as the system or a named
// user: any type from 1, NORMAL or HIGH.
func (s *Server) sendGroupMessage(r *http.Request, app storage.App, body []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	var req sendRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	level, err := req.check()
	if err != nil {
		return nil, err
	}
	return s.sendGroup(r.Context(), app.ID, groupID, req, level)
}

// sendUserMessage sends a C2C message to every online session of a user;
// 424 (HTTP 404) when the user is offline.
func (s *Server) sendUserMessage(r *http.Request, app storage.App, body []byte) (any, error) {
	userID, err := pathID(r, "userId")
	if err != nil {
		return nil, err
	}
	var req sendRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if _, err := req.check(); err != nil {
		return nil, err
	}
	if req.Level != "" || req.SkipMuteCheck || req.NoStorage || req.RepeatCount != 0 || req.SkipAudit {
		return nil, liveimpb.InvalidParam("body", "a user message takes type, data, sender_id, sender_extension and client_msg_id only")
	}
	caller := serverCaller(app.ID, req.SenderID)
	caller.UserExtension = req.SenderExtension
	rep, err := s.rpc.call(r.Context(), app.ID, "", &liveimpb.RouterRequest{Caller: caller, Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendC2CMessage{SendC2CMessage: &liveimpb.SendC2CMessageRequest{
		ReceiverId: userID, Data: req.Data, Type: req.Type, ClientMsgId: req.ClientMsgID,
	}}}})
	if err != nil {
		return nil, err
	}
	m := rep.GetSendMessage()
	return SendReply{MessageID: m.GetMessageId(), TimestampMs: m.GetTimestamp()}, nil
}

// BroadcastReply answers a broadcast.
type BroadcastReply struct {
	Sent   int              `json:"sent"`
	Failed []BroadcastError `json:"failed"`
}

// BroadcastError is a group a broadcast did not reach.
type BroadcastError struct {
	GroupID string `json:"group_id"`
	Error
}

// broadcast sends one message to every open group of the app, a few
// groups at a time. Every group's send carries the request's
// client_msg_id (message IDs derive from it and the group), so repeating
// the request with it (after a timeout, or for the groups in failed)
// sends nothing twice within the dedupe window.
func (s *Server) broadcast(r *http.Request, app storage.App, body []byte) (any, error) {
	var req sendRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	level, err := req.check()
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	out := BroadcastReply{Failed: []BroadcastError{}}
	var mu sync.Mutex
	sem := make(chan struct{}, s.cfg.BroadcastParallel)
	var wg sync.WaitGroup
	q := storage.GroupQuery{AppID: app.ID, Status: storage.OpenGroups, Limit: 500}
	for {
		page, err := s.store.ListGroups(ctx, q)
		if err != nil {
			wg.Wait()
			return nil, fmt.Errorf("list groups: %w", err)
		}
		for _, g := range page.Groups {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				_, err := s.sendGroup(ctx, app.ID, g.ID, req, level)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					out.Sent++
					return
				}
				e := liveimpb.AsError(err)
				out.Failed = append(out.Failed, BroadcastError{GroupID: g.ID, Error: Error{Code: int32(e.Code), Msg: e.Message}})
			})
		}
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	wg.Wait()
	return out, nil
}

// MessageView is a stored message as the API lists it: the same object
// as a group.message callback event carries.
type MessageView = callback.Message

func messageView(m storage.Message) MessageView {
	level := "normal"
	if m.Level == int32(liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH) {
		level = "high"
	}
	return MessageView{
		MessageID: m.ID, GroupID: m.GroupID, Type: m.Type, SenderID: m.SenderID, SenderExtension: m.SenderExt,
		Data: m.Data, Seqnum: m.Seq, TimestampMs: m.TimestampMs, Level: level, RepeatCount: m.RepeatCount, TotalMsgs: m.TotalMsgs,
	}
}

// listMessages pages through a group's stored messages: a time range in
// Unix ms (begin_time, end_time, inclusive), a type, oldest first unless
// order=desc.
func (s *Server) listMessages(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	limit, err := pageSize(q.Get("limit"), maxPage)
	if err != nil {
		return nil, err
	}
	mq := storage.MessageQuery{AppID: app.ID, GroupID: groupID, Limit: limit, PageToken: q.Get("page_token")}
	for name, dst := range map[string]*int64{"begin_time": &mq.FromMs, "end_time": &mq.ToMs} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, liveimpb.InvalidParam(name, "Unix milliseconds")
			}
			*dst = n
		}
	}
	if mq.ToMs != 0 && mq.ToMs < mq.FromMs {
		return nil, liveimpb.InvalidParam("end_time", "before begin_time")
	}
	if v := q.Get("type"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return nil, liveimpb.InvalidParam("type", "a message type, 0 for all")
		}
		mq.Type = int32(n)
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		mq.Desc = true
	default:
		return nil, liveimpb.InvalidParam("order", "asc or desc")
	}
	if _, err := s.store.GetGroup(r.Context(), app.ID, groupID); errors.Is(err, storage.ErrNotFound) {
		return nil, liveimpb.ErrGroupNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get group: %w", err)
	}
	page, err := s.store.ListMessages(r.Context(), mq)
	if err != nil {
		return nil, storeErr(err)
	}
	out := struct {
		Messages      []MessageView `json:"messages"`
		NextPageToken string        `json:"next_page_token"`
		HasMore       bool          `json:"has_more"`
	}{Messages: []MessageView{}, NextPageToken: page.NextPageToken, HasMore: page.NextPageToken != ""}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, messageView(m))
	}
	return out, nil
}

// deleteMessage deletes (recalls) a group message: it leaves history and
// members get deletegroupmessage.
func (s *Server) deleteMessage(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	messageID := r.PathValue("messageId")
	if messageID == "" || len(messageID) > 128 {
		return nil, liveimpb.InvalidParam("messageId", "required, at most 128 bytes")
	}
	_, err = s.rpc.frame(r.Context(), app.ID, groupID, "", &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_DeleteMessage{DeleteMessage: &liveimpb.DeleteMessageRequest{
		GroupId: groupID, MessageId: messageID,
	}}})
	return nil, err
}
