package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// worker is the only owner of the groups hashed to it: their state, their
// timers and their writes. Every request of those groups, every tick,
// flush and partition drop runs on its goroutine, one job at a time, so
// group state needs no lock and none is held across I/O. A job that would
// wait long without needing the state (an audit hook, a history query, a
// resume read) hands that part to a goroutine and comes back as a job.
type worker struct {
	r    *Router
	jobs chan job // internal jobs (ticks, flushes, continuations)

	inMu   sync.Mutex // leaf lock: guards inbox and inDone
	inbox  []job      // requests from the partitions' consumers
	inDone bool       // the router stops: no more requests
	wake   chan struct{}
	// groups are the cached groups; only run touches the map and the states.
	groups map[string]*groupState
	// cachedGroups is len(groups) as of the last tick, for the gauge.
	cachedGroups atomic.Int64
	// tailBytes is tail.bytes as of the last tick, for the gauge.
	tailBytes atomic.Int64
	// evicted are the groups that left groups idle (worker.idle), no
	// request for DedupeWindow, while their partition stayed here, by key:
	// loaded again, they need no look-ups of repeated sends in the store
	// (no other router can have taken a send since, and no retry of an
	// earlier one can come). Kept for an hour.
	evicted  map[string]evictedGroup
	prunedAt time.Time

	// ticking and flushing are set while a tick or flush job is queued, so
	// a busy worker gets at most one of each waiting.
	ticking, flushing atomic.Bool
	flushBatch        []*groupState // reused by flush
	// gatewayGen is the gateway tracker's generation the last tick saw.
	gatewayGen uint64
	// sends are the sequenced sends at the store, by group, oldest first;
	// storing counts them (sends.go).
	sends   map[string][]*pendingSend
	storing int
	// highAcks are the worker's HIGH publishes in flight, oldest first
	// (sends.go).
	highAcks []*highAck
	// tail is the memory of the groups' recent HIGH messages (tail.go).
	tail tailBudget
}

// evictedGroup is a group that left its worker's memory idle.
type evictedGroup struct {
	part int
	at   time.Time
}

// job is one unit of a worker's (or an any-router goroutine's) work: a
// request, or with fn set an internal job.
type job struct {
	appID   string
	groupID string // empty for requests that name no group
	part    int    // partition, -1 for requests that name no group
	data    []byte
	header  nats.Header // of a stored group request, to send it on
	reply   func(*liveimpb.Reply)

	w    *worker                      // the worker running the job; nil off the workers
	fn   func(*worker)                // an internal job
	done func(*liveimpb.Reply, error) // answers the request (set by Router.work)
}

func newWorker(r *Router) *worker {
	return &worker{r: r, jobs: make(chan job, 1024), groups: make(map[string]*groupState), sends: make(map[string][]*pendingSend), wake: make(chan struct{}, 1),
		tail: tailBudget{max: int(r.cfg.ResumeMemory / int64(max(r.cfg.Workers, 1)))}}
}

