package router

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// partitions decides which partitions this router consumes and consumes
// them.
//
// Ownership: live routers announce themselves in the RouterBucket KV
// bucket (entries expire after AliveTTL). Every router ranks the live set
// for each partition by rendezvous hashing and consumes the partitions it
// ranks first for, so partitions spread evenly and move only when the set
// changes. While views of the set differ, two routers may pull the same
// partition: its consumer's pinned-client priority policy then still
// delivers to exactly one of them, so one group is never served by two
// routers at once. A router that sees a new pin ID on a partition reloads
// that partition's groups from storage before serving them.
//
// Pins last long (Config.PinnedTTL, 30 s): a router that is merely busy,
// its pulls late, keeps its partitions. Failover does not wait for them:
// a router that hands a partition over unpins it, and when a router dies
// (it leaves the live set), the router that takes each of its partitions
// unpins it first. A router restarting with the ID of one that died
// moments ago unpins the partitions it takes, which its predecessor may
// still hold.
type partitions struct {
	r      *Router
	stream jetstream.Stream
	kv     jetstream.KeyValue

	mu        sync.Mutex // leaf lock
	consuming map[int]*consumption
	pins      map[int]string

	// prevLive is the set the last rebalance placed partitions over: the
	// live routers and the suspects, routers missing from the live set
	// once (suspect). A router is gone only when it is missing twice in a
	// row: one late announcement (its NATS server or its own process
	// starved for a moment) must not cost it its partitions. restarted is
	// set when this router's ID was live before it started (a crash and a
	// quick restart). Only run touches them.
	prevLive  []string
	suspect   map[string]bool
	restarted bool
}

// consumption is one partition being consumed; cc is nil until Consume
// returned.
type consumption struct {
	cc jetstream.ConsumeContext
}

func newPartitions(r *Router) *partitions {
	return &partitions{r: r, consuming: make(map[int]*consumption), pins: make(map[int]string)}
}

// owns reports whether this router consumes partition p now.
func (ps *partitions) owns(p int) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, ok := ps.consuming[p]
	return ok
}

func consumerName(p int) string { return "router-p" + strconv.Itoa(p) }

// setup creates the per-partition consumers and the router bucket.
func (ps *partitions) setup(ctx context.Context) error {
	r := ps.r
	st, err := r.js.Stream(ctx, subject.RPCStream)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	ps.stream = st
	for p := range r.cfg.Partitions {
		if _, err := st.CreateOrUpdateConsumer(ctx, ps.consumerConfig(p)); err != nil {
			return fmt.Errorf("router: consumer %s: %w", consumerName(p), err)
		}
	}
	ps.kv, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   subject.RouterBucket,
		TTL:      r.cfg.AliveTTL,
		Storage:  jetstream.MemoryStorage,
		Replicas: r.cfg.StreamReplicas,
	})
	if err != nil {
		return fmt.Errorf("router: bucket %s: %w", subject.RouterBucket, err)
	}
	return nil
}

// consumerConfig is partition p's durable consumer.
func (ps *partitions) consumerConfig(p int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        consumerName(p),
		FilterSubject:  subject.RPCPartition(p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  10000,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{subject.PriorityGroup},
		PinnedTTL:      ps.r.cfg.PinnedTTL,
	}
}

// run keeps this router announced and its share of partitions consumed
// until ctx ends; then it leaves the live set and hands its partitions
// over at once.
func (ps *partitions) run(ctx context.Context) error {
	r := ps.r
	if _, err := ps.kv.Get(ctx, r.cfg.ID); err == nil {
		ps.restarted = true
	}
	// The announcements run on their own: a rebalance can wait for the
	// store (a partition handed over saves its groups first), and a router
	// that announced only between rebalances dropped out of the live set
	// whenever its store stalled for AliveTTL, so the others took its
	// partitions and it took them back: pins lost and 503s under load.
	if err := ps.announce(ctx); err != nil {
		r.log.Warn("announce router", "err", err)
	}
	announcing := make(chan struct{})
	go func() {
		defer close(announcing)
		ps.keepAnnouncing(ctx)
	}()
	every := r.cfg.AliveTTL / 4
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if err := ps.rebalance(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("rebalance partitions", "err", err)
		}
		select {
		case <-ctx.Done():
			<-announcing // no announcement after the delete
			bg, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ps.kv.Delete(bg, r.cfg.ID)
			ps.mu.Lock()
			owned := make([]int, 0, len(ps.consuming))
			for p := range ps.consuming {
				owned = append(owned, p)
			}
			ps.mu.Unlock()
			for _, p := range owned {
				ps.stop(bg, p)
			}
			return nil
		case <-ticker.C:
		}
	}
}

