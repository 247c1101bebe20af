package e2e

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
)

// TestFailedHighPublishStoresOneCopy: a HIGH send whose JetStream publish
// fails after the message was stored is answered 503 once; the router
// must not send the request round again (as it did for every 503), which
// stored a copy with a new seqnum each time.
func TestFailedHighPublishStoresOneCopy(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	js := c.JetStream()
	stream, _ := highStream("room")
	if err := js.DeleteStream(context.Background(), stream); err != nil {
		t.Fatal(err)
	}
	_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "once", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
	wantCode(t, err, 503)
	page, err := c.Store.ListMessages(context.Background(), storage.MessageQuery{AppID: testcluster.AppID, GroupID: "room", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) > 1 {
		t.Fatalf("%d stored copies of one send (seqnums %v)", len(page.Messages), seqs(page.Messages))
	}
}

func seqs(ms []storage.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// TestRetriedSendIsStoredOnce: a send retried with its client message ID
// (after a 503 or a timeout the client cannot tell from a lost reply) gets
// the first reply and stores and delivers nothing new, on the same router
// and on the router that took the group over.
func TestRetriedSendIsStoredOnce(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	for _, level := range []liveimpb.MessageLevel{liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL, liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH} {
		req := &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "once " + level.String(), Level: level, ClientMsgId: fmt.Sprint("cmid-", int(level))}
		first, err := owner.SendGroupMessage(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := owner.SendGroupMessage(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if again.MessageId != first.MessageId || again.Seqnum != first.Seqnum {
			t.Fatalf("%v retry: %+v, first %+v", level, again, first)
		}
	}
	// The router that owned the group stops; its successor knows the sends.
	if err := c.Router(0).Stop(); err != nil {
		t.Fatal(err)
	}
	c.StartRouter()
	req := &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "once MESSAGE_LEVEL_HIGH", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, ClientMsgId: "cmid-1"}
	var after *liveimpb.SendMessageReply
	testcluster.WaitFor(t, 30*time.Second, func() error {
		var err error
		after, err = owner.SendGroupMessage(ctxT(t), req)
		return err
	})
	page, err := c.Store.ListMessages(context.Background(), storage.MessageQuery{AppID: testcluster.AppID, GroupID: "room", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 {
		t.Fatalf("%d stored messages (seqnums %v), want 2", len(page.Messages), seqs(page.Messages))
	}
	if after.MessageId != page.Messages[1].ID || after.Seqnum != page.Messages[1].Seq {
		t.Fatalf("retry after failover: %+v, stored %+v", after, page.Messages[1])
	}
	// Members saw each message once.
	var got []string
	for _, m := range collect(t, owner, 2) {
		got = append(got, m.Data)
	}
	send(t, owner, "room", "sentinel")
	if m := waitEvent(t, owner, groupMsg); m.Data != "sentinel" {
		t.Fatalf("after %q the next event is %q, want the sentinel", got, m.Data)
	}
}

// TestDeletesStickAcrossResume: a client that was away does not get back
// a deleted HIGH message when it resumes, and learns the IDs of every
// message deleted while it was away (HIGH or NORMAL, old or new).
func TestDeletesStickAcrossResume(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	high := func(data string) *liveimpb.SendMessageReply {
		rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	old := send(t, owner, "room", "seen before leaving") // NORMAL
	// An earlier deletion the member never needs to hear of.
	gone := send(t, owner, "room", "deleted before the member came")
	if err := owner.DeleteMessage(ctxT(t), "room", gone.MessageId); err != nil {
		t.Fatal(err)
	}

	member := c.Login(t, 0, "member", "")
	tracker := client.NewHighTracker()
	tracker.Joined(join(t, member, "room"))
	first := high("h1")
	for _, m := range collect(t, member, 1) {
		tracker.Accept(m)
	}
	_ = member.Close() // away

	h2, h3 := high("h2"), high("h3")
	for _, id := range []string{h2.MessageId, old.MessageId} {
		if err := owner.DeleteMessage(ctxT(t), "room", id); err != nil {
			t.Fatal(err)
		}
	}

	back := c.Login(t, 0, "member", "")
	tracker.Joined(join(t, back, "room"))
	msgs, deleted, err := tracker.Resume(ctxT(t), back, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].MessageId != h3.MessageId {
		t.Fatalf("resumed %v, want only h3 (h1 %s was seen, h2 deleted)", dataOf(msgs), first.MessageId)
	}
	if !slices.Equal(deleted, []string{h2.MessageId, old.MessageId}) {
		t.Fatalf("deleted %v, want h2 %s and the old NORMAL message %s", deleted, h2.MessageId, old.MessageId)
	}
}

// TestBusyRouterKeepsItsPartitions: one router with one worker gets a
// burst of 9,000 HIGH sends straight into its partition (as from
// thousands of clients at once), which keeps the worker busy for longer
// than the pin TTL. Its partition consumer never waits for the worker, so
// it keeps pulling and the router keeps every partition: no pin is lost,
// every send is answered, each stored once.
func TestBusyRouterKeepsItsPartitions(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{Workers: 1, PinnedTTL: 2 * time.Second}})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room") // not joined: nobody reads 9,000 events
	allPartitions := func() error {
		if st := c.Router(0).Stats(); st.PartitionsOwned != 32 {
			return fmt.Errorf("router stats %+v: want all 32 partitions", st)
		}
		return nil
	}
	testcluster.WaitFor(t, 30*time.Second, allPartitions)
	const burst = 9000
	nc := c.Connect()
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, burst)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	deadline := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)
	start := time.Now()
	for i := range burst {
		env, _ := proto.Marshal(&liveimpb.RouterRequest{
			Caller: &liveimpb.Caller{AppId: testcluster.AppID, UserId: "owner", SessionId: "s", GatewayId: "g"},
			Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{
				GroupId: "room", Type: chatType, Data: fmt.Sprint(i), Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, SkipAudit: true,
			}}},
		})
		m := nats.NewMsg(subject.RPC(testcluster.AppID, "room"))
		m.Data = env
		m.Header.Set(subject.HeaderReply, inbox)
		m.Header.Set(subject.HeaderDeadline, deadline)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range burst {
		select {
		case m := <-replies:
			var rep liveimpb.Reply
			if err := proto.Unmarshal(m.Data, &rep); err != nil || rep.Code != 0 {
				t.Fatalf("reply %d: %v %v", i, &rep, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of %d replies", i, burst)
		}
	}
	t.Logf("%d HIGH sends through one worker in %v", burst, time.Since(start))
	if st := c.Router(0).Stats(); st.PinsLost != 0 {
		t.Fatalf("router stats %+v: want no pin lost", st)
	}
	testcluster.WaitFor(t, 30*time.Second, allPartitions)
	info, err := owner.QueryGroup(ctxT(t), "room")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Statistics.MsgAmount[chatType]; got != burst {
		t.Fatalf("msgAmount %d, want %d", got, burst)
	}
}

// gatedStore is a router's view of the cluster's real store whose group
// writes wait while its gate is closed: a disk, or a ScyllaDB, stalled
// under load.
type gatedStore struct {
	storage.Store
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (s *gatedStore) wait() {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (s *gatedStore) shut() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *gatedStore) open() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *gatedStore) PutGroup(ctx context.Context, g storage.Group) (int64, error) {
	s.wait()
	return s.Store.PutGroup(ctx, g)
}

func (s *gatedStore) SaveMembers(ctx context.Context, appID, groupID string, upserts []storage.Member, removes []string) error {
	s.wait()
	return s.Store.SaveMembers(ctx, appID, groupID, upserts, removes)
}

// slowFirstRouter starts a cluster of opts whose first router's store is
// the returned gatedStore, and an owner joined to rooms room-0 to
// room-<groups-1>, each with a message (which reserves its seqnums).
func slowFirstRouter(t *testing.T, opts testcluster.Options, groups int) (*testcluster.Cluster, *gatedStore, *client.Client) {
	t.Helper()
	slow := &gatedStore{}
	opts.RouterStore = func(i int, s storage.Store) storage.Store {
		if i > 0 {
			return s
		}
		slow.Store = s
		return slow
	}
	c := testcluster.Start(t, opts)
	owner := c.Login(t, 0, "owner", "admin")
	for i := range groups {
		createGroup(t, owner, fmt.Sprintf("room-%d", i))
		join(t, owner, fmt.Sprintf("room-%d", i))
		send(t, owner, fmt.Sprintf("room-%d", i), "first")
	}
	return c, slow, owner
}

// TestSlowStoreKeepsRouterAlive: a router stays in the live set while its
// store stalls and a hand-over of partitions waits for the store. Its
// announcements do not wait for that work: when they did, a router under
// a join storm on a loaded ScyllaDB dropped out of the live set, the
// others took its partitions, it came back and took them again, and its
// clients got 503s and lost pins (the join storm of issue 15).
func TestSlowStoreKeepsRouterAlive(t *testing.T) {
	const alive = 2 * time.Second
	const groups = 32
	c, slow, owner := slowFirstRouter(t, testcluster.Options{Router: router.Config{AliveTTL: alive}}, groups)
	// The store stalls; the groups' state changes, so the next flush, and
	// any hand-over, waits for it.
	slow.shut()
	defer slow.open()
	for i := range groups {
		go func() {
			_, _ = owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: fmt.Sprintf("room-%d", i), Type: chatType, Data: "second"})
		}()
	}
	first := c.Router(0)
	c.StartRouter() // the first router must hand half its partitions over
	js := c.JetStream()
	kv, err := js.KeyValue(ctxT(t), subject.RouterBucket)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(3 * alive); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := kv.Get(ctxT(t), first.ID()); err != nil {
			t.Fatalf("router %s left the live set while its store stalled: %v", first.ID(), err)
		}
	}
	slow.open()
	testcluster.WaitFor(t, 60*time.Second, func() error {
		a, b := c.Router(0).Stats(), c.Router(1).Stats()
		if a.PartitionsOwned == 0 || b.PartitionsOwned == 0 || a.PartitionsOwned+b.PartitionsOwned != 32 {
			return fmt.Errorf("partitions owned %d and %d, want 32 shared", a.PartitionsOwned, b.PartitionsOwned)
		}
		return nil
	})
	for i := range 2 {
		if st := c.Router(i).Stats(); st.PinsLost != 0 {
			t.Fatalf("router %d stats %+v: want no pin lost", i, st)
		}
	}
}

