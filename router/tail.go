package router

import (
	"cmp"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/proto/liveimpb"
)

// tailOverhead is what a tail entry costs beyond its message's encoded
// size: the entry, the decoded message's structs and the finished
// highAck it points to.
const tailOverhead = 320

// highTail is a group's recent HIGH messages, in seqnum order, kept in
// memory by the group's worker so that a resume after a short absence
// reads memory, not the HIGH stream. The stream answers one message per
// get (BenchmarkResume1000: 116–142 ms for a full batch), and the
// resumes that matter most come all at once: every member of a room on a
// gateway that restarted, asking for the same few seconds. A resume from
// before the tail still reads the stream.
type highTail struct {
	// from is a seqnum after which every HIGH message the group has sent
	// is in entries: the group's last seqnum when this router loaded it,
	// then the seqnum of the last entry its worker's budget dropped, or
	// where a stream read that reached it started (prependHigh).
	from    int64
	entries []*tailEntry
	// offers counts the group's messages offered to the stream again
	// (offered): one of before from may land after a read of the stream
	// that a prepend would trust.
	offers int
}

// tailEntry is one HIGH message of a tail. The worker owns its fields; a
// resume copies them (tailView) before it leaves the worker.
type tailEntry struct {
	msg       *liveimpb.Message
	ack       *highAck // its way to the stream: a resume gives it only once the stream took it
	noStorage bool
	deleted   bool
	size      int
	tail      *highTail // nil once its group left the worker's memory
}

// tailBudget is a worker's memory for the tails of its groups: the
// entries of all its groups in the order they were added, the oldest
// dropped first once they take more than max bytes.
type tailBudget struct {
	max   int
	bytes int
	live  int          // entries still in a tail
	queue []*tailEntry // oldest first; entries of forgotten groups wait to be skipped
	head  int
}

// addHigh adds a HIGH message that gs sent (the worker's current state of
// the group) to its tail, then drops the worker's oldest entries past the
// budget.
func (w *worker) addHigh(gs *groupState, msg *liveimpb.Message, ack *highAck, noStorage bool) {
	t := &gs.high
	if msg.Seqnum <= t.from || w.groups[groupKey(gs.g.AppID, gs.g.ID)] != gs {
		return // sent before this router loaded the group, or by a state since forgotten
	}
	b := &w.tail
	e := &tailEntry{msg: msg, ack: ack, noStorage: noStorage, size: proto.Size(msg) + tailOverhead, tail: t}
	t.entries = append(t.entries, e)
	b.queue = append(b.queue, e)
	b.bytes += e.size
	b.live++
	w.trimTail()
}

// trimTail drops the worker's oldest tail entries past its budget.
func (w *worker) trimTail() {
	b := &w.tail
	for b.bytes > b.max && b.head < len(b.queue) {
		old := b.queue[b.head]
		b.queue[b.head] = nil
		b.head++
		if old.tail == nil {
			continue // its group left memory: already uncounted
		}
		// A worker adds a group's messages in seqnum order, and puts
		// those a prepend brings at the front, so a group's oldest entry
		// in the queue is the first of its tail.
		ot := old.tail
		ot.entries[0] = nil
		ot.entries = ot.entries[1:]
		ot.from = old.msg.Seqnum
		old.tail = nil
		b.bytes -= old.size
		b.live--
	}
	b.compact()
}

// compact gives back the queue's dropped front, and the entries of
// forgotten groups once they are most of it.
func (b *tailBudget) compact() {
	n := len(b.queue) - b.head
	switch {
	case n > 2*b.live+1024:
		kept := b.queue[:0]
		for _, e := range b.queue[b.head:] {
			if e != nil && e.tail != nil {
				kept = append(kept, e)
			}
		}
		clear(b.queue[len(kept):])
		b.queue, b.head = kept, 0
	case b.head > 1024 && b.head > n:
		old := len(b.queue)
		copy(b.queue, b.queue[b.head:])
		clear(b.queue[n:old])
		b.queue, b.head = b.queue[:n], 0
	}
}

// dropTail uncounts the tail of a group leaving the worker's memory. Its
// entries stay in the worker's queue until they are skipped or compacted,
// without their messages.
func (w *worker) dropTail(gs *groupState) {
	w.tail.release(gs.high.entries)
	gs.high.entries = nil
}

// release uncounts entries leaving their tail; they stay in the queue,
// without their messages, until skipped or compacted.
func (b *tailBudget) release(es []*tailEntry) {
	for _, e := range es {
		e.tail, e.msg, e.ack = nil, nil, nil
		b.bytes -= e.size
		b.live--
	}
	b.compact()
}

