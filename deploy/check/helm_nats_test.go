package check

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestHelmTemplateNATSAuthOff checks the chart without NATS credentials:
// no user, no password file, no Secret volume.
func TestHelmTemplateNATSAuthOff(t *testing.T) {
	t.Parallel()
	m := render(t, "--set", "nats.auth.enabled=false", "--set", "nats.auth.routerPassword=r1", "--set", "nats.auth.gatewayPassword=g1")
	gw, rt := checkChart(t, m)
	checkNATSCredentials(t, gw, "gateway", "")
	checkNATSCredentials(t, rt, "router", "")
	if s := secretNamed(m, "rel-liveim-nats-auth"); s != nil {
		t.Errorf("Secret %s rendered with nats.auth.enabled=false", s.Name)
	}
}

// checkNATSCredentials checks how a liveim Deployment of a role (gateway,
// router) logs in to NATS: as liveim-<role>, with the password in a file
// of the Secret's <role>-password key, mounted read-only and readable by
// liveim, and no other key of that Secret in the pod (a gateway never
// holds the router's password). An empty secret means no credentials.
func checkNATSCredentials(t *testing.T, d *appsv1.Deployment, role, secret string) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	user, hasUser := envValue(c, "LIVEIM_NATS_USER")
	file, hasFile := envValue(c, "LIVEIM_NATS_PASSWORD_FILE")
	if secret == "" {
		if hasUser || hasFile {
			t.Errorf("%s: NATS user %q, password file %q, want neither (nats.auth off)", d.Name, user, file)
		}
		for _, v := range pod.Volumes {
			if v.Name == "nats-auth" {
				t.Errorf("%s: volume nats-auth with nats.auth off", d.Name)
			}
		}
		return
	}
	if user != "liveim-"+role {
		t.Errorf("%s: LIVEIM_NATS_USER=%q, want liveim-%s", d.Name, user, role)
	}
	key := role + "-password"
	src, fileKey, mount := secretFile(pod, c, file)
	switch {
	case src == nil:
		t.Errorf("%s: LIVEIM_NATS_PASSWORD_FILE=%q is no file of a mounted Secret", d.Name, file)
	case src.SecretName != secret || fileKey != key:
		t.Errorf("%s: LIVEIM_NATS_PASSWORD_FILE=%q is key %s of Secret %s, want key %s of Secret %s", d.Name, file, fileKey, src.SecretName, key, secret)
	case !mount.ReadOnly:
		t.Errorf("%s: the password's volume is mounted read-write at %s", d.Name, mount.MountPath)
	}

	// The pod holds its own role's password only, readable by liveim (the
	// pod's fsGroup, as the mode gives others nothing).
	for _, v := range pod.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secret {
			continue
		}
		if len(v.Secret.Items) == 0 {
			t.Errorf("%s: volume %s mounts every key of Secret %s, the other role's password too", d.Name, v.Name, secret)
		}
		for _, it := range v.Secret.Items {
			if it.Key != key {
				t.Errorf("%s: volume %s mounts key %s of Secret %s, want %s only", d.Name, v.Name, it.Key, secret, key)
			}
		}
		mode, sc := v.Secret.DefaultMode, pod.SecurityContext
		switch {
		case mode == nil:
			t.Errorf("%s: volume %s has the default mode 0644, want no access for others (0440)", d.Name, v.Name)
		case *mode&0o007 != 0:
			t.Errorf("%s: volume %s has mode %#o, want no access for others (0440)", d.Name, v.Name, *mode)
		case *mode&0o040 == 0 || sc == nil || sc.FSGroup == nil:
			t.Errorf("%s: volume %s has mode %#o, the pod fsGroup %v: liveim, not the files' owner, reads them only as their group, the pod's fsGroup", d.Name, v.Name, *mode, fsGroup(sc))
		}
	}
	// Never through an environment variable.
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
			t.Errorf("%s: %s comes from Secret %s: the NATS password goes in a file only", d.Name, e.Name, secret)
		}
	}
}

// checkNATSTLS checks that a Deployment's NATS TLS files are keys of the
// Secret: the CA always, the client certificate and key when asked.
func checkNATSTLS(t *testing.T, d *appsv1.Deployment, secret string, clientCert bool) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	want := map[string]string{"LIVEIM_NATS_TLS_CA": "ca.crt"}
	if clientCert {
		want["LIVEIM_NATS_TLS_CERT"] = "tls.crt"
		want["LIVEIM_NATS_TLS_KEY"] = "tls.key"
	}
	for env, key := range want {
		file, _ := envValue(c, env)
		src, fileKey, _ := secretFile(pod, c, file)
		if src == nil || src.SecretName != secret || fileKey != key {
			t.Errorf("%s: %s=%q, want key %s of Secret %s mounted", d.Name, env, file, key, secret)
		}
	}
}

