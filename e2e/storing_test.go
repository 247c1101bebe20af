package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/storage"
)

// heldStore is a router's view of the cluster's real store whose message
// appends to one group wait until the test lets each of them through by
// seqnum: a ScyllaDB or a disk that answers slowly.
type heldStore struct {
	storage.Store
	group   string
	arrived chan int64 // the seqnum of each held append, as it arrives
	mu      sync.Mutex
	gates   map[int64]chan struct{}
}

func newHeldStore(group string) *heldStore {
	return &heldStore{group: group, arrived: make(chan int64, 100), gates: make(map[int64]chan struct{})}
}

func (s *heldStore) gate(seq int64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gates[seq]
	if g == nil {
		g = make(chan struct{})
		s.gates[seq] = g
	}
	return g
}

func (s *heldStore) AppendMessage(ctx context.Context, m storage.Message) error {
	if m.GroupID == s.group {
		s.arrived <- m.Seq
		<-s.gate(m.Seq)
	}
	return s.Store.AppendMessage(ctx, m)
}

// release lets the append of seq through; releasing it again does nothing.
func (s *heldStore) release(seq int64) {
	g := s.gate(seq)
	select {
	case <-g:
	default:
		close(g)
	}
}

// next returns the seqnum of the next append that arrives, failing the
// test if the send it waits for is answered first.
func (s *heldStore) next(t *testing.T, sent <-chan sendResult) int64 {
	t.Helper()
	select {
	case seq := <-s.arrived:
		return seq
	case r := <-sent:
		t.Fatalf("a send was answered before its message reached the store: %v %v", r.rep, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no append reached the store")
	}
	return 0
}

type sendResult struct {
	rep *liveimpb.SendMessageReply
	err error
}

// TestSlowStoreHoldsUpNoOtherGroup: while the store takes its time over
// one group's message, the other groups of the same router worker send
// and deliver, and the slow group reports no seqnum it has not delivered.
// A worker used to wait for each append, so one slow group (a hot room on
// a ScyllaDB a millisecond away) held up every group hashed to its worker.
func TestSlowStoreHoldsUpNoOtherGroup(t *testing.T) {
	held := newHeldStore("slow")
	c := testcluster.Start(t, testcluster.Options{
		Router:      router.Config{Workers: 1}, // every group on one worker
		RouterStore: func(_ int, s storage.Store) storage.Store { held.Store = s; return held },
	})
	owner := c.Login(t, 0, "owner", "admin")
	watcher := c.Login(t, 0, "watcher", "")
	for _, g := range []string{"slow", "fast"} {
		createGroup(t, owner, g)
		join(t, owner, g)
		join(t, watcher, g)
	}
	slowSent := make(chan sendResult, 1)
	go func() {
		rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "slow", Type: chatType, Data: "slow-1"})
		slowSent <- sendResult{rep, err}
	}()
	seq := held.next(t, slowSent)
	defer held.release(seq)

	fast := send(t, watcher, "fast", "fast-1") // fails with 503 if it waits for "slow"
	if got := waitEvent(t, watcher, groupMsg); got.GetData() != "fast-1" || got.GetSeqnum() != fast.Seqnum {
		t.Fatalf("watcher got %v, want fast-1 at seqnum %d", got, fast.Seqnum)
	}
	info, err := owner.QueryGroup(ctxT(t), "slow")
	if err != nil {
		t.Fatal(err)
	}
	if info.LastSeqnum >= seq {
		t.Fatalf("slow group reports lastSeqnum %d while seqnum %d is still being stored", info.LastSeqnum, seq)
	}
	select {
	case r := <-slowSent:
		t.Fatalf("the send to the slow group was answered before it was stored: %v %v", r.rep, r.err)
	default:
	}

	held.release(seq)
	r := <-slowSent
	if r.err != nil || r.rep.Seqnum != seq {
		t.Fatalf("slow send: %v %v, want seqnum %d", r.rep, r.err, seq)
	}
	if got := waitEvent(t, watcher, groupMsg); got.GetData() != "slow-1" {
		t.Fatalf("watcher got %v, want slow-1", got)
	}
	if info, err := owner.QueryGroup(ctxT(t), "slow"); err != nil || info.LastSeqnum != seq {
		t.Fatalf("slow group's lastSeqnum %d (%v), want %d once delivered", info.GetLastSeqnum(), err, seq)
	}
}

