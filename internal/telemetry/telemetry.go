// Package telemetry sets up OpenTelemetry tracing for liveim's processes
// and carries W3C trace context through NATS message headers.
//
// Tracing is configured by the standard OTEL_* environment variables:
// it is on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and neither OTEL_SDK_DISABLED
// is true nor OTEL_TRACES_EXPORTER is "none"); OTEL_EXPORTER_OTLP_PROTOCOL
// (or ..._TRACES_PROTOCOL) picks http/protobuf (default) or grpc; the
// exporters read their own endpoint, header, timeout and TLS variables,
// and the SDK reads OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* and
// OTEL_RESOURCE_ATTRIBUTES. service.name is always the component's own
// (liveim-gateway or liveim-router), also inside `liveim serve`, so one
// message's trace shows which side each span ran on. Off, the provider is
// a no-op and the hot paths skip their tracing work.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Service names of liveim's components.
const (
	GatewayService = "liveim-gateway"
	RouterService  = "liveim-router"
)

// Enabled reports whether the environment asks for trace export.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Provider is a TracerProvider and the function that flushes and stops
// it.
type Provider struct {
	trace.TracerProvider
	Shutdown func(context.Context) error
}

// NewProvider returns the tracer provider of one component, exporting by
// OTLP when Enabled, a no-op one otherwise.
func NewProvider(ctx context.Context, service string) (Provider, error) {
	if !Enabled() {
		return Provider{TracerProvider: noop.NewTracerProvider(), Shutdown: func(context.Context) error { return nil }}, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return Provider{}, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", proto)
	}
	if err != nil {
		return Provider{}, fmt.Errorf("telemetry: otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return Provider{}, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Provider{TracerProvider: tp, Shutdown: tp.Shutdown}, nil
}

// Recording reports whether tp records spans: false for a no-op
// provider, so callers can skip building span attributes and headers.
func Recording(tp trace.TracerProvider) bool {
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
