package check

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const chartDir = "helm/liveim"

// The values files the chart is rendered with, besides its defaults.
const (
	valuesAll    = "deploy/check/testdata/values-all.yaml"    // every optional feature on
	valuesPebble = "deploy/check/testdata/values-pebble.yaml" // one router on the embedded store
)

func TestHelmLint(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"lint", chartDir},
		{"lint", "--strict", chartDir},
		{"lint", "--strict", chartDir, "-f", valuesAll},
		{"lint", "--strict", chartDir, "-f", valuesPebble},
	} {
		out, err := runHelm(t, append(args, "--kube-version", kubeVersion)...)
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// render runs helm template on the chart and decodes what it prints.
func render(t *testing.T, args ...string) *manifests {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "rel", chartDir, "--namespace", "im", "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(out)
	if err != nil {
		t.Fatalf("helm template %s: %v", strings.Join(args, " "), err)
	}
	return m
}

func TestHelmTemplateDefaults(t *testing.T) {
	t.Parallel()
	m := render(t)
	gw, rt := checkChart(t, m)
	if len(m.Ingresses) != 0 || len(m.ServiceMonitors) != 0 {
		t.Errorf("defaults render %d Ingresses and %d ServiceMonitors, want none (both are optional)", len(m.Ingresses), len(m.ServiceMonitors))
	}
	for _, d := range []*appsv1.Deployment{gw, rt} {
		if v, ok := envValue(d.Spec.Template.Spec.Containers[0], "OTEL_EXPORTER_OTLP_ENDPOINT"); ok {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q by default, want unset", d.Name, v)
		}
	}
	rc := rt.Spec.Template.Spec.Containers[0]
	if v, _ := envValue(rc, "LIVEIM_STORE"); v != "scylla" {
		t.Errorf("router LIVEIM_STORE=%q by default, want scylla (stateless routers)", v)
	}
	if v, _ := envValue(rc, "LIVEIM_STREAM_REPLICAS"); v != "3" {
		t.Errorf("router LIVEIM_STREAM_REPLICAS=%q by default, want 3", v)
	}
	if len(m.HPAs) != 2 || len(m.PDBs) != 2 {
		t.Errorf("defaults render %d HPAs and %d PDBs, want one of each per component", len(m.HPAs), len(m.PDBs))
	}
}

func TestHelmTemplateAllFeatures(t *testing.T) {
	t.Parallel()
	m := render(t, "-f", valuesAll)
	gw, rt := checkChart(t, m)

	// OTLP on both components, the passthrough OTEL_* variables too.
	for _, d := range []*appsv1.Deployment{gw, rt} {
		c := d.Spec.Template.Spec.Containers[0]
		for name, want := range map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger-collector.tracing:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":     "0.1",
		} {
			if v, _ := envValue(c, name); v != want {
				t.Errorf("%s: %s=%q, want %q", d.Name, name, v, want)
			}
		}
		if c.Image != "registry.example.com/liveim/liveim:1.2.3" {
			t.Errorf("%s: image %q", d.Name, c.Image)
		}
	}
	// Whole numbers from values.yaml reach the flags as integers.
	if v, _ := envValue(gw.Spec.Template.Spec.Containers[0], "LIVEIM_MAX_FRAME_BYTES"); v != "1000000" {
		t.Errorf("gateway LIVEIM_MAX_FRAME_BYTES=%q, want 1000000", v)
	}

	// Scylla, with the password from a Secret.
	rc := rt.Spec.Template.Spec.Containers[0]
	for name, want := range map[string]string{
		"LIVEIM_STORE":              "scylla",
		"LIVEIM_SCYLLA_HOSTS":       "scylla-0.scylla.db,scylla-1.scylla.db:9042",
		"LIVEIM_SCYLLA_KEYSPACE":    "liveim_prod",
		"LIVEIM_SCYLLA_REPLICATION": "{'class': 'NetworkTopologyStrategy', 'dc1': 3}",
		"LIVEIM_SCYLLA_CONSISTENCY": "LOCAL_QUORUM",
		"LIVEIM_SCYLLA_USERNAME":    "liveim",
	} {
		if v, _ := envValue(rc, name); v != want {
			t.Errorf("router %s=%q, want %q", name, v, want)
		}
	}
	var pw *corev1.EnvVar
	for i := range rc.Env {
		if rc.Env[i].Name == "LIVEIM_SCYLLA_PASSWORD" {
			pw = &rc.Env[i]
		}
	}
	if pw == nil || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != "scylla-auth" {
		t.Errorf("router LIVEIM_SCYLLA_PASSWORD: %+v, want it from Secret scylla-auth", pw)
	}

	// Memory as a second HPA metric.
	for _, h := range m.HPAs {
		var names []string
		for _, mt := range h.Spec.Metrics {
			if mt.Resource != nil {
				names = append(names, string(mt.Resource.Name))
			}
		}
		if !slices.Contains(names, "cpu") || !slices.Contains(names, "memory") {
			t.Errorf("HPA %s scales on %v, want cpu and memory", h.Name, names)
		}
	}

	// Ingress: /ws to the gateways' Service, by port name.
	if len(m.Ingresses) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(m.Ingresses))
	}
	ing := m.Ingresses[0]
	gwSvc := serviceOf(t, m, gw)
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.TLS) != 1 {
		t.Errorf("Ingress %s: class %v, tls %v", ing.Name, ing.Spec.IngressClassName, ing.Spec.TLS)
	}
	paths := 0
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			paths++
			b := p.Backend.Service
			if b == nil || b.Name != gwSvc.Name || !servicePortExists(gwSvc, b.Port.Name, b.Port.Number) {
				t.Errorf("Ingress path %s goes to %+v, want the %s Service's http port", p.Path, b, gwSvc.Name)
			}
			if p.Path != "/ws" {
				t.Errorf("Ingress path %q, want /ws", p.Path)
			}
		}
	}
	if paths == 0 {
		t.Error("Ingress routes no path")
	}

	// ServiceMonitors: structural (no Go types for them here).
	if len(m.ServiceMonitors) != 2 {
		t.Fatalf("%d ServiceMonitors, want 2 (gateway, router)", len(m.ServiceMonitors))
	}
	for _, sm := range m.ServiceMonitors {
		checkServiceMonitor(t, m, sm)
	}
	monitored := map[string]bool{}
	for _, sm := range m.ServiceMonitors {
		for _, s := range m.Services {
			if selectsSet(stringMap(dig(sm, "spec", "selector", "matchLabels")), s.Labels) {
				monitored[s.Name] = true
			}
		}
	}
	for _, d := range []*appsv1.Deployment{gw, rt} {
		if s := serviceOf(t, m, d); !monitored[s.Name] {
			t.Errorf("no ServiceMonitor selects Service %s (of %s)", s.Name, d.Name)
		}
	}
}