// fsGroup returns a pod's fsGroup, "none" when it has none.
func fsGroup(sc *corev1.PodSecurityContext) string {
	if sc == nil || sc.FSGroup == nil {
		return "none"
	}
	return strconv.FormatInt(*sc.FSGroup, 10)
}

// secretFile returns the Secret volume, the Secret's key and the mount
// behind a file path in a container; a nil volume when the path is no
// file of a mounted Secret.
func secretFile(pod corev1.PodSpec, c corev1.Container, file string) (*corev1.SecretVolumeSource, string, corev1.VolumeMount) {
	if file == "" {
		return nil, "", corev1.VolumeMount{}
	}
	dir, name := path.Split(path.Clean(file))
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) != path.Clean(dir) || vm.SubPath != "" {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return v.Secret, name, vm
			}
			for _, it := range v.Secret.Items {
				if path.Clean(it.Path) == name {
					return v.Secret, it.Key, vm
				}
			}
		}
	}
	return nil, "", corev1.VolumeMount{}
}

// secretName matches environment variables named for a secret value.
var secretName = regexp.MustCompile(`(PASSWORD|PASSWD|TOKEN|SECRET)$`)

// checkNoPlainSecrets checks that no secret is in plain sight in a
// rendering: no container argument or literal environment value holds a
// value of a rendered Secret, and no variable named for a secret (…_PASSWORD,
// …_TOKEN; …_FILE names a file, which is fine) is set at all, literally or
// from a Secret: liveim reads its secrets from files.
func checkNoPlainSecrets(t *testing.T, m *manifests) {
	t.Helper()
	var values []string
	for _, s := range m.Secrets {
		for _, v := range s.Data {
			values = append(values, string(v))
		}
		for _, v := range s.StringData {
			values = append(values, v)
		}
	}
	for name, pod := range m.pods() {
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			plain := append(append([]string{}, c.Command...), c.Args...)
			for _, e := range c.Env {
				if secretName.MatchString(e.Name) {
					t.Errorf("%s/%s: %s is set: a secret belongs in a Secret, mounted as a file (the flag's -file variant)", name, c.Name, e.Name)
				}
				if e.ValueFrom == nil {
					plain = append(plain, e.Value)
				}
			}
			for _, p := range plain {
				for _, v := range values {
					if v != "" && strings.Contains(p, v) {
						t.Errorf("%s/%s: an argument or environment value holds a Secret's value", name, c.Name)
					}
				}
			}
		}
	}
}

// TestHelmScyllaTLS: the routers reach ScyllaDB over TLS with the CA (and,
// when asked, a client certificate) of a Secret, mounted as files; with
// tls.enabled alone, over TLS verified against the system roots. The
// chart had no way to mount the files the --scylla-tls-* flags name.
func TestHelmScyllaTLS(t *testing.T) {
	t.Parallel()
	router := func(m *manifests) *appsv1.Deployment {
		for _, d := range m.Deployments {
			if d.Spec.Template.Labels["app.kubernetes.io/component"] == "router" {
				return d
			}
		}
		t.Fatal("no router Deployment")
		return nil
	}
	d := router(render(t, "--set", "store.scylla.tls.existingSecret=scylla-ca", "--set", "store.scylla.tls.clientCert=true"))
	pod, c := d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]
	if v, _ := envValue(c, "LIVEIM_SCYLLA_TLS"); v != "true" {
		t.Errorf("LIVEIM_SCYLLA_TLS=%q, want true", v)
	}
	for env, key := range map[string]string{"LIVEIM_SCYLLA_TLS_CA": "ca.crt", "LIVEIM_SCYLLA_TLS_CERT": "tls.crt", "LIVEIM_SCYLLA_TLS_KEY": "tls.key"} {
		file, _ := envValue(c, env)
		if src, fileKey, _ := secretFile(pod, c, file); src == nil || src.SecretName != "scylla-ca" || fileKey != key {
			t.Errorf("%s=%q, want key %s of Secret scylla-ca mounted", env, file, key)
		}
	}
	c = router(render(t, "--set", "store.scylla.tls.enabled=true")).Spec.Template.Spec.Containers[0]
	if v, _ := envValue(c, "LIVEIM_SCYLLA_TLS"); v != "true" {
		t.Errorf("tls.enabled: LIVEIM_SCYLLA_TLS=%q, want true", v)
	}
	if _, ok := envValue(c, "LIVEIM_SCYLLA_TLS_CA"); ok {
		t.Error("tls.enabled alone names a CA file")
	}
	c = router(render(t)).Spec.Template.Spec.Containers[0]
	if _, ok := envValue(c, "LIVEIM_SCYLLA_TLS"); ok {
		t.Error("TLS to ScyllaDB by default")
	}
}
