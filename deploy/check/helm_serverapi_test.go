package check

import (
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// minAdminKeyLen is the shortest admin key liveim accepts
// (serverapi.MinAdminKeyLen).
const minAdminKeyLen = 16

// firstAppFlags are what the firstApp Job must pass to `liveim app
// create`: --if-missing makes it idempotent (an existing app is no
// failure, and stays as it is), --no-key keeps the app key out of its
// log. TestAppCreateHasFirstAppFlags checks that liveim has them.
var firstAppFlags = []string{"if-missing", "no-key"}

// TestAppCreateHasFirstAppFlags checks that `liveim app create` has the
// flags the firstApp hook Job relies on. The image has no shell, so the
// Job cannot turn "exists" into success or keep the printed key out of
// its log itself.
func TestAppCreateHasFirstAppFlags(t *testing.T) {
	t.Parallel()
	known := targetFlags(t, "app create")
	for _, name := range firstAppFlags {
		if f, ok := known[name]; !ok || f.Type != "bool" {
			t.Errorf("liveim app create has no boolean --%s, which the firstApp hook Job (helm/liveim/templates/first-app-job.yaml) passes: without it the Job fails", name)
		}
	}
}

// TestHelmServerAPIDefaults checks the server API of a default install:
// routers mount the chart's admin key Secret, the API has its ClusterIP
// Service, and the hook Job makes the app "default" through it.
func TestHelmServerAPIDefaults(t *testing.T) {
	t.Parallel()
	m := render(t)
	gw, rt := checkChart(t, m)
	const secret = "rel-liveim-admin-key"
	checkAdminKey(t, m, gw, rt, secret, "admin-key")
	s := secretNamed(m, secret)
	if s == nil {
		t.Fatalf("no Secret %s: the chart makes the admin key without adminKey.existingSecret", secret)
	}
	if key := string(s.Data["admin-key"]); len(key) < minAdminKeyLen {
		t.Errorf("Secret %s: admin-key of %d characters, want at least %d", secret, len(key), minAdminKeyLen)
	} else if again := secretNamed(render(t), secret); again == nil || string(again.Data["admin-key"]) == key {
		t.Errorf("Secret %s: two renderings made the same admin key: it is not random", secret)
	}
	_, api := routerServices(t, m, rt)
	job, flags := checkFirstAppJob(t, m, rt, api, secret, "admin-key")
	if flags["id"] != "default" {
		t.Errorf("Job %s: --id=%q, want default", job.Name, flags["id"])
	}
	if v, ok := flags["gateway-urls"]; ok {
		t.Errorf("Job %s: --gateway-urls=%q without firstApp.gatewayURLs or an Ingress, want none", job.Name, v)
	}
	// helm install waits for the hook up to its --timeout, 5 minutes by
	// default: the Job gives up before.
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d >= 300 {
		t.Errorf("Job %s: activeDeadlineSeconds %v, want under helm's default --timeout of 300 s", job.Name, d)
	}
}

// TestHelmServerAPIAllFeatures checks the server API with every value
// set: the user's admin key Secret, the first app's settings, and its
// gateway URLs from the Ingress (wss: the host has TLS).
func TestHelmServerAPIAllFeatures(t *testing.T) {
	t.Parallel()
	m := render(t, "-f", valuesAll)
	gw, rt := checkChart(t, m)
	checkAdminKey(t, m, gw, rt, "liveim-admin", "key")
	_, api := routerServices(t, m, rt)
	if api.Annotations["example.com/internal"] != "true" {
		t.Errorf("Service %s: annotations %v, want serverAPI.service.annotations", api.Name, api.Annotations)
	}
	job, flags := checkFirstAppJob(t, m, rt, api, "liveim-admin", "key")
	for name, want := range map[string]string{
		"id":                 "main",
		"gateway-urls":       "wss://im.example.com/ws",
		"callback-url":       "https://backend.example.com/liveim/events",
		"max-token-lifetime": "48h",
		"multi-device":       "true",
		"retention-days":     "30",
	} {
		if flags[name] != want {
			t.Errorf("Job %s: --%s=%q, want %q", job.Name, name, flags[name], want)
		}
	}
	if c := job.Spec.Template.Spec.Containers[0]; c.Image != "registry.example.com/liveim/liveim:1.2.3" {
		t.Errorf("Job %s: image %q", job.Name, c.Image)
	}
	if !slices.ContainsFunc(job.Spec.Template.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "regcred" }) {
		t.Errorf("Job %s: imagePullSecrets %v, want regcred", job.Name, job.Spec.Template.Spec.ImagePullSecrets)
	}
	// The Ingress serves the gateways only: checkChart's Ingress checks
	// send every path to the public gateway Service; here, not one to the
	// server API.
	for _, ing := range m.Ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if b := p.Backend.Service; b != nil && b.Name == api.Name {
					t.Errorf("Ingress %s routes %s%s to the server API Service %s", ing.Name, r.Host, p.Path, api.Name)
				}
			}
		}
	}
}

