package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
)

// highAckTimeout bounds the wait for the HIGH stream's acknowledgement.
const highAckTimeout = 5 * time.Second

// publishHigh publishes a HIGH message into the HIGH stream, de-duplicated
// by message ID, without waiting for JetStream: the returned highAck
// carries its acknowledgement. The stream captures the group's HIGH
// subject, so gateways subscribed to the group receive it live as well.
func (r *Router) publishHigh(ctx context.Context, appID, groupID string, msg *liveimpb.Message, frame []byte) (*highAck, error) {
	out := nats.NewMsg(subject.GroupHigh(appID, groupID))
	out.Data = frame
	out.Header.Set(subject.HeaderSeq, strconv.FormatInt(msg.Seqnum, 10))
	out.Header.Set(subject.HeaderLevel, "1")
	span := r.startSend(ctx, telemetry.Publish, out.Subject, out.Header, semconv.MessagingMessageID(msg.MessageId),
		semconv.MessagingMessageBodySize(len(frame)), telemetry.AppIDKey.String(appID), telemetry.GroupIDKey.String(groupID))
	fut, err := r.js.PublishMsgAsync(out, jetstream.WithMsgID(msg.MessageId))
	if err != nil {
		err = liveimpb.ErrUnavailable.With("store HIGH message: %v", err)
		endSpan(span, err)
		return nil, err
	}
	return &highAck{r: r, key: groupKey(appID, groupID), fut: fut, span: span, done: make(chan struct{})}, nil
}

// highAck is the HIGH stream's answer to one publish. The first wait
// reads it, for at most highAckTimeout; every wait returns the same
// outcome, so the sender's answer and a resume can both wait for it.
type highAck struct {
	r    *Router
	key  string // the group's (groupKey)
	fut  jetstream.PubAckFuture
	span trace.Span
	once sync.Once
	err  error
	done chan struct{} // closed when the first wait returns
}

func (a *highAck) wait() error {
	a.once.Do(func() {
		timer := time.NewTimer(highAckTimeout)
		defer timer.Stop()
		select {
		case <-a.fut.Ok():
		case err := <-a.fut.Err():
			a.err = liveimpb.ErrUnavailable.With("store HIGH message: %v", err)
		case <-timer.C:
			a.err = liveimpb.ErrUnavailable.With("store HIGH message: no acknowledgement within %v", highAckTimeout)
		}
		endSpan(a.span, a.err)
		if a.err == nil {
			a.r.metrics.messages.WithLabelValues("high").Inc()
		}
		close(a.done)
	})
	return a.err
}

// waited reports, without waiting, whether a wait has returned.
func (a *highAck) waited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// resumeGroup returns the group's HIGH messages after req.AfterSeqnum, in
// order, from the HIGH stream: what a client missed while it was away.
func (r *Router) resumeGroup(ctx context.Context, j job, req *liveimpb.ResumeGroupRequest) (*liveimpb.Reply, error) {
	if req.AfterSeqnum < 0 {
		return nil, liveimpb.InvalidParam("afterSeqnum", "must not be negative")
	}
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	if req.AfterDeleteSeq < 0 {
		return nil, liveimpb.InvalidParam("afterDeleteSeq", "must not be negative")
	}
	// Every HIGH message up to sentSeq is in the stream once the stream
	// has acknowledged the publishes in flight (the read waits for them),
	// and every deletion up to DeleteSeq is in the store: the worker
	// finishes each deletion before it takes the next request, and sends
	// in order.
	last, lastDelete := gs.sentSeq, gs.g.DeleteSeq
	inFlight := j.w.highInFlight(groupKey(j.appID, j.groupID))
	rep := &liveimpb.ResumeGroupReply{GroupId: j.groupID, LastSeqnum: last, LastDeleteSeq: req.AfterDeleteSeq}
	if req.AfterSeqnum >= last && req.AfterDeleteSeq >= lastDelete {
		return &liveimpb.Reply{Body: &liveimpb.Reply_ResumeGroup{ResumeGroup: rep}}, nil
	}
	return r.answerLater(j, func() (*liveimpb.Reply, error) {
		var deleted map[string]bool
		if req.AfterDeleteSeq < lastDelete {
			dels, err := r.store.ListDeletions(ctx, j.appID, j.groupID, req.AfterDeleteSeq, r.cfg.ResumeBatch)
			if err != nil {
				return nil, fmt.Errorf("list deletions: %w", err)
			}
			deleted = make(map[string]bool, len(dels))
			for _, d := range dels {
				deleted[d.MessageID] = true
				rep.DeletedMessageIds = append(rep.DeletedMessageIds, d.MessageID)
				rep.LastDeleteSeq = d.Seq
			}
			// A full batch may leave deletions behind: resume again.
			rep.HasMore = len(dels) == r.cfg.ResumeBatch && rep.LastDeleteSeq < lastDelete
		}
		if req.AfterSeqnum < last {
			for _, a := range inFlight {
				_ = a.wait() // a HIGH message the stream refused is not in it, nor acknowledged
			}
			msgs, more, err := r.highAfter(ctx, subject.GroupHigh(j.appID, j.groupID), req.AfterSeqnum)
			if err != nil {
				return nil, err
			}
			rep.HasMore = rep.HasMore || more
			for _, m := range msgs {
				if !deleted[m.MessageId] {
					rep.Messages = append(rep.Messages, m)
				}
			}
		}
		return &liveimpb.Reply{Body: &liveimpb.Reply_ResumeGroup{ResumeGroup: rep}}, nil
	})
}

