package check

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
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
	if v, _ := envValue(rc, "LIVEIM_STATS_INTERVAL"); v != "5s" {
		t.Errorf("router LIVEIM_STATS_INTERVAL=%q by default, want 5s (one LWT per busy group per 5 s on ScyllaDB)", v)
	}
	if v, _ := envValue(rc, "LIVEIM_STREAM_REPLICAS"); v != "3" {
		t.Errorf("router LIVEIM_STREAM_REPLICAS=%q by default, want 3", v)
	}
	if len(m.HPAs) != 2 || len(m.PDBs) != 2 {
		t.Errorf("defaults render %d HPAs and %d PDBs, want one of each per component", len(m.HPAs), len(m.PDBs))
	}

	// NATS credentials on by default, from the Secret <fullname>-nats-auth,
	// which the chart does not make without passwords in values.
	checkNATSCredentials(t, gw, "gateway", "rel-liveim-nats-auth")
	checkNATSCredentials(t, rt, "router", "rel-liveim-nats-auth")
	if len(m.Secrets) != 1 || secretNamed(m, "rel-liveim-admin-key") == nil {
		t.Errorf("defaults render %d Secrets, want only the admin key's (no passwords in values)", len(m.Secrets))
	}
	if v, ok := envValue(gw.Spec.Template.Spec.Containers[0], "LIVEIM_TRUSTED_PROXIES"); ok {
		t.Errorf("gateway LIVEIM_TRUSTED_PROXIES=%q by default, want unset (no proxy is trusted)", v)
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
	gc := gw.Spec.Template.Spec.Containers[0]
	if v, _ := envValue(gc, "LIVEIM_MAX_FRAME_BYTES"); v != "1000000" {
		t.Errorf("gateway LIVEIM_MAX_FRAME_BYTES=%q, want 1000000", v)
	}
	// The proxies whose X-Forwarded-For names the client.
	if v, _ := envValue(gc, "LIVEIM_TRUSTED_PROXIES"); v != "10.244.0.0/16,fd00:10:244::/56" {
		t.Errorf("gateway LIVEIM_TRUSTED_PROXIES=%q, want the two CIDRs of gateway.trustedProxies", v)
	}

	// NATS: each role's password from the existing Secret, TLS with a
	// client certificate.
	checkNATSCredentials(t, gw, "gateway", "liveim-nats-auth")
	checkNATSCredentials(t, rt, "router", "liveim-nats-auth")
	for _, d := range []*appsv1.Deployment{gw, rt} {
		checkNATSTLS(t, d, "nats-client-tls", true)
	}
	if len(m.Secrets) != 0 {
		t.Errorf("%d Secrets rendered, want none (nats.auth.existingSecret and adminKey.existingSecret are set)", len(m.Secrets))
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
	pwFile, _ := envValue(rc, "LIVEIM_SCYLLA_PASSWORD_FILE")
	if src, key, _ := secretFile(rt.Spec.Template.Spec, rc, pwFile); src == nil || src.SecretName != "scylla-auth" || key != "password" {
		t.Errorf("router LIVEIM_SCYLLA_PASSWORD_FILE=%q, want key password of Secret scylla-auth mounted", pwFile)
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

	// Ingress: /ws to the gateways' public Service, by port name, with
	// TLS for every host (wss://).
	if len(m.Ingresses) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(m.Ingresses))
	}
	ing := m.Ingresses[0]
	gwSvc, gwInternal := gatewayServices(t, m, gw)
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.TLS) != 1 {
		t.Errorf("Ingress %s: class %v, tls %v", ing.Name, ing.Spec.IngressClassName, ing.Spec.TLS)
	}
	tlsHosts := map[string]bool{}
	for _, tls := range ing.Spec.TLS {
		if tls.SecretName == "" {
			t.Errorf("Ingress %s: tls for %v names no Secret", ing.Name, tls.Hosts)
		}
		for _, h := range tls.Hosts {
			tlsHosts[h] = true
		}
	}
	for _, r := range ing.Spec.Rules {
		if !tlsHosts[r.Host] {
			t.Errorf("Ingress %s: host %q has no tls (clients need wss://)", ing.Name, r.Host)
		}
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
	// Gateways are scraped through their internal Service, never the
	// public one; routers through theirs.
	monitored := map[string]bool{}
	for _, sm := range m.ServiceMonitors {
		for _, s := range m.Services {
			if selectsSet(stringMap(dig(sm, "spec", "selector", "matchLabels")), s.Labels) {
				monitored[s.Name] = true
			}
		}
	}
	rtMetrics, _ := routerServices(t, m, rt)
	for _, s := range []*corev1.Service{gwInternal, rtMetrics} {
		if !monitored[s.Name] {
			t.Errorf("no ServiceMonitor selects Service %s", s.Name)
		}
	}
	if monitored[gwSvc.Name] {
		t.Errorf("a ServiceMonitor selects the public gateway Service %s", gwSvc.Name)
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

	// The NATS passwords from values, in the Secret the chart makes, each
	// role mounting its own.
	const secret = "rel-liveim-nats-auth"
	natsAuth := secretNamed(m, secret)
	if len(m.Secrets) != 2 || natsAuth == nil || secretNamed(m, "rel-liveim-admin-key") == nil {
		t.Fatalf("%d Secrets rendered, want %s and rel-liveim-admin-key", len(m.Secrets), secret)
	}
	for key, want := range map[string]string{"router-password": "test-router-password-0b1c", "gateway-password": "test-gateway-password-9e8f"} {
		if got := string(natsAuth.Data[key]); got != want {
			t.Errorf("Secret %s: %s=%q, want %q", secret, key, got, want)
		}
	}
	checkNATSCredentials(t, gw, "gateway", secret)
	checkNATSCredentials(t, rt, "router", secret)
	// The embedded store's volume, the password's and the admin key's, side
	// by side.
	if len(rt.Spec.Template.Spec.Volumes) != 3 {
		t.Errorf("router volumes %v, want data, nats-auth and admin-key", rt.Spec.Template.Spec.Volumes)
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
		{"a Scylla password without a user", []string{"--set", "store.scylla.existingSecret=scylla-auth"}, "store.scylla.username"},
		{"a Scylla password flag", []string{"--set", "router.flags.scylla-password-file=/tmp/pw"}, "router.flags.scylla-password-file"},
		{"drain longer than the grace period", []string{"--set", "gateway.preStopSleepSeconds=90"}, "terminationGracePeriodSeconds"},
		{"a spread drain past the grace period", []string{"--set", "gateway.drainDelaySeconds=50"}, "gateway.drainDelaySeconds"},
		{"drain-delay as a flag", []string{"--set", "gateway.flags.drain-delay=5s"}, "gateway.flags.drain-delay"},
		{"a flag the chart sets", []string{"--set", "gateway.flags.nats=nats://x:4222"}, "gateway.flags.nats"},
		{"a flag with dashes", []string{"--set", "router.flags.--room-rate=5"}, "router.flags"},
		{"not an OTEL_ variable", []string{"--set", "otel.env.FOO=1"}, "otel.env.FOO"},
		{"HPA without a target", []string{"--set", "gateway.autoscaling.targetCPUUtilizationPercentage=null"}, "gateway.autoscaling"},
		{"NATS passwords and an existing Secret", []string{"--set", "nats.auth.existingSecret=s,nats.auth.routerPassword=r1,nats.auth.gatewayPassword=g1"}, "not both"},
		{"one NATS password", []string{"--set", "nats.auth.routerPassword=r1"}, "set both routerPassword and gatewayPassword"},
		{"one NATS password for both users", []string{"--set", "nats.auth.routerPassword=same1,nats.auth.gatewayPassword=same1"}, "must differ"},
		{"a NATS credential flag", []string{"--set", "gateway.flags.nats-password-file=/tmp/pw"}, "gateway.flags.nats-password-file"},
		{"a router NATS user flag", []string{"--set", "router.flags.nats-user=admin"}, "router.flags.nats-user"},
		{"the internal listener as a flag", []string{"--set", "gateway.flags.http-addr=0.0.0.0:9"}, "gateway.flags.http-addr"},
		{"trusted proxies as a flag", []string{"--set", "gateway.flags.trusted-proxies=0.0.0.0/0"}, "gateway.flags.trusted-proxies"},
		{"a client certificate without its Secret", []string{"--set", "nats.tls.clientCert=true"}, "nats.tls.clientCert"},
		{"a Scylla client certificate without its Secret", []string{"--set", "store.scylla.tls.clientCert=true"}, "store.scylla.tls.clientCert"},
		{"a Scylla CA as a flag", []string{"--set", "router.flags.scylla-tls-ca=/tmp/ca"}, "router.flags.scylla-tls-ca"},
		{"a trusted proxy that is no CIDR", []string{"--set", "gateway.trustedProxies={10.0.0.1}"}, "gateway.trustedProxies"},
		{"metrics on the public port", []string{"--set", "gateway.internalPort=8080"}, "gateway.internalPort"},
		{"a first app without the admin API", []string{"--set", "adminKey.enabled=false"}, "firstApp needs the admin API"},
		{"a first app ID that is no ID", []string{"--set", "firstApp.id=my_app"}, "firstApp.id"},
		{"a first app setting the chart sets", []string{"--set", "firstApp.settings.api=http://x:8081"}, "firstApp.settings.api"},
		{"a first app gateway URL that is no WebSocket URL", []string{"--set", "firstApp.gatewayURLs={https://im.example/ws}"}, "firstApp.gatewayURLs"},
		{"an admin key Secret key that is no key", []string{"--set", "adminKey.secretKey=admin/key"}, "adminKey.secretKey"},
		{"the admin key file as a flag", []string{"--set", "router.flags.admin-key-file=/tmp/k"}, "router.flags.admin-key-file"},
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
	for _, args := range [][]string{nil, {"-f", valuesAll}, {"-f", valuesPebble}, {"--set", "nats.auth.enabled=false"}} {
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

	// Gateway Services: the public one (port http) and the internal one
	// (port internal), selecting gateway pods only.
	public, internal := gatewayServices(t, m, gw)
	for _, svc := range []*corev1.Service{public, internal} {
		if selectsSet(svc.Spec.Selector, rtLabels) {
			t.Errorf("Service %s selects router pods too", svc.Name)
		}
	}
	if !servicePortExists(public, "http", 0) {
		t.Errorf("Service %s has no port named http", public.Name)
	}
	routerServices(t, m, rt) // routers' metrics and server API

	// The WebSocket listener is the http port, the internal listener
	// (/metrics) the internal port.
	gc := gw.Spec.Template.Spec.Containers[0]
	addr, _ := envValue(gc, "LIVEIM_ADDR")
	checkListenAddr(t, gw.Name+" LIVEIM_ADDR", addr, gc, "http")
	iaddr, _ := envValue(gc, "LIVEIM_HTTP_ADDR")
	checkListenAddr(t, gw.Name+" LIVEIM_HTTP_ADDR", iaddr, gc, "internal")
	checkNoPlainSecrets(t, m)

	// Drain: the native preStop sleep (the image has no shell), inside a
	// longer grace period.
	pre := gc.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || pre.PreStop.Sleep.Seconds <= 0 {
		t.Errorf("%s: no preStop sleep: %+v", gw.Name, pre)
	} else if g := gw.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= pre.PreStop.Sleep.Seconds {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not exceed the preStop sleep of %ds", gw.Name, g, pre.PreStop.Sleep.Seconds)
	} else {
		// The clients are told to go one after another over the drain
		// window, which ends inside the grace period too.
		v, _ := envValue(gc, "LIVEIM_DRAIN_DELAY")
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Errorf("%s: LIVEIM_DRAIN_DELAY %q: want a spread drain (%v)", gw.Name, v, err)
		} else if *g <= pre.PreStop.Sleep.Seconds+int64(d/time.Second) {
			t.Errorf("%s: terminationGracePeriodSeconds %d does not exceed the preStop sleep %ds plus the drain window %v", gw.Name, *g, pre.PreStop.Sleep.Seconds, d)
		}
	}

	// Router listener.
	rc := rt.Spec.Template.Spec.Containers[0]
	haddr, _ := envValue(rc, "LIVEIM_HTTP_ADDR")
	checkListenAddr(t, rt.Name+" LIVEIM_HTTP_ADDR", haddr, rc, "http")

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

	checkPodHardening(t, d.Name, pod, c)

	// Probes: HTTP (the image has no shell for exec). Readiness on the
	// http port (a gateway's public one, which clients use); liveness on
	// the internal listener, where the public's traffic cannot fail it
	// and restart the pod (a gateway's internal port, a router's http).
	live := "http"
	if containerPort(c, "internal") != 0 {
		live = "internal"
	}
	for _, p := range []struct {
		kind, path, port string
		probe            *corev1.Probe
	}{{"liveness", "/healthz", live, c.LivenessProbe}, {"readiness", "/readyz", "http", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", d.Name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || !isPort(p.probe.HTTPGet.Port, c, p.port) {
			t.Errorf("%s: %s probe GET %s on port %s, want %s on %s", d.Name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, p.port)
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

	checkServiceAccount(t, m, d.Name, pod)
}

// checkPodHardening checks a liveim pod's security: non-root, read-only
// root filesystem, no privilege escalation, no capabilities; and that it
// gets no Kubernetes service variables, which a Service named liveim-...
// would turn into LIVEIM_* names liveim reports as unknown settings.
func checkPodHardening(t *testing.T, name string, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Errorf("%s: enableServiceLinks is not false", name)
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	nonRoot := (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (csc != nil && csc.RunAsNonRoot != nil && *csc.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot is not set", name)
	}
	if (psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) || (csc != nil && csc.RunAsUser != nil && *csc.RunAsUser == 0) {
		t.Errorf("%s: runs as uid 0", name)
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is writable", name)
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation allowed", name)
	}
	if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities not dropped", name)
	}
}

// checkServiceAccount checks that a pod's ServiceAccount is one the chart
// renders, if it renders one.
func checkServiceAccount(t *testing.T, m *manifests, name string, pod corev1.PodSpec) {
	t.Helper()
	if len(m.ServiceAccounts) > 0 {
		found := false
		for _, sa := range m.ServiceAccounts {
			found = found || sa.Name == pod.ServiceAccountName
		}
		if !found {
			t.Errorf("%s: serviceAccountName %q is not rendered", name, pod.ServiceAccountName)
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
func checkListenAddr(t *testing.T, what, addr string, c corev1.Container, portName string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s=%q: %v", what, addr, err)
		return
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("%s=%q: listens on %s only, unreachable from other pods", what, addr, host)
	}
	if port := containerPort(c, portName); port == 0 || listenPort(addr) != port {
		t.Errorf("%s=%q: port is not the container's %s port %d", what, addr, portName, port)
	}
}

// listenPort returns the port of a listen address, 0 if it has none.
func listenPort(addr string) int32 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(p, 10, 32)
	return int32(n)
}

func hpaFor(m *manifests, d *appsv1.Deployment) string {
	for _, h := range m.HPAs {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			return h.Name
		}
	}
	return ""
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

// TestPDBMaxUnavailableZero: a disruption budget of maxUnavailable 0 (no
// voluntary eviction, say during a big event) renders as 0; Helm's
// default took the 0 for unset and rendered 1.
func TestPDBMaxUnavailableZero(t *testing.T) {
	t.Parallel()
	m := render(t, "--set", "router.pdb.maxUnavailable=0", "--set", "gateway.pdb.maxUnavailable=0")
	if len(m.PDBs) != 2 {
		t.Fatalf("%d PDBs, want the router's and the gateway's", len(m.PDBs))
	}
	for _, p := range m.PDBs {
		if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 0 {
			t.Errorf("PDB %s: maxUnavailable %v, want 0 as set", p.Name, p.Spec.MaxUnavailable)
		}
	}
	for _, p := range render(t).PDBs {
		if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PDB %s by default: maxUnavailable %v, want 1", p.Name, p.Spec.MaxUnavailable)
		}
	}
}

// TestNetworkPolicies: with networkPolicy.enabled the routers' port (the
// server API, the admin API, /metrics, pprof) takes only the first-app
// Job, the listed API clients and metrics scrapers; the gateways' internal
// port only the scrapers (and nobody without them: an empty "from" would
// let everyone in); their public port everyone. Off by default.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	if n := len(render(t).NetworkPolicies); n != 0 {
		t.Fatalf("%d NetworkPolicies by default, want none", n)
	}
	byName := func(m *manifests) map[string]*networkingv1.NetworkPolicy {
		out := map[string]*networkingv1.NetworkPolicy{}
		for _, p := range m.NetworkPolicies {
			out[p.Name] = p
		}
		return out
	}
	peerLabels := func(rule networkingv1.NetworkPolicyIngressRule) []string {
		var out []string
		for _, p := range rule.From {
			switch {
			case p.PodSelector != nil:
				out = append(out, "pod:"+p.PodSelector.MatchLabels["app.kubernetes.io/component"])
			case p.NamespaceSelector != nil:
				out = append(out, "ns:"+p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
			}
		}
		return out
	}
	ports := func(rule networkingv1.NetworkPolicyIngressRule) string {
		var out []string
		for _, p := range rule.Ports {
			out = append(out, p.Port.String())
		}
		return strings.Join(out, ",")
	}
	m := byName(render(t, "--set", "networkPolicy.enabled=true",
		"--set", "networkPolicy.apiClients[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=backend",
		"--set", "networkPolicy.metricsScrapers[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring"))
	rt, gw := m["rel-liveim-router"], m["rel-liveim-gateway"]
	if rt == nil || gw == nil || len(m) != 2 {
		t.Fatalf("NetworkPolicies %v, want the router's and the gateway's", m)
	}
	if rt.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "router" || gw.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "gateway" {
		t.Fatalf("pod selectors %v / %v", rt.Spec.PodSelector, gw.Spec.PodSelector)
	}
	if r := rt.Spec.Ingress; len(r) != 1 || ports(r[0]) != "http" || !slices.Equal(peerLabels(r[0]), []string{"pod:first-app", "ns:backend", "ns:monitoring"}) {
		t.Fatalf("router ingress %+v", r)
	}
	if r := gw.Spec.Ingress; len(r) != 2 || ports(r[0]) != "http" || len(r[0].From) != 0 || ports(r[1]) != "internal" || !slices.Equal(peerLabels(r[1]), []string{"ns:monitoring"}) {
		t.Fatalf("gateway ingress %+v", r)
	}
	// Without scrapers nobody reaches the gateways' internal port.
	gw = byName(render(t, "--set", "networkPolicy.enabled=true"))["rel-liveim-gateway"]
	for _, r := range gw.Spec.Ingress {
		if ports(r) != "http" {
			t.Fatalf("gateway ingress without scrapers %+v: only the public port may be open", gw.Spec.Ingress)
		}
	}
}
