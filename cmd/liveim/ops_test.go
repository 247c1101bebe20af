package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// jaegerConfig is an all-in-one Jaeger v2: OTLP in, traces in memory,
// the query API out, every port chosen by the test.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
      grpc:
        endpoint: %s
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// startJaeger runs the Jaeger binary named by LIVEIM_JAEGER (scripts/test
// installs the pinned one) and returns its query URL and OTLP/HTTP
// endpoint.
func startJaeger(t *testing.T) (queryURL, otlpEndpoint string) {
	t.Helper()
	bin := os.Getenv("LIVEIM_JAEGER")
	if bin == "" {
		t.Skip("LIVEIM_JAEGER is unset: scripts/test installs Jaeger and sets it")
	}
	query, otlp := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, query, freeAddr(t), otlp, freeAddr(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitHTTP(t, "http://"+query+"/api/services", 60*time.Second)
	return "http://" + query, "http://" + otlp
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jaegerTag is a key and value of a span's or a process's tags.
type jaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// jaegerSpan is one span of a Jaeger trace.
type jaegerSpan struct {
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	ProcessID     string      `json:"processID"`
	Tags          []jaegerTag `json:"tags"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
}

// tag returns the value of the span's tag key, as text.
func (s jaegerSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// parent returns the span's parent's ID.
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// jaegerTrace is the part of Jaeger's /api/traces answer the test reads.
type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string      `json:"serviceName"`
		Tags        []jaegerTag `json:"tags"`
	} `json:"processes"`
}

// wantSpan is a span TestTraceInJaeger looks for: its service, name and
// kind, tags it must carry, and the wantSpan its parent is (-1: none).
type wantSpan struct {
	service, name, kind string
	tags                map[string]string
	parent              int
}

// match returns the index of the span of tr that w describes, or -1, and
// what differs from the closest candidate.
func (w wantSpan) match(tr jaegerTrace) (int, string) {
	why := fmt.Sprintf("no span %q of %s", w.name, w.service)
	for i, sp := range tr.Spans {
		if sp.OperationName != w.name || tr.Processes[sp.ProcessID].ServiceName != w.service {
			continue
		}
		why = ""
		if got := sp.tag("span.kind"); got != w.kind {
			why = fmt.Sprintf("%s: kind %q, want %q", w.name, got, w.kind)
		}
		for k, v := range w.tags {
			if got := sp.tag(k); got != v {
				why = fmt.Sprintf("%s: %s = %q, want %q", w.name, k, got, v)
			}
		}
		if why == "" {
			return i, ""
		}
	}
	return -1, why
}

// TestTraceInJaeger: one group message sent through gateway A to a member
// on gateway B is one trace in a real Jaeger, after OpenTelemetry's
// messaging conventions: A's SERVER span of the request and its PRODUCER
// span publishing it to the routers; the router's CONSUMER span
// processing it, the store's CLIENT span and the PRODUCER span publishing
// the event; B's CONSUMER span delivering it. Each is the child of the one
// before. Span names hold subject templates, never IDs; the IDs are
// attributes. Gateway B runs with OTEL_SERVICE_NAME, which names its
// service; every process reports service.version.
func TestTraceInJaeger(t *testing.T) {
	queryURL, otlp := startJaeger(t)
	env := append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp, "OTEL_BSP_SCHEDULE_DELAY=100")
	dir := t.TempDir()
	addrA, addrB, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	serve := exec.Command(liveimBin, "serve", "--data", dir, "--addr", addrA, "--nats-listen", natsAddr, "--http-addr", freeAddr(t),
		"--id", "gw-a", "--log-level", "warn")
	gw := exec.Command(liveimBin, "gateway", "--nats", "nats://"+natsAddr, "--nats-user", subject.GatewayUser,
		"--nats-password-file", filepath.Join(dir, natsserver.GatewayPasswordFile), "--addr", addrB, "--http-addr", freeAddr(t),
		"--id", "gw-b", "--log-level", "warn")
	serve.Env = env
	gw.Env = append(env, "OTEL_SERVICE_NAME=edge-gateway")
	for _, cmd := range []*exec.Cmd{serve, gw} {
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitHTTP(t, "http://"+map[*exec.Cmd]string{serve: addrA, gw: addrB}[cmd]+"/readyz", 30*time.Second)
	}

	app, err := demoapp.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	login := func(addr, user, role string) *client.Client {
		cl, err := client.Dial(ctxT(t), "ws://"+addr+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		cr := auth.Issue(app.AppID, app.AppKey, user, role, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
		if _, err := cl.Login(ctxT(t), client.Login{AppID: app.AppID, UserID: user,
			Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	sender, member := login(addrA, "alice", auth.RoleAdmin), login(addrB, "bob", "")
	if _, err := sender.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "traced", GroupName: "traced"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{sender, member} {
		if _, err := cl.JoinGroup(ctxT(t), "traced"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sender.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "traced", Type: 10001, Data: "follow me"}); err != nil {
		t.Fatal(err)
	}
	for ev := range member.Events() {
		if ev.GetGroupMessage().GetData() == "follow me" {
			break
		}
	}

	ids := map[string]string{"liveim.app_id": app.AppID, "liveim.group_id": "traced"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range ids {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	rpc, events := subject.RPC(app.AppID, "traced"), subject.GroupEvents(app.AppID, "traced")
	want := []wantSpan{
		{"liveim-gateway", "sendGroupMessage", "server",
			with(map[string]string{"rpc.method": "sendGroupMessage", "liveim.user_id": "alice", "liveim.gateway_id": "gw-a", "liveim.code": "0"}), -1},
		{"liveim-gateway", "publish liveim.rpc.{app}.{group}", "producer",
			with(map[string]string{"messaging.system": "nats", "messaging.operation.name": "publish", "messaging.operation.type": "send",
				"messaging.destination.name": rpc, "messaging.destination.template": "liveim.rpc.{app}.{group}", "liveim.gateway_id": "gw-a"}), 0},
		{"liveim-router", "process liveim.rpc.{app}.{group}", "consumer",
			with(map[string]string{"messaging.system": "nats", "messaging.operation.name": "process", "messaging.operation.type": "process",
				"messaging.destination.name": rpc, "liveim.op": "sendGroupMessage", "liveim.code": "0"}), 1},
		{"liveim-router", "AppendMessage messages", "client",
			with(map[string]string{"db.system.name": "pebble", "db.operation.name": "AppendMessage", "db.collection.name": "messages"}), 2},
		{"liveim-router", "publish liveim.grp.{app}.{group}.e", "producer",
			with(map[string]string{"messaging.system": "nats", "messaging.operation.type": "send", "messaging.destination.name": events,
				"messaging.destination.template": "liveim.grp.{app}.{group}.e"}), 2},
		{"edge-gateway", "process liveim.grp.{app}.{group}.e", "consumer",
			with(map[string]string{"messaging.system": "nats", "messaging.operation.type": "process", "messaging.destination.name": events,
				"liveim.gateway_id": "gw-b"}), 4},
	}

	// Find the send among the router's requests by its op, then check its
	// whole trace.
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		var sends []jaegerTrace
		for _, tr := range queryTraces(t, queryURL, "liveim-router", "process liveim.rpc.{app}.{group}") {
			for _, sp := range tr.Spans {
				if sp.tag("liveim.op") == "sendGroupMessage" {
					sends = append(sends, tr)
					break
				}
			}
		}
		if len(sends) == 0 {
			last = "no trace of the router processing sendGroupMessage yet"
			continue
		}
		if len(sends) > 1 {
			t.Fatalf("%d traces for one send", len(sends))
		}
		tr := sends[0]
		found := make([]int, len(want))
		last = ""
		for i, w := range want {
			var why string
			if found[i], why = w.match(tr); found[i] < 0 {
				last = fmt.Sprintf("trace %s (%d spans): %s", tr.TraceID, len(tr.Spans), why)
				break
			}
		}
		if last != "" {
			continue // spans still arriving, or a wrong one: the deadline tells
		}
		for i, w := range want {
			if w.parent < 0 {
				continue
			}
			if got, wantID := tr.Spans[found[i]].parent(), tr.Spans[found[w.parent]].SpanID; got != wantID {
				t.Errorf("%s %q: parent %s, want %q (%s)", w.service, w.name, got, want[w.parent].name, wantID)
			}
		}
		for _, p := range tr.Processes {
			version := ""
			for _, tag := range p.Tags {
				if tag.Key == "service.version" {
					version = fmt.Sprint(tag.Value)
				}
			}
			if version == "" {
				t.Errorf("service %s reports no service.version: %v", p.ServiceName, p.Tags)
			}
		}
		var names []string
		for _, sp := range tr.Spans {
			names = append(names, tr.Processes[sp.ProcessID].ServiceName+": "+sp.OperationName+" ("+sp.tag("span.kind")+")")
			if strings.Contains(sp.OperationName, app.AppID) || strings.Contains(sp.OperationName, "traced") {
				t.Errorf("span name %q holds an ID", sp.OperationName)
			}
		}
		t.Logf("trace %s: %s", tr.TraceID, strings.Join(names, "; "))
		return
	}
	t.Fatal(last)
}

// queryTraces asks Jaeger's query API for the traces holding an
// operation of a service.
func queryTraces(t *testing.T, queryURL, service, operation string) []jaegerTrace {
	t.Helper()
	q := url.Values{"service": {service}, "operation": {operation}, "limit": {"20"}, "lookback": {"1h"}}
	resp, err := http.Get(queryURL + "/api/traces?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Data
}

// ctxT is a context for one step of a test: it ends with the test, or
// after 10 s.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestGatewayGracefulShutdown: on SIGTERM a gateway fails /readyz first,
// keeps its clients for --drain-delay, then sends each a DisconnectEvent
// with a reconnect hint and a close frame, drains NATS and exits 0. Its
// /metrics showed the connection and the message before.
func TestGatewayGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	addrA, addrB, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	opsA, opsB := freeAddr(t), freeAddr(t)
	serve := exec.Command(liveimBin, "serve", "--data", dir, "--addr", addrA, "--nats-listen", natsAddr, "--http-addr", opsA, "--log-level", "warn")
	gw := exec.Command(liveimBin, "gateway", "--nats", "nats://"+natsAddr, "--nats-user", subject.GatewayUser,
		"--nats-password-file", filepath.Join(dir, natsserver.GatewayPasswordFile), "--addr", addrB, "--http-addr", opsB,
		"--drain-delay", "1500ms", "--log-level", "warn")
	exited := make(chan error, 1)
	for _, cmd := range []*exec.Cmd{serve, gw} {
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitHTTP(t, "http://"+map[*exec.Cmd]string{serve: addrA, gw: addrB}[cmd]+"/readyz", 30*time.Second)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	go func() { exited <- gw.Wait() }()

	app, err := demoapp.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(ctxT(t), "ws://"+addrB+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cr := auth.Issue(app.AppID, app.AppKey, "alice", auth.RoleAdmin, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
	if _, err := cl.Login(ctxT(t), client.Login{AppID: app.AppID, UserID: "alice",
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "g", GroupName: "g"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.JoinGroup(ctxT(t), "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "g", Type: 10001, Data: "hi",
		Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH}); err != nil {
		t.Fatal(err)
	}
	// Metrics are on the internal listener only, never the public port.
	if resp, err := http.Get("http://" + addrB + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("public /metrics: %v %v, want 404", resp, err)
	}
	metrics := httpBody(t, "http://"+opsB+"/metrics")
	for _, want := range []string{"liveim_gateway_connections 1", "liveim_gateway_rooms 1", `liveim_gateway_messages_in_total{level="high"} 1`,
		`liveim_gateway_frames_out_total{level="high"}`, "liveim_gateway_dropped_frames_total", "liveim_gateway_request_seconds_bucket",
		"liveim_gateway_nats_errors_total", "go_memstats_heap_inuse_bytes", "liveim_build_info{commit="} {
		if !strings.Contains(metrics, want) {
			t.Errorf("gateway /metrics lacks %q", want)
		}
	}
	routerMetrics := httpBody(t, "http://"+opsA+"/metrics")
	for _, want := range []string{`liveim_router_requests_total{code="0",op="sendGroupMessage"} 1`, `liveim_router_messages_total{level="high"} 1`,
		"liveim_router_request_seconds_bucket", "liveim_router_partitions_owned 32", "liveim_build_info{commit="} {
		if !strings.Contains(routerMetrics, want) {
			t.Errorf("serve /metrics lacks %q", want)
		}
	}

	// The image's healthcheck: liveim health on the internal /readyz.
	for _, ops := range []string{opsA, opsB} {
		if out, err := exec.Command(liveimBin, "health", "--url", "http://"+ops+"/readyz").CombinedOutput(); err != nil {
			t.Fatalf("liveim health on %s: %v %s", ops, err, out)
		}
	}

	if err := gw.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness fails while the client is still connected.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addrB + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still ready after SIGTERM (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-cl.Done():
		t.Fatal("the client was closed before readiness failed and the drain delay passed")
	default:
	}
	var hint *liveimpb.DisconnectEvent
	for ev := range cl.Events() {
		if d := ev.GetDisconnect(); d != nil {
			hint = d
		}
	}
	if hint == nil || !hint.Reconnect {
		t.Fatalf("closed without a reconnect hint: %v (%v)", hint, cl.Err())
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gateway exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
