package router

import (
	"context"
	"fmt"

	"github.com/liveim/liveim/proto/liveimpb"
)

// maxStoring is how many sends one worker has at the store at once; with
// that many it waits for the oldest before it takes the next.
const maxStoring = 128

// maxHighInFlight is how many HIGH messages one worker has on their way to
// the stream; with that many, a HIGH send waits for the oldest (a burst
// waits for the stream instead of failing) unless the stream has kept it
// highAckTimeout already: then the send is refused with 503 before it is
// sequenced, and nothing of it is stored.
const maxHighInFlight = 256

// pendingSend is a sequenced send whose message the store is writing, off
// the worker. The worker goes on with other requests meanwhile, so a
// store that answers in a millisecond (a ScyllaDB round trip, an fsync)
// no longer bounds a worker's sends to a thousand a second, and a busy
// group no longer holds up the other groups of its worker. The worker
// finishes a group's sends in the order it sequenced them, so members
// receive the group's messages in seqnum order.
type pendingSend struct {
	ctx    context.Context
	j      job
	gs     *groupState
	req    *liveimpb.SendGroupMessageRequest
	msg    *liveimpb.Message
	stored chan struct{} // closed once the store has answered
	err    error         // the store's answer, read after stored is closed
	// then run on the worker once it is finished (afterSends).
	then []func(*worker)
}

// afterSends runs fn on the worker once the group's sends queued now are
// finished; it reports false, and runs nothing, when none is queued.
func (w *worker) afterSends(key string, fn func(*worker)) bool {
	q := w.sends[key]
	if len(q) == 0 {
		return false
	}
	last := q[len(q)-1]
	last.then = append(last.then, fn)
	return true
}

// queueSend stores p's message off the worker and queues p to be
// finished (delivered and answered) on it, after the sends of its group
// queued before it.
func (w *worker) queueSend(p *pendingSend) {
	for w.storing >= maxStoring {
		w.finishOldest()
	}
	key := groupKey(p.j.appID, p.j.groupID)
	p.stored = make(chan struct{})
	w.sends[key] = append(w.sends[key], p)
	w.storing++
	w.r.metrics.sendsStoring.Inc()
	if p.req.NoStorage { // nothing to store: it only waits its turn
		close(p.stored)
		return
	}
	go func() {
		p.err = w.r.store.AppendMessage(p.ctx, storedMessage(p.j.appID, p.msg))
		close(p.stored)
		// The worker may finish it sooner (finishSends waits); if the
		// router stops first, the worker's last drain finishes it.
		w.resume(func(w *worker) { w.finishSends(key, false) })
	}()
}

// sendingOf reports whether the group has sends queued that another of
// its states, since dropped, sequenced.
func (w *worker) sendingOf(key string, gs *groupState) bool {
	for _, p := range w.sends[key] {
		if p.gs != gs {
			return true
		}
	}
	return false
}

// sending reports whether a group has sends queued.
func (w *worker) sending(appID, groupID string) bool {
	return len(w.sends[groupKey(appID, groupID)]) > 0
}

// finishSends finishes the group's queued sends whose message is stored,
// oldest first, up to the first one still at the store; with wait it
// waits for each. The queues are kept by group ID, not by group state,
// so a group dropped and loaded again still delivers in order.
func (w *worker) finishSends(key string, wait bool) {
	q := w.sends[key]
	var then []func(*worker)
	defer func() { // once the queue is what it is: they may queue sends
		for _, fn := range then {
			fn(w)
		}
	}()
	for len(q) > 0 {
		p := q[0]
		if wait {
			<-p.stored
		} else {
			select {
			case <-p.stored:
			default:
				w.sends[key] = q
				return
			}
		}
		q[0] = nil
		q = q[1:]
		w.storing--
		w.r.metrics.sendsStoring.Dec()
		if rep, err := w.r.sent(p); err != errLater {
			p.j.done(rep, err)
		}
		then = append(then, p.then...)
	}
	delete(w.sends, key)
}

// finishOldest waits for one queued send (the head of a group's queue)
// and finishes what it can of that group.
func (w *worker) finishOldest() {
	for key, q := range w.sends {
		<-q[0].stored
		w.finishSends(key, false)
		return
	}
}

