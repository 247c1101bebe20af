// Package observed wraps a storage.Store so that every call is timed into
// a Prometheus histogram and, when the caller's context is traced, is a
// CLIENT span after OpenTelemetry's database conventions: named
// "{db.operation.name} {db.collection.name}" (e.g. "AppendMessage
// messages"), with db.system.name, db.operation.name, db.collection.name
// and the app and group IDs it concerns.
//
//	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "..._store_seconds"}, observed.Labels)
//	store = observed.Wrap(store, seconds, tracer, tracing)
//
// The wrapper holds no state of its own: it is as safe for concurrent use
// as the store it wraps.
package observed

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/storage"
)

// Labels are the labels of the histogram Wrap observes into: the Store
// method (op) and its outcome (result: ok, not_found, conflict or error).
var Labels = []string{"op", "result"}

// Store is a storage.Store that observes every call of the store it wraps.
type Store struct {
	s       storage.Store
	seconds *prometheus.HistogramVec
	tracer  trace.Tracer
	tracing bool
	system  attribute.KeyValue
}

var _ storage.Store = (*Store)(nil)

// Wrap returns s observed: each call's duration goes to seconds (labels
// Labels), and, when tracing and the call's context holds a span, each
// call is a child span made by tracer.
func Wrap(s storage.Store, seconds *prometheus.HistogramVec, tracer trace.Tracer, tracing bool) *Store {
	return &Store{s: s, seconds: seconds, tracer: tracer, tracing: tracing && tracer != nil,
		system: semconv.DBSystemNameKey.String(storage.System(s))}
}

// Collections of the database conventions' db.collection.name: what kind
// of record an operation reads or writes.
const (
	apps      = "apps"
	groups    = "groups"
	messages  = "messages"
	deletions = "message_deletions"
	members   = "members"
)

// observe starts timing (and tracing) op on collection; call the function
// it returns with the call's error.
func (o *Store) observe(ctx context.Context, op, collection, appID, groupID string) (context.Context, func(error)) {
	start := time.Now()
	var span trace.Span
	if o.tracing && trace.SpanContextFromContext(ctx).IsValid() {
		attrs := []attribute.KeyValue{o.system, semconv.DBOperationName(op), semconv.DBCollectionName(collection)}
		if appID != "" {
			attrs = append(attrs, telemetry.AppIDKey.String(appID))
		}
		if groupID != "" {
			attrs = append(attrs, telemetry.GroupIDKey.String(groupID))
		}
		ctx, span = o.tracer.Start(ctx, op+" "+collection, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	return ctx, func(err error) {
		result := Result(err)
		o.seconds.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
		if span == nil {
			return
		}
		if result == "error" {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else if err != nil {
			span.SetAttributes(semconv.DBResponseStatusCode(result))
		}
		span.End()
	}
}

// Result names the outcome of a store call: ok, not_found, conflict (the
// expected misses of a lookup or a compare-and-set), or error.
func Result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, storage.ErrNotFound):
		return "not_found"
	case errors.Is(err, storage.ErrConflict):
		return "conflict"
	}
	return "error"
}