// find returns the index of the first entry with a seqnum above seq.
func (t *highTail) find(seq int64) int {
	return sort.Search(len(t.entries), func(i int) bool { return t.entries[i].msg.Seqnum > seq })
}

// deleted marks a deleted message so no resume gives it again.
func (t *highTail) deleted(seq int64) {
	if i := t.find(seq - 1); i < len(t.entries) && t.entries[i].msg.Seqnum == seq {
		t.entries[i].deleted = true
	}
}

// offered records that a message was offered to the stream again (a
// retried send whose first offer the router gave up, or one a router
// that owned the group before stored). One the tail does not hold, though
// it claims every message after from, makes the tail start after it:
// resumes from before it read the stream, where it lands.
func (w *worker) offered(gs *groupState, seq int64, ack *highAck) {
	t := &gs.high
	t.offers++
	if i := t.find(seq - 1); i < len(t.entries) && t.entries[i].msg.Seqnum == seq {
		t.entries[i].ack = ack
		return
	}
	if seq <= t.from {
		return
	}
	n := t.find(seq)
	w.tail.release(t.entries[:n])
	t.entries = slices.Delete(t.entries, 0, n)
	t.from = seq
}

// tailMark is what a resume noted of a group's tail before it read the
// stream off the worker.
type tailMark struct {
	from      int64
	offers    int
	deleteSeq int64
}

// prependHigh makes gs's tail start at after with the messages a resume
// read from the stream, seen, every message of the group from after to
// mark.from: unless the group, its tail or its deletions changed since the
// resume noted mark. The entries go to the front of the worker's queue,
// so they are the first to go past the budget: they never push out a
// later message.
func (w *worker) prependHigh(gs *groupState, after int64, mark tailMark, seen []seenHigh) {
	t := &gs.high
	if w.groups[groupKey(gs.g.AppID, gs.g.ID)] != gs || t.from != mark.from || t.offers != mark.offers || gs.g.DeleteSeq != mark.deleteSeq || after >= t.from {
		return
	}
	// A stream out of seqnum order (a message given up, offered again by
	// its sender's retry after later ones landed) makes no tail.
	if !slices.IsSortedFunc(seen, func(a, b seenHigh) int { return cmp.Compare(a.msg.Seqnum, b.msg.Seqnum) }) {
		return
	}
	es := make([]*tailEntry, 0, len(seen))
	for _, m := range seen {
		if m.msg.Seqnum > after && m.msg.Seqnum <= t.from {
			es = append(es, &tailEntry{msg: m.msg, noStorage: m.noStorage, size: proto.Size(m.msg) + tailOverhead, tail: t})
		}
	}
	t.entries = slices.Concat(es, t.entries)
	t.from = after
	b := &w.tail
	if b.head >= len(es) {
		b.head -= len(es)
		copy(b.queue[b.head:], es)
	} else {
		b.queue, b.head = slices.Concat(es, b.queue[b.head:]), 0
	}
	for _, e := range es {
		b.bytes += e.size
		b.live++
	}
	w.trimTail()
}

// tailView is what a resume takes off the worker of a tail: the messages
// it may give, in order, and whether the tail holds more after them.
type tailView struct {
	msgs []*liveimpb.Message
	acks []*highAck
	more bool
}

// view returns the tail's messages after seq for a resume, or ok false
// when the tail does not reach back to seq. Like highAfter it leaves out
// noStorage messages sent before since (ms), and stops at max messages or
// bytes (encoded size). It leaves out messages the router gave up too:
// not in the stream, they would only take the page's room (a page of
// them alone would reach the client empty, with more).
func (t *highTail) view(seq, since int64, maxMsgs, maxBytes int) (v tailView, ok bool) {
	if seq < t.from {
		return v, false
	}
	budget := maxBytes
	for _, e := range t.entries[t.find(seq):] {
		if e.deleted || e.noStorage && e.msg.Timestamp < since || e.ack != nil && e.ack.failed() {
			continue
		}
		if len(v.msgs) == maxMsgs || len(v.msgs) > 0 && budget < e.size-tailOverhead {
			v.more = true
			break
		}
		v.msgs = append(v.msgs, e.msg)
		v.acks = append(v.acks, e.ack)
		budget -= e.size - tailOverhead
	}
	return v, true
}

// taken returns the view's messages the stream took, in order (a resume
// has waited for the last of them): what a read of the stream would have
// found. One not taken yet is left out, not the ones after it: a message
// offered again (a retried send the router had given up) may still be on
// its way while later ones were taken long ago.
func (v tailView) taken() (msgs []*liveimpb.Message, more bool) {
	for i, m := range v.msgs {
		if a := v.acks[i]; a == nil || a.finished() && a.err == nil {
			msgs = append(msgs, m)
		}
	}
	return msgs, v.more
}