// drainSends finishes every queued send of partition p (every send with
// p < 0), waiting for the store: before a partition is handed over, or
// the worker stops, every send it took is finished.
func (w *worker) drainSends(p int) {
	for key, q := range w.sends {
		if p < 0 || q[0].j.part == p {
			w.finishSends(key, true)
		}
	}
}

// sent finishes a send once its message is stored: it queues the
// message's callback event, remembers the send by its client message ID,
// delivers the message and answers once the event is stored and, for
// HIGH, the stream has acknowledged the message.
func (r *Router) sent(p *pendingSend) (*liveimpb.Reply, error) {
	gs, msg, appID := p.gs, p.msg, p.j.appID
	gs.sentSeq = max(gs.sentSeq, msg.Seqnum)
	if p.err != nil {
		if p.req.ClientMsgId != "" {
			gs.sent.forget(msg.MessageId) // nothing happened: a retry starts afresh
		}
		// Nor is it counted: its retry counts it (e2e.TestAuditModFailedSendNotCounted).
		if n, ok := gs.g.MsgAmount[msg.Type]; ok {
			gs.g.MsgAmount[msg.Type] = max(0, n-int64(msg.RepeatCount))
			gs.dirty = true
		}
		return nil, fmt.Errorf("store message: %w", p.err)
	}
	stored, queued := r.messageEvent(p.ctx, appID, msg)
	var e *sentEntry
	if p.req.ClientMsgId != "" {
		e = gs.sent.add(msg.MessageId, msg)
		e.eventPending.Store(true)
	}
	ack, err := r.deliver(p.ctx, appID, msg.GroupId, p.j.part, msg, p.req.NoStorage)
	if err != nil {
		return nil, err // stored: a retry delivers it (repeatedSend)
	}
	if ack == nil {
		gs.sent.delivered(msg.MessageId)
	} else {
		p.j.w.trackHigh(ack) // the answer waits for it, off the worker
		p.j.w.addHigh(gs, msg, ack, p.req.NoStorage)
		if e != nil {
			e.ack = ack
		}
	}
	return r.answerStored(p.j, e, ack, stored, queued, sendReply(msg.MessageId, msg.Seqnum, msg.Timestamp))
}

// trackHigh keeps a HIGH message on its way to the stream until the
// stream took it, so a resume or a purge can wait for it and a send can
// tell whether there is room for another (roomForHigh).
func (w *worker) trackHigh(a *highAck) {
	w.highAcks = append(w.highAcks, a)
	if len(w.highAcks) >= maxHighInFlight {
		w.highAcks = pruneAcked(w.highAcks)
	}
}

// roomForHigh reports whether the worker may sequence one more HIGH
// message: with maxHighInFlight on their way to the stream it waits for
// the oldest, one at a time, but never for one the stream has kept
// highAckTimeout already.
func (w *worker) roomForHigh() error {
	for len(w.highAcks) >= maxHighInFlight {
		if w.highAcks = pruneAcked(w.highAcks); len(w.highAcks) < maxHighInFlight {
			break
		}
		oldest := w.highAcks[0]
		if left := highAckTimeout - w.r.now().Sub(oldest.since); left <= 0 || oldest.waitFor(left) != nil && !oldest.finished() {
			return liveimpb.ErrUnavailable.With("%d HIGH messages of this router wait for the HIGH stream; retry", len(w.highAcks))
		}
	}
	return nil
}

// highInFlight returns a copy of the group's HIGH messages the stream has
// not taken yet, oldest first (a resume waits for them off the worker).
// They are kept by group ID, so a group dropped and loaded again still
// finds them.
func (w *worker) highInFlight(key string) []*highAck {
	var out []*highAck
	for _, a := range w.highAcks {
		if a.key == key && !a.finished() {
			out = append(out, a)
		}
	}
	return out
}

// pruneAcked drops the messages the stream took or the router gave up,
// keeping the order of the rest.
func pruneAcked(acks []*highAck) []*highAck {
	kept := acks[:0]
	for _, a := range acks {
		if !a.finished() {
			kept = append(kept, a)
		}
	}
	clear(acks[len(kept):])
	return kept
}
