package telemetry

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestHeaderCarrierRoundTrip: a span context injected into NATS headers
// comes back out, whatever case the header name was stored in.
func TestHeaderCarrierRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "send")
	defer span.End()

	h := nats.Header{}
	Inject(ctx, h)
	if !Traced(h) {
		t.Fatalf("no trace context injected: %v", h)
	}
	// Another library may have written the name in another case.
	moved := nats.Header{"TraceParent": h["traceparent"]}
	for _, hdr := range []nats.Header{h, moved} {
		got := trace.SpanContextFromContext(Extract(context.Background(), hdr))
		if !got.IsValid() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
			t.Fatalf("extracted %v from %v, want trace %v span %v", got, hdr, span.SpanContext().TraceID(), span.SpanContext().SpanID())
		}
	}
	// Set replaces a differently cased name rather than adding a second.
	HeaderCarrier(moved).Set("traceparent", "x")
	if len(moved) != 1 || moved.Get("traceparent") != "x" {
		t.Fatalf("Set left %v", moved)
	}
	if Traced(nats.Header{}) || Traced(nil) {
		t.Fatal("an empty header is not traced")
	}
}

func TestRecording(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	p, err := NewProvider(context.Background(), GatewayService)
	if err != nil {
		t.Fatal(err)
	}
	if Recording(p.TracerProvider) {
		t.Fatal("without an endpoint the provider must be a no-op")
	}
	if !Recording(sdktrace.NewTracerProvider()) {
		t.Fatal("an SDK provider records")
	}
}
