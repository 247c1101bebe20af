package check

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion/kind to the k8s.io/api type its objects decode
// into. A rendered object of a kind missing here fails the check: add its
// type when the chart gains one.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                    func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                           func() any { return new(batchv1.Job) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
}

// manifests is a rendered chart, every object decoded strictly.
type manifests struct {
	Deployments     []*appsv1.Deployment
	Jobs            []*batchv1.Job
	Services        []*corev1.Service
	ServiceAccounts []*corev1.ServiceAccount
	Secrets         []*corev1.Secret
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	Ingresses       []*networkingv1.Ingress
	NetworkPolicies []*networkingv1.NetworkPolicy
	// ServiceMonitors are Prometheus Operator objects, not in k8s.io/api:
	// decoded as plain maps and checked structurally.
	ServiceMonitors []map[string]any
	Count           int
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests splits a multi-document YAML stream and decodes every
// document strictly into its type.
func decodeManifests(stream string) (*manifests, error) {
	m := &manifests{}
	for _, doc := range docSeparator.Split(stream, -1) {
		if isBlankYAML(doc) {
			continue
		}
		source := "document"
		if i := strings.Index(doc, "# Source: "); i >= 0 {
			source = strings.TrimSpace(strings.SplitN(doc[i+len("# Source: "):], "\n", 2)[0])
		}
		if err := m.add(doc); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		m.Count++
	}
	return m, nil
}

func isBlankYAML(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func (m *manifests) add(doc string) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return fmt.Errorf("no apiVersion or kind")
	}
	key := tm.APIVersion + "/" + tm.Kind
	if key == "monitoring.coreos.com/v1/ServiceMonitor" {
		var sm map[string]any
		if err := yaml.UnmarshalStrict([]byte(doc), &sm); err != nil {
			return err
		}
		m.ServiceMonitors = append(m.ServiceMonitors, sm)
		return nil
	}
	newObj, ok := kinds[key]
	if !ok {
		return fmt.Errorf("%s: a kind deploy/check does not know (add it to kinds)", key)
	}
	obj := newObj()
	// UnmarshalStrict: an unknown or duplicated field is an error.
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	meta := obj.(metav1.Object)
	if errs := validation.IsDNS1123Subdomain(meta.GetName()); len(errs) > 0 {
		return fmt.Errorf("%s %q: invalid name: %s", key, meta.GetName(), strings.Join(errs, "; "))
	}
	if err := checkLabels(meta.GetLabels()); err != nil {
		return fmt.Errorf("%s %s: %w", key, meta.GetName(), err)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.Deployments = append(m.Deployments, o)
	case *batchv1.Job:
		m.Jobs = append(m.Jobs, o)
	case *corev1.Service:
		if errs := validation.IsDNS1035Label(o.Name); len(errs) > 0 {
			return fmt.Errorf("Service %q: invalid name: %s", o.Name, strings.Join(errs, "; "))
		}
		m.Services = append(m.Services, o)
	case *corev1.ServiceAccount:
		m.ServiceAccounts = append(m.ServiceAccounts, o)
	case *corev1.Secret:
		m.Secrets = append(m.Secrets, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		m.HPAs = append(m.HPAs, o)
	case *policyv1.PodDisruptionBudget:
		m.PDBs = append(m.PDBs, o)
	case *networkingv1.Ingress:
		m.Ingresses = append(m.Ingresses, o)
	case *networkingv1.NetworkPolicy:
		m.NetworkPolicies = append(m.NetworkPolicies, o)
	}
	return nil
}

func checkLabels(l map[string]string) error {
	for k, v := range l {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

// workload returns the Deployment whose container runs the liveim target.
func (m *manifests) workload(t *testing.T, target string) *appsv1.Deployment {
	t.Helper()
	var found *appsv1.Deployment
	for _, d := range m.Deployments {
		cs := d.Spec.Template.Spec.Containers
		if len(cs) > 0 && len(cs[0].Args) > 0 && cs[0].Args[0] == target {
			if found != nil {
				t.Fatalf("two Deployments run liveim %s: %s and %s", target, found.Name, d.Name)
			}
			found = d
		}
	}
	if found == nil {
		t.Fatalf("no Deployment runs liveim %s", target)
	}
	return found
}

// pods returns the pod templates of the rendered workloads (Deployments
// and Jobs) by the workload's name.
func (m *manifests) pods() map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, d := range m.Deployments {
		out[d.Name] = d.Spec.Template.Spec
	}
	for _, j := range m.Jobs {
		out[j.Name] = j.Spec.Template.Spec
	}
	return out
}

// secretNamed returns the rendered Secret of that name, nil if none.
func secretNamed(m *manifests, name string) *corev1.Secret {
	for _, s := range m.Secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// selects reports whether a label selector selects pods with these labels.
func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func selectsSet(sel map[string]string, podLabels map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))
}

func containerEnv(c corev1.Container) []envVar {
	var env []envVar
	for _, e := range c.Env {
		env = append(env, envVar{Name: e.Name, Value: e.Value, Literal: e.ValueFrom == nil})
	}
	return env
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestStrictDecodingRejectsMisspelledFields(t *testing.T) {
	good := `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  replicas: 2
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i}]
`
	if _, err := decodeManifests(good); err != nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for name, doc := range map[string]string{
		"misspelled field":   strings.Replace(good, "replicas: 2", "replica: 2", 1),
		"misplaced field":    strings.Replace(good, "containers:", "terminationGracePeriod: 3\n      containers:", 1),
		"wrong type":         strings.Replace(good, "replicas: 2", "replicas: two", 1),
		"unknown kind":       strings.Replace(good, "kind: Deployment", "kind: Deploymnet", 1),
		"duplicated field":   strings.Replace(good, "replicas: 2", "replicas: 2\n  replicas: 3", 1),
		"invalid name":       strings.Replace(good, "name: x", "name: X_Y", 1),
		"bad ServiceMonitor": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nspec: {a: 1}\nspec: {a: 2}\n",
	} {
		if _, err := decodeManifests(doc); err == nil {
			t.Errorf("%s: decoded without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
