package check

import (
	"maps"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// routerServices returns the routers' two Services, both to their one
// listener, the internal one (port http): the headless Service that names
// it for Prometheus (the ServiceMonitor's, with the internal label), and
// the server API's ClusterIP Service, which balances over the ready
// routers, stays inside the cluster and is no ServiceMonitor's.
func routerServices(t *testing.T, m *manifests, rt *appsv1.Deployment) (metrics, api *corev1.Service) {
	t.Helper()
	c := rt.Spec.Template.Spec.Containers[0]
	for _, s := range servicesOf(m, rt) {
		for _, p := range s.Spec.Ports {
			if targetPortName(p, c) != "http" {
				t.Errorf("Service %s: port %s leads to the routers' port %q, want http (their internal listener)", s.Name, p.Name, targetPortName(p, c))
			}
		}
		found := &api
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			found = &metrics
		} else {
			if (s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP) || len(s.Spec.ExternalIPs) > 0 {
				t.Errorf("Service %s of the server API is %s (external IPs %v): the routers' internal listener would leave the cluster", s.Name, s.Spec.Type, s.Spec.ExternalIPs)
			}
			if s.Labels["liveim/listener"] != "" {
				t.Errorf("Service %s of the server API has the label liveim/listener: a ServiceMonitor would scrape the routers twice", s.Name)
			}
		}
		if *found != nil {
			t.Fatalf("Services %s and %s: two of a kind select the routers", (*found).Name, s.Name)
		}
		*found = s
	}
	if metrics == nil || api == nil {
		t.Fatalf("router Services: headless (metrics) %v, server API %v; want one of each", metrics != nil, api != nil)
	}
	return metrics, api
}

// servicesOf returns the Services selecting a Deployment's pods.
func servicesOf(m *manifests, d *appsv1.Deployment) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range m.Services {
		if selectsSet(s.Spec.Selector, d.Spec.Template.Labels) {
			out = append(out, s)
		}
	}
	return out
}

// gatewayServices returns the gateways' public Service (to their http
// port) and internal Service (to their internal port), and checks that
// they stay apart: no Service mixes the two listeners, and the internal
// one is not reachable from outside the cluster.
func gatewayServices(t *testing.T, m *manifests, gw *appsv1.Deployment) (public, internal *corev1.Service) {
	t.Helper()
	c := gw.Spec.Template.Spec.Containers[0]
	for _, s := range servicesOf(m, gw) {
		targets := map[string]bool{}
		for _, p := range s.Spec.Ports {
			targets[targetPortName(p, c)] = true
		}
		var found **corev1.Service
		switch {
		case len(targets) == 1 && targets["http"]:
			found = &public
		case len(targets) == 1 && targets["internal"]:
			found = &internal
			if (s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP) || len(s.Spec.ExternalIPs) > 0 {
				t.Errorf("Service %s of the internal listener is %s (external IPs %v): /metrics and pprof would leave the cluster", s.Name, s.Spec.Type, s.Spec.ExternalIPs)
			}
		default:
			t.Errorf("Service %s targets the gateway ports %v, want either http (public) or internal", s.Name, slices.Sorted(maps.Keys(targets)))
			continue
		}
		if *found != nil {
			t.Fatalf("Services %s and %s both target the gateways' %v", (*found).Name, s.Name, slices.Sorted(maps.Keys(targets)))
		}
		*found = s
	}
	if public == nil || internal == nil {
		t.Fatalf("gateway Services: public %v, internal %v; want one of each", public != nil, internal != nil)
	}
	return public, internal
}

// targetPortName returns the name of the container port a Service port
// sends to ("" when the container has no such port).
func targetPortName(p corev1.ServicePort, c corev1.Container) string {
	tp := p.TargetPort
	if tp.Type == intstr.Int && tp.IntVal == 0 {
		tp = intstr.FromInt32(p.Port) // targetPort defaults to port
	}
	for _, cp := range c.Ports {
		if (tp.Type == intstr.String && cp.Name == tp.StrVal) || (tp.Type == intstr.Int && cp.ContainerPort == tp.IntVal) {
			return cp.Name
		}
	}
	return ""
}

func servicePortExists(s *corev1.Service, name string, number int32) bool {
	for _, p := range s.Spec.Ports {
		if (name != "" && p.Name == name) || (number != 0 && p.Port == number) {
			return true
		}
	}
	return false
}

// checkServiceMonitor checks a ServiceMonitor's shape: what the Prometheus
// Operator needs to find the Service and scrape /metrics on a named port
// of it, and that this port leads to the internal listener
// (LIVEIM_HTTP_ADDR) of the pods, where /metrics is served.
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
	var pods *appsv1.Deployment
	for _, d := range m.Deployments {
		if selectsSet(svc.Spec.Selector, d.Spec.Template.Labels) {
			pods = d
		}
	}
	if pods == nil {
		t.Errorf("ServiceMonitor %s: Service %s selects no rendered pods", name, svc.Name)
		return
	}
	c := pods.Spec.Template.Spec.Containers[0]
	metricsAddr, _ := envValue(c, "LIVEIM_HTTP_ADDR")
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
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == port && containerPort(c, targetPortName(p, c)) != listenPort(metricsAddr) {
				t.Errorf("ServiceMonitor %s: port %s of Service %s leads to %s's port %q, not to its internal listener LIVEIM_HTTP_ADDR=%s (the only one serving /metrics)",
					name, port, svc.Name, pods.Name, targetPortName(p, c), metricsAddr)
			}
		}
	}
}