// TestHelmServerAPIOptions renders the server API's other choices.
func TestHelmServerAPIOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		// job: the Job is rendered; key: the admin key Secret is; urls: the
		// Job's --gateway-urls.
		job, key bool
		urls     string
	}{
		{"no first app", []string{"--set", "firstApp.enabled=false"}, false, true, ""},
		{"no admin API", []string{"--set", "firstApp.enabled=false,adminKey.enabled=false"}, false, false, ""},
		{"gateway URLs", []string{"--set", "firstApp.gatewayURLs={wss://a.example/ws,wss://b.example/ws}"}, true, true, "wss://a.example/ws,wss://b.example/ws"},
		{"an Ingress without TLS at /", []string{"--set", "ingress.enabled=true,ingress.hosts[0].host=live.example,ingress.hosts[0].paths[0].path=/"}, true, true, "ws://live.example/ws"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := render(t, c.args...)
			gw, rt := checkChart(t, m)
			secret := ""
			if c.key {
				secret = "rel-liveim-admin-key"
			}
			checkAdminKey(t, m, gw, rt, secret, "admin-key")
			if (secretNamed(m, "rel-liveim-admin-key") != nil) != c.key {
				t.Errorf("admin key Secret rendered: %v, want %v", !c.key, c.key)
			}
			if !c.job {
				if len(m.Jobs) != 0 {
					t.Errorf("%d Jobs rendered, want none", len(m.Jobs))
				}
				return
			}
			_, api := routerServices(t, m, rt)
			job, flags := checkFirstAppJob(t, m, rt, api, secret, "admin-key")
			if flags["gateway-urls"] != c.urls {
				t.Errorf("Job %s: --gateway-urls=%q, want %q", job.Name, flags["gateway-urls"], c.urls)
			}
		})
	}
}

// TestHelmAdminKeyKeptOnUpgrade checks, in the template's source, that the
// admin key Secret the chart makes reads its key back from the cluster: a
// rendering without a cluster (helm template, this test) cannot show it,
// and a new random key on every upgrade would lock the operator out of
// the admin API until the routers restarted.
func TestHelmAdminKeyKeptOnUpgrade(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoPath(t, chartDir, "templates", "admin-key-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	if !strings.Contains(src, `lookup "v1" "Secret" .Release.Namespace $name`) || !strings.Contains(src, "randAlphaNum") {
		t.Errorf("templates/admin-key-secret.yaml does not read the Secret's key back (lookup) before making a random one:\n%s", src)
	}
}

