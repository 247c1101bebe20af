package gateway

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
)

// pendingRPC is a request waiting for its router reply.
type pendingRPC struct {
	c        *conn
	id       uint32
	op       string // liveimpb.OpName of the request
	start    time.Time
	deadline time.Time
	span     trace.Span // nil unless tracing
	// done runs before the reply goes to the client, on the inbox
	// goroutine; it may change the reply.
	done func(rep *liveimpb.Reply) *liveimpb.Reply
}

// rpcTable tracks router requests in flight. Replies come to one inbox
// subscription per gateway, so a request costs no goroutine while it waits.
type rpcTable struct {
	mu   sync.Mutex // leaf lock
	next uint64
	m    map[uint64]*pendingRPC
}

func (t *rpcTable) add(p *pendingRPC) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.m[t.next] = p
	return t.next
}

func (t *rpcTable) take(token uint64) *pendingRPC {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.m[token]
	delete(t.m, token)
	return p
}

// expired removes and returns the requests past their deadline.
func (t *rpcTable) expired(now time.Time) []*pendingRPC {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pendingRPC
	for k, p := range t.m {
		if now.After(p.deadline) {
			out = append(out, p)
			delete(t.m, k)
		}
	}
	return out
}

// forward sends the request to a router. The reply reaches the client
// through onReply; done, if set, sees it first.
//
// A request naming a group goes into the RPC stream, where the router
// owning the group's partition takes it; the reply subject travels in a
// header because the stream uses the NATS reply subject for its own acks.
// Other requests go to any router by core NATS request, so "no responders"
// answers at once when no router runs.
func (g *Gateway) forward(c *conn, s *session, f *liveimpb.ClientFrame, groupID string, done func(*liveimpb.Reply) *liveimpb.Reply) {
	env, err := proto.Marshal(&liveimpb.RouterRequest{Caller: g.caller(s), Frame: f})
	if err != nil {
		c.replyErr(f.Id, err)
		return
	}
	start := g.now()
	deadline := start.Add(g.cfg.RequestTimeout)
	p := &pendingRPC{c: c, id: f.Id, op: liveimpb.OpName(f), start: start, deadline: deadline, done: done}
	msg := nats.NewMsg(subject.Any(s.appID))
	if groupID != "" {
		msg.Subject = subject.RPC(s.appID, groupID)
	}
	msg.Data = env
	var publish trace.Span
	if g.tracing {
		// The client's request is the SERVER span, from receipt to reply;
		// its publish to the routers is a PRODUCER span under it, whose
		// context travels in the message's headers.
		var ctx context.Context
		var attrs []attribute.KeyValue
		ctx, p.span, attrs = g.startRequest(s, p.op, groupID)
		ctx, publish = telemetry.StartMessaging(ctx, g.tracer, telemetry.Publish, msg.Subject,
			append(attrs, semconv.MessagingMessageBodySize(len(env)))...)
		telemetry.Inject(ctx, msg.Header)
	}
	token := g.rpc.add(p)
	inbox := g.inbox
	if _, joining := f.Body.(*liveimpb.ClientFrame_JoinGroup); joining {
		inbox = g.joinInbox(g.dispatcherOf(subject.GroupAll(s.appID, groupID)))
	}
	inbox += strconv.FormatUint(token, 10)
	if groupID != "" {
		msg.Header.Set(subject.HeaderReply, inbox)
		msg.Header.Set(subject.HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
	} else {
		msg.Reply = inbox
	}
	err = g.nc.PublishMsg(msg)
	if publish != nil {
		if err != nil {
			publish.SetStatus(codes.Error, err.Error())
		}
		publish.End()
	}
	if err != nil {
		g.metrics.natsErrors.Add(1)
		if p := g.rpc.take(token); p != nil {
			g.finish(p, liveimpb.ErrorReply(liveimpb.ErrUnavailable.With("publish: %v", err)))
		}
	}
}

// startRequest starts the SERVER span of a client request: named after
// the operation (its rpc.method), with the IDs it concerns as attributes,
// which it also returns for the spans under it.
func (g *Gateway) startRequest(s *session, op, groupID string) (context.Context, trace.Span, []attribute.KeyValue) {
	ids := []attribute.KeyValue{telemetry.AppIDKey.String(s.appID), telemetry.UserIDKey.String(s.userID), telemetry.GatewayIDKey.String(g.cfg.ID)}
	if groupID != "" {
		ids = append(ids, telemetry.GroupIDKey.String(groupID))
	}
	ctx, span := g.tracer.Start(context.Background(), op, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(append([]attribute.KeyValue{rpcSystem, semconv.RPCMethod(op), telemetry.OpKey.String(op)}, ids...)...))
	return ctx, span, ids
}

// rpcSystem is rpc.system.name of a client request's span: liveim's own
// WebSocket protocol (docs/protocol.md), which the conventions have no
// value for.
var rpcSystem = semconv.RPCSystemNameKey.String("liveim")

// notifyLeave tells a group's owner that a session left without
// leaveGroup; no reply is expected.
func (g *Gateway) notifyLeave(s *session, groupID string) {
	env, err := proto.Marshal(&liveimpb.RouterRequest{Caller: g.caller(s), PresenceLeave: &liveimpb.PresenceLeave{GroupId: groupID}})
	if err != nil {
		return
	}
	msg := nats.NewMsg(subject.RPC(s.appID, groupID))
	msg.Data = env
	msg.Header.Set(subject.HeaderDeadline, strconv.FormatInt(g.now().Add(time.Minute).UnixMilli(), 10))
	if err := g.nc.PublishMsg(msg); err != nil {
		g.log.Warn("presence leave", telemetry.LogAppID, s.appID, telemetry.LogGroupID, groupID, "err", err)
	}
}

func (g *Gateway) caller(s *session) *liveimpb.Caller {
	return &liveimpb.Caller{
		AppId: s.appID, UserId: s.userID, UserExtension: s.userExt, Role: s.role,
		SessionId: s.id, GatewayId: g.cfg.ID, DeviceId: s.deviceID,
	}
}

// onReply takes a router reply off the gateway's inbox.
func (g *Gateway) onReply(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
	if err != nil {
		return
	}
	p := g.rpc.take(token)
	if p == nil {
		return // timed out already
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		g.finish(p, liveimpb.ErrorReply(liveimpb.ErrUnavailable.With("no router is running")))
		return
	}
	rep := &liveimpb.Reply{}
	if err := proto.Unmarshal(m.Data, rep); err != nil {
		rep = liveimpb.ErrorReply(liveimpb.ErrInternal.With("malformed router reply"))
	}
	g.finish(p, rep)
}

func (g *Gateway) finish(p *pendingRPC, rep *liveimpb.Reply) {
	result := "ok"
	if rep.Code != 0 {
		result = "error"
	}
	g.metrics.requestTimes.WithLabelValues(p.op, result).Observe(g.now().Sub(p.start).Seconds())
	if p.span != nil {
		p.span.SetAttributes(telemetry.CodeKey.Int(int(rep.Code)))
		if rep.Code != 0 {
			p.span.SetStatus(codes.Error, rep.Msg)
		}
		p.span.End()
	}
	if p.done != nil {
		rep = p.done(rep)
	}
	p.c.reply(p.id, rep)
}

// expireRPCs answers requests whose router never replied.
func (g *Gateway) expireRPCs(now time.Time) {
	for _, p := range g.rpc.expired(now) {
		ctx := context.Background()
		if p.span != nil {
			ctx = trace.ContextWithSpan(ctx, p.span)
		}
		g.log.WarnContext(ctx, "router request timed out", "request_id", p.id, "op", p.op)
		g.finish(p, liveimpb.ErrorReply(liveimpb.ErrUnavailable.With("router timeout")))
	}
}

// join subscribes the group locally, then asks the router; on success the
// connection becomes a member.
func (g *Gateway) join(c *conn, s *session, f *liveimpb.ClientFrame) {
	groupID := f.GetJoinGroup().GetGroupId()
	if !c.reserveJoin(groupID, g.cfg.MaxGroupsPerSession) {
		c.replyErr(f.Id, liveimpb.ErrLimitReached.With("a session may be in at most %d groups", g.cfg.MaxGroupsPerSession))
		return
	}
	key := roomKey(s.appID, groupID)
	if err := g.rooms.beginJoin(key); err != nil {
		c.endJoin(groupID)
		c.replyErr(f.Id, liveimpb.ErrUnavailable.With("subscribe: %v", err))
		return
	}
	g.forward(c, s, f, groupID, func(rep *liveimpb.Reply) *liveimpb.Reply {
		if c.endJoin(groupID) && rep.Code == 0 {
			// The router may have taken the join after the kick, when the
			// user was not banned: its member then has no connection here,
			// so it leaves as a lost connection's would.
			g.notifyLeave(s, groupID)
			rep = liveimpb.ErrorReply(liveimpb.ErrForbidden.With("removed from the group while joining"))
		}
		ok := rep.Code == 0 && c.setJoined(groupID, true)
		if rep.Code == int32(liveimpb.ErrUnavailable.Code) && !c.joiningOrIn(groupID) {
			// A 503, the gateway's own timeout among them: the router may
			// still take the join, answering nobody. The session's leave,
			// behind the join in the group's partition, undoes it (a
			// no-op when it did not) (e2e.TestJoinAnsweredLateLeavesNoMember).
			g.notifyLeave(s, groupID)
		}
		if rep.Code == 0 && !ok {
			// The connection closed while its join was on the way: its
			// release left only the groups it was in, so the router's new
			// member would stay for good (e2e.TestAuditGWJoinThenCloseLeavesNoMember).
			g.notifyLeave(s, groupID)
		}
		g.rooms.endJoin(key, c, ok)
		if ok {
			// The connection may have closed between setJoined and endJoin;
			// its release then missed this room.
			c.mu.Lock()
			gone := c.closed || c.closing
			c.mu.Unlock()
			if gone {
				g.rooms.leave(key, c)
			}
		}
		return rep
	})
}
