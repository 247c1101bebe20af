package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
)

// Gateway terminates client WebSockets and bridges them to NATS.
type Gateway struct {
	cfg Config
	nc  *nats.Conn
	log *slog.Logger
	now func() time.Time

	mux *http.ServeMux
	ln  net.Listener
	tls *tls.Config // Config.TLSCertFile: the listener serves TLS
	eng engine      // Config.IO's engine, from Run on

	inbox       string
	rpc         rpcTable
	rooms       *rooms
	sessions    *sessions
	dispatchers []*dispatcher
	// userCh takes the messages of every user subject (C2C, kicks,
	// takeovers) for one goroutine of their own, apart from the rooms, so
	// a flood in a room never delays or drops them.
	userCh   chan *nats.Msg
	events   *callback.Publisher // user.online and user.offline
	metrics  *Metrics
	tracer   trace.Tracer
	perIP    *ipLimits
	pending  *pending
	prelogin prelogin
	trusted  []netip.Prefix // Config.TrustedProxies
	tracing  bool           // the tracer records: spend time on spans
	draining atomic.Bool    // shutting down: /readyz fails
}

// Option adds an injected dependency to New.
type Option func(*options)

type options struct {
	reg prometheus.Registerer
	tp  trace.TracerProvider
}

// WithTracerProvider traces requests and deliveries with tp: a span per
// client request from receipt to the router's reply, and one per
// delivery of a traced group or C2C event. Default: no tracing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// WithRegisterer registers the gateway's Prometheus metrics on reg.
// Default: a registry of its own, which nothing serves.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// Stats is a snapshot of a gateway's counters.
type Stats struct {
	// Connections is the number of open WebSocket connections.
	Connections int64
	// Rooms is the number of groups with local members (one NATS
	// subscription each).
	Rooms int
	// DroppedFrames counts NORMAL frames dropped for slow sockets.
	DroppedFrames int64
}

// New returns a Gateway that uses nc. Call Listen (optional) and Run.
func New(cfg Config, nc *nats.Conn, logger *slog.Logger, opts ...Option) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("gateway: nil NATS connection")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	cfg = cfg.WithDefaults()
	if cfg.ID == "" {
		cfg.ID = ids.New()
	} else if !ids.Valid(cfg.ID) {
		return nil, fmt.Errorf("gateway: ID %q: at most 64 of A-Z a-z 0-9 -", cfg.ID)
	}
	g := &Gateway{
		cfg:   cfg,
		nc:    nc,
		log:   logger.With("component", "gateway", "gateway_id", cfg.ID),
		now:   time.Now,
		mux:   http.NewServeMux(),
		inbox: subject.Inbox(cfg.ID),
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	g.tls = tlsCfg
	g.metrics = newMetrics(g, o.reg)
	g.events = callback.NewPublisher(nc, "gateway", g.log, o.reg)
	g.perIP = newIPLimits(cfg.MaxConnsPerIP, cfg.UpgradeRatePerIP, cfg.UpgradeBurstPerIP)
	g.trusted, _ = cfg.trustedProxies() // Validate checked them
	g.pending = newPending(cfg, g.trusted, g.metrics)
	if o.tp != nil {
		g.tracer, g.tracing = o.tp.Tracer("github.com/liveim/liveim/gateway"), telemetry.Recording(o.tp)
	} else {
		g.tracer = noop.NewTracerProvider().Tracer("")
	}
	g.rpc.m = make(map[uint64]*pendingRPC)
	g.dispatchers = make([]*dispatcher, cfg.Dispatchers)
	for i := range g.dispatchers {
		g.dispatchers[i] = newDispatcher(g)
	}
	g.userCh = make(chan *nats.Msg, cfg.DispatchBuffer)
	g.sessions = newSessions(func(userKey string) (*nats.Subscription, error) {
		appID, userID := splitKey(userKey)
		return nc.ChanSubscribe(subject.User(appID, userID), g.userCh)
	})
	g.rooms = newRooms(func(key string) (*nats.Subscription, error) {
		appID, groupID := splitKey(key)
		subj := subject.GroupAll(appID, groupID)
		return nc.ChanSubscribe(subj, g.dispatcherFor(subj))
	})
	// A group subscription that overflows has lost events, perhaps HIGH
	// ones: its local members reconnect and resume instead of missing them.
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		g.metrics.natsErrors.Add(1)
		if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
			go g.onSlowSubscription(sub.Subject)
		}
	})
	g.mux.HandleFunc("/ws", g.serveWS)
	// /healthz is liveness: the process serves. A NATS outage fails only
	// /readyz, so it takes gateways out of the load balancer without
	// restarting them all.
	g.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	g.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := g.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return g, nil
}

