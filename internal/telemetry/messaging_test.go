package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/liveim/liveim/internal/subject"
)

// TestStartMessaging: spans are named "{operation} {template}", with the
// kind of the operation and the messaging attributes; the concrete
// subject is an attribute, never part of the name.
func TestStartMessaging(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("t")
	for _, tc := range []struct {
		op       Operation
		subj     string
		wantName string
		wantKind trace.SpanKind
		wantType string
	}{
		{Publish, subject.RPC("app-1", "room-1"), "publish liveim.rpc.{app}.{group}", trace.SpanKindProducer, "send"},
		{Process, subject.GroupHigh("app-1", "room-1", 3), "process liveim.grp.{app}.{group}.h{shard}", trace.SpanKindConsumer, "process"},
		{Request, subject.User("app-1", "u-1"), "request liveim.usr.{app}.{user}", trace.SpanKindProducer, "send"},
		{Publish, subject.Auth, "publish liveim.sys.auth", trace.SpanKindProducer, "send"},
	} {
		_, span := StartMessaging(context.Background(), tr, tc.op, tc.subj, AppIDKey.String("app-1"))
		span.End()
		got := rec.Ended()[len(rec.Ended())-1]
		if got.Name() != tc.wantName || got.SpanKind() != tc.wantKind {
			t.Errorf("%s: span %q kind %v, want %q %v", tc.subj, got.Name(), got.SpanKind(), tc.wantName, tc.wantKind)
		}
		attrs := map[attribute.Key]string{}
		for _, kv := range got.Attributes() {
			attrs[kv.Key] = kv.Value.Emit()
		}
		want := map[attribute.Key]string{
			"messaging.system": "nats", "messaging.operation.name": tc.op.Name, "messaging.operation.type": tc.wantType,
			"messaging.destination.name": tc.subj, AppIDKey: "app-1",
		}
		if tmpl := subject.Template(tc.subj); tmpl != "" {
			want["messaging.destination.template"] = tmpl
		}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.subj, k, attrs[k], v)
			}
		}
	}
}

// TestLogHandler: a line logged with a traced context carries trace_id and
// span_id; one without does not.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()

	log.InfoContext(ctx, "traced", LogAppID, "app-1")
	log.Info("untraced")
	dec := json.NewDecoder(&buf)
	var traced, untraced map[string]any
	if err := dec.Decode(&traced); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&untraced); err != nil {
		t.Fatal(err)
	}
	if traced[LogTraceID] != span.SpanContext().TraceID().String() || traced[LogSpanID] != span.SpanContext().SpanID().String() ||
		traced["component"] != "test" || traced[LogAppID] != "app-1" {
		t.Fatalf("traced line %v", traced)
	}
	if _, ok := untraced[LogTraceID]; ok {
		t.Fatalf("untraced line %v has a trace_id", untraced)
	}
}