// announce puts this router in the live set for AliveTTL.
func (ps *partitions) announce(ctx context.Context) error {
	r := ps.r
	_, err := ps.kv.Put(ctx, r.cfg.ID, []byte(r.now().UTC().Format(time.RFC3339Nano)))
	return err
}

// keepAnnouncing announces this router every AliveTTL/4 until ctx ends,
// whatever the rebalances are waiting for.
func (ps *partitions) keepAnnouncing(ctx context.Context) {
	ticker := time.NewTicker(ps.r.cfg.AliveTTL / 4)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := ps.announce(ctx); err != nil && ctx.Err() == nil {
				ps.r.log.Warn("announce router", "err", err)
			}
		}
	}
}

// rebalance starts or stops partitions to match this router's rendezvous
// share of the live set.
func (ps *partitions) rebalance(ctx context.Context) error {
	r := ps.r
	live, err := ps.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	if !slices.Contains(live, r.cfg.ID) {
		// Not announced yet, or the announcement lapsed: announce now
		// rather than give every partition away.
		if err := ps.announce(ctx); err != nil {
			return err
		}
		live = append(live, r.cfg.ID)
	}
	// Routers that left the live set died or stopped: a stopped one
	// unpinned its partitions, a dead one did not. A router missing for
	// the first time is a suspect and keeps its partitions for one more
	// rebalance; missing again, it is gone.
	gone, suspect := map[string]bool{}, map[string]bool{}
	for _, id := range ps.prevLive {
		switch {
		case slices.Contains(live, id):
		case ps.suspect[id]:
			gone[id] = true
		default:
			suspect[id] = true
		}
	}
	for id := range suspect {
		live = append(live, id)
	}
	prev := ps.prevLive
	ps.prevLive, ps.suspect = live, suspect
	var errs []error // one partition that cannot start does not hold up the others
	for p := range r.cfg.Partitions {
		want := owner(live, p) == r.cfg.ID
		if want && ps.ended(p) {
			// Its consume ended on its own: the server said the consumer
			// was deleted (as it can while a NATS cluster recovers from
			// losing its nodes), or the connection closed. Nothing would
			// take the partition's requests again: start it afresh.
			r.log.Warn("partition consumer ended; starting it again", "partition", p)
			ps.stop(ctx, p)
		}
		ps.mu.Lock()
		_, have := ps.consuming[p]
		ps.mu.Unlock()
		switch {
		case want && !have:
			if ps.restarted || (len(prev) > 0 && gone[owner(prev, p)]) {
				// Its last owner may still hold the pin: take it now
				// rather than after PinnedTTL.
				if err := ps.stream.UnpinConsumer(ctx, consumerName(p), subject.PriorityGroup); err != nil {
					r.log.Debug("unpin a dead router's partition", "partition", p, "err", err)
				}
			}
			if err := ps.start(ctx, p); err != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
			}
		case !want && have:
			ps.stop(ctx, p)
		}
	}
	ps.restarted = false
	return errors.Join(errs...)
}

// owner returns the live router that ranks first for partition p: the
// highest score of a hash of (router, partition), the same in every
// router. The hash must mix well (an FNV hash of the two once gave every
// partition to one router of three).
func owner(live []string, p int) string {
	best, bestScore := "", uint64(0)
	for _, id := range live {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", id, p))
		if s := binary.BigEndian.Uint64(sum[:8]); best == "" || s > bestScore || (s == bestScore && id > best) {
			best, bestScore = id, s
		}
	}
	return best
}

// ended reports whether partition p is consumed here but its consume
// has ended without stop.
func (ps *partitions) ended(p int) bool {
	ps.mu.Lock()
	c := ps.consuming[p]
	ps.mu.Unlock()
	if c == nil || c.cc == nil {
		return false
	}
	select {
	case <-c.cc.Closed():
		return true
	default:
		return false
	}
}