// Ready reports why the gateway should get no new clients: it is
// draining, or NATS is disconnected. It serves /readyz.
func (g *Gateway) Ready() error {
	switch {
	case g.draining.Load():
		return errors.New("draining")
	case !g.nc.IsConnected():
		return errors.New("nats disconnected")
	}
	return nil
}

// Mux returns the HTTP mux the gateway serves, so a composed server can
// add its own routes before Run.
func (g *Gateway) Mux() *http.ServeMux { return g.mux }

// ID returns the gateway's ID.
func (g *Gateway) ID() string { return g.cfg.ID }

// IO returns the I/O path the gateway's connections use: IOEpoll or
// IOPortable.
func (g *Gateway) IO() string { return g.cfg.IO }

// Listen opens the listening socket, serving TLS when configured; Run
// calls it when it was not called.
func (g *Gateway) Listen() (net.Addr, error) {
	if g.ln != nil {
		return g.ln.Addr(), nil
	}
	tcp, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen: %w", err)
	}
	var ln net.Listener = pendingListener{Listener: tcp, p: g.pending}
	if g.tls != nil {
		ln = tls.NewListener(ln, g.tls)
	}
	g.ln = ln
	return ln.Addr(), nil
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{Connections: g.metrics.connections.Load(), Rooms: g.rooms.count(), DroppedFrames: g.metrics.dropped.Load()}
}

// Run serves until ctx ends, then shuts down gracefully: /readyz fails
// and new WebSocket upgrades are refused at once; over Config.DrainDelay
// every connection gets a close frame with a reconnect hint, the closes
// spread evenly over that window (drain); then whatever is left is
// closed and the subscriptions are released. The caller drains the NATS
// connection after Run returns.
func (g *Gateway) Run(ctx context.Context) error {
	if _, err := g.Listen(); err != nil {
		return err
	}
	// Setup that can fail comes first, and undoes itself when it does: no
	// goroutine starts before it is done.
	var subs []*nats.Subscription
	unsubscribe := func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	keep := func(sub *nats.Subscription, err error) error {
		if err != nil {
			unsubscribe()
			_ = g.ln.Close()
			return fmt.Errorf("gateway: subscribe: %w", err)
		}
		subs = append(subs, sub)
		return nil
	}
	if err := keep(g.nc.Subscribe(g.inbox+"*", g.onReply)); err != nil {
		return err
	}
	for i, d := range g.dispatchers {
		if err := keep(g.nc.ChanSubscribe(g.joinInbox(i)+"*", d.ch)); err != nil {
			return err
		}
	}
	if err := keep(g.nc.Subscribe(subject.Online, g.onOnline)); err != nil {
		return err
	}
	eng, err := g.newEngine()
	if err != nil {
		unsubscribe()
		_ = g.ln.Close()
		return fmt.Errorf("gateway: %s: %w", g.cfg.IO, err)
	}
	g.eng = eng
	// Dispatcher channels are never closed: a subscription still open at
	// shutdown (a join in flight) could otherwise send on a closed channel.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { eng.run(stop) })
	for _, d := range g.dispatchers {
		wg.Go(func() { d.run(stop) })
	}
	wg.Go(func() { g.runUsers(stop) })
	srv := &http.Server{
		Handler:           g.mux,
		ReadHeaderTimeout: g.cfg.HTTPTimeout,
		ReadTimeout:       g.cfg.HTTPTimeout,
		WriteTimeout:      g.cfg.HTTPTimeout,
		IdleTimeout:       g.cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	// net/http serves every request but the WebSocket upgrades, which
	// serveConns answers itself (upgrade.go); under TLS it serves them all.
	srvErr := make(chan error, 2)
	if g.tls != nil {
		go func() { srvErr <- srv.Serve(g.ln) }()
	} else {
		rest := newHandoff(g.ln.Addr())
		go func() { srvErr <- srv.Serve(rest) }()
		go func() { srvErr <- g.serveConns(g.ln, rest) }()
	}
	g.log.Info("gateway listening", "addr", g.ln.Addr().String(), "io", g.cfg.IO, "loops", g.cfg.Loops, "tls", g.tls != nil)

	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	heartbeat := time.NewTicker(g.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	g.announce(false)
	lastSweep := time.Now()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-srvErr:
			runErr = fmt.Errorf("gateway: serve: %w", err)
			break loop
		case now := <-ticker.C:
			g.expireRPCs(now)
			g.prelogin.prune()
			if now.Sub(lastSweep) >= 10*time.Second {
				lastSweep = now
				g.perIP.sweep(now)
			}
		case <-heartbeat.C:
			g.announce(false)
		}
	}
	g.draining.Store(true)
	if runErr == nil && g.cfg.DrainDelay > 0 {
		g.log.Info("gateway draining", "delay", g.cfg.DrainDelay.String(), "connections", g.metrics.connections.Load())
		g.drain(g.cfg.DrainDelay)
	}
	g.announce(true)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = g.ln.Close()
	_ = srv.Shutdown(shutdownCtx)
	for _, c := range eng.conns() {
		c.closeWith(ws.StatusGoingAway, shutdownText, &liveimpb.DisconnectEvent{Reason: shutdownText, Reconnect: true})
		c.closeNow()
	}
	unsubscribe()
	close(stop)
	wg.Wait()
	eng.close()
	g.events.Close(5 * time.Second) // the sessions' user.offline events
	g.log.Info("gateway stopped")
	return runErr
}