// TestSendsStoredTogetherDeliveredInOrder: a group's messages are stored
// at once, and whatever order the store answers in, members receive them
// in seqnum order and each sender hears back only once its message is
// stored; a close waits for the messages sent before it, which members
// receive before their exit.
func TestSendsStoredTogetherDeliveredInOrder(t *testing.T) {
	held := newHeldStore("room")
	c := testcluster.Start(t, testcluster.Options{
		RouterStore: func(_ int, s storage.Store) storage.Store { held.Store = s; return held },
	})
	owner := c.Login(t, 0, "owner", "admin")
	watcher := c.Login(t, 0, "watcher", "")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	join(t, watcher, "room")

	const n = 4
	results := make([]chan sendResult, n)
	seqs := make([]int64, n)
	for i := range n {
		results[i] = make(chan sendResult, 1)
		go func() {
			rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
				GroupId: "room", Type: chatType, Data: fmt.Sprint("m", i), ClientMsgId: fmt.Sprint("c", i)})
			results[i] <- sendResult{rep, err}
		}()
		seqs[i] = held.next(t, results[i]) // all n at the store together
	}
	for i := n - 1; i >= 0; i-- { // the store answers newest first
		held.release(seqs[i])
	}
	for i := range n {
		r := <-results[i]
		if r.err != nil || r.rep.Seqnum != seqs[i] {
			t.Fatalf("send m%d: %v %v, want seqnum %d", i, r.rep, r.err, seqs[i])
		}
	}
	for i := range n {
		if got := waitEvent(t, watcher, groupMsg); got.GetData() != fmt.Sprint("m", i) || got.GetSeqnum() != seqs[i] {
			t.Fatalf("delivery %d: %q at seqnum %d, want m%d at %d", i, got.GetData(), got.GetSeqnum(), i, seqs[i])
		}
	}

	last := make(chan sendResult, 1)
	go func() {
		rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "before-close"})
		last <- sendResult{rep, err}
	}()
	seq := held.next(t, last)
	closed := make(chan error, 1)
	go func() { closed <- owner.CloseGroup(ctxT(t), "room") }()
	held.release(seq)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := <-last; r.err != nil {
		t.Fatalf("send before the close: %v", r.err)
	}
	ev := testcluster.NextEvent(t, watcher, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetGroupMessage() != nil || ev.GetExit() != nil })
	if ev.GetGroupMessage().GetData() != "before-close" {
		t.Fatalf("watcher got %v before the message sent before the close", ev)
	}
	waitEvent(t, watcher, exitEvent)
}

// TestResumeDuringHighBurst: resumes taken while many members send HIGH
// at once (their publishes in flight to the stream) hold every HIGH
// message up to the lastSeqnum they report: the router reads the stream
// only after the group's publishes in flight are acknowledged.
func TestResumeDuringHighBurst(t *testing.T) {
	const senders, each = 8, 40
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "live")
	join(t, owner, "live")
	reader := c.Login(t, 0, "reader", "")
	join(t, reader, "live")

	var mu sync.Mutex
	var acked []int64
	var wg sync.WaitGroup
	for s := range senders {
		cl := c.Login(t, 0, fmt.Sprint("sender-", s), "")
		join(t, cl, "live")
		wg.Go(func() {
			for i := range each {
				rep, err := cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType,
					Data: fmt.Sprint(s, "-", i), Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
				if err != nil {
					t.Errorf("send %d-%d: %v", s, i, err)
					return
				}
				mu.Lock()
				acked = append(acked, rep.Seqnum)
				mu.Unlock()
			}
		})
	}
	var resumes []*liveimpb.ResumeGroupReply
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		rep, err := reader.ResumeGroup(ctxT(t), "live", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		resumes = append(resumes, rep)
	}
	if t.Failed() {
		return
	}
	if len(acked) != senders*each {
		t.Fatalf("%d sends acknowledged, want %d", len(acked), senders*each)
	}
	for _, rep := range resumes {
		if rep.HasMore {
			t.Fatalf("a resume of %d messages has more", len(rep.Messages))
		}
		got := make(map[int64]bool, len(rep.Messages))
		for _, m := range rep.Messages {
			got[m.Seqnum] = true
		}
		for _, seq := range acked {
			if seq <= rep.LastSeqnum && !got[seq] {
				t.Fatalf("a resume reporting lastSeqnum %d lacks HIGH seqnum %d (%d messages)", rep.LastSeqnum, seq, len(rep.Messages))
			}
		}
	}
	t.Logf("%d resumes during %d HIGH sends", len(resumes), len(acked))
}