// push queues a request without waiting; it reports false when the
// worker is at Config.MaxBacklog or stopping.
func (w *worker) push(j job) bool {
	w.inMu.Lock()
	if w.inDone || len(w.inbox) >= w.r.cfg.MaxBacklog {
		w.inMu.Unlock()
		return false
	}
	w.inbox = append(w.inbox, j)
	w.inMu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// takeInbox returns the requests waiting and empties the inbox; with done
// it also refuses later ones.
func (w *worker) takeInbox(done bool) []job {
	w.inMu.Lock()
	defer w.inMu.Unlock()
	in := w.inbox
	w.inbox = nil
	w.inDone = w.inDone || done
	return in
}

// run handles requests and internal jobs until the job queue closes,
// then the requests still waiting, then saves what it holds.
func (w *worker) run(ctx context.Context) error {
	handle := func(j job) {
		j.w = w
		if j.fn != nil {
			j.fn(w)
			return
		}
		w.r.work(ctx, j)
	}
	for {
		select {
		case j, ok := <-w.jobs:
			if !ok {
				for _, j := range w.takeInbox(true) {
					handle(j)
				}
				w.drainSends(-1)
				return w.flush(ctx, 0)
			}
			handle(j)
		case <-w.wake:
			for _, j := range w.takeInbox(false) {
				handle(j)
			}
		}
	}
}

// resume queues fn to run on the worker once work handed off it is done;
// it waits for room in the queue. With the queue closed (the router
// stopping) it reports false.
func (w *worker) resume(fn func(*worker)) bool {
	w.r.qmu.RLock()
	defer w.r.qmu.RUnlock()
	if w.r.qclosed {
		return false
	}
	w.jobs <- job{fn: fn}
	return true
}

// post queues an internal job without waiting; it reports false when the
// queue is full or closed.
func (w *worker) post(fn func(*worker)) bool {
	if !w.r.qmu.TryRLock() { // never wait here: a worker posts to itself
		return false
	}
	defer w.r.qmu.RUnlock()
	if w.r.qclosed {
		return false
	}
	select {
	case w.jobs <- job{fn: fn}:
		return true
	default:
		return false
	}
}

// call runs fn on the worker and waits for it: for jobs from outside the
// workers that must finish before their caller goes on (a partition
// handed over). It reports false when the worker has stopped.
func (w *worker) call(fn func(*worker)) bool {
	done := make(chan struct{})
	w.r.qmu.RLock()
	if w.r.qclosed {
		w.r.qmu.RUnlock()
		return false
	}
	w.jobs <- job{fn: func(w *worker) { defer close(done); fn(w) }}
	w.r.qmu.RUnlock()
	<-done
	return true
}

// resumeOrFail resumes j's work on the worker with fn, or answers j with
// 503 when the router is stopping.
func (w *worker) resumeOrFail(j job, fn func(*worker)) {
	if !w.resume(fn) {
		j.done(nil, liveimpb.ErrUnavailable.With("router stopping"))
	}
}

// cached returns the group's state if the worker holds it, without
// loading it.
func (w *worker) cached(appID, groupID string) *groupState {
	return w.groups[groupKey(appID, groupID)]
}

// group returns the state of a group this worker owns, loaded on first
// use. A group that does not exist is liveimpb.ErrGroupNotFound; a group
// whose partition this router no longer owns is errMoved.
func (w *worker) group(ctx context.Context, appID, groupID string, part int) (*groupState, error) {
	if !w.r.parts.owns(part) {
		// The partition moved after this request was queued: serving it
		// here could fork the group's state.
		return nil, errMoved
	}
	key := groupKey(appID, groupID)
	if gs := w.groups[key]; gs != nil {
		gs.usedAt = w.r.now()
		return gs, nil
	}
	gs, err := w.r.loadGroup(ctx, appID, groupID, part)
	if err != nil {
		return nil, err
	}
	if _, ok := w.evicted[key]; ok {
		delete(w.evicted, key)
		gs.lookUpUntil = time.Time{}
	}
	w.groups[key] = gs
	return gs, nil
}

// evict drops an idle group from memory (worker.idle). When no retry of
// a send can come any more (DedupeWindow since its last request), the
// worker remembers it left.
func (w *worker) evict(key string, gs *groupState, now time.Time) {
	delete(w.groups, key)
	w.dropTail(gs)
	if now.Sub(gs.usedAt) < w.r.cfg.DedupeWindow {
		return
	}
	if w.evicted == nil {
		w.evicted = make(map[string]evictedGroup)
	}
	w.evicted[key] = evictedGroup{part: gs.part, at: now}
}

// pruneEvicted forgets, once a minute, groups evicted over an hour ago
// (loaded again, they look repeated sends up for a while: a small cost).
func (w *worker) pruneEvicted(now time.Time) {
	if now.Sub(w.prunedAt) < time.Minute {
		return
	}
	w.prunedAt = now
	maps.DeleteFunc(w.evicted, func(_ string, e evictedGroup) bool { return now.Sub(e.at) > time.Hour })
}

// idle reports whether gs may leave the worker's memory: no member, no
// request for Config.GroupIdle, everything of it saved and announced,
// nothing of it in flight, and no timed mute whose end must be announced.
// A router used to keep every group it ever loaded, so its memory (and
// every tick's and flush's walk) grew with every room an app ever opened
// and closed; loading the group again is what its first request after a
// restart does.
func (w *worker) idle(gs *groupState, now time.Time) bool {
	if len(gs.members) > 0 || now.Sub(gs.usedAt) < w.r.cfg.GroupIdle || gs.dirty || len(gs.savedMembers) > 0 || len(gs.removed) > 0 ||
		!gs.change.empty() || (len(gs.g.MuteUntil) > 0 && !gs.g.Closed) {
		return false
	}
	key := groupKey(gs.g.AppID, gs.g.ID)
	return len(w.sends[key]) == 0 && len(w.highInFlight(key)) == 0
}

// groupKey is a group's key in a worker's maps.
func groupKey(appID, groupID string) string { return appID + "/" + groupID }

// forget drops a group's state (stale, or its partition moved).
func (w *worker) forget(gs *groupState) {
	key := groupKey(gs.g.AppID, gs.g.ID)
	if w.groups[key] == gs {
		delete(w.groups, key)
		w.dropTail(gs)
	}
}

// nextSeq hands out the group's next seqnum, first reserving a new block
// in the store when the current one is used up.
func (w *worker) nextSeq(ctx context.Context, gs *groupState) (int64, error) {
	next := gs.lastSeq + 1
	if next > gs.g.SeqReserved {
		reserved := gs.g.SeqReserved
		gs.g.SeqReserved = gs.lastSeq + w.r.cfg.SeqBlock
		if err := w.save(ctx, gs); err != nil {
			gs.g.SeqReserved = reserved
			return 0, fmt.Errorf("reserve seqnums: %w", err)
		}
	}
	gs.lastSeq = next
	return next, nil
}

// save writes the group record now, compare-and-set on its version.
// Changes clients must not lose (mutes, admins, meta, closing) are saved
// before they are answered. A conflict means another router wrote the
// group since this one loaded it: the state here is stale, so it is
// dropped and the request fails with errMoved (sent on to the current
// owner, or 503 and the client retries).
func (w *worker) save(ctx context.Context, gs *groupState) error {
	v, err := w.r.store.PutGroup(ctx, gs.g)
	return w.saved(gs, v, err)
}

// saved applies the outcome of writing gs's record: its new version, or,
// on a conflict, the end of this router's stale copy (errMoved).
func (w *worker) saved(gs *groupState, v int64, err error) error {
	if errors.Is(err, storage.ErrConflict) {
		w.r.log.Warn("group changed under this router; reloading", "app_id", gs.g.AppID, "group_id", gs.g.ID)
		w.forget(gs)
		return errMoved
	}
	if err != nil {
		return fmt.Errorf("save group: %w", err)
	}
	gs.g.Version = v
	gs.dirty = false
	gs.savedAt = w.r.now()
	return nil
}

// flushChunk is how many groups one flush job saves before it yields to
// the requests queued behind it.
const flushChunk = 64

// flush writes changed counters and member lists of the worker's groups.
// With chunk > 0 it saves at most that many and queues the rest as a new
// job, so requests wait for at most one chunk of writes.
func (w *worker) flush(ctx context.Context, chunk int) error {
	batch := w.flushBatch[:0]
	more := false
	force := chunk == 0 // the worker stops: everything is written
	for _, gs := range w.groups {
		if !w.recordDue(gs, force) && len(gs.savedMembers) == 0 && len(gs.removed) == 0 {
			continue
		}
		if chunk > 0 && len(batch) == chunk {
			more = true
			break
		}
		batch = append(batch, gs)
	}
	err := w.flushGroups(ctx, batch, force)
	clear(batch)
	w.flushBatch = batch[:0]
	if !more || !w.post(func(w *worker) { w.flushJob(ctx) }) {
		w.flushing.Store(false)
	}
	return err
}

func (w *worker) flushJob(ctx context.Context) {
	if err := w.flush(ctx, flushChunk); err != nil {
		w.r.log.Error("save group state", "err", err)
	}
}

// recordDue reports whether a flush writes gs's record: it changed, and
// the flush is forced (the worker stops, the partition moves) or
// Config.StatsInterval passed since the record was last written. What
// changes a record between flushes is statistics (and a timed mute's
// end, which a load derives again): everything clients must not lose is
// written before it is answered (save).
func (w *worker) recordDue(gs *groupState, force bool) bool {
	return gs.dirty && (force || w.r.now().Sub(gs.savedAt) >= w.r.cfg.StatsInterval)
}

// flushGroups writes the changed counters and member records of groups.
// The store writes of all of them run at once, so the worker waits for
// about one write (the store commits them together: one fsync for the
// embedded store), not one per group; the worker holds every group's state
// meanwhile, so nothing changes under them, and it applies the outcomes
// itself.
func (w *worker) flushGroups(ctx context.Context, groups []*groupState, force bool) error {
	type write struct {
		put     bool          // the record is written
		group   storage.Group // the record to save
		ups     []storage.Member
		removed []string
		version int64
		err     error // of the record; a stale record writes no members
		membErr error
	}
	writes := make([]write, len(groups))
	var wg sync.WaitGroup
	for i, gs := range groups {
		wr := &writes[i]
		if wr.put = w.recordDue(gs, force); wr.put {
			wr.group = gs.g
		}
		for id := range gs.savedMembers {
			if m := gs.members[id]; m != nil {
				wr.ups = append(wr.ups, storedMember(m))
			}
		}
		for id := range gs.removed {
			wr.removed = append(wr.removed, id)
		}
		appID, groupID := gs.g.AppID, gs.g.ID
		wg.Go(func() {
			if wr.put {
				if wr.version, wr.err = w.r.store.PutGroup(ctx, wr.group); wr.err != nil {
					return
				}
			}
			if len(wr.ups) > 0 || len(wr.removed) > 0 {
				wr.membErr = w.r.store.SaveMembers(ctx, appID, groupID, wr.ups, wr.removed)
			}
		})
	}
	wg.Wait()
	var errs []error
	for i, gs := range groups {
		wr := &writes[i]
		if wr.put {
			if err := w.saved(gs, wr.version, wr.err); err != nil {
				if !errors.Is(err, errMoved) { // another router owns it now; its state wins
					errs = append(errs, err)
				}
				continue
			}
		}
		if wr.membErr != nil {
			errs = append(errs, wr.membErr)
			continue
		}
		gs.membersSaved()
	}
	return errors.Join(errs...)
}

// dropPartition saves and forgets the worker's groups of partition p.
// Joins and leaves not yet announced go out now: the next owner loads the
// members, not what changed, so they would never be announced. It
// returns the groups with members that another router should load so
// their presence timers keep running.
func (w *worker) dropPartition(ctx context.Context, p int) (touch []*groupState) {
	// The next owner must find every message this router took: a retried
	// send looks its first attempt up in the store.
	w.drainSends(p)
	// Another router may own p until this one loads its groups again.
	maps.DeleteFunc(w.evicted, func(_ string, e evictedGroup) bool { return e.part == p })
	var groups []*groupState
	for _, gs := range w.groups {
		if gs.part == p {
			groups = append(groups, gs)
		}
	}
	if err := w.flushGroups(ctx, groups, true); err != nil {
		w.r.log.Error("save group state", "partition", p, "err", err)
	}
	for _, gs := range groups {
		if !gs.change.empty() && !gs.g.Closed {
			w.r.publishMemberChange(gs)
		}
		w.forget(gs)
		if len(gs.members) > 0 && !gs.g.Closed {
			touch = append(touch, gs)
		}
	}
	return touch
}

// tick runs the timed work of the worker's groups: members whose grace
// ran out leave, sessions of dead gateways end, timed mutes end (with a
// mutechange), and pending member changes go out as one memberchange per
// interval. A group's members are walked only when one of them waits for
// something (nextExpiry) or a gateway died since the last tick
// (gatewayGen): idle members cost nothing.
func (w *worker) tick(now time.Time, gatewayGen uint64) {
	w.ticking.Store(false)
	walkAll := gatewayGen != w.gatewayGen
	w.gatewayGen = gatewayGen
	defer func() {
		w.cachedGroups.Store(int64(len(w.groups)))
		w.tailBytes.Store(int64(w.tail.bytes))
	}()
	w.pruneEvicted(now)
	for key, gs := range w.groups {
		if w.idle(gs, now) {
			w.evict(key, gs, now)
			continue
		}
		if gs.byJoin != nil && now.Sub(gs.listedAt) > time.Minute {
			gs.byJoin, gs.gone = nil, 0 // nobody lists the members: 8 bytes a member less
		}
		if gs.g.Closed {
			continue
		}
		if walkAll || (!gs.nextExpiry.IsZero() && !now.Before(gs.nextExpiry)) {
			w.r.expireMembers(gs, now)
		}
		w.r.endMutes(gs, now)
		if !gs.change.empty() && now.Sub(gs.lastChange) >= w.r.cfg.memberChangeEvery(len(gs.members)) {
			w.r.publishMemberChange(gs)
			gs.lastChange = now
		}
	}
}

// workers is the router's pool: a group always goes to the same worker.
type workers []*worker

// dropPartition saves and forgets every worker's groups of partition p and
// waits for it; groups with members are touched so their next owner loads
// them, unless this router owns p again by then.
func (ws workers) dropPartition(ctx context.Context, r *Router, p int) {
	var mu sync.Mutex
	var touch []*groupState
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			w.call(func(w *worker) {
				t := w.dropPartition(ctx, p)
				mu.Lock()
				touch = append(touch, t...)
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if r.parts.owns(p) {
		return
	}
	for _, gs := range touch {
		r.touch(gs.g.AppID, gs.g.ID)
	}
}