func TestHelmTemplatePebble(t *testing.T) {
	t.Parallel()
	m := render(t, "-f", valuesPebble)
	gw, rt := checkChart(t, m)
	if len(m.HPAs) != 0 || len(m.PDBs) != 1 {
		t.Errorf("%d HPAs and %d PDBs, want none and the router's", len(m.HPAs), len(m.PDBs))
	}
	for _, d := range []*appsv1.Deployment{gw, rt} {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("%s: replicas %v, want 1", d.Name, d.Spec.Replicas)
		}
	}
	if rt.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("router strategy %q, want Recreate (one process owns the embedded store)", rt.Spec.Strategy.Type)
	}
	rc := rt.Spec.Template.Spec.Containers[0]
	if v, _ := envValue(rc, "LIVEIM_STORE"); v != "pebble" {
		t.Errorf("router LIVEIM_STORE=%q, want pebble", v)
	}
	data, _ := envValue(rc, "LIVEIM_DATA")
	mounted := false
	for _, vm := range rc.VolumeMounts {
		mounted = mounted || (vm.MountPath == data && data != "")
	}
	if !mounted {
		t.Errorf("router LIVEIM_DATA=%q is not a mounted volume (the root filesystem is read-only)", data)
	}
	if len(gw.Spec.Template.Spec.TopologySpreadConstraints) != 0 {
		t.Error("gateway topology spread rendered though disabled")
	}
}

