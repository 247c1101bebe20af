package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
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

// highAckTimeout bounds how long a sender, a resume or a purge waits for
// the HIGH stream to take a message.
const highAckTimeout = 5 * time.Second

// highAttempt bounds one offer of a message to the HIGH stream; a stream
// without a leader does not answer at all.
const highAttempt = 2 * time.Second

// highRetryFor is how long the router keeps offering a refused HIGH
// message to the stream: longer than a JetStream leader election.
const highRetryFor = 30 * time.Second

// publishHigh publishes a HIGH message into the HIGH stream (de-duplicated
// by message ID) without waiting, and queues it behind the group's
// messages whose place in the stream is not settled yet; the highAck says
// when it is. The stream captures the group's HIGH subject, so gateways
// subscribed to the group receive it live as well, in order with the
// group's NORMAL messages (both are published by the group's worker).
//
// The stream must hold a group's HIGH messages in seqnum order: that is
// the order a resume reads them in. A goroutine per group with messages
// queued (highChains.run) reads the stream's answers in order and puts
// right what the stream took out of order or not at all (settleHigh).
// Without it, a message the stream refused (no leader for a moment)
// reached the stream after the group's next one, through a retry.
func (r *Router) publishHigh(ctx context.Context, appID, groupID string, part int, msg *liveimpb.Message, frame []byte, noStorage bool) *highAck {
	stream, subj := r.highStream(appID, groupID)
	a := &highAck{
		appID: appID, groupID: groupID, key: groupKey(appID, groupID), part: part, id: msg.MessageId, seq: msg.Seqnum,
		stream: stream, subject: subj, frame: frame, since: r.now(), done: make(chan struct{}),
	}
	if r.tracing || noStorage {
		a.header = nats.Header{} // the trace context, for every offer
	}
	if noStorage {
		a.header.Set(subject.HeaderNoStorage, "1") // resumeGroup
	}
	a.span = r.startSend(ctx, telemetry.Publish, a.subject, a.header, semconv.MessagingMessageID(msg.MessageId),
		semconv.MessagingMessageBodySize(len(frame)), telemetry.AppIDKey.String(appID), telemetry.GroupIDKey.String(groupID))
	r.highChains.offer(r, a)
	return a
}

// highAck is one HIGH message on its way to the stream. Its outcome is
// set once, when the stream took it or the router gave it up; waits may
// time out before that.
type highAck struct {
	appID   string
	groupID string
	key     string // groupKey(appID, groupID)
	part    int
	id      string // message ID: the stream's de-duplication ID
	seq     int64
	stream  jetstream.Stream // the group's HIGH stream shard
	subject string
	frame   []byte
	since   time.Time
	span    trace.Span
	header  nats.Header            // trace context when tracing (startSend); copied into every offer
	fut     jetstream.PubAckFuture // the first offer's answer; nil if it could not be made
	err     error                  // read after done is closed
	done    chan struct{}          // closed once the stream took it (err nil) or the router gave it up
}

// wait returns nil once the stream took the message, the router's error
// if it gave the message up, or 503 after highAckTimeout: the message may
// still reach the stream, and a retry with the same clientMsgId waits
// for it again.
func (a *highAck) wait() error { return a.waitFor(highAckTimeout) }

func (a *highAck) waitFor(d time.Duration) error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-a.done:
		return a.err
	case <-timer.C:
		return liveimpb.ErrUnavailable.With("store HIGH message: the stream has not taken it within %v; retry with the same clientMsgId", d)
	}
}

// finished reports, without waiting, whether the message's outcome is set.
func (a *highAck) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// failed reports whether the router gave the message up.
func (a *highAck) failed() bool { return a.finished() && a.err != nil }

// highChains holds each group's HIGH messages whose place in the stream
// is not settled yet, oldest first; a goroutine per group with messages
// (run) settles them in order.
type highChains struct {
	mu sync.Mutex // leaf lock
	m  map[string][]*highAck
	wg sync.WaitGroup // the groups' goroutines
}

