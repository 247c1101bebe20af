package router

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// Router answers gateway requests. Build it with New and start it with Run.
type Router struct {
	cfg    Config
	nc     *nats.Conn
	store  storage.Store
	log    *slog.Logger
	now    func() time.Time
	groups *groupCache
	queues []chan *nats.Msg
	c2c    chan struct{} // bounds C2C deliveries in flight
}

// New returns a Router that serves requests arriving on nc from the
// gateways, keeping state in store.
func New(cfg Config, nc *nats.Conn, store storage.Store, logger *slog.Logger) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || store == nil {
		return nil, errors.New("router: nil NATS connection or store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	r := &Router{
		cfg:   cfg,
		nc:    nc,
		store: store,
		log:   logger.With("component", "router"),
		now:   time.Now,
		c2c:   make(chan struct{}, 4096),
	}
	r.groups = newGroupCache(store, cfg.SeqBlock)
	r.queues = make([]chan *nats.Msg, cfg.Workers)
	for i := range r.queues {
		r.queues[i] = make(chan *nats.Msg, 256)
	}
	return r, nil
}

// Run subscribes and serves until ctx ends, then drains its subscriptions,
// finishes queued requests and saves group state.
func (r *Router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, q := range r.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range q {
				r.handle(ctx, m)
			}
		}()
	}
	rpc, err := r.nc.QueueSubscribe(subject.RPCWildcard, subject.QueueGroup, r.enqueue)
	if err != nil {
		return fmt.Errorf("router: subscribe: %w", err)
	}
	apps, err := r.nc.QueueSubscribe(subject.AppLookup, subject.QueueGroup, func(m *nats.Msg) { r.lookupApp(ctx, m) })
	if err != nil {
		_ = rpc.Unsubscribe()
		return fmt.Errorf("router: subscribe: %w", err)
	}
	if err := r.nc.Flush(); err != nil {
		return fmt.Errorf("router: flush: %w", err)
	}
	r.log.Info("router started", "workers", r.cfg.Workers)
	<-ctx.Done()

	// Stop taking requests, let the queued ones finish, save state.
	_ = rpc.Drain()
	_ = apps.Drain()
	for rpc.IsValid() || apps.IsValid() {
		time.Sleep(10 * time.Millisecond)
	}
	for _, q := range r.queues {
		close(q)
	}
	wg.Wait()
	if err := r.groups.flush(context.Background()); err != nil {
		return fmt.Errorf("router: save group state: %w", err)
	}
	r.log.Info("router stopped")
	return nil
}

// enqueue hands a request to the worker of its subject, so a group's
// requests stay in order.
func (r *Router) enqueue(m *nats.Msg) {
	h := fnv.New32a()
	h.Write([]byte(m.Subject))
	r.queues[h.Sum32()%uint32(len(r.queues))] <- m
}

func (r *Router) handle(ctx context.Context, m *nats.Msg) {
	var req liveimpb.RouterRequest
	var rep *liveimpb.Reply
	if err := proto.Unmarshal(m.Data, &req); err != nil || req.Caller == nil || req.Frame == nil {
		rep = liveimpb.ErrorReply(liveimpb.InvalidParam("frame", "malformed router request"))
	} else {
		var err error
		rep, err = r.dispatch(ctx, req.Caller, req.Frame)
		if err != nil {
			if e := liveimpb.AsError(err); e == liveimpb.ErrInternal {
				r.log.Error("request failed", "subject", m.Subject, "err", err)
			}
			rep = liveimpb.ErrorReply(err)
		}
	}
	r.respond(m, rep)
}

func (r *Router) respond(m *nats.Msg, rep *liveimpb.Reply) {
	if m.Reply == "" {
		return
	}
	b, err := proto.Marshal(rep)
	if err != nil {
		r.log.Error("marshal reply", "err", err)
		return
	}
	if err := r.nc.Publish(m.Reply, b); err != nil {
		r.log.Warn("publish reply", "err", err)
	}
}

// dispatch runs one client operation for caller.
func (r *Router) dispatch(ctx context.Context, c *liveimpb.Caller, f *liveimpb.ClientFrame) (*liveimpb.Reply, error) {
	switch b := f.Body.(type) {
	case *liveimpb.ClientFrame_CreateGroup:
		return r.createGroup(ctx, c, b.CreateGroup)
	case *liveimpb.ClientFrame_JoinGroup:
		return r.joinGroup(ctx, c, b.JoinGroup)
	case *liveimpb.ClientFrame_LeaveGroup:
		return r.leaveGroup(ctx, c, b.LeaveGroup)
	case *liveimpb.ClientFrame_QueryGroup:
		return r.queryGroup(ctx, c, b.QueryGroup)
	case *liveimpb.ClientFrame_SendGroupMessage:
		return r.sendGroupMessage(ctx, c, b.SendGroupMessage)
	case *liveimpb.ClientFrame_SendC2CMessage:
		return r.sendC2CMessage(ctx, c, b.SendC2CMessage)
	case *liveimpb.ClientFrame_ListRecentMessage:
		return r.listRecentMessage(ctx, c, b.ListRecentMessage)
	default:
		return nil, liveimpb.ErrInternal.With("operation %T is not served by this router version", f.Body)
	}
}

// lookupApp answers a gateway's AppLookupRequest.
func (r *Router) lookupApp(ctx context.Context, m *nats.Msg) {
	var req liveimpb.AppLookupRequest
	rep := &liveimpb.AppLookupReply{}
	if err := proto.Unmarshal(m.Data, &req); err != nil {
		rep.Code, rep.Msg = int32(liveimpb.ErrInvalidParameter.Code), "malformed app lookup"
	} else if app, err := r.store.GetApp(ctx, req.AppId); errors.Is(err, storage.ErrNotFound) {
		rep.Code, rep.Msg = int32(liveimpb.ErrUnauthorized.Code), "unknown app"
	} else if err != nil {
		r.log.Error("app lookup", "app", req.AppId, "err", err)
		rep.Code, rep.Msg = int32(liveimpb.ErrInternal.Code), liveimpb.ErrInternal.Message
	} else {
		rep.AppId, rep.AppKey = app.ID, app.Key
	}
	b, _ := proto.Marshal(rep)
	_ = m.Respond(b)
}