// TestHelmTemplateRefuses checks that values that cannot work fail to
// render, with a message naming the value.
func TestHelmTemplateRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"pebble with two routers", []string{"--set", "store.type=pebble"}, "store.type pebble"},
		{"no NATS", []string{"--set", "nats.url="}, "nats.url is required"},
		{"unknown store", []string{"--set", "store.type=redis"}, "want scylla or pebble"},
		{"no Scylla hosts", []string{"--set", "store.scylla.hosts=null"}, "store.scylla.hosts"},
		{"drain longer than the grace period", []string{"--set", "gateway.preStopSleepSeconds=90"}, "terminationGracePeriodSeconds"},
		{"a flag the chart sets", []string{"--set", "gateway.flags.nats=nats://x:4222"}, "gateway.flags.nats"},
		{"a flag with dashes", []string{"--set", "router.flags.--room-rate=5"}, "router.flags"},
		{"not an OTEL_ variable", []string{"--set", "otel.env.FOO=1"}, "otel.env.FOO"},
		{"HPA without a target", []string{"--set", "gateway.autoscaling.targetCPUUtilizationPercentage=null"}, "gateway.autoscaling"},
	} {
		_, err := runHelm(t, append([]string{"template", "rel", chartDir, "--kube-version", kubeVersion}, c.args...)...)
		if err == nil {
			t.Errorf("%s: rendered, want an error", c.name)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error does not mention %q:\n%v", c.name, c.want, err)
		}
	}
}

// TestHelmEnvNamesRealFlags checks every LIVEIM_ variable the chart sets,
// in every rendering, against the flags of the target it is given to.
func TestHelmEnvNamesRealFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"-f", valuesAll}, {"-f", valuesPebble}} {
		m := render(t, args...)
		for _, d := range m.Deployments {
			for _, c := range d.Spec.Template.Spec.Containers {
				if len(c.Args) == 0 {
					t.Errorf("%s/%s: no liveim target in args", d.Name, c.Name)
					continue
				}
				checkEnv(t, "helm template "+strings.Join(args, " ")+": "+d.Name, c.Args[0], containerEnv(c))
			}
		}
	}
}

