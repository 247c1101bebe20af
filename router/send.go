package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// sendGroupMessage sends a message to a group:
//
//  1. it checks the request;
//  2. a repeat of a send the group knows (same client message ID) gets
//     the first send's reply, and nothing new is stored or delivered;
//  3. moderation: the app's word list here, its audit hook off the worker
//     (a slow hook delays only this send), the rest back on the worker;
//  4. sequencing, storage and delivery (sequenceSend).
func (r *Router) sendGroupMessage(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest) (*liveimpb.Reply, error) {
	if err := r.checkContent(c, req.Type, req.Data); err != nil {
		return nil, err
	}
	if req.RepeatCount < 0 || req.RepeatCount > r.cfg.MaxRepeatCount {
		return nil, liveimpb.InvalidParam("repeatCount", "must be 0..%d", r.cfg.MaxRepeatCount)
	}
	if req.Level != liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH && req.Level != liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL {
		return nil, liveimpb.InvalidParam("level", "must be NORMAL (0) or HIGH (1)")
	}
	if req.ClientMsgId != "" {
		if err := ids.Check("clientMsgId", req.ClientMsgId); err != nil {
			return nil, err
		}
	}
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	msgID := ids.New()
	if req.ClientMsgId != "" {
		msgID = derivedMessageID(j.appID, j.groupID, c.UserId, req.ClientMsgId)
		if rep, err := r.repeatedSend(ctx, j, gs, msgID, req); rep != nil || err != nil {
			return rep, err
		}
	}
	if err := sendable(gs, c, req, r.now().UnixMilli()); err != nil {
		return nil, err // before the audit hook is bothered; checked again after it
	}
	// Only the group's owner and admins may skip moderation; a member's
	// skipAudit is ignored, not refused: the message is audited.
	if !(req.SkipAudit && mayBypass(&gs.g, c)) {
		hook, err := r.checkWords(ctx, c.AppId, req.Data)
		if err != nil {
			return nil, err
		}
		if hook != nil {
			session := gs.g.CreateTimeMs
			if req.ClientMsgId != "" {
				gs.sent.pending(msgID) // a repeat while the hook thinks is told to retry
			}
			audited := func() {
				if err := r.audit(ctx, hook, c, j.groupID, req.Type, req.Data); err != nil {
					j.w.resumeOrFail(j, func(w *worker) {
						if gs := w.cached(j.appID, j.groupID); gs != nil {
							gs.sent.forget(msgID)
						}
						j.done(nil, err)
					})
					return
				}
				j.w.resumeOrFail(j, func(*worker) {
					if rep, err := r.sequenceSend(ctx, j, c, req, msgID, session); err != errLater {
						j.done(rep, err)
					}
				})
			}
			if r.offWorker(audited) {
				return nil, errLater
			}
			// Not on the worker, whose other groups (other apps') would
			// wait for the hook: the router is busy.
			gs.sent.forget(msgID)
			return nil, liveimpb.ErrUnavailable.With("router busy: too many calls in flight")
		}
	}
	return r.sequenceSend(ctx, j, c, req, msgID, gs.g.CreateTimeMs)
}

// sequenceSend checks the group's state, assigns the message its seqnum
// and queues it to be stored and delivered (sends.go). It runs on the
// group's worker. session is the group's CreateTimeMs when the send was
// taken: a group closed and opened again (or deleted and made again)
// since, while the audit hook thought, is a new live session, whose
// members and mutes the send was never checked against
// (e2e.TestAuditModSendAuditedAcrossCloseAndReopen): 441.
func (r *Router) sequenceSend(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest, msgID string, session int64) (*liveimpb.Reply, error) {
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part) // it may have changed while the hook thought
	if err != nil {
		return nil, err
	}
	if gs.g.CreateTimeMs != session {
		if !gs.sent.stored(msgID) {
			gs.sent.forget(msgID)
		}
		return nil, liveimpb.ErrGroupClosed.With("the group was closed while the message was audited")
	}
	rep, err := r.sequence(ctx, j, gs, c, req, msgID)
	if err != nil && err != errLater && !gs.sent.stored(msgID) {
		gs.sent.forget(msgID) // nothing happened: a retry starts afresh
	}
	return rep, err
}