// serveWS upgrades a request on /ws and hands the socket to the engine
// (an epoll loop, or the portable goroutines); the HTTP goroutine then
// ends. An address over its connection cap or upgrade rate gets 429
// before any upgrade, and every request 503 once the gateway drains.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		// The clients being drained reconnect elsewhere, not here.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "gateway draining", http.StatusServiceUnavailable)
		return
	}
	if limit := g.cfg.MaxConns; limit >= 0 && g.metrics.connections.Load() >= int64(limit) && !g.prelogin.evict(g.now()) {
		// Refused before the upgrade: a process out of files would upgrade
		// the socket and then fail to keep it. A socket that never began
		// to log in was closed for room instead when there was one.
		g.metrics.fullUpgrades.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "gateway full", http.StatusServiceUnavailable)
		return
	}
	ip := clientIP(r, g.trusted)
	if !g.perIP.admit(ip, g.now()) {
		g.metrics.refusedUpgrades.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	netConn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		// UpgradeHTTP answered the client, on a socket it took over from
		// net/http: nobody else closes it.
		g.perIP.release(ip)
		if netConn != nil {
			_ = netConn.Close()
		}
		return
	}
	netConn = upgraded(netConn)
	var buffered []byte
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ = rw.Reader.Peek(n)
		buffered = append([]byte(nil), buffered...)
	}
	if _, err := g.eng.adopt(netConn, ip, r.Header.Get("Origin"), buffered); err != nil {
		g.log.Warn("adopt connection", "err", err)
	}
}

// announce publishes this gateway's heartbeat; routers drop the members
// of gateways that stop announcing, or that announce they are stopping.
func (g *Gateway) announce(stopping bool) {
	b, _ := proto.Marshal(&liveimpb.GatewayHeartbeat{GatewayId: g.cfg.ID, Stopping: stopping})
	if err := g.nc.Publish(subject.GatewayHeartbeat, b); err != nil {
		g.log.Warn("heartbeat", "err", err)
	}
}

// onSlowSubscription closes, with a reconnect hint, the sockets that may
// have missed a message: the local members of a room whose messages were
// dropped, or the sessions of a user whose notice was (a kick or takeover
// notice must never be lost silently). They reconnect and resume.
func (g *Gateway) onSlowSubscription(subj string) {
	var conns []*conn
	if appID, groupID, ok := subject.ParseGroup(subj); ok {
		g.log.Warn("room messages dropped; members reconnect", "group_id", groupID)
		conns = g.rooms.members(roomKey(appID, groupID), nil)
	} else if appID, userID, ok := subject.ParseUser(subj); ok {
		g.log.Warn("user messages dropped; sessions reconnect", "user_id", userID)
		conns = g.sessions.conns(appID+"/"+userID, nil)
	}
	for _, c := range conns {
		c.closeWith(closeTryAgainLater, "overloaded, reconnect", &liveimpb.DisconnectEvent{Reason: "gateway overloaded", Reconnect: true})
	}
}