// checkChart checks what every rendering must have and returns the gateway
// and router Deployments.
func checkChart(t *testing.T, m *manifests) (gw, rt *appsv1.Deployment) {
	t.Helper()
	gw, rt = m.workload(t, "gateway"), m.workload(t, "router")
	for _, d := range []*appsv1.Deployment{gw, rt} {
		checkDeployment(t, m, d)
	}
	gwLabels, rtLabels := gw.Spec.Template.Labels, rt.Spec.Template.Labels

	// Gateway Service: port http, selecting gateway pods only.
	svc := serviceOf(t, m, gw)
	if selectsSet(svc.Spec.Selector, rtLabels) {
		t.Errorf("Service %s selects router pods too", svc.Name)
	}
	if !servicePortExists(svc, "http", 0) {
		t.Errorf("Service %s has no port named http", svc.Name)
	}
	serviceOf(t, m, rt) // routers' metrics

	// The WebSocket listener is the http port.
	gc := gw.Spec.Template.Spec.Containers[0]
	addr, _ := envValue(gc, "LIVEIM_ADDR")
	checkListenAddr(t, gw.Name+" LIVEIM_ADDR", addr, containerPort(gc, "http"))

	// Drain: the native preStop sleep (the image has no shell), inside a
	// longer grace period.
	pre := gc.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || pre.PreStop.Sleep.Seconds <= 0 {
		t.Errorf("%s: no preStop sleep: %+v", gw.Name, pre)
	} else if g := gw.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= pre.PreStop.Sleep.Seconds {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not exceed the preStop sleep of %ds", gw.Name, g, pre.PreStop.Sleep.Seconds)
	}

	// Router listener.
	rc := rt.Spec.Template.Spec.Containers[0]
	haddr, _ := envValue(rc, "LIVEIM_HTTP_ADDR")
	checkListenAddr(t, rt.Name+" LIVEIM_HTTP_ADDR", haddr, containerPort(rc, "http"))

	// HPAs target the Deployments; a Deployment under an HPA leaves
	// replicas to it.
	for _, h := range m.HPAs {
		ref := h.Spec.ScaleTargetRef
		var target *appsv1.Deployment
		for _, d := range m.Deployments {
			if ref.APIVersion == "apps/v1" && ref.Kind == "Deployment" && ref.Name == d.Name {
				target = d
			}
		}
		if target == nil {
			t.Errorf("HPA %s targets %+v, which is no rendered Deployment", h.Name, ref)
			continue
		}
		if target.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas though HPA %s scales it", target.Name, h.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: minReplicas %v, maxReplicas %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s has no metrics", h.Name)
		}
	}
	if len(m.HPAs) > 0 && hpaFor(m, gw) == "" {
		t.Errorf("no HPA targets the gateway Deployment %s", gw.Name)
	}

	// PDBs select exactly one component's pods.
	for _, p := range m.PDBs {
		g, r := selects(t, p.Spec.Selector, gwLabels), selects(t, p.Spec.Selector, rtLabels)
		if g == r {
			t.Errorf("PDB %s selects gateway pods: %v, router pods: %v; want exactly one", p.Name, g, r)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: want exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	if len(m.PDBs) >= 2 {
		found := false
		for _, p := range m.PDBs {
			found = found || selects(t, p.Spec.Selector, gwLabels)
		}
		if !found {
			t.Error("no PDB selects the gateway pods")
		}
	}
	return gw, rt
}

// checkDeployment checks one liveim Deployment.
func checkDeployment(t *testing.T, m *manifests, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("%s: selector %v does not select its own pods %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, o := range m.Deployments {
		if o != d && selects(t, d.Spec.Selector, o.Spec.Template.Labels) {
			t.Errorf("%s: selector also selects the pods of %s", d.Name, o.Name)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image == "" || strings.HasSuffix(c.Image, ":") {
		t.Errorf("%s: image %q", d.Name, c.Image)
	}
	if containerPort(c, "http") == 0 {
		t.Errorf("%s: no container port named http", d.Name)
	}

	// Probes: HTTP on the http port (the image has no shell for exec).
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", d.Name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || !isPort(p.probe.HTTPGet.Port, c, "http") {
			t.Errorf("%s: %s probe GET %s on port %s, want %s on http", d.Name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil && p.Exec != nil {
			t.Errorf("%s: exec probe %v: the image has no shell", d.Name, p.Exec.Command)
		}
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PreStop, c.Lifecycle.PostStart} {
			if h != nil && h.Exec != nil {
				t.Errorf("%s: exec lifecycle hook %v: the image has no shell", d.Name, h.Exec.Command)
			}
		}
	}

	// Non-root, read-only, no capabilities.
	psc, csc := pod.SecurityContext, c.SecurityContext
	nonRoot := (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (csc != nil && csc.RunAsNonRoot != nil && *csc.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot is not set", d.Name)
	}
	if (psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) || (csc != nil && csc.RunAsUser != nil && *csc.RunAsUser == 0) {
		t.Errorf("%s: runs as uid 0", d.Name)
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is writable", d.Name)
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation allowed", d.Name)
	}
	if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities not dropped", d.Name)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("%s: no CPU request (the HPA's utilization needs one)", d.Name)
	}

	// NATS.
	if v, _ := envValue(c, "LIVEIM_NATS"); v == "" {
		t.Errorf("%s: LIVEIM_NATS is not set", d.Name)
	}

	// Spread over zones and nodes, counting this component's pods.
	if d.Spec.Replicas == nil || *d.Spec.Replicas > 1 {
		keys := map[string]bool{}
		for _, tsc := range pod.TopologySpreadConstraints {
			keys[tsc.TopologyKey] = true
			if !selects(t, tsc.LabelSelector, d.Spec.Template.Labels) {
				t.Errorf("%s: topology spread over %s does not count its own pods", d.Name, tsc.TopologyKey)
			}
		}
		if !keys["topology.kubernetes.io/zone"] || !keys["kubernetes.io/hostname"] {
			t.Errorf("%s: topology spread over %v, want zones and nodes", d.Name, keys)
		}
	}

	// A ServiceAccount the chart renders, if it renders one.
	if len(m.ServiceAccounts) > 0 {
		found := false
		for _, sa := range m.ServiceAccounts {
			found = found || sa.Name == pod.ServiceAccountName
		}
		if !found {
			t.Errorf("%s: serviceAccountName %q is not rendered", d.Name, pod.ServiceAccountName)
		}
	}
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func isPort(p intstr.IntOrString, c corev1.Container, name string) bool {
	if p.Type == intstr.String {
		return p.StrVal == name
	}
	return p.IntVal == containerPort(c, name)
}

// checkListenAddr checks that a listen address takes connections from
// other pods on the named container port.
func checkListenAddr(t *testing.T, what, addr string, port int32) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s=%q: %v", what, addr, err)
		return
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("%s=%q: listens on %s only, unreachable from other pods", what, addr, host)
	}
	if n, _ := strconv.Atoi(p); port == 0 || int32(n) != port {
		t.Errorf("%s=%q: port is not the container's http port %d", what, addr, port)
	}
}

// serviceOf returns the Service selecting a Deployment's pods.
func serviceOf(t *testing.T, m *manifests, d *appsv1.Deployment) *corev1.Service {
	t.Helper()
	var found *corev1.Service
	for _, s := range m.Services {
		if selectsSet(s.Spec.Selector, d.Spec.Template.Labels) {
			if found != nil {
				t.Fatalf("Services %s and %s both select %s's pods", found.Name, s.Name, d.Name)
			}
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no Service selects %s's pods", d.Name)
	}
	return found
}

func servicePortExists(s *corev1.Service, name string, number int32) bool {
	for _, p := range s.Spec.Ports {
		if (name != "" && p.Name == name) || (number != 0 && p.Port == number) {
			return true
		}
	}
	return false
}

func hpaFor(m *manifests, d *appsv1.Deployment) string {
	for _, h := range m.HPAs {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			return h.Name
		}
	}
	return ""
}

// checkServiceMonitor checks a ServiceMonitor's shape: what the Prometheus
// Operator needs to find the Service and scrape /metrics on a named port
// of it.
func checkServiceMonitor(t *testing.T, m *manifests, sm map[string]any) {
	t.Helper()
	name, _ := dig(sm, "metadata", "name").(string)
	if sm["apiVersion"] != "monitoring.coreos.com/v1" || sm["kind"] != "ServiceMonitor" || name == "" {
		t.Errorf("ServiceMonitor %q: apiVersion %v, kind %v", name, sm["apiVersion"], sm["kind"])
	}
	for k := range sm {
		if !slices.Contains([]string{"apiVersion", "kind", "metadata", "spec"}, k) {
			t.Errorf("ServiceMonitor %s: unknown top-level field %q", name, k)
		}
	}
	spec, _ := sm["spec"].(map[string]any)
	for k := range spec {
		if !slices.Contains([]string{"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels", "sampleLimit"}, k) {
			t.Errorf("ServiceMonitor %s: unexpected spec field %q", name, k)
		}
	}
	sel := stringMap(dig(sm, "spec", "selector", "matchLabels"))
	var svc *corev1.Service
	for _, s := range m.Services {
		if selectsSet(sel, s.Labels) {
			if svc != nil {
				t.Errorf("ServiceMonitor %s selects Services %s and %s", name, svc.Name, s.Name)
			}
			svc = s
		}
	}
	if svc == nil {
		t.Errorf("ServiceMonitor %s: selector %v selects no rendered Service", name, sel)
		return
	}
	if ns := stringList(dig(sm, "spec", "namespaceSelector", "matchNames")); !slices.Contains(ns, "im") {
		t.Errorf("ServiceMonitor %s: namespaceSelector %v misses the release namespace", name, ns)
	}
	eps, _ := dig(sm, "spec", "endpoints").([]any)
	if len(eps) == 0 {
		t.Errorf("ServiceMonitor %s: no endpoints", name)
	}
	for _, e := range eps {
		ep, _ := e.(map[string]any)
		for k := range ep {
			if !slices.Contains([]string{"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels", "relabelings", "metricRelabelings"}, k) {
				t.Errorf("ServiceMonitor %s: unexpected endpoint field %q", name, k)
			}
		}
		port, _ := ep["port"].(string)
		if ep["path"] != "/metrics" || !servicePortExists(svc, port, 0) {
			t.Errorf("ServiceMonitor %s: endpoint %v, want path /metrics on a named port of Service %s", name, ep, svc.Name)
		}
	}
}

// dig walks nested maps.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, x := range m {
		s, _ := x.(string)
		out[k] = s
	}
	return out
}

func stringList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