// offer publishes a and queues it for its group's run. A group's messages
// all come from its worker, so they are published and queued in seqnum
// order.
func (c *highChains) offer(r *Router, a *highAck) {
	r.metrics.highWaiting.Inc()
	// No retry by the NATS client: it would offer a refused message again
	// after the later ones (run offers it again, in order).
	if fut, err := r.js.PublishMsgAsync(a.offer(), jetstream.WithMsgID(a.id), jetstream.WithRetryAttempts(0)); err == nil {
		a.fut = fut
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][]*highAck)
	}
	q := c.m[a.key]
	c.m[a.key] = append(q, a)
	if len(q) == 0 {
		c.wg.Add(1)
		go c.run(r, a.key)
	}
}

// run settles a group's messages in order until none is left.
func (c *highChains) run(r *Router, key string) {
	defer c.wg.Done()
	var last uint64 // stream sequence of the group's last message settled
	for {
		c.mu.Lock()
		a := c.m[key][0] // never empty: offer starts run for a message, and run ends with the last
		c.mu.Unlock()
		r.finishHigh(a, r.settleHigh(a, &last))
		c.mu.Lock()
		q := c.m[key]
		q[0] = nil
		if len(q) == 1 { // in the hold that empties it, or an offer would find no run
			delete(c.m, key)
			c.mu.Unlock()
			return
		}
		c.m[key] = q[1:]
		c.mu.Unlock()
	}
}

// drain waits at most d for every group's messages to reach the stream.
func (c *highChains) drain(d time.Duration) bool { return waitFor(&c.wg, d) }

// waitFor waits at most d for wg; it reports whether wg is done.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// settleHigh makes sure a is in the stream after the group's messages
// settled before it (last: the stream sequence of the latest), offering
// it again if the stream did not take it, and deleting it first and
// offering it again under a new de-duplication ID if the stream took it
// ahead of one of them (an earlier message that was offered again).
func (r *Router) settleHigh(a *highAck, last *uint64) error {
	streamSeq, in := uint64(0), false
	if a.fut != nil {
		select {
		case ack := <-a.fut.Ok():
			streamSeq, in = ack.Sequence, true
		case <-a.fut.Err(): // refused, or no answer within highAttempt: did it land?
		}
	}
	if !in {
		landed, err := r.landedHigh(a)
		if err != nil {
			return err
		}
		streamSeq, in = landed[a.seq]
	}
	for {
		if in && streamSeq > *last {
			*last = streamSeq
			return nil
		}
		if in { // ahead of a message settled before it
			r.log.Warn("HIGH message stored out of order; storing it again behind the earlier ones",
				telemetry.LogAppID, a.appID, telemetry.LogGroupID, a.groupID, "seqnum", a.seq)
			if err := r.retryHigh(a, func(ctx context.Context) error {
				err := a.stream.DeleteMsg(ctx, streamSeq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					return nil
				}
				return err
			}); err != nil {
				return err
			}
			a.id += "~" + strconv.FormatUint(streamSeq, 10) // the old ID would be dropped as a duplicate
		}
		var err error
		if streamSeq, err = r.storeHigh(a); err != nil {
			return err
		}
		in = true
	}
}

// landedHigh returns the stream sequence of each of a's group's messages
// in the stream from a's seqnum on, by seqnum. The messages before a are
// in the stream, in order.
func (r *Router) landedHigh(a *highAck) (map[int64]uint64, error) {
	landed := make(map[int64]uint64)
	err := r.retryHigh(a, func(ctx context.Context) error {
		clear(landed)
		return r.scanHigh(ctx, a.stream, a.subject, a.seq-1, nil, func(m *jetstream.RawStreamMsg, seq int64) bool {
			landed[seq] = m.Sequence
			return true
		})
	})
	return landed, err
}

// offer is the NATS message of one offer of a to the stream.
func (a *highAck) offer() *nats.Msg {
	out := nats.NewMsg(a.subject)
	out.Data = a.frame
	for k, v := range a.header {
		out.Header[k] = v
	}
	out.Header.Set(subject.HeaderSeq, strconv.FormatInt(a.seq, 10))
	out.Header.Set(subject.HeaderLevel, "1")
	return out
}