// runUsers delivers the messages of user subjects until stop closes.
func (g *Gateway) runUsers(stop <-chan struct{}) {
	for {
		select {
		case m := <-g.userCh:
			if appID, userID, ok := subject.ParseUser(m.Subject); ok {
				g.deliverToUser(appID+"/"+userID, m)
			}
		case <-stop:
			return
		}
	}
}

var dispatchSeed = maphash.MakeSeed()

// dispatcherOf returns the index of the dispatcher that takes every
// message of subj, in order.
func (g *Gateway) dispatcherOf(subj string) int {
	return int(maphash.String(dispatchSeed, subj) % uint64(len(g.dispatchers)))
}

func (g *Gateway) dispatcherFor(subj string) chan *nats.Msg {
	return g.dispatchers[g.dispatcherOf(subj)].ch
}

// joinInbox is the prefix of the reply subjects of joins whose room is
// served by dispatcher i. The dispatcher takes those replies off NATS in
// one stream with the room's events, so an event the router sent after
// answering a join (the joiner's own memberchange) finds the member: on
// the shared inbox, its own goroutine could take the reply after the
// dispatcher had served the event to the room without it.
func (g *Gateway) joinInbox(i int) string {
	return g.inbox + "j" + strconv.Itoa(i) + "."
}

// onOnline answers the server API's question which of an app's users
// this gateway holds a session of.
func (g *Gateway) onOnline(m *nats.Msg) {
	var q liveimpb.OnlineQuery
	if m.Reply == "" || proto.Unmarshal(m.Data, &q) != nil {
		return
	}
	rep := &liveimpb.OnlineReply{GatewayId: g.cfg.ID}
	var buf []*conn
	for _, u := range q.UserIds {
		if buf = g.sessions.conns(q.AppId+"/"+u, buf[:0]); len(buf) > 0 {
			rep.UserIds = append(rep.UserIds, u)
		}
	}
	data, err := proto.Marshal(rep)
	if err == nil {
		_ = m.Respond(data)
	}
}

// deliverToUser handles a C2C message, a takeover, kick or disconnect
// notice for a user.
// takenOver closes a session a later login of its user ended.
func (c *conn) takenOver() {
	c.closeWith(closeLoggedInElsewhere, "logged in elsewhere", &liveimpb.DisconnectEvent{Code: liveimpb.DisconnectCode_DISCONNECT_CODE_LOGGED_IN_ELSEWHERE, Reason: "logged in elsewhere"})
}

func (g *Gateway) deliverToUser(userKey string, m *nats.Msg) {
	conns := g.sessions.conns(userKey, nil)
	switch m.Header.Get(subject.HeaderKind) {
	case subject.KindTakeover:
		from, device := m.Header.Get(subject.HeaderSession), m.Header.Get(subject.HeaderDevice)
		// The logins first, then the sessions read again: a login that
		// becomes a session in between is seen as one or the other.
		for _, s := range g.sessions.loginsOf(userKey, nil) {
			s.noticed(from, device)
		}
		for _, c := range g.sessions.conns(userKey, conns[:0]) {
			if s := c.sess.Load(); s != nil && s.takenOverBy(from, device, g.now()) {
				c.takenOver()
			}
		}
	case subject.KindDisconnect:
		for _, c := range conns {
			c.closeWith(closeKicked, "disconnected by the server", &liveimpb.DisconnectEvent{Code: liveimpb.DisconnectCode_DISCONNECT_CODE_KICKED, Reason: "disconnected by the app's server"})
		}
	case subject.KindKick:
		groupID := m.Header.Get(subject.HeaderGroup)
		frame := appendFrame(nil, ws.OpBinary, m.Data)
		for _, c := range conns {
			s := c.sess.Load()
			if s == nil {
				continue
			}
			c.kickJoins(groupID)
			if !c.joined(groupID) {
				continue
			}
			c.leaveRoom(s.appID, groupID)
			c.send(frame, false)
		}
	case subject.KindC2C:
		if g.tracing && telemetry.Traced(m.Header) {
			_, span := g.startDeliver(m)
			defer span.End()
		}
		frame := appendFrame(nil, ws.OpBinary, m.Data)
		delivered := false
		for _, c := range conns {
			if c.send(frame, false) {
				delivered = true
			}
		}
		if delivered && m.Reply != "" {
			_ = m.Respond(nil)
		}
	}
}

func splitKey(key string) (appID, groupID string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}