// highAfter reads up to ResumeBatch messages of subj with a group seqnum
// above after. It finds the first one by binary search over the stream
// sequence (a group's seqnums grow with the stream sequence), then reads
// forward with next-by-subject gets.
func (r *Router) highAfter(ctx context.Context, subj string, after int64) ([]*liveimpb.Message, bool, error) {
	info, err := r.high.Info(ctx)
	if err != nil {
		return nil, false, liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
	}
	first, lastSeq := info.State.FirstSeq, info.State.LastSeq
	if lastSeq == 0 || first > lastSeq {
		return nil, false, nil
	}
	// get returns the first message of subj at or after stream seq s.
	get := func(s uint64) (*jetstream.RawStreamMsg, int64, error) {
		m, err := r.high.GetMsg(ctx, s, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return nil, 0, err
		}
		seq, err := strconv.ParseInt(m.Header.Get(subject.HeaderSeq), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("HIGH message %d has no seqnum", m.Sequence)
		}
		return m, seq, nil
	}
	lo, hi := first, lastSeq+1 // find the least stream seq whose next message has seqnum > after
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, seq, err := get(mid)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			hi = mid
		case err != nil:
			return nil, false, liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
		case seq > after:
			hi = mid
		default:
			lo = m.Sequence + 1
		}
	}
	var out []*liveimpb.Message
	next := lo
	for next <= lastSeq && len(out) < r.cfg.ResumeBatch {
		m, _, err := get(next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, false, nil
		}
		if err != nil {
			return nil, false, liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
		}
		var sf liveimpb.ServerFrame
		if err := proto.Unmarshal(m.Data, &sf); err != nil || sf.GetEvent().GetGroupMessage() == nil {
			return nil, false, fmt.Errorf("HIGH message %d is not a group message", m.Sequence)
		}
		out = append(out, sf.GetEvent().GetGroupMessage())
		next = m.Sequence + 1
	}
	if len(out) < r.cfg.ResumeBatch || next > lastSeq {
		return out, false, nil
	}
	_, _, err = get(next) // anything left for this group?
	return out, err == nil, nil
}

// lastHighSeq returns the seqnum of the group's last HIGH message in the
// HIGH stream, 0 if it holds none.
func (r *Router) lastHighSeq(ctx context.Context, appID, groupID string) (int64, error) {
	m, err := r.high.GetLastMsgForSubject(ctx, subject.GroupHigh(appID, groupID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
	}
	seq, err := strconv.ParseInt(m.Header.Get(subject.HeaderSeq), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("HIGH message %d has no seqnum", m.Sequence)
	}
	return seq, nil
}
