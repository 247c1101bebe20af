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
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	p, err := NewProvider(context.Background(), GatewayService, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if Recording(p.TracerProvider) {
		t.Fatal("without an endpoint the provider must be a no-op")
	}
	// The commands hand the Provider itself to the gateway and the router:
	// it must not pass for a recording one.
	if Recording(p) || Recording(&p) {
		t.Fatal("a Provider wrapping a no-op provider records")
	}
	if !Recording(sdktrace.NewTracerProvider()) {
		t.Fatal("an SDK provider records")
	}
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		endpoint, exporter, disabled string
		want                         bool
	}{
		{"nothing set", "", "", "", false},
		{"an OTLP endpoint", "http://127.0.0.1:4318", "", "", true},
		{"an exporter named", "", "console", "", true},
		{"exporter none", "http://127.0.0.1:4318", "none", "", false},
		{"SDK disabled", "http://127.0.0.1:4318", "", "true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			t.Setenv("OTEL_TRACES_EXPORTER", tc.exporter)
			t.Setenv("OTEL_SDK_DISABLED", tc.disabled)
			if got := Enabled(); got != tc.want {
				t.Fatalf("Enabled() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestResource: service.name is the component's unless OTEL_SERVICE_NAME
// says otherwise; service.version and liveim.component are set;
// OTEL_RESOURCE_ATTRIBUTES wins over everything.
func TestResource(t *testing.T) {
	for _, tc := range []struct {
		name, serviceEnv, attrsEnv, version string
		want                                map[string]string
	}{
		{"defaults", "", "", "v1.2.3", map[string]string{"service.name": RouterService, "service.version": "v1.2.3", "liveim.component": "router"}},
		{"OTEL_SERVICE_NAME", "chat-backend", "", "v1.2.3", map[string]string{"service.name": "chat-backend", "service.version": "v1.2.3", "liveim.component": "router"}},
		{"OTEL_RESOURCE_ATTRIBUTES", "", "service.version=patched,deployment.environment.name=prod", "v1.2.3",
			map[string]string{"service.name": RouterService, "service.version": "patched", "deployment.environment.name": "prod"}},
		{"no version", "", "", "", map[string]string{"service.name": RouterService, "service.version": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tc.serviceEnv)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.attrsEnv)
			res, err := Resource(context.Background(), RouterService, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range res.Attributes() {
				got[string(kv.Key)] = kv.Value.Emit()
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (resource %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// TestNewProviderExports: with OTEL_TRACES_EXPORTER=console the provider
// records, and its resource names the service.
func TestNewProviderExports(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_SERVICE_NAME", "")
	p, err := NewProvider(context.Background(), GatewayService, "v0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if !Recording(p) {
		t.Fatal("a Provider wrapping an exporting provider records")
	}
	if !Recording(p.TracerProvider) {
		t.Fatal("OTEL_TRACES_EXPORTER=console: the provider does not record")
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "bogus")
	if _, err := NewProvider(context.Background(), GatewayService, ""); err == nil {
		t.Fatal("an unknown OTEL_TRACES_EXPORTER was accepted")
	}
}
