package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/liveim/liveim/internal/subject"
)

// Attribute keys of liveim's own span attributes. Concrete IDs go here,
// never into span names.
const (
	AppIDKey     = attribute.Key("liveim.app_id")
	GroupIDKey   = attribute.Key("liveim.group_id")
	UserIDKey    = attribute.Key("liveim.user_id")
	GatewayIDKey = attribute.Key("liveim.gateway_id")
	RouterIDKey  = attribute.Key("liveim.router_id")
	// OpKey is the client operation a request carries (sendGroupMessage,
	// joinGroup, ...; liveimpb.OpName).
	OpKey = attribute.Key("liveim.op")
	// CodeKey is a reply's error code, 0 for success.
	CodeKey = attribute.Key("liveim.code")
)

// MessagingSystem is messaging.system on every messaging span: liveim's
// messages travel on NATS (the conventions have no enum value for it).
var MessagingSystem = semconv.MessagingSystemKey.String("nats")

// Operation is a messaging operation in the sense of OpenTelemetry's
// messaging conventions: its name (messaging.operation.name, the first
// word of the span name), its type (messaging.operation.type) and the span
// kind that goes with it.
type Operation struct {
	Name string
	Type attribute.KeyValue
	Kind trace.SpanKind
}

// The operations liveim traces.
var (
	// Publish sends a message: a core NATS publish, or a JetStream publish
	// that waits for the stream's acknowledgement.
	Publish = Operation{"publish", semconv.MessagingOperationTypeSend, trace.SpanKindProducer}
	// Request sends a message and waits for one reply (core NATS
	// request/reply).
	Request = Operation{"request", semconv.MessagingOperationTypeSend, trace.SpanKindProducer}
	// Process handles a message that arrived: a router serving a
	// request, a gateway delivering an event to its sockets.
	Process = Operation{"process", semconv.MessagingOperationTypeProcess, trace.SpanKindConsumer}
)

// SpanName is the name of op's span on subj: "{operation} {destination}",
// where the destination is the subject's template (subject.Template), so
// that names stay few whatever the IDs; a subject without a template is
// its own destination.
func SpanName(op Operation, subj string) string {
	dest := subject.Template(subj)
	if dest == "" {
		dest = subj
	}
	return op.Name + " " + dest
}

// StartMessaging starts op's span on subj as a child of ctx's span (or of
// the trace context extracted into ctx), with the messaging attributes:
// messaging.system, messaging.operation.name and .type,
// messaging.destination.name (the concrete subject) and
// messaging.destination.template; then attrs.
func StartMessaging(ctx context.Context, tr trace.Tracer, op Operation, subj string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	all := make([]attribute.KeyValue, 0, 5+len(attrs))
	all = append(all, MessagingSystem, semconv.MessagingOperationName(op.Name), op.Type, semconv.MessagingDestinationName(subj))
	if tmpl := subject.Template(subj); tmpl != "" {
		all = append(all, semconv.MessagingDestinationTemplate(tmpl))
	}
	all = append(all, attrs...)
	return tr.Start(ctx, SpanName(op, subj), trace.WithSpanKind(op.Kind), trace.WithAttributes(all...))
}