// storeHigh offers a message to the HIGH stream until it takes it, and
// returns its stream sequence.
func (r *Router) storeHigh(a *highAck) (uint64, error) {
	var seq uint64
	err := r.retryHigh(a, func(ctx context.Context) error {
		ack, err := r.js.PublishMsg(ctx, a.offer(), jetstream.WithMsgID(a.id))
		if err == nil {
			seq = ack.Sequence
		}
		return err
	})
	return seq, err
}

// retryHigh runs op for a's sake, each run bounded by highAttempt, until
// it succeeds. It gives up after highRetryFor since a was sent, when the
// router no longer owns a's partition (the next owner answers for the
// group now), or when the router has stopped.
func (r *Router) retryHigh(a *highAck, op func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), highAttempt)
		err := op(ctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				r.log.Info("HIGH stream answered after retries", telemetry.LogAppID, a.appID, telemetry.LogGroupID, a.groupID, "seqnum", a.seq, "attempts", attempt)
			}
			return nil
		}
		if r.now().Sub(a.since) > highRetryFor || !r.parts.owns(a.part) {
			r.log.Warn("HIGH message given up", telemetry.LogAppID, a.appID, telemetry.LogGroupID, a.groupID, "seqnum", a.seq, "attempts", attempt, "err", err)
			return liveimpb.ErrUnavailable.With("store HIGH message: %v", err)
		}
		if attempt == 1 {
			r.log.Warn("HIGH stream refused; trying again", telemetry.LogAppID, a.appID, telemetry.LogGroupID, a.groupID, "seqnum", a.seq, "err", err)
		}
		r.metrics.highRetries.Inc()
		select {
		case <-time.After(backoff):
		case <-r.quit:
			return liveimpb.ErrUnavailable.With("store HIGH message: %v; the router stopped", err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// finishHigh sets a message's outcome.
func (r *Router) finishHigh(a *highAck, err error) {
	a.err = err
	endSpan(a.span, err)
	// Its group's tail may keep it (tail.go): only the outcome, not the
	// frame. Only the group's chain, now done with it, read these.
	a.frame, a.header, a.fut, a.span = nil, nil, nil, nil
	r.metrics.highWaiting.Dec()
	if err == nil {
		r.metrics.messages.WithLabelValues("high").Inc()
	}
	close(a.done)
}

// resumeGroup returns the group's HIGH messages after req.AfterSeqnum, in
// order: what a client missed while it was away. They come from the
// group's tail in memory when it reaches back that far, else from the
// HIGH stream.
func (r *Router) resumeGroup(ctx context.Context, j job, c *liveimpb.Caller, req *liveimpb.ResumeGroupRequest) (*liveimpb.Reply, error) {
	if req.AfterSeqnum < 0 {
		return nil, liveimpb.InvalidParam("afterSeqnum", "must not be negative")
	}
	gs, err := j.w.group(ctx, j.appID, j.groupID, j.part)
	if err != nil {
		return nil, err
	}
	if err := notBanned(gs, c, r.now().UnixMilli()); err != nil {
		return nil, err
	}
	// A noStorage message is for the members there when it was sent: it
	// is in no history, and a resume gives it only to a member that was
	// in the group by then (one whose record the router lost, since).
	var since int64
	if !c.Server {
		since = r.now().UnixMilli()
		if m := gs.members[c.UserId]; m != nil {
			since = m.joinTime
		}
	}
	if req.AfterDeleteSeq < 0 {
		return nil, liveimpb.InvalidParam("afterDeleteSeq", "must not be negative")
	}
	// Every HIGH message up to sentSeq is in the stream once the stream
	// has taken the messages on their way to it (the read waits for them),
	// and every deletion up to DeleteSeq is in the store: the worker
	// finishes each deletion before it takes the next request, and sends
	// in order.
	last, lastDelete := gs.sentSeq, gs.g.DeleteSeq
	inFlight := j.w.highInFlight(groupKey(j.appID, j.groupID))
	rep := &liveimpb.ResumeGroupReply{GroupId: j.groupID, LastSeqnum: last, LastDeleteSeq: req.AfterDeleteSeq}
	if req.AfterSeqnum >= last && req.AfterDeleteSeq >= lastDelete {
		return &liveimpb.Reply{Body: &liveimpb.Reply_ResumeGroup{ResumeGroup: rep}}, nil
	}
	// The messages since this router loaded the group are in memory,
	// unless the worker's budget dropped them since (tail.go).
	var view tailView
	inTail := false
	if req.AfterSeqnum < last {
		view, inTail = gs.high.view(req.AfterSeqnum, since, r.cfg.ResumeBatch, int(r.nc.MaxPayload()/2))
		r.resumes[b2i(inTail)].Add(1)
	}
	tailFrom, offers, deleteSeq := gs.high.from, gs.high.offers, gs.g.DeleteSeq
	removing := gs.removing() // deleted, maybe still in the stream
	// A send of a state of the group this worker dropped (a save
	// conflict) may still be at the store: its message, after the read,
	// would be in neither the read nor the tail.
	staleSends := j.w.sendingOf(groupKey(j.appID, j.groupID), gs)
	// Within DedupeWindow of the group's load the router that owned it
	// before may still land messages of before the tail's start in the
	// stream (its HIGH chains, a sender's retry of one it stored):
	// after the read, they would be in neither.
	settledOwner := !r.now().Before(gs.lookUpUntil)
	// The reply is made off the worker, even from memory: encoding up to
	// half a NATS message is the resume's cost, and the worker's other
	// groups (other apps') should not wait for it.
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
			if n := len(inFlight); n > 0 {
				// A group's messages reach the stream in order: once the
				// last is in, so are the others. One the stream has not
				// taken within highAckTimeout is not in the reply, nor
				// acknowledged; it reaches the client live when the
				// stream takes it.
				_ = inFlight[n-1].wait()
			}
			settled := len(inFlight) == 0 || inFlight[len(inFlight)-1].finished()
			var msgs []*liveimpb.Message
			var more bool
			if inTail {
				if msgs, more = view.taken(); len(msgs) == 0 && more {
					// Every message of the view was given up while the
					// resume waited: an empty page with more would end
					// the client's resume. The next resume leaves them
					// out of its view.
					return nil, liveimpb.ErrUnavailable.With("HIGH stream: the group's recent messages are not stored; retry")
				}
			} else {
				p := r.readHigh(ctx, j.appID, j.groupID, req.AfterSeqnum, since)
				var err error
				if msgs, more, err = p.done(); err != nil {
					return nil, err
				}
				// When the read saw every message up to where the tail
				// starts, the tail may start where the read did: the next
				// resumes from there read memory (the members of a room
				// resuming after its router and gateway restarted ask for
				// nearly the same). Not when a message of the group was
				// still on its way to the stream after the wait.
				if seen, ok := p.reaching(tailFrom); ok && settled && !staleSends && settledOwner && removing == nil {
					mark := tailMark{from: tailFrom, offers: offers, deleteSeq: deleteSeq}
					j.w.post(func(w *worker) { w.prependHigh(gs, req.AfterSeqnum, mark, seen) })
				}
			}
			rep.HasMore = rep.HasMore || more
			for _, m := range msgs {
				if !deleted[m.MessageId] && !removing[m.Seqnum] {
					rep.Messages = append(rep.Messages, m)
				}
			}
		}
		return &liveimpb.Reply{Body: &liveimpb.Reply_ResumeGroup{ResumeGroup: rep}}, nil
	})
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unstreamHigh removes a deleted HIGH message, seqnum seq, from the HIGH
// stream, off the worker. A resume leaves out only the deletions after
// the one the client names, so a client that names the group's last
// deletion (one that joined after it) would otherwise be given the
// deleted message back from the stream (e2e.TestResumeLeavesDeletedHighOut).
// It waits until the group's HIGH messages in flight have settled (their
// chain lands them or gives them up, highRetryFor at most; the last
// settles after the others), as one of them may be this message. It used
// to wait highAckTimeout for them, on the worker, holding up the worker's
// other groups, and then missed a message its chain landed later
// (TestDeletedHighThatLandsLateLeavesTheStream). Until the removal is
// done, resumes leave seq out of what they read from the stream
// (groupState.removals). A failure is logged: the deletion is stored,
// and resumes that ask from before it still leave the message out.
//
// With no HIGH message of the group in flight, removed runs once the
// message is out of the stream, so the deletion is answered after it,
// and a router that takes the group over right after cannot read it
// back; otherwise at once, as the chain may take highRetryFor.
func (r *Router) unstreamHigh(j job, gs *groupState, seq int64, removed func()) {
	var last *highAck
	if inFlight := j.w.highInFlight(groupKey(j.appID, j.groupID)); len(inFlight) > 0 {
		last = inFlight[len(inFlight)-1]
		removed()
		removed = func() {}
	}
	rm := &highRemoval{seq: seq, done: make(chan struct{})}
	gs.removals = append(unfinished(gs.removals), rm)
	r.unstreams.Add(1)
	go func() {
		defer r.unstreams.Done()
		defer removed()
		defer close(rm.done)
		if last != nil {
			select {
			case <-last.done:
			case <-r.quit: // the chains have stopped: remove what is there
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*highAttempt)
		defer cancel()
		stream, subj := r.highStream(j.appID, j.groupID)
		err := r.unstreamFrom(ctx, stream, subj, seq)
		if legacy := r.legacy(); legacy != nil {
			if lerr := r.unstreamFrom(ctx, legacy, subject.LegacyGroupHigh(j.appID, j.groupID), seq); !r.legacyGone(lerr) {
				err = cmp.Or(err, lerr)
			}
		}
		if err != nil {
			r.log.Warn("a deleted HIGH message stays in the HIGH stream", telemetry.LogAppID, j.appID, telemetry.LogGroupID, j.groupID, "seqnum", seq, "err", err)
		}
	}()
}

// highRemoval is a deleted HIGH message on its way out of the stream.
type highRemoval struct {
	seq  int64
	done chan struct{} // closed once unstreamHigh is done with it
}

// unfinished returns the removals still under way, in place.
func unfinished(rms []*highRemoval) []*highRemoval {
	kept := rms[:0]
	for _, rm := range rms {
		select {
		case <-rm.done:
		default:
			kept = append(kept, rm)
		}
	}
	clear(rms[len(kept):])
	return kept
}

// removing returns the seqnums of gs's deleted HIGH messages whose
// removal from the stream is under way; nil when there are none.
func (gs *groupState) removing() map[int64]bool {
	if gs.removals = unfinished(gs.removals); len(gs.removals) == 0 {
		gs.removals = nil
		return nil
	}
	seqs := make(map[int64]bool, len(gs.removals))
	for _, rm := range gs.removals {
		seqs[rm.seq] = true
	}
	return seqs
}

// unstreamFrom deletes the messages of subj with seqnum seq from stream.
func (r *Router) unstreamFrom(ctx context.Context, stream jetstream.Stream, subj string, seq int64) error {
	var found []uint64
	err := r.scanHigh(ctx, stream, subj, seq-1, nil, func(m *jetstream.RawStreamMsg, s int64) bool {
		if s == seq {
			found = append(found, m.Sequence)
		}
		return s <= seq
	})
	for _, streamSeq := range found {
		if derr := stream.DeleteMsg(ctx, streamSeq); derr != nil && !errors.Is(derr, jetstream.ErrMsgNotFound) {
			err = derr
		}
	}
	return err
}

// highAfter reads up to ResumeBatch HIGH messages of a group with a
// seqnum above after, in order, leaving out the noStorage ones sent
// before since (ms); more reports whether the group has more. It reads
// the HIGH stream of before the shards first, while there is one: a
// group's messages there are older than any in its shard. The messages
// stay within half of what one NATS message holds, for the reply that
// carries them: 1,000 HIGH messages of up to 15 KiB each made a reply too
// large to send, and a client's resume got nothing. Each get from a
// stream takes one of appID's stream reads (Config.ResumeReadRate): past
// them a resume ends its page early, and a resume that finds them used up
// is 412.
func (r *Router) highAfter(ctx context.Context, appID, groupID string, after, since int64) ([]*liveimpb.Message, bool, error) {
	return r.readHigh(ctx, appID, groupID, after, since).done()
}

// readHigh reads a page of highAfter, keeping what it saw.
func (r *Router) readHigh(ctx context.Context, appID, groupID string, after, since int64) *highPage {
	p := &highPage{r: r, budget: r.nc.MaxPayload() / 2, since: since}
	// A page starts only while the app has reads left; until it has a
	// message to give it reads on credit (the search for the first
	// message, noStorage messages it skips), the app owing at most 10
	// seconds of reads, so a page gets one and the client progresses;
	// then it ends when the reads do. The app's next pages wait for the
	// credit to be paid back.
	if !r.streamReads.Allow(appID, r.now()) {
		p.err = errStreamReads
		return p
	}
	p.charge = func() bool {
		if len(p.out) == 0 {
			return r.streamReads.Owe(appID, 1, r.now())
		}
		return r.streamReads.Allow(appID, r.now())
	}
	if legacy := r.legacy(); legacy != nil {
		switch p.err = p.read(ctx, legacy, subject.LegacyGroupHigh(appID, groupID), after); {
		case r.legacyGone(p.err):
			p.err = nil // nothing read: it was there at the search's start or not at all
		case p.err != nil || p.more:
			return p
		}
		if n := len(p.seen); n > 0 {
			after = p.seen[n-1].msg.Seqnum
		}
	}
	stream, subj := r.highStream(appID, groupID)
	p.err = p.read(ctx, stream, subj, after)
	return p
}

// highPage is one resume page being read from the HIGH streams.
type highPage struct {
	r      *Router
	budget int64 // bytes left
	since  int64
	charge func() bool
	out    []*liveimpb.Message
	more   bool
	err    error
	// seen is every message read, in order, noStorage ones left out of
	// out included: with more false, all the group's messages after the
	// page's start; with more, those up to the last (a tail may take
	// them, tail.go).
	seen []seenHigh
}

// seenHigh is a HIGH message read from a stream.
type seenHigh struct {
	msg       *liveimpb.Message
	noStorage bool
}

// read adds the messages of subj in stream with a seqnum above after.
func (p *highPage) read(ctx context.Context, stream jetstream.Stream, subj string, after int64) error {
	var bad error
	err := p.r.scanHigh(ctx, stream, subj, after, p.charge, func(m *jetstream.RawStreamMsg, _ int64) bool {
		if len(p.out) == p.r.cfg.ResumeBatch || len(p.out) > 0 && p.budget < int64(len(m.Data)) {
			p.more = true
			return false
		}
		var sf liveimpb.ServerFrame
		if proto.Unmarshal(m.Data, &sf) != nil || sf.GetEvent().GetGroupMessage() == nil {
			bad = fmt.Errorf("HIGH message %d is not a group message", m.Sequence)
			return false
		}
		msg := sf.GetEvent().GetGroupMessage()
		noStorage := m.Header.Get(subject.HeaderNoStorage) != ""
		p.seen = append(p.seen, seenHigh{msg: msg, noStorage: noStorage})
		if noStorage && msg.Timestamp < p.since {
			return true
		}
		p.out = append(p.out, msg)
		p.budget -= int64(len(m.Data))
		return true
	})
	if errors.Is(err, errStreamReads) && len(p.out) > 0 {
		p.more = true // the rest in the next page
		return nil
	}
	return cmp.Or(err, bad)
}

// reaching returns the messages read up to seqnum from, and whether the
// read saw every message of the group up to there: it ended at the last,
// or read past from.
func (p *highPage) reaching(from int64) ([]seenHigh, bool) {
	n := len(p.seen)
	if p.err != nil || p.more && (n == 0 || p.seen[n-1].msg.Seqnum < from) {
		return nil, false
	}
	i := sort.Search(n, func(i int) bool { return p.seen[i].msg.Seqnum > from })
	return p.seen[:i], true
}

// done returns the page, or its error.
func (p *highPage) done() ([]*liveimpb.Message, bool, error) {
	switch err := p.err; {
	case errors.Is(err, errNoHighStream):
		return nil, false, unavailableHigh(err)
	case errors.Is(err, errStreamReads):
		return nil, false, liveimpb.ErrTooFast.With("this app's resumes read the HIGH stream over %.0f messages/s; retry", p.r.cfg.ResumeReadRate)
	case err != nil:
		return nil, false, err
	}
	return p.out, p.more, nil
}

// errNoHighStream is a HIGH stream that is not there: 503 for a shard
// (unavailableHigh), the end of the stream of before the shards
// (legacyGone). Not a liveimpb.Error, whose errors.Is matches any of the
// same code.
var errNoHighStream = errors.New("router: the HIGH stream is not there")

// unavailableHigh is err as a client sees it: errNoHighStream is 503.
func unavailableHigh(err error) error {
	if errors.Is(err, errNoHighStream) {
		return liveimpb.ErrUnavailable.With("HIGH stream: not found")
	}
	return err
}

// errStreamReads ends a scan whose charge refused a get.
var errStreamReads = errors.New("router: the app's HIGH stream reads are used up")

// scanHigh calls fn with each message of subj from the first with a group
// seqnum above after, in stream order, with its seqnum, while fn returns
// true. It finds the first one by binary search over the stream sequence
// (a group's seqnums grow with the stream sequence), then reads forward
// with next-by-subject gets. charge, when set, is asked before each get;
// when it says no the scan ends with errStreamReads.
func (r *Router) scanHigh(ctx context.Context, stream jetstream.Stream, subj string, after int64, charge func() bool, fn func(*jetstream.RawStreamMsg, int64) bool) error {
	info, err := stream.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return errNoHighStream
	}
	if err != nil {
		return liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
	}
	first, lastSeq := info.State.FirstSeq, info.State.LastSeq
	if lastSeq == 0 || first > lastSeq {
		return nil
	}
	// get returns the first message of subj at or after stream seq s.
	get := func(s uint64) (*jetstream.RawStreamMsg, int64, error) {
		if charge != nil && !charge() {
			return nil, 0, errStreamReads
		}
		m, err := stream.GetMsg(ctx, s, jetstream.WithGetMsgSubject(subj))
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
		case errors.Is(err, errStreamReads):
			return err
		case err != nil:
			return liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
		case seq > after:
			hi = mid
		default:
			lo = m.Sequence + 1
		}
	}
	for next := lo; next <= lastSeq; {
		m, seq, err := get(next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if errors.Is(err, errStreamReads) {
			return err
		}
		if err != nil {
			return liveimpb.ErrUnavailable.With("HIGH stream: %v", err)
		}
		if !fn(m, seq) {
			return nil
		}
		next = m.Sequence + 1
	}
	return nil
}

// lastHighSeq returns the seqnum of the group's last HIGH message in the
// HIGH stream, 0 if it holds none.
func (r *Router) lastHighSeq(ctx context.Context, appID, groupID string) (int64, error) {
	stream, subj := r.highStream(appID, groupID)
	last, err := lastSeqIn(ctx, stream, subj)
	legacy := r.legacy()
	if err != nil || last > 0 || legacy == nil {
		return last, unavailableHigh(err)
	}
	last, err = lastSeqIn(ctx, legacy, subject.LegacyGroupHigh(appID, groupID))
	if r.legacyGone(err) {
		return 0, nil
	}
	return last, err
}

// lastSeqIn returns the seqnum of the last message of subj in stream, 0
// if it holds none.
func lastSeqIn(ctx context.Context, stream jetstream.Stream, subj string) (int64, error) {
	m, err := stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, errNoHighStream
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
