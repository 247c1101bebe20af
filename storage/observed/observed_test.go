package observed_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/liveim/liveim/storage"
	"github.com/liveim/liveim/storage/observed"
	"github.com/liveim/liveim/storage/pebble"
	"github.com/liveim/liveim/storage/storagetest"
)

func newSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_store_seconds", Help: "test"}, observed.Labels)
}

func openPebble(t testing.TB) storage.Store {
	t.Helper()
	s, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance: the wrapper changes nothing a store does.
func TestConformance(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	storagetest.Run(t, func(t testing.TB) storage.Store {
		return observed.Wrap(openPebble(t), newSeconds(), tp.Tracer("t"), true)
	})
}

// TestObserves: every call is timed under its operation and outcome; a
// call with a traced context is a CLIENT span after the database
// conventions, one without is no span at all.
func TestObserves(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	seconds := newSeconds()
	s := observed.Wrap(openPebble(t), seconds, tp.Tracer("t"), true)
	if got := storage.System(s); got != "pebble" {
		t.Fatalf("System = %q", got)
	}

	ctx, parent := tp.Tracer("t").Start(context.Background(), "request")
	if err := s.AppendMessage(ctx, storage.Message{AppID: "app-1", GroupID: "g-1", ID: "m-1", Seq: 1, Type: 10001, Data: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetGroup(ctx, "app-1", "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetGroup of a missing group: %v", err)
	}
	parent.End()
	if _, err := s.GetApp(context.Background(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetApp: %v", err)
	}

	for _, c := range []struct{ op, result string }{{"AppendMessage", "ok"}, {"GetGroup", "not_found"}, {"GetApp", "not_found"}} {
		if got := sampleCount(t, seconds, c.op, c.result); got != 1 {
			t.Errorf("%s %s observed %d times, want 1", c.op, c.result, got)
		}
	}

	var spans []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() != "request" {
			spans = append(spans, sp)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d store spans, want 2 (the untraced call makes none)", len(spans))
	}
	append_ := spans[0]
	if append_.Name() != "AppendMessage messages" || append_.SpanKind() != trace.SpanKindClient || append_.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("span %q kind %v parent %v", append_.Name(), append_.SpanKind(), append_.Parent().SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range append_.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, v := range map[string]string{"db.system.name": "pebble", "db.operation.name": "AppendMessage", "db.collection.name": "messages",
		"liveim.app_id": "app-1", "liveim.group_id": "g-1"} {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if spans[1].Name() != "GetGroup groups" || spans[1].Status().Code != 0 {
		t.Errorf("a not-found lookup: span %q status %v; a miss is no error", spans[1].Name(), spans[1].Status())
	}
}

// sampleCount returns how many calls of op with result seconds observed.
func sampleCount(t *testing.T, seconds *prometheus.HistogramVec, op, result string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := seconds.WithLabelValues(op, result).(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
