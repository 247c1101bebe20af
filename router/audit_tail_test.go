package router

// Tests from an audit of the HIGH tail (tail.go), the resume read rate
// and the HIGH stream shards, on the day they were written: each failed
// on the code audited and shows one finding, described in the past tense,
// with what the code does now.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

func auditSeqs(ms []*liveimpb.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seqnum
	}
	return out
}

// TestAuditTailPageOfGivenUpMessages: a group sends ~40 large HIGH
// messages while the stream refuses them; the router gives them up (after
// highRetryFor; here a clock moved on), then the stream recovers and two
// more HIGH messages are stored and acknowledged. A member resumes from
// before them. The stream holds only the two later messages and a stream
// read gives them. The tail's view takes its first page's byte budget
// (MaxPayload/2) with given-up messages only, taken() drops them all and
// keeps "more": resumeGroup answered on the worker (nothing in flight)
// with an EMPTY page and hasMore. The SDK (rejoin.ts) ends the resume on
// an empty page with hasMore and releases the held events: the two
// acknowledged messages were never delivered; the Go client
// (client.HighTracker.Resume) asked again forever. Now a view leaves out
// the messages given up.
func TestAuditTailPageOfGivenUpMessages(t *testing.T) {
	r, _ := refusingHighRouter(t) // refuses HIGH messages over 1 KiB
	var clock atomic.Int64
	clock.Store(time.Unix(100_000, 0).UnixNano())
	r.now = func() time.Time { return time.Unix(0, clock.Load()) }
	ctx := context.Background()
	w := r.workers[0]
	gs := &groupState{part: 0, g: storage.Group{AppID: "app", ID: "g"}, usedAt: r.now(),
		members: map[string]*member{"viewer": {id: "viewer", joinTime: 0}}}
	w.groups[groupKey("app", "g")] = gs

	send := func(seq int64, data string) *highAck {
		a, err := publishTestHigh(r, "g", 0, fmt.Sprint("m", seq), seq, data)
		if err != nil {
			t.Fatal(err)
		}
		// as Router.sent does
		gs.lastSeq, gs.sentSeq = seq, seq
		w.trackHigh(a)
		msg := &liveimpb.Message{MessageId: fmt.Sprint("m", seq), GroupId: "g", Seqnum: seq, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
		w.addHigh(gs, msg, a, false)
		return a
	}
	var refused []*highAck
	for seq := int64(1); seq <= 40; seq++ {
		refused = append(refused, send(seq, strings.Repeat("x", 14<<10)))
	}
	clock.Add(int64(highRetryFor + time.Second)) // the stream refused them for longer than highRetryFor
	for _, a := range refused {
		if err := a.waitFor(20 * time.Second); err == nil || !a.finished() {
			t.Fatalf("seqnum %d: want given up, got finished %v err %v", a.seq, a.finished(), err)
		}
	}
	// The stream is back: two small messages are stored and acknowledged.
	for seq := int64(41); seq <= 42; seq++ {
		if err := send(seq, "ok").wait(); err != nil {
			t.Fatal(err)
		}
	}
	if !r.highChains.drain(10 * time.Second) {
		t.Fatal("chains still running")
	}
	fromStream, _, err := r.highAfter(ctx, "app", "g", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(auditSeqs(fromStream), []int64{41, 42}) {
		t.Fatalf("the stream holds %v, want [41 42]", auditSeqs(fromStream))
	}
	var got []int64
	after := int64(0)
	for page := 0; page < 5; page++ { // as client.HighTracker.Resume does
		res, err := resumeNow(r, job{appID: "app", groupID: "g", part: 0, w: w},
			&liveimpb.Caller{AppId: "app", UserId: "viewer"}, &liveimpb.ResumeGroupRequest{GroupId: "g", AfterSeqnum: after})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if len(res.Messages) == 0 && res.HasMore {
			t.Fatalf("page %d after %d: EMPTY page with hasMore=true (the SDK ends its resume here; the Go client asks the same again forever); "+
				"the stream gives %v; got so far %v", page, after, auditSeqs(fromStream), got)
		}
		for _, m := range res.Messages {
			got = append(got, m.Seqnum)
			after = m.Seqnum
		}
		if !res.HasMore {
			break
		}
	}
	if !slices.Equal(got, []int64{41, 42}) {
		t.Fatalf("resume from memory gave %v, want [41 42]", got)
	}
}

// TestAuditTailDeadEntriesKeepMessages: the tail budget counts the bytes
// of live entries only. Entries of groups that left memory (forget/evict
// -> dropTail) stay in the worker's queue until compact finds more than
// 2*live+1024 of them; they pointed at their messages, so with large
// messages the queue held many times the --resume-memory share, unseen by
// the gauge. Now dropTail lets go of the messages.
func TestAuditTailDeadEntriesKeepMessages(t *testing.T) {
	const budget = 64 << 10
	w := newWorker(&Router{cfg: Config{ResumeMemory: budget, Workers: 1}})
	data := strings.Repeat("x", 15<<10)
	worst := 0
	for round := range 1000 {
		gs := &groupState{g: storage.Group{AppID: "app", ID: fmt.Sprint("g", round)}}
		w.groups[groupKey("app", gs.g.ID)] = gs
		for seq := range int64(3) { // 3 x 15 KiB: under the budget
			w.addHigh(gs, &liveimpb.Message{Seqnum: seq + 1, Data: data}, nil, false)
		}
		w.forget(gs) // the group leaves memory (idle, moved, deleted)
		held := 0
		for _, e := range w.tail.queue[w.tail.head:] {
			if e != nil && e.msg != nil {
				held += proto.Size(e.msg)
			}
		}
		worst = max(worst, held)
	}
	if worst > 2*budget {
		t.Fatalf("the worker's tail queue keeps %d KiB of messages of groups no longer in memory reachable; its budget is %d KiB (counted: %d bytes)",
			worst>>10, budget>>10, w.tail.bytes)
	}
}

// TestAuditResumeSkippedNoStorageNeverProgresses: the resume read rate is
// charged per stream get, also for the noStorage messages a page skips
// (sent before the member joined). A page that must skip more of them
// than the app's burst before it finds one to give ends with nothing
// read: 412. The next try started from the same seqnum, skipped the
// same messages, and was 412 again, however long the client waited: that
// member's resume never progressed. Here a rate of 20 and 40 skipped
// messages; with the default 20,000 it took a run of ~20,000 noStorage
// HIGH messages. Now a page reads on credit until it has a message to
// give, and the next waits for the credit to be paid back.
func TestAuditResumeSkippedNoStorageNeverProgresses(t *testing.T) {
	r, clock := roomAfterNoStorage(t, 40)
	ctx := context.Background()
	const since = 2000 // the member's join time
	var lastErr error
	for attempt := range 10 {
		msgs, _, err := r.highAfter(ctx, "app", "room", 0, since)
		if err == nil {
			if !slices.Equal(auditSeqs(msgs), []int64{41}) {
				t.Fatalf("attempt %d: %v, want [41]", attempt, auditSeqs(msgs))
			}
			return
		}
		lastErr = err
		clock.Add(int64(10 * time.Second)) // the app's reads refill fully between tries
	}
	t.Fatalf("10 tries, the app's stream reads full before each: never a page, last error %v", lastErr)
}

// TestAuditTailUnfinishedReofferHidesLaterMessages: seqnum 3's first
// offer was given up; the sender's retry (same clientMsgId) offers it
// again (repeatedSend -> highTail.offered) while the stream is still
// slow. Seqnums 4 and 5 were stored and acknowledged long before. A
// resume from 0 waits for the re-offer (highAckTimeout), then taken()
// stopped at the unfinished entry and reported hasMore=false: the client
// ended its resume without 4 and 5. A stream read gives 4 and 5 (3 is
// not in the stream yet), and so does taken() now.
func TestAuditTailUnfinishedReofferHidesLaterMessages(t *testing.T) {
	r := ownerOfPartition0(t, Config{})
	ctx := context.Background()
	w := r.workers[0]
	gs := &groupState{part: 0, g: storage.Group{AppID: "app", ID: "g"}, usedAt: r.now(),
		members: map[string]*member{"viewer": {id: "viewer"}}}
	w.groups[groupKey("app", "g")] = gs
	finished := func(err error) *highAck {
		a := &highAck{key: groupKey("app", "g"), done: make(chan struct{}), err: err, since: time.Now()}
		close(a.done)
		return a
	}
	for seq := int64(1); seq <= 5; seq++ {
		var err error
		if seq == 3 {
			err = liveimpb.ErrUnavailable.With("given up")
		}
		gs.lastSeq, gs.sentSeq = seq, seq
		w.addHigh(gs, &liveimpb.Message{MessageId: fmt.Sprint("m", seq), Seqnum: seq, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}, finished(err), false)
	}
	// The sender retries seqnum 3: offered again, the stream slow.
	again := &highAck{key: groupKey("app", "g"), seq: 3, done: make(chan struct{}), since: time.Now()}
	w.trackHigh(again)
	w.offered(gs, 3, again)

	replied := make(chan *liveimpb.ResumeGroupReply, 1)
	j := job{appID: "app", groupID: "g", part: 0, w: w, done: func(rep *liveimpb.Reply, err error) {
		if err != nil {
			t.Error(err)
		}
		replied <- rep.GetResumeGroup()
	}}
	rep, err := r.resumeGroup(ctx, j, &liveimpb.Caller{AppId: "app", UserId: "viewer"}, &liveimpb.ResumeGroupRequest{GroupId: "g"})
	if err != errLater {
		t.Fatalf("want the resume answered off the worker, got %v %v", rep, err)
	}
	res := <-replied // after highAckTimeout
	got := auditSeqs(res.Messages)
	if !res.HasMore && !slices.Contains(got, 4) {
		t.Fatalf("resume gave %v with hasMore=false: acknowledged seqnums 4 and 5 are withheld and the client is told it has all", got)
	}
}

// TestAuditLegacyStreamDeletedUnderRunningRouter: a router that started
// while LIVEIM_HIGH (the stream of before the shards) held messages kept
// reading it for its whole life. Once the messages aged out, the next
// router to start deleted the stream (setupHighStreams); the router
// already running got "stream not found" from it, so loadGroup failed
// (503) for every group with nothing in its shard, and every resume that
// read the stream was 503. Now a router stops reading a stream that is
// gone (and routers delete it only once nothing was written to it for
// --high-max-age).
func TestAuditLegacyStreamDeletedUnderRunningRouter(t *testing.T) {
	ctx := context.Background()
	nc, js, legacy := withLegacyHighStream(t)
	out := nats.NewMsg(subject.LegacyGroupHigh("app", "old"))
	out.Header.Set(subject.HeaderSeq, "1")
	if _, err := js.PublishMsg(ctx, out); err != nil {
		t.Fatal(err)
	}
	r, err := routerOn(t, nc, Config{}) // started within --high-max-age of the upgrade
	if err != nil {
		t.Fatal(err)
	}
	if r.legacy() == nil {
		t.Fatal("setup: the legacy stream is not read")
	}
	if _, _, err := r.store.CreateGroup(ctx, storage.Group{AppID: "app", ID: "room", Name: "room"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.loadGroup(ctx, "app", "room", 0); err != nil {
		t.Fatalf("setup: load before: %v", err)
	}
	if err := legacy.Purge(ctx); err != nil { // its messages aged out
		t.Fatal(err)
	}
	// Another router deletes it (one starting --high-max-age later), or
	// an operator does.
	if err := js.DeleteStream(ctx, subject.LegacyHighStream); err != nil {
		t.Fatal(err)
	}
	var errs []string
	if _, err := r.lastHighSeq(ctx, "app", "room"); err != nil {
		errs = append(errs, fmt.Sprintf("lastHighSeq: %v", err))
	}
	if _, err := r.loadGroup(ctx, "app", "room", 0); err != nil {
		errs = append(errs, fmt.Sprintf("loadGroup: %v", err))
	}
	if _, _, err := r.highAfter(ctx, "app", "room", 0, 0); err != nil {
		errs = append(errs, fmt.Sprintf("highAfter: %v", err))
	}
	if len(errs) > 0 {
		t.Fatalf("the running router, after another deleted the emptied legacy stream:\n  %s", strings.Join(errs, "\n  "))
	}
}

// resumeNow runs a resume as the worker does and returns its answer,
// made on the worker or off it.
func resumeNow(r *Router, j job, c *liveimpb.Caller, req *liveimpb.ResumeGroupRequest) (*liveimpb.ResumeGroupReply, error) {
	type answer struct {
		rep *liveimpb.Reply
		err error
	}
	got := make(chan answer, 1)
	j.done = func(rep *liveimpb.Reply, err error) { got <- answer{rep, err} }
	rep, err := r.resumeGroup(context.Background(), j, c, req)
	if err == errLater {
		a := <-got
		rep, err = a.rep, a.err
	}
	return rep.GetResumeGroup(), err
}

// roomAfterNoStorage is a router whose group "room" of app "app" holds n
// noStorage HIGH messages sent at 1000 ms, before a member who joined at
// 2000 ms, then seqnum n+1, sent at 3000 ms; its clock is the returned
// nanoseconds. The app may read the HIGH stream 20 times a second.
func roomAfterNoStorage(t *testing.T, n int64) (*Router, *atomic.Int64) {
	t.Helper()
	r := testRouter(t, Config{ResumeBatch: 100, ResumeReadRate: 20})
	clock := new(atomic.Int64)
	clock.Store(time.Unix(5000, 0).UnixNano())
	r.now = func() time.Time { return time.Unix(0, clock.Load()) }
	publish := func(seq, ts int64, noStorage bool) {
		msg := &liveimpb.Message{MessageId: fmt.Sprint("m", seq), GroupId: "room", Seqnum: seq, Timestamp: ts, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}
		frame, err := eventFrame(&liveimpb.Event{Body: &liveimpb.Event_GroupMessage{GroupMessage: msg}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.publishHigh(context.Background(), "app", "room", -1, msg, frame, noStorage).wait(); err != nil {
			t.Fatal(err)
		}
	}
	for seq := int64(1); seq <= n; seq++ {
		publish(seq, 1000, true)
	}
	publish(n+1, 3000, false)
	return r, clock
}