// TestRouterTakesUpDeletedConsumers: when the server ends a router's
// consumption of its partitions (here their consumers are deleted, as a
// NATS cluster recovering from the loss of its nodes can report them),
// the router creates them again and serves its groups; it used to keep
// the dead consumption, and every request of those groups timed out
// (a TestRandomFaults run that killed each NATS node in turn never
// recovered).
func TestRouterTakesUpDeletedConsumers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{AliveTTL: 2 * time.Second}})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	js := c.JetStream()
	stream, err := js.Stream(ctxT(t), subject.RPCStream)
	if err != nil {
		t.Fatal(err)
	}
	for name := range stream.ConsumerNames(ctxT(t)).Name() {
		if err := stream.DeleteConsumer(ctxT(t), name); err != nil {
			t.Fatal(err)
		}
	}
	// The router takes its partitions up again on a rebalance (every
	// AliveTTL/4); a request sent before may time out, and is retried.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := owner.QueryGroup(ctx, "room")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer a minute after the consumers were deleted: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	n := 0
	for range stream.ConsumerNames(ctxT(t)).Name() {
		n++
	}
	if n == 0 {
		t.Fatal("no consumer was created again")
	}
}

// TestResumeLeavesDeletedHighOut: a deleted HIGH message is not given
// back by a resume, whatever deletion the client names: one that joined
// after the deletion names the group's last one, and its resume from the
// start must not return the message (a recalled phone number).
func TestResumeLeavesDeletedHighOut(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	secret, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
		GroupId: "room", Type: chatType, Data: "oops, my phone number", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
		GroupId: "room", Type: chatType, Data: "kept", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.DeleteMessage(ctxT(t), "room", secret.MessageId); err != nil {
		t.Fatal(err)
	}
	late := c.Login(t, 0, "late", "")
	info := join(t, late, "room")
	rep, err := late.ResumeGroup(ctxT(t), "room", 0, info.LastDeleteSeq)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rep.Messages {
		got = append(got, m.MessageId)
	}
	if !slices.Equal(got, []string{kept.MessageId}) {
		t.Fatalf("resume from the start after the last deletion = %v, want only %q (the deleted %q left out)", got, kept.MessageId, secret.MessageId)
	}
}

