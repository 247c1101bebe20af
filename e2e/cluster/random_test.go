package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/scylla"
)

// TestRandomFaults kills random parts of a running cluster, one after
// another (kill -9 of a gateway, a router or a NATS node, then a restart),
// while a sender sends HIGH and NORMAL messages, retrying each with its
// client message ID until it is acknowledged, and recalls some of them.
// Afterwards:
//
//   - the store holds every acknowledged message exactly once, with
//     unique, increasing seqnums, and no recalled message;
//   - every member got every acknowledged HIGH message once, in order,
//     and no recalled message came back to it after its recall.
//
// LIVEIM_FAULT_ROUNDS sets the rounds (3 by default, as CI runs it;
// docs/faults.md records a long run) and LIVEIM_FAULT_SEED the seed.
func TestRandomFaults(t *testing.T) {
	hosts := cqlHosts(t)
	if testing.Short() {
		t.Skip("the fault test takes a minute")
	}
	rounds, seed := 3, time.Now().UnixNano()
	if v, err := strconv.Atoi(os.Getenv("LIVEIM_FAULT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	if v, err := strconv.ParseInt(os.Getenv("LIVEIM_FAULT_SEED"), 10, 64); err == nil {
		seed = v
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("%d rounds, seed %d (LIVEIM_FAULT_SEED=%d repeats them)", rounds, seed, seed)

	c := startCluster(t, hosts, 2, 3)
	// The app's backend hears of every message through callbacks, which
	// must survive the faults too: none lost, in order.
	sink := startEventSink(t, c.app.AppKey)
	sink.subscribeApp(t, c.storeCfg, c.app.AppID)
	ctx := context.Background()
	sink.waitSubscribed(t, c)
	runCtx, stopMembers := context.WithCancel(ctx)
	defer stopMembers()
	var wg sync.WaitGroup
	var members []*member
	for i := range 4 {
		m := &member{user: fmt.Sprintf("member-%d", i), gateways: c.wsURLs, app: c.app, recalls: true}
		members = append(members, m)
		wg.Go(func() { m.run(runCtx, i) })
	}
	time.Sleep(time.Second) // members joined
	snd := &retryingSender{gateways: c.wsURLs, app: c.app, rng: rand.New(rand.NewPCG(uint64(seed), 1))}
	sendCtx, stopSending := context.WithCancel(ctx)
	var sendWG sync.WaitGroup
	sendWG.Go(func() { snd.run(sendCtx) })

	faults := map[string]int{}
	for round := range rounds {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		var p *proc
		switch k := rng.IntN(3); k {
		case 0:
			p = c.gateways[rng.IntN(len(c.gateways))]
		case 1:
			p = c.routers[rng.IntN(len(c.routers))]
		default:
			p = c.nats[rng.IntN(len(c.nats))]
		}
		down := time.Duration(rng.IntN(2000)) * time.Millisecond
		t.Logf("round %d: kill -9 %s, back after %v", round+1, p.name, down)
		faults[p.name]++
		p.kill9()
		time.Sleep(down)
		p.start()
	}
	// Keep sending until enough HIGH messages went through for the checks
	// below to mean something: on a busy machine that takes longer.
	time.Sleep(2 * time.Second)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		snd.mu.Lock()
		enough := len(snd.highs) >= 20
		snd.mu.Unlock()
		if enough {
			break
		}
	}
	stopSending()
	sendWG.Wait()

	snd.mu.Lock()
	t.Logf("faults: %v", faults)
	t.Logf("sender: %d HIGH and %d NORMAL acknowledged, %d recalled, %d retries, %d sends given up (first error: %v)",
		len(snd.highs), len(snd.acked)-len(snd.highs), len(snd.recalled), snd.retries, snd.gaveUp, snd.firstErr)
	acked := make(map[string]int64, len(snd.acked))
	for id, seq := range snd.acked {
		acked[id] = seq
	}
	highs := append([]int64(nil), snd.highs...)
	recalled := make(map[string]time.Time, len(snd.recalled))
	for id, at := range snd.recalled {
		recalled[id] = at
	}
	// A recall that failed on a fault may still have happened: such a
	// message may be in the history or not, and reach a member or not.
	maybe := maps.Clone(snd.maybeRecalled)
	snd.mu.Unlock()
	if len(highs) < 20 {
		t.Fatalf("only %d HIGH messages acknowledged in 2 minutes after the faults: the cluster did not recover", len(highs))
	}

	// The store: every acknowledged message once, in seqnum order, with
	// nothing recalled.
	checkStore(t, c.storeCfg, c.app.AppID, acked, recalled, maybe)

	// The members: every acknowledged HIGH message once, in order, except
	// recalled ones (a member away from send to recall never sees one: a
	// resume skips deleted messages); no recalled message after its
	// recall.
	gone := map[int64]bool{}
	for id := range recalled {
		gone[acked[id]] = true
	}
	for id := range maybe {
		gone[acked[id]] = true
	}
	highs = slices.DeleteFunc(highs, func(seq int64) bool { return gone[seq] })
	checkMembers(t, members, highs, stopMembers, &wg)

	// Callbacks: an event for every acknowledged message (a message is
	// stored, and its event published, before its send is acknowledged),
	// in seqnum order once repeats are dropped.
	sink.check(t, acked, 90*time.Second)
	for _, m := range members {
		m.mu.Lock()
		for _, r := range m.resumed {
			if at, ok := recalled[r.id]; ok && r.at.After(at.Add(time.Second)) {
				t.Errorf("%s: recalled message %s came back by resume %v after its recall", m.user, r.id, r.at.Sub(at))
			}
		}
		t.Logf("%s: %d HIGH delivered, %d NORMAL, %d recalls learnt, %d reconnects", m.user, len(m.highs), m.normals, m.recallsLearnt, m.reconnects)
		m.mu.Unlock()
	}
}

// checkStore reads the group's whole history and compares it with what
// the sender had acknowledged and recalled.
func checkStore(t *testing.T, cfg scylla.Config, appID string, acked map[string]int64, recalled map[string]time.Time, maybe map[string]bool) {
	t.Helper()
	ctx := context.Background()
	st, err := scylla.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seen := map[string]bool{}
	var last int64
	q := storage.MessageQuery{AppID: appID, GroupID: "live", Limit: 500}
	for {
		page, err := st.ListMessages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if seen[m.ID] {
				t.Errorf("message %s stored twice", m.ID)
			}
			seen[m.ID] = true
			if m.Seq <= last {
				t.Errorf("seqnum %d after %d in the history", m.Seq, last)
			}
			last = m.Seq
			if _, ok := recalled[m.ID]; ok {
				t.Errorf("recalled message %s (seqnum %d) is in the history", m.ID, m.Seq)
			}
			if want, ok := acked[m.ID]; ok && want != m.Seq {
				t.Errorf("message %s stored with seqnum %d, acknowledged with %d", m.ID, m.Seq, want)
			}
		}
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	missing := 0
	for id := range acked {
		if _, gone := recalled[id]; !gone && !maybe[id] && !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged messages are not in the history", missing)
	}
	t.Logf("store: %d messages, last seqnum %d", len(seen), last)
}

// retryingSender sends a message every 40 ms, one in three HIGH, retrying
// each (same request, so the same client message ID) through one gateway
// after another until it is acknowledged or 30 s passed, and recalls
// about one in twenty of its acknowledged messages.
type retryingSender struct {
	gateways []string
	app      demoapp.Info
	rng      *rand.Rand

	mu       sync.Mutex
	acked    map[string]int64     // message ID → seqnum
	highs    []int64              // acknowledged HIGH seqnums
	recalled map[string]time.Time // message ID → when its recall was acknowledged
	// maybeRecalled: recalls that failed on a fault and may have happened.
	maybeRecalled map[string]bool
	retries       int
	gaveUp        int
	firstErr      error
}

func (s *retryingSender) run(ctx context.Context) {
	s.acked, s.recalled, s.maybeRecalled = map[string]int64{}, map[string]time.Time{}, map[string]bool{}
	var cl *client.Client
	g := 0
	connect := func() bool {
		if cl != nil {
			return true
		}
		var err error
		if cl, err = login(ctx, s.gateways[g%len(s.gateways)], s.app, "sender", auth.RoleAdmin); err == nil {
			go func(events <-chan *liveimpb.Event) { // its own messages
				for range events {
				}
			}(cl.Events())
			_, err = cl.JoinGroup(ctx, "live")
		}
		if err != nil {
			if cl != nil {
				cl.Close()
			}
			cl = nil
			g++
			return false
		}
		return true
	}
	drop := func() {
		if cl != nil {
			cl.Close()
			cl = nil
		}
		g++
	}
	defer drop()
	// do runs one request until it succeeds, a 4xx refuses it, or 30 s pass.
	do := func(f func(context.Context) error) error {
		give := time.Now().Add(30 * time.Second)
		for {
			var err error
			if connect() {
				rctx, cancel := context.WithTimeout(ctx, 6*time.Second)
				err = f(rctx)
				cancel()
				if err == nil {
					return nil
				}
				if code := liveimpbCode(err); code != 0 && code != 503 {
					return err
				}
				if cl != nil {
					select {
					case <-cl.Done():
						drop()
					default:
					}
				}
			}
			if ctx.Err() != nil || time.Now().After(give) {
				if err == nil {
					err = fmt.Errorf("no gateway would take a login")
				}
				return err
			}
			s.mu.Lock()
			s.retries++
			s.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}
	var sentIDs []string
	for i := 0; ctx.Err() == nil; i++ {
		time.Sleep(40 * time.Millisecond)
		level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
		if i%3 == 0 {
			level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
		}
		req := &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: fmt.Sprint(i), Level: level}
		var rep *liveimpb.SendMessageReply
		err := do(func(rctx context.Context) (err error) {
			rep, err = cl.SendGroupMessage(rctx, req)
			return err
		})
		s.mu.Lock()
		switch {
		case err != nil:
			s.gaveUp++
			if s.firstErr == nil {
				s.firstErr = err
			}
		default:
			s.acked[rep.MessageId] = rep.Seqnum
			if level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
				s.highs = append(s.highs, rep.Seqnum)
			}
			sentIDs = append(sentIDs, rep.MessageId)
		}
		s.mu.Unlock()
		if len(sentIDs) > 0 && s.rng.IntN(20) == 0 {
			id := sentIDs[s.rng.IntN(len(sentIDs))]
			err := do(func(rctx context.Context) error { return cl.DeleteMessage(rctx, "live", id) })
			s.mu.Lock()
			switch {
			case err == nil || liveimpbCode(err) == 400: // 400: already recalled by an earlier try
				s.recalled[id] = time.Now()
			default:
				s.maybeRecalled[id] = true
			}
			s.mu.Unlock()
		}
	}
}

func liveimpbCode(err error) int {
	var e *liveimpb.Error
	if errors.As(err, &e) {
		return int(e.Code)
	}
	return 0
}
