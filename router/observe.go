package router

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage/observed"
)

// Option adds an injected dependency to New.
type Option func(*options)

type options struct {
	reg prometheus.Registerer
	tp  trace.TracerProvider
}

// WithRegisterer registers the router's Prometheus metrics on reg.
// Default: a registry of its own, which nothing serves.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// WithTracerProvider traces requests with tp: a span per request,
// continuing the gateway's trace, with children for the storage write and
// the publish of the event. Default: no tracing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// metrics are a router's Prometheus metrics.
type metrics struct {
	requests     *prometheus.CounterVec
	requestTimes *prometheus.HistogramVec
	messages     *prometheus.CounterVec
	logins       *prometheus.CounterVec
	unbound      prometheus.Counter
	partitions   prometheus.Gauge
	pinsLost     prometheus.Counter
	storeSeconds *prometheus.HistogramVec
	sendsStoring prometheus.Gauge
	highWaiting  prometheus.Gauge
	highRetries  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, nc *nats.Conn, stats func() Stats) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_router_requests_total",
			Help: "Requests the router answered, by operation and reply code (0 is success).",
		}, []string{"op", "code"}),
		requestTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liveim_router_request_seconds",
			Help:    "Time a router spent on a request, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_router_messages_total",
			Help: "Messages the router published, by level (normal, high, c2c).",
		}, []string{"level"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liveim_router_logins_total",
			Help: "Login and token refresh credentials the router checked, by result (ok or the error code).",
		}, []string{"result"}),
		unbound: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveim_router_logins_unbound_total",
			Help: "Logins let through without binding their nonce: the nonce stream full (--nonce-max-bindings) or unreachable.",
		}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveim_router_partitions_owned",
			Help: "Group partitions this router serves.",
		}),
		pinsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveim_router_partition_pins_lost_total",
			Help: "Partitions whose pin NATS gave to another router while this one consumed them (it stopped pulling for the pin TTL).",
		}),
		sendsStoring: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveim_router_sends_storing",
			Help: "Sequenced sends waiting for the store to write their message (at most 128 per worker).",
		}),
		highWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liveim_router_high_waiting",
			Help: "HIGH messages published whose place in the HIGH stream is not settled yet: their answer awaited, or being put right after a refusal.",
		}),
		highRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liveim_router_high_retries_total",
			Help: "Offers of a HIGH message to the HIGH stream after it refused or did not answer one (a JetStream leader election, the stream gone).",
		}),
	}
	m.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "liveim_router_store_seconds",
		Help:    "Time the router's calls of its store took, by operation (the storage.Store method) and result (ok, not_found, conflict, error).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, observed.Labels)
	reconnects := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "liveim_router_nats_reconnects_total",
		Help: "Times the router's NATS connection reconnected (or, after a failed first connect, connected).",
	}, func() float64 { return float64(nc.Stats().Reconnects) })
	cached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "liveim_router_groups_cached",
		Help: "Groups in the router's memory (as of its workers' last ticks): those with members, and others until --group-idle after their last request.",
	}, func() float64 { return float64(stats().GroupsCached) })
	tail := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "liveim_router_resume_memory_bytes",
		Help: "Memory the router's groups' recent HIGH messages take, kept for resumes (as of its workers' last ticks; at most --resume-memory).",
	}, func() float64 { return float64(stats().ResumeMemory) })
	resumes := func(from string, n func(Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "liveim_router_resumes_total",
			Help:        "Resumes that asked for HIGH messages, by where they were read: memory (the group's recent messages) or stream (one HIGH stream get per message).",
			ConstLabels: prometheus.Labels{"from": from},
		}, func() float64 { return float64(n(stats())) })
	}
	reg.MustRegister(cached, tail, m.requests, m.requestTimes, m.messages, m.logins, m.unbound, m.partitions, m.pinsLost, m.storeSeconds, m.sendsStoring, m.highWaiting, m.highRetries, reconnects,
		resumes("memory", func(s Stats) int64 { return s.ResumesFromMemory }), resumes("stream", func(s Stats) int64 { return s.ResumesFromStream }))
	return m
}

// requestOp names a router request for metrics and spans.
func requestOp(req *liveimpb.RouterRequest) string {
	switch {
	case req.PresenceLeave != nil:
		return "presenceLeave"
	case req.Kick != nil:
		return "kick"
	case req.Touch != nil:
		return "touch"
	case req.Frame != nil:
		return liveimpb.OpName(req.Frame)
	}
	return "empty"
}

// startRequest starts the span of one request, continuing the trace in
// the request's headers: a CONSUMER span "process liveim.rpc.{app}.{group}"
// (or "process liveim.any.{app}" for a request that names no group), the
// operation in liveim.op.
func (r *Router) startRequest(ctx context.Context, j job, op string) (context.Context, trace.Span) {
	if !r.tracing || !telemetry.Traced(j.header) {
		return ctx, nil
	}
	ctx = telemetry.Extract(ctx, j.header)
	subj, consumer := subject.Any(j.appID), subject.QueueGroup
	attrs := []attribute.KeyValue{telemetry.OpKey.String(op), telemetry.AppIDKey.String(j.appID),
		telemetry.RouterIDKey.String(r.cfg.ID), semconv.MessagingMessageBodySize(len(j.data))}
	if j.groupID != "" {
		subj, consumer = subject.RPC(j.appID, j.groupID), consumerName(j.part)
		attrs = append(attrs, telemetry.GroupIDKey.String(j.groupID), semconv.MessagingDestinationPartitionID(strconv.Itoa(j.part)))
	}
	attrs = append(attrs, semconv.MessagingConsumerGroupName(consumer))
	return telemetry.StartMessaging(ctx, r.tracer, telemetry.Process, subj, attrs...)
}

// endRequest records a request's outcome.
func (r *Router) endRequest(span trace.Span, op string, start time.Time, rep *liveimpb.Reply) {
	code := int32(0)
	if rep != nil {
		code = rep.Code
	}
	r.metrics.requests.WithLabelValues(op, strconv.Itoa(int(code))).Inc()
	r.metrics.requestTimes.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if span == nil {
		return
	}
	span.SetAttributes(telemetry.CodeKey.Int(int(code)))
	if code != 0 {
		span.SetStatus(codes.Error, rep.Msg)
	}
	span.End()
}

// startSend starts the PRODUCER span of a message the router sends on
// subj ("publish ..." or "request ..." with its template) when ctx is
// traced, and puts its context into the message's headers h, so the
// gateways' delivery spans join the trace. It returns nil otherwise.
func (r *Router) startSend(ctx context.Context, op telemetry.Operation, subj string, h nats.Header, attrs ...attribute.KeyValue) trace.Span {
	if !r.tracing || !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	ctx, span := telemetry.StartMessaging(ctx, r.tracer, op, subj, append(attrs, telemetry.RouterIDKey.String(r.cfg.ID))...)
	telemetry.Inject(ctx, h)
	return span
}

// endSpan ends a span that may be nil, recording err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func newTracer(tp trace.TracerProvider) (trace.Tracer, bool) {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(""), false
	}
	return tp.Tracer("github.com/liveim/liveim/router"), telemetry.Recording(tp)
}