// TestResumeGivesNoStorageHighOnlyToMembersThen: a noStorage HIGH
// message is in no history: a resume gives it to a member that was in
// the group when it was sent (catching up after a reconnect), not to one
// that joined after.
func TestResumeGivesNoStorageHighOnlyToMembersThen(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	rep, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
		GroupId: "room", Type: chatType, Data: "ephemeral", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, NoStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(cl *client.Client) []string {
		t.Helper()
		res, err := cl.ResumeGroup(ctxT(t), "room", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range res.Messages {
			out = append(out, m.MessageId)
		}
		return out
	}
	if got := ids(owner); !slices.Equal(got, []string{rep.MessageId}) {
		t.Fatalf("the owner's resume = %v, want the noStorage message %q it was there for", got, rep.MessageId)
	}
	for time.Now().UnixMilli() <= rep.Timestamp { // the late join in a later millisecond
		time.Sleep(time.Millisecond)
	}
	late := c.Login(t, 0, "late", "")
	join(t, late, "room")
	if got := ids(late); len(got) != 0 {
		t.Fatalf("the resume of a member that joined after it = %v, want none", got)
	}
}

// TestStoppedRouterUnpinsEveryPartition: a router that stops while its
// store is slow still hands every partition over at once. It gave all its
// partitions' stops (save the groups, then unpin) one 5 s budget, one
// after another: the ones past it kept their pins, and their groups went
// unanswered until the pins timed out (PinnedTTL, 30 s; a CI run of
// TestSeveralRoutersKeepGroupsConsistent on the CQL server got five
// "router timeout"s in a row).
func TestStoppedRouterUnpinsEveryPartition(t *testing.T) {
	const groups = 32
	c, slow, owner := slowFirstRouter(t, testcluster.Options{Routers: 2}, groups)
	// Every group's state changed, so the first router's stop saves each
	// of its groups, and its store holds each save past the budget.
	for i := range groups {
		send(t, owner, fmt.Sprintf("room-%d", i), "second")
	}
	slow.shut()
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		time.Sleep(6 * time.Second) // past the stop's old budget of 5 s
		slow.open()
	}()
	if err := c.Router(0).Stop(); err != nil {
		t.Fatal(err)
	}
	<-opened
	// Every group is answered now, within one request (the gateway's
	// router timeout, 5 s, is far below the pins' 30 s).
	for i := range groups {
		if _, err := owner.QueryGroup(ctxT(t), fmt.Sprintf("room-%d", i)); err != nil {
			t.Fatalf("room-%d after the first router stopped: %v", i, err)
		}
	}
}

