// Package telemetry sets up OpenTelemetry tracing for liveim's processes,
// names their spans after OpenTelemetry's messaging conventions, carries
// W3C trace context through NATS message headers, and puts trace IDs into
// log lines.
//
// Tracing is configured by the standard OTEL_* environment variables. It
// is on when OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// or OTEL_TRACES_EXPORTER is set (and neither OTEL_SDK_DISABLED is true nor
// OTEL_TRACES_EXPORTER "none"). The exporter is chosen by
// go.opentelemetry.io/contrib/exporters/autoexport: OTEL_TRACES_EXPORTER
// otlp (default) or console; OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL
// http/protobuf (default) or grpc; the exporters read their own endpoint,
// header, timeout and TLS variables, and the SDK reads
// OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*. The resource has service.name
// (the component's, liveim-gateway or liveim-router, also inside `liveim
// serve`, unless OTEL_SERVICE_NAME names another), service.version and
// liveim.component, then OTEL_RESOURCE_ATTRIBUTES, which win. Off, the
// provider is a no-op and the hot paths skip their tracing work.
//
//	tp, err := telemetry.NewProvider(ctx, telemetry.GatewayService, version)
//	defer tp.Shutdown(ctx)
//	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, nil)))
//
// Everything here is safe for concurrent use.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Service names of liveim's components: their default service.name.
const (
	GatewayService = "liveim-gateway"
	RouterService  = "liveim-router"
)

// ComponentKey is the resource attribute naming the component a provider
// traces (gateway or router): it tells them apart when OTEL_SERVICE_NAME
// gives both one service name.
const ComponentKey = attribute.Key("liveim.component")

// Enabled reports whether the environment asks for trace export.
func Enabled() bool {
	exporter := os.Getenv("OTEL_TRACES_EXPORTER")
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || exporter == "none" {
		return false
	}
	return exporter != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Provider is a TracerProvider and the function that flushes and stops
// it.
type Provider struct {
	trace.TracerProvider
	Shutdown func(context.Context) error
}

// NewProvider returns the tracer provider of one component, service (its
// default service.name) at version (service.version; empty leaves it
// out), exporting when Enabled, a no-op one otherwise.
func NewProvider(ctx context.Context, service, version string) (Provider, error) {
	off := Provider{TracerProvider: noop.NewTracerProvider(), Shutdown: func(context.Context) error { return nil }}
	if !Enabled() {
		return off, nil
	}
	res, err := Resource(ctx, service, version)
	if err != nil {
		return Provider{}, err
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return Provider{}, fmt.Errorf("telemetry: trace exporter: %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return off, nil
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Provider{TracerProvider: tp, Shutdown: tp.Shutdown}, nil
}

// Resource describes one component: service.name service (unless
// OTEL_SERVICE_NAME is set), service.version version (when not empty),
// liveim.component, the SDK's attributes, then OTEL_RESOURCE_ATTRIBUTES,
// which take precedence over all of these.
func Resource(ctx context.Context, service, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(service), ComponentKey.String(strings.TrimPrefix(service, "liveim-"))}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	// Later detectors win: the environment comes last.
	res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL), resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// Recording reports whether tp records spans: false for a no-op
// provider, so callers can skip building span attributes and headers. A
// Provider is judged by the provider it wraps: the commands hand theirs
// to the gateway and the router as it is.
func Recording(tp trace.TracerProvider) bool {
	switch p := tp.(type) {
	case Provider:
		tp = p.TracerProvider
	case *Provider:
		if p == nil {
			return false
		}
		tp = p.TracerProvider
	}
	_, isNoop := tp.(noop.TracerProvider)
	return tp != nil && !isNoop
}

var propagator = propagation.TraceContext{}

// Inject writes ctx's trace context into h (traceparent, tracestate).
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the trace context found in h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, HeaderCarrier(h))
}

// HeaderCarrier lets the W3C propagator read and write NATS headers. NATS
// keeps header names as written, so Get matches names case-insensitively:
// a "Traceparent" set by another library is found as "traceparent".
type HeaderCarrier nats.Header

// Get returns the first value of key, matched case-insensitively.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces key's values, whatever the case they were stored under.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Traced reports whether h carries a trace context.
func Traced(h nats.Header) bool {
	return len(h) > 0 && HeaderCarrier(h).Get("traceparent") != ""
}