func (r *Router) sequence(ctx context.Context, j job, gs *groupState, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest, msgID string) (*liveimpb.Reply, error) {
	high := req.Level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
	if err := sendable(gs, c, req, r.now().UnixMilli()); err != nil {
		return nil, err
	}
	now := r.now()
	if !high && !gs.rate.Allow(now) {
		return nil, liveimpb.ErrTooFast.With("the group is over its rate of %.0f NORMAL messages/s; message shed", r.cfg.RoomRate)
	}
	if high {
		if err := j.w.roomForHigh(); err != nil {
			return nil, err
		}
	}
	seq, err := j.w.nextSeq(ctx, gs)
	if err != nil {
		return nil, err
	}
	repeat := max(req.RepeatCount, 1)
	if gs.g.MsgAmount == nil {
		gs.g.MsgAmount = make(map[int32]int64)
	}
	if _, counted := gs.g.MsgAmount[req.Type]; counted || len(gs.g.MsgAmount) < maxCountedTypes {
		gs.g.MsgAmount[req.Type] += int64(repeat)
	}
	gs.dirty = true
	// Timestamps follow seqnum order even if the clock steps back, so
	// stores that bucket history by time keep it in order.
	gs.lastTs = max(now.UnixMilli(), gs.lastTs)
	msg := &liveimpb.Message{
		MessageId:   msgID,
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
	p := &pendingSend{ctx: ctx, j: j, gs: gs, req: req, msg: msg}
	if req.NoStorage && !j.w.sending(j.appID, j.groupID) {
		return r.sent(p) // nothing to store and nothing queued before it
	}
	if req.ClientMsgId != "" {
		gs.sent.pending(msgID) // a repeat while it is stored is told to retry
	}
	j.w.queueSend(p) // stored off the worker, finished on it (sends.go)
	return nil, errLater
}

// sendable refuses a send to a closed group (441), from a banned user
// (403) or from a muted sender (442).
func sendable(gs *groupState, c *liveimpb.Caller, req *liveimpb.SendGroupMessageRequest, nowMs int64) error {
	if gs.g.Closed {
		return liveimpb.ErrGroupClosed
	}
	if err := notBanned(gs, c, nowMs); err != nil {
		return err
	}
	if isMuted(&gs.g, c.UserId, nowMs) && !(req.SkipMuteCheck && mayBypass(&gs.g, c)) {
		return liveimpb.ErrMuted
	}
	return nil
}

// deliver publishes a sequenced message to the group: NORMAL on core
// NATS; HIGH into the HIGH stream (publishHigh; gateways see it live
// through their core subscription on the same subject) without waiting:
// the returned highAck says when the stream took it, and the sender's
// answer waits for that. Both go out in order on the router's one
// connection, from the group's worker, so the gateways get a group's
// messages in seqnum order; the group's chain keeps the stream in that
// order too.
func (r *Router) deliver(ctx context.Context, appID, groupID string, part int, msg *liveimpb.Message, noStorage bool) (*highAck, error) {
	frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	if msg.Level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
		return r.publishHigh(ctx, appID, groupID, part, msg, frame, noStorage), nil
	}
	out := nats.NewMsg(subject.GroupEvents(appID, groupID))
	out.Data = frame
	out.Header.Set(subject.HeaderSeq, strconv.FormatInt(msg.Seqnum, 10))
	span := r.startSend(ctx, telemetry.Publish, out.Subject, out.Header, semconv.MessagingMessageID(msg.MessageId),
		semconv.MessagingMessageBodySize(len(frame)), telemetry.AppIDKey.String(appID), telemetry.GroupIDKey.String(groupID))
	if err = r.nc.PublishMsg(out); err != nil {
		err = liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	endSpan(span, err)
	if err == nil {
		r.metrics.messages.WithLabelValues("normal").Inc()
	}
	return nil, err
}

// deletedLookBack is how many of a group's last deletions a repeated
// send is looked for in after a failover (deletedSend).
const deletedLookBack = 1000

// deletedSend answers the repeat of a send the router that owned the group
// before stored and that was deleted since (the store's lookup hides
// deleted messages): with its message ID and seqnum, storing and
// delivering nothing (its timestamp is not kept with the deletion: 0). It
// was taken for a new send: the deleted message came back
// (e2e.TestAuditModRecalledMessageRetriedAfterFailover). nil, nil when
// the group's last deletedLookBack deletions do not name it.
func (r *Router) deletedSend(ctx context.Context, j job, gs *groupState, msgID string) (*liveimpb.Reply, error) {
	if gs.g.DeleteSeq == 0 {
		return nil, nil
	}
	dels, err := r.store.ListDeletions(ctx, j.appID, j.groupID, max(0, gs.g.DeleteSeq-deletedLookBack), deletedLookBack)
	if err != nil {
		return nil, fmt.Errorf("look up a repeated send: %w", err)
	}
	for _, d := range dels {
		if d.MessageID == msgID {
			return sendReply(msgID, d.MessageSeq, 0), nil
		}
	}
	return nil, nil
}

// repeatedSend answers a send whose client message ID the group has seen:
// with the first send's reply, delivering the message first if the first
// send could not. It returns nil, nil for a send the group does not know.
// A group loaded less than DedupeWindow ago also asks the store, where
// the router that owned the group before may have stored the message.
func (r *Router) repeatedSend(ctx context.Context, j job, gs *groupState, msgID string, req *liveimpb.SendGroupMessageRequest) (*liveimpb.Reply, error) {
	e := gs.sent.get(msgID)
	if e == nil {
		if req.NoStorage || r.now().After(gs.lookUpUntil) {
			return nil, nil
		}
		m, err := r.store.GetMessage(ctx, j.appID, j.groupID, msgID)
		if errors.Is(err, storage.ErrNotFound) {
			return r.deletedSend(ctx, j, gs, msgID)
		}
		if err != nil {
			return nil, fmt.Errorf("look up a repeated send: %w", err)
		}
		// The previous owner stored it and may have died before delivering
		// it: deliver HIGH again (JetStream keeps one copy, gateways drop the
		// repeat by seqnum). NORMAL may be lost anyway; it is not repeated.
		// Its event may not have been published either: publish it again
		// (the stream and the app drop a repeat by its ID).
		e = gs.sent.add(msgID, wireMessage(m))
		e.delivered.Store(m.Level != int32(liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH))
		e.eventPending.Store(true)
	}
	if !e.sequenced {
		return nil, liveimpb.ErrUnavailable.With("this message is being sent; retry")
	}
	msg := e.msg.Load()
	if msg == nil { // settled: delivered, its event stored
		return sendReply(e.id, e.seq, e.ts), nil
	}
	var ack *highAck
	if !e.delivered.Load() {
		// A HIGH message still on its way to the stream is waited for, not
		// offered again; one the router gave up is offered again.
		if ack = e.ack; ack == nil || ack.failed() {
			var err error
			if ack, err = r.deliver(ctx, j.appID, j.groupID, j.part, msg, req.NoStorage); err != nil {
				return nil, err
			}
			if ack == nil {
				e.setDelivered()
			} else {
				e.ack = ack
				j.w.trackHigh(ack)
				j.w.offered(gs, msg.Seqnum, ack)
			}
		}
	}
	var stored <-chan error
	var queued error
	if e.eventPending.Load() {
		stored, queued = r.messageEvent(ctx, j.appID, msg)
	}
	return r.answerStored(j, e, ack, stored, queued, sendReply(e.id, e.seq, e.ts))
}

func sendReply(messageID string, seq, ts int64) *liveimpb.Reply {
	return &liveimpb.Reply{Body: &liveimpb.Reply_SendMessage{SendMessage: &liveimpb.SendMessageReply{
		MessageId: messageID, Seqnum: seq, Timestamp: ts,
	}}}
}

// derivedMessageID is the message ID of a send with a client message ID:
// the same for every retry of the send, different for every sender and
// group, and shaped like ids.New.
func derivedMessageID(appID, scope, senderID, clientMsgID string) string {
	h := sha256.New()
	for _, s := range []string{appID, scope, senderID, clientMsgID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// maxCountedTypes caps the message types a group counts in
// statistics.msgAmount. The type is the sender's choice, and the map is in
// the group's record and every join's answer: a member sending a new type
// each time grew it until the answer no longer fitted a NATS message and
// nobody could join the room. A type past the cap is delivered and stored
// uncounted (totalMsgs 0), so it cannot shut out a type the app uses
// later either.
const maxCountedTypes = 256

// maxSentPerGroup bounds the sends with a client message ID a group
// remembers in memory.
const maxSentPerGroup = 1024

// sentCache remembers a group's recent sends with a client message ID,
// oldest evicted first. Its worker owns it.
type sentCache struct {
	byID  map[string]*sentEntry
	order []string // insertion order, for eviction
}

// sentEntry is one remembered send. sequenced is false while the send
// is pending (its audit hook thinking or its message at the store); id,
// seq and ts are its reply. delivered reports whether its publish
// succeeded (for HIGH, once the stream took it: set off the worker, by
// answerStored), and ack is a HIGH message's way to the stream.
// eventPending is set while its callback event may not be stored (it is
// cleared off the worker, by answerStored). msg is the whole message, for
// a retry to deliver it or publish its event again, until both are done:
// then it is dropped (settle), so that a group's 1,024 remembered sends
// of up to 15 KiB each do not stay in memory (an app sending large
// messages to each of its groups made a router keep ~15 MiB a group).
// The worker owns sequenced, id, seq, ts and ack.
type sentEntry struct {
	sequenced    bool
	id           string
	seq, ts      int64
	msg          atomic.Pointer[liveimpb.Message]
	ack          *highAck
	delivered    atomic.Bool
	eventPending atomic.Bool
}

// setDelivered marks the send delivered.
func (e *sentEntry) setDelivered() {
	e.delivered.Store(true)
	e.settle()
}

// setEventStored marks the send's callback event stored.
func (e *sentEntry) setEventStored() {
	e.eventPending.Store(false)
	e.settle()
}

// settle drops the message once nothing may need it again.
func (e *sentEntry) settle() {
	if e.delivered.Load() && !e.eventPending.Load() {
		e.msg.Store(nil)
	}
}

func (s *sentCache) get(id string) *sentEntry {
	if s.byID == nil {
		return nil
	}
	return s.byID[id]
}

// pending records a send that has not been sequenced yet.
func (s *sentCache) pending(id string) { s.put(id, &sentEntry{}) }

// add records a sequenced (and, unless noStorage, stored) send; until it
// is settled, the entry keeps m.
func (s *sentCache) add(id string, m *liveimpb.Message) *sentEntry {
	e := s.get(id)
	if e == nil {
		e = &sentEntry{}
		s.put(id, e)
	}
	e.sequenced, e.id, e.seq, e.ts = true, m.MessageId, m.Seqnum, m.Timestamp
	e.msg.Store(m)
	return e
}

func (s *sentCache) put(id string, e *sentEntry) {
	if s.byID == nil {
		s.byID = make(map[string]*sentEntry)
	}
	if _, ok := s.byID[id]; !ok {
		s.order = append(s.order, id)
	}
	s.byID[id] = e
	for len(s.order) > maxSentPerGroup {
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
}

// stored reports whether the send got past sequencing.
func (s *sentCache) stored(id string) bool {
	e := s.get(id)
	return e != nil && e.sequenced
}

// delivered marks a send delivered.
func (s *sentCache) delivered(id string) {
	if e := s.get(id); e != nil {
		e.setDelivered()
	}
}

// forget drops a send that did not happen, so a retry starts afresh.
func (s *sentCache) forget(id string) {
	if s.byID != nil {
		delete(s.byID, id) // its place in order goes with the next eviction
	}
}