// TestRememberedSendsKeepNoBody: a group remembers its last 1,024 sends
// with a client message ID (every server API send has one) to answer a
// retry, and a router keeps a group it loaded; the remembered sends used
// to hold their whole messages, so an app sending 15 KiB messages to its
// groups made a router keep ~15 MiB a group for as long as it ran. Once a
// send is delivered and its event stored, only its reply is kept, and a
// retry still gets that reply.
func TestRememberedSendsKeepNoBody(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{RoomRate: 1e6}})
	api := c.StartAPI(0, serverapi.Config{AppRate: 1e6}).AppClient()
	const groups, perGroup = 4, 1024
	for g := range groups {
		do(t, api, "POST", "/groups", map[string]any{"group_id": fmt.Sprintf("cache-%d", g), "group_name": "cache"}, nil)
	}
	heap := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	data := strings.Repeat("x", 15*1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= groups*perGroup {
					return
				}
				body := map[string]any{"type": 1, "data": data, "no_storage": true, "client_msg_id": fmt.Sprintf("m-%d", i)}
				if err := api.Do(context.Background(), "POST", fmt.Sprintf("/groups/cache-%d/messages", i%groups), nil, body, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 60 MiB of messages went through; what is kept is their replies.
	if grown := heap() - before; grown > 16<<20 {
		t.Fatalf("the router keeps %d MiB after %d sends of 15 KiB to %d groups", grown>>20, groups*perGroup, groups)
	}
	var first, again struct {
		MessageID string `json:"message_id"`
		Seqnum    int64  `json:"seqnum"`
	}
	body := map[string]any{"type": 1, "data": data, "no_storage": true, "client_msg_id": "m-new"}
	do(t, api, "POST", "/groups/cache-0/messages", body, &first)
	body["client_msg_id"] = fmt.Sprint("m-", groups*(perGroup-1)) // cache-0's last send before
	do(t, api, "POST", "/groups/cache-0/messages", body, &again)
	if again.MessageID == "" || again.Seqnum == 0 || again.Seqnum >= first.Seqnum {
		t.Fatalf("a retry of a remembered send: %+v (a new send before it: %+v), want the remembered send's reply", again, first)
	}
}
