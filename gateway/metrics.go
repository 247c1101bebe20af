package gateway

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveim/liveim/proto/liveimpb"
)

// Metrics are a gateway's Prometheus metrics. The hot paths only add to
// atomics; the collectors read them when scraped.
type Metrics struct {
	connections atomic.Int64
	connects    atomic.Int64 // connections adopted since start
	deliveredN  atomic.Int64 // NORMAL event frames written, per member
	deliveredH  atomic.Int64 // frames holding a HIGH event, per member
	dropped     atomic.Int64 // NORMAL frames dropped for a full socket queue
	slowClosed  atomic.Int64 // sockets closed as slow consumers
	natsErrors  atomic.Int64
	// refusedUpgrades counts WebSocket upgrades refused for an address
	// over its connection cap or upgrade rate (HTTP 429).
	refusedUpgrades atomic.Int64
	// fullUpgrades counts upgrades refused because the gateway held
	// Config.MaxConns connections.
	fullUpgrades atomic.Int64
	// pendingByAddress and pendingOldest count sockets not yet upgraded
	// that the gateway closed: a new one over Config.MaxPendingPerIP, and
	// the oldest when Config.MaxPending (or the file budget) was reached.
	pendingByAddress atomic.Int64
	pendingOldest    atomic.Int64
	messagesIn       *prometheus.CounterVec
	requestTimes     *prometheus.HistogramVec
	disconnects      *prometheus.CounterVec
	loginFailures    *prometheus.CounterVec
	frameWait        prometheus.Observer
	frameWrite       prometheus.Observer
}

// newMetrics registers g's metrics on reg.
func newMetrics(g *Gateway, reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_gateway_messages_in_total",
			Help: "Messages clients sent through this gateway, by level (group NORMAL/HIGH, c2c).",
		}, []string{"level"}),
		requestTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveim_gateway_request_seconds",
			Help:    "Time from a client request to its router reply, by operation and outcome (ok or error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_gateway_disconnects_total",
			Help: "WebSocket connections that ended, by reason (docs/architecture.md lists them).",
		}, []string{"reason"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_gateway_login_failures_total",
			Help: "Logins the gateway refused, by error code (401 bad or expired token, 503 no router, ...).",
		}, []string{"code"}),
	}
	frames := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "liveim_gateway_room_frame_seconds",
		Help:    "A room frame's time in the gateway, by stage: wait (its oldest event came off NATS until its broadcast began: backlog and merge window) and write (the broadcast loop, until the last member's socket write was handed to the kernel or queued).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5},
	}, []string{"stage"})
	m.frameWait, m.frameWrite = frames.WithLabelValues("wait"), frames.WithLabelValues("write")
	// Every reason and the usual codes exist from the start, so rates and
	// alerts see zero rather than nothing.
	for _, r := range disconnectReasons {
		m.disconnects.WithLabelValues(r)
	}
	for _, e := range []*liveimpb.Error{liveimpb.ErrInvalidParameter, liveimpb.ErrUnauthorized, liveimpb.ErrForbidden, liveimpb.ErrUnavailable} {
		m.loginFailures.WithLabelValues(strconv.Itoa(int(e.Code)))
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, v *atomic.Int64, labels prometheus.Labels) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	const pendingHelp = "Sockets not yet upgraded that the gateway closed, by reason: address (one more than --max-pending-per-ip from its address) or oldest (closed to make room at --max-pending)."
	const outHelp = "Event frames written or queued to client sockets (one per member), by level (high: the frame holds a HIGH event); a merged frame counts once."
	reg.MustRegister(
		gauge("liveim_gateway_connections", "Open WebSocket connections.", func() float64 { return float64(m.connections.Load()) }),
		counter("liveim_gateway_connects_total", "WebSocket connections accepted (upgraded and handed to the gateway's I/O, either path).", &m.connects, nil),
		gauge("liveim_gateway_rooms", "Groups with local members (one NATS subscription each).", func() float64 { return float64(g.rooms.count()) }),
		counter("liveim_gateway_frames_out_total", outHelp, &m.deliveredN, prometheus.Labels{"level": "normal"}),
		counter("liveim_gateway_frames_out_total", outHelp, &m.deliveredH, prometheus.Labels{"level": "high"}),
		counter("liveim_gateway_dropped_frames_total", "NORMAL frames dropped because a socket's queue was full.", &m.dropped, nil),
		counter("liveim_gateway_slow_consumers_closed_total", "Sockets closed as slow consumers (told to reconnect).", &m.slowClosed, nil),
		counter("liveim_gateway_nats_errors_total", "NATS publish, subscribe and slow-subscription errors.", &m.natsErrors, nil),
		counter("liveim_gateway_upgrades_refused_total", "WebSocket upgrades refused with 429: the address was over its connection cap or upgrade rate.", &m.refusedUpgrades, nil),
		counter("liveim_gateway_upgrades_full_total", "WebSocket upgrades refused with 503: the gateway held --max-conns connections.", &m.fullUpgrades, nil),
		gauge("liveim_gateway_pending_sockets", "Client sockets accepted and not (yet) upgraded to WebSockets.", func() float64 { return float64(g.pending.count()) }),
		counter("liveim_gateway_pending_closed_total", pendingHelp, &m.pendingByAddress, prometheus.Labels{"reason": "address"}),
		counter("liveim_gateway_pending_closed_total", pendingHelp, &m.pendingOldest, prometheus.Labels{"reason": "oldest"}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "liveim_gateway_nats_reconnects_total",
			Help: "Times the gateway's NATS connection reconnected (or, after a failed first connect, connected).",
		}, func() float64 { return float64(g.nc.Stats().Reconnects) }),
		m.messagesIn, m.requestTimes, m.disconnects, m.loginFailures, frames,
	)
	return m
}

// opened counts a connection handed to the I/O engine (newConn), on
// either path; closed counts its end.
func (m *Metrics) opened() {
	m.connections.Add(1)
	m.connects.Add(1)
}

// closed counts a connection that ended, for reason (disconnectReason).
func (m *Metrics) closed(reason string) {
	m.connections.Add(-1)
	m.disconnects.WithLabelValues(reason).Inc()
}

// loginFailed counts a refused login by its error code.
func (m *Metrics) loginFailed(err error) {
	m.loginFailures.WithLabelValues(strconv.Itoa(int(liveimpb.AsError(err).Code))).Inc()
}

// delivered counts one frame written to n member sockets.
func (m *Metrics) delivered(n int, normal bool) {
	if normal {
		m.deliveredN.Add(int64(n))
	} else {
		m.deliveredH.Add(int64(n))
	}
}

// frameTimes observes a room frame's wait and broadcast loop.
func (m *Metrics) frameTimes(wait, write time.Duration) {
	m.frameWait.Observe(wait.Seconds())
	m.frameWrite.Observe(write.Seconds())
}

// messageIn counts a message a client sent.
func (m *Metrics) messageIn(f *liveimpb.ClientFrame) {
	switch b := f.Body.(type) {
	case *liveimpb.ClientFrame_SendGroupMessage:
		if b.SendGroupMessage.GetLevel() == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
			m.messagesIn.WithLabelValues("high").Inc()
		} else {
			m.messagesIn.WithLabelValues("normal").Inc()
		}
	case *liveimpb.ClientFrame_SendC2CMessage:
		m.messagesIn.WithLabelValues("c2c").Inc()
	}
}