// checkAdminKey checks how a rendering hands out the server API's admin
// key: each router reads it from the file LIVEIM_ADMIN_KEY_FILE names,
// which is key `key` of Secret `secret`, mounted read-only and readable
// through the pod's fsGroup only; gateways hold neither the file nor the
// variable. An empty secret means no admin key (the admin API is off).
func checkAdminKey(t *testing.T, m *manifests, gw, rt *appsv1.Deployment, secret, key string) {
	t.Helper()
	rc := rt.Spec.Template.Spec.Containers[0]
	file, ok := envValue(rc, "LIVEIM_ADMIN_KEY_FILE")
	if secret == "" {
		if ok {
			t.Errorf("%s: LIVEIM_ADMIN_KEY_FILE=%q with adminKey.enabled=false", rt.Name, file)
		}
		return
	}
	checkSecretFile(t, rt.Name, rt.Spec.Template.Spec, rc, "LIVEIM_ADMIN_KEY_FILE", file, secret, key)
	gc := gw.Spec.Template.Spec.Containers[0]
	if v, ok := envValue(gc, "LIVEIM_ADMIN_KEY_FILE"); ok {
		t.Errorf("%s: LIVEIM_ADMIN_KEY_FILE=%q: gateways face the internet and get no admin key", gw.Name, v)
	}
	for _, v := range gw.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			t.Errorf("%s: volume %s mounts the admin key's Secret %s", gw.Name, v.Name, secret)
		}
	}
	for _, e := range slices.Concat(gc.Env, rc.Env) {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
			t.Errorf("%s comes from Secret %s: the admin key goes in a file only", e.Name, secret)
		}
	}
}

// checkSecretFile checks that a file a container reads (named by what) is
// key `key` of Secret `secret`, mounted read-only with mode 0440 and read
// through the pod's fsGroup.
func checkSecretFile(t *testing.T, name string, pod corev1.PodSpec, c corev1.Container, what, file, secret, key string) {
	t.Helper()
	src, fileKey, mount := secretFile(pod, c, file)
	switch {
	case src == nil:
		t.Errorf("%s: %s=%q is no file of a mounted Secret", name, what, file)
		return
	case src.SecretName != secret || fileKey != key:
		t.Errorf("%s: %s=%q is key %s of Secret %s, want key %s of Secret %s", name, what, file, fileKey, src.SecretName, key, secret)
	case !mount.ReadOnly:
		t.Errorf("%s: %s's volume is mounted read-write at %s", name, what, mount.MountPath)
	}
	if len(src.Items) != 1 {
		t.Errorf("%s: %s's volume mounts %d keys of Secret %s, want its one key", name, what, len(src.Items), secret)
	}
	mode, sc := src.DefaultMode, pod.SecurityContext
	if mode == nil || *mode&0o007 != 0 || *mode&0o040 == 0 || sc == nil || sc.FSGroup == nil {
		t.Errorf("%s: %s's volume has mode %v and the pod fsGroup %s: want 0440, read through the fsGroup", name, what, mode, fsGroup(sc))
	}
}