func (ps *partitions) start(ctx context.Context, p int) error {
	r := ps.r
	cons, err := ps.stream.Consumer(ctx, consumerName(p))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = ps.stream.CreateOrUpdateConsumer(ctx, ps.consumerConfig(p)) // deleted under the router
	}
	if err != nil {
		return err
	}
	r.workers.dropPartition(ctx, r, p) // whatever was cached may be stale now
	// Owned from before the first message can arrive.
	owned := &consumption{}
	ps.mu.Lock()
	ps.consuming[p] = owned
	ps.mu.Unlock()
	msgCtx := context.WithoutCancel(ctx)
	// Pull requests must come more often than PinnedTTL, or the server
	// unpins an idle owner and the partition's pin churns.
	expiry := max(time.Second, r.cfg.PinnedTTL/3)
	cc, err := cons.Consume(func(m jetstream.Msg) { ps.onMsg(msgCtx, p, m) },
		jetstream.PullPriorityGroup(subject.PriorityGroup),
		jetstream.PullExpiry(expiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				// Another router holds the pin now: save what is cached
				// (compare-and-set) and forget it.
				r.log.Warn("partition pin lost", "partition", p)
				r.metrics.pinsLost.Inc()
				r.pinsLost.Add(1)
				r.workers.dropPartition(msgCtx, r, p)
				return
			}
			r.log.Debug("consume", "partition", p, "err", err)
		}))
	ps.mu.Lock()
	if err != nil {
		delete(ps.consuming, p)
	} else {
		owned.cc = cc
	}
	ps.mu.Unlock()
	if err != nil {
		return err
	}
	r.metrics.partitions.Inc()
	r.log.Debug("partition taken", "partition", p)
	return nil
}

// stop stops consuming p, saves and forgets its groups, and unpins it so
// the next owner need not wait for the pin to time out.
func (ps *partitions) stop(ctx context.Context, p int) {
	ps.mu.Lock()
	cons := ps.consuming[p]
	pin, pinned := ps.pins[p]
	delete(ps.consuming, p)
	delete(ps.pins, p)
	ps.mu.Unlock()
	if cons == nil || cons.cc == nil {
		return
	}
	cons.cc.Stop()
	<-cons.cc.Closed()
	ps.r.metrics.partitions.Dec()
	ps.r.workers.dropPartition(ctx, ps.r, p)
	// Unpin only a pin this router holds: a router that started a
	// partition but never got its pin (its owner was back before the pin
	// moved) would otherwise take the pin from the owner. With time of
	// its own: ctx may be spent on the saves (a stopping router gives its
	// partitions' saves 5 s in all), and a pin left in place keeps the
	// partition's next owner waiting for PinnedTTL
	// (e2e.TestStoppedRouterUnpinsEveryPartition).
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if pinned && ps.pinHeld(uctx, p, pin) {
		if err := ps.stream.UnpinConsumer(uctx, consumerName(p), subject.PriorityGroup); err != nil {
			ps.r.log.Warn("unpin", "partition", p, "err", err)
		}
	}
	ps.r.log.Debug("partition released", "partition", p)
}

// onMsg takes one stored request off partition p.
func (ps *partitions) onMsg(ctx context.Context, p int, m jetstream.Msg) {
	r := ps.r
	// At most once: a request is answered by the router that took it, or
	// the gateway times it out and the client retries.
	_ = m.Ack()
	h := m.Headers()
	if pin := h.Get("Nats-Pin-Id"); pin != "" {
		ps.mu.Lock()
		prev := ps.pins[p]
		ps.pins[p] = pin
		ps.mu.Unlock()
		if prev != "" && prev != pin {
			// Another router may have served p in between.
			r.log.Info("partition pin changed", "partition", p)
			r.workers.dropPartition(ctx, r, p)
		}
	}
	mp, appID, groupID, ok := subject.ParseRPCPartition(m.Subject())
	if !ok || mp != p {
		return
	}
	if d, err := strconv.ParseInt(h.Get(subject.HeaderDeadline), 10, 64); err == nil && r.now().UnixMilli() > d {
		return // the gateway has already answered 503
	}
	replyTo := h.Get(subject.HeaderReply)
	r.enqueue(job{appID: appID, groupID: groupID, part: p, data: m.Data(), header: h, reply: func(rep *liveimpb.Reply) { r.respond(replyTo, rep) }})
}

// pinHeld reports whether partition p's consumer is still pinned to pin,
// the pin this router's messages of p came under. When it cannot tell, it
// says yes: a failover must not wait for the pin TTL.
func (ps *partitions) pinHeld(ctx context.Context, p int, pin string) bool {
	info, err := ps.stream.Consumer(ctx, consumerName(p))
	if err != nil {
		return true
	}
	for _, g := range info.CachedInfo().PriorityGroups {
		if g.Group == subject.PriorityGroup {
			return g.PinnedClientID == pin
		}
	}
	return true
}
