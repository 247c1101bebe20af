package gateway

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveim/liveim/proto/liveimpb"
)

// Metrics are a gateway's Prometheus metrics. The hot paths only add to
// atomics; the collectors read them when scraped.
type Metrics struct {
	connections atomic.Int64
	deliveredN  atomic.Int64 // NORMAL event frames written, per member
	deliveredH  atomic.Int64 // frames holding a HIGH event, per member
	dropped     atomic.Int64 // NORMAL frames dropped for a full socket queue
	slowClosed  atomic.Int64 // sockets closed as slow consumers
	natsErrors  atomic.Int64
	// refusedUpgrades counts WebSocket upgrades refused for an address
	// over its connection cap or upgrade rate (HTTP 429).
	refusedUpgrades atomic.Int64
	messagesIn      *prometheus.CounterVec
	requestTimes    *prometheus.HistogramVec
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
			Help:    "Time from a client request to its router reply, by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"result"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, v *atomic.Int64, labels prometheus.Labels) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	const outHelp = "Event frames written or queued to client sockets (one per member), by level (high: the frame holds a HIGH event); a merged frame counts once."
	reg.MustRegister(
		gauge("liveim_gateway_connections", "Open WebSocket connections.", func() float64 { return float64(m.connections.Load()) }),
		gauge("liveim_gateway_rooms", "Groups with local members (one NATS subscription each).", func() float64 { return float64(g.rooms.count()) }),
		counter("liveim_gateway_frames_out_total", outHelp, &m.deliveredN, prometheus.Labels{"level": "normal"}),
		counter("liveim_gateway_frames_out_total", outHelp, &m.deliveredH, prometheus.Labels{"level": "high"}),
		counter("liveim_gateway_dropped_frames_total", "NORMAL frames dropped because a socket's queue was full.", &m.dropped, nil),
		counter("liveim_gateway_slow_consumers_closed_total", "Sockets closed as slow consumers (told to reconnect).", &m.slowClosed, nil),
		counter("liveim_gateway_nats_errors_total", "NATS publish, subscribe and slow-subscription errors.", &m.natsErrors, nil),
		counter("liveim_gateway_upgrades_refused_total", "WebSocket upgrades refused with 429: the address was over its connection cap or upgrade rate.", &m.refusedUpgrades, nil),
		m.messagesIn, m.requestTimes,
	)
	return m
}

// delivered counts one frame written to n member sockets.
func (m *Metrics) delivered(n int, normal bool) {
	if normal {
		m.deliveredN.Add(int64(n))
	} else {
		m.deliveredH.Add(int64(n))
	}
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