// checkFirstAppJob checks the rendering's one Job, the firstApp hook: a
// post-install and post-upgrade hook whose one container runs the liveim
// image as `liveim app create --if-missing --no-key` (the image has no
// shell) against the server API's Service, with the routers' admin key
// file, every flag one `liveim app create` has, retrying a bounded number
// of times for a bounded time. It returns the Job and its flags.
func checkFirstAppJob(t *testing.T, m *manifests, rt *appsv1.Deployment, api *corev1.Service, secret, key string) (*batchv1.Job, map[string]string) {
	t.Helper()
	if len(m.Jobs) != 1 {
		t.Fatalf("%d Jobs rendered, want the firstApp hook Job", len(m.Jobs))
	}
	job := m.Jobs[0]
	hooks := strings.Split(job.Annotations["helm.sh/hook"], ",")
	if !slices.Contains(hooks, "post-install") || !slices.Contains(hooks, "post-upgrade") {
		t.Errorf("Job %s: helm.sh/hook %v, want post-install and post-upgrade", job.Name, hooks)
	}
	if !strings.Contains(job.Annotations["helm.sh/hook-delete-policy"], "before-hook-creation") {
		t.Errorf("Job %s: hook-delete-policy %q: the next upgrade's Job could not be created", job.Name, job.Annotations["helm.sh/hook-delete-policy"])
	}
	if b := job.Spec.BackoffLimit; b == nil || *b < 1 {
		t.Errorf("Job %s: backoffLimit %v, want retries (routers may not answer yet)", job.Name, b)
	}
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d <= 0 {
		t.Errorf("Job %s: no activeDeadlineSeconds: it could retry for ever", job.Name)
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("Job %s: restartPolicy %q", job.Name, pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("Job %s: %d containers and %d init containers, want one container", job.Name, len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	checkPodHardening(t, job.Name, pod, c)
	checkServiceAccount(t, m, job.Name, pod)
	if rc := rt.Spec.Template.Spec.Containers[0]; c.Image != rc.Image {
		t.Errorf("Job %s: image %q, want the routers' %q", job.Name, c.Image, rc.Image)
	}
	if len(c.Command) != 0 {
		t.Errorf("Job %s: command %v: the image has no shell; its entrypoint is liveim", job.Name, c.Command)
	}
	for _, s := range m.Services {
		if selectsSet(s.Spec.Selector, job.Spec.Template.Labels) {
			t.Errorf("Service %s selects the Job's pods", s.Name)
		}
	}

	// The command line: app create, then --name=value flags.
	if len(c.Args) < 2 || c.Args[0] != "app" || c.Args[1] != "create" {
		t.Fatalf("Job %s: args %q, want app create ...", job.Name, c.Args)
	}
	flags := map[string]string{}
	known := targetFlags(t, "app create")
	for _, a := range c.Args[2:] {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || name == "" {
			t.Errorf("Job %s: argument %q is no --flag", job.Name, a)
			continue
		}
		if _, dup := flags[name]; dup {
			t.Errorf("Job %s: --%s given twice", job.Name, name)
		}
		f, ok := known[name]
		if !ok && slices.Contains(firstAppFlags, name) {
			f, ok = flagInfo{Name: name, Type: "bool"}, true // TestAppCreateHasFirstAppFlags reports it
		}
		switch {
		case !ok:
			t.Errorf("Job %s: --%s is no flag of `liveim app create`", job.Name, name)
		case !hasValue && f.Type != "bool":
			t.Errorf("Job %s: --%s without a value", job.Name, name)
		case hasValue:
			if err := checkFlagValue(f.Type, value); err != nil {
				t.Errorf("Job %s: --%s=%q is not a valid %s: %v", job.Name, name, value, f.Type, err)
			}
		}
		if !hasValue {
			value = "true"
		}
		flags[name] = value
	}
	for _, name := range firstAppFlags {
		if flags[name] != "true" {
			t.Errorf("Job %s: no --%s", job.Name, name)
		}
	}
	if v, ok := flags["no-key"]; ok && v != "true" {
		t.Errorf("Job %s: --no-key=%s: the app key would be in the Job's log, which whoever may read pod logs reads", job.Name, v)
	}

	// --api: the server API's Service, on its port.
	u, err := url.Parse(flags["api"])
	if err != nil || u.Scheme != "http" || (u.Hostname() != api.Name && !strings.HasPrefix(u.Hostname(), api.Name+".")) {
		t.Errorf("Job %s: --api=%q, want http://%s:PORT", job.Name, flags["api"], api.Name)
	} else if port, _ := strconv.Atoi(u.Port()); !servicePortExists(api, "", int32(port)) {
		t.Errorf("Job %s: --api=%q: Service %s has no port %s", job.Name, flags["api"], api.Name, u.Port())
	}
	// --admin-key-file: the routers' key.
	checkSecretFile(t, job.Name, pod, c, "--admin-key-file", flags["admin-key-file"], secret, key)
	return job, flags
}
