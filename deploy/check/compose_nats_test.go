package check

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	natsConfFile = "deploy/nats.conf"
	deployDoc    = "docs/deploy.md"
)

var (
	// confUser is a user of nats.conf whose password is a variable.
	confUser = regexp.MustCompile(`\{user: "([^"]+)", password: \$([A-Za-z_][A-Za-z0-9_]*)`)
	// secretAssign is a line of the NATS entrypoint setting a variable
	// from a secret's file ($$ is Compose's escape of $).
	secretAssign = regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)=\$?\$\(cat (/run/secrets/[A-Za-z0-9_.-]+)\)\s*$`)
	// allowList is a permission list in natsserver.AuthorizationConf's output.
	allowList = regexp.MustCompile(`(publish|subscribe): \{allow: (\[[^\]]*\])\}`)
)

// TestComposeNATSAuth checks NATS authentication in the Compose cluster,
// from the NATS servers' configuration to every liveim service:
//
//   - each NATS server loads deploy/nats.conf, whose authorization block is
//     exactly what liveim's natsserver.AuthorizationConf prints (the users
//     and permissions liveim's code relies on), with each password a
//     variable that the server's entrypoint reads from a Compose secret;
//   - every router and gateway logs in as its role's user with
//     --nats-password-file naming the file of that user's secret, and
//     mounts no other user's secret;
//   - the secrets' files exist and differ, and no password is in a
//     variable, a command or an entrypoint.
func TestComposeNATSAuth(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	conf, err := os.ReadFile(repoPath(t, natsConfFile))
	if err != nil {
		t.Fatal(err)
	}

	// nats.conf: user -> password variable, and the block liveim expects.
	varOf := map[string]string{}
	for _, m := range confUser.FindAllStringSubmatch(string(conf), -1) {
		varOf[m[1]] = m[2]
	}
	const routerUser, gatewayUser = "liveim-router", "liveim-gateway"
	if varOf[routerUser] == "" || varOf[gatewayUser] == "" {
		t.Fatalf("%s: users %v, want %s and %s with passwords from variables", natsConfFile, varOf, routerUser, gatewayUser)
	}
	const routerPlaceholder, gatewayPlaceholder = "deploy-check-router-password", "deploy-check-gateway-password"
	want := authorizationConf(t, routerPlaceholder, gatewayPlaceholder)
	want = strings.NewReplacer(`"`+routerPlaceholder+`"`, "$"+varOf[routerUser], `"`+gatewayPlaceholder+`"`, "$"+varOf[gatewayUser]).Replace(want)
	if !strings.Contains(string(conf), want) {
		t.Errorf("%s does not hold the authorization block of natsserver.AuthorizationConf, passwords as variables:\n%s", natsConfFile, want)
	}

	// The NATS servers: the config, and each variable from a secret.
	secretOf := map[string]string{} // NATS user -> Compose secret
	natsNames := 0
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[name]
		if !strings.HasPrefix(s.Image, "nats:") {
			continue
		}
		natsNames++
		args := serverFlags(s.Command)
		confPath := args["config"] + args["c"]
		if confPath == "" || !slices.Contains(s.Volumes, composeRel(natsConfFile)+":"+confPath+":ro") {
			t.Errorf("%s: config %q is not %s mounted read-only (volumes %v)", name, confPath, composeRel(natsConfFile), s.Volumes)
		}
		script := strings.Join(s.Entrypoint, "\n")
		if !strings.Contains(script, "exec nats-server") {
			t.Errorf("%s: entrypoint %q does not exec nats-server", name, s.Entrypoint)
		}
		fromSecret := map[string]string{} // variable -> secret
		for _, m := range secretAssign.FindAllStringSubmatch(script, -1) {
			if secret, ok := s.Secrets[m[2]]; ok {
				fromSecret[m[1]] = secret
			} else {
				t.Errorf("%s: %s is read from %s, which is no secret of the service", name, m[1], m[2])
			}
		}
		for _, user := range []string{routerUser, gatewayUser} {
			secret := fromSecret[varOf[user]]
			if secret == "" {
				t.Errorf("%s: $%s (password of %s) is set from no secret", name, varOf[user], user)
				continue
			}
			if prev, ok := secretOf[user]; ok && prev != secret {
				t.Errorf("%s: %s's password from secret %s, another NATS server's from %s", name, user, secret, prev)
			}
			secretOf[user] = secret
		}
	}
	if natsNames == 0 {
		t.Fatal("no NATS service")
	}

	// The secrets' files: present, different (a gateway must not be able
	// to log in as a router), and usable as nats.conf variables.
	passwords := map[string]string{} // secret -> password
	for _, secret := range secretOf {
		def, ok := c.Secrets[secret]
		if !ok || def.File == "" {
			t.Errorf("secret %s is not declared with a file", secret)
			continue
		}
		b, err := os.ReadFile(composeFilePath(t, def.File))
		if err != nil {
			t.Errorf("secret %s: %v", secret, err)
			continue
		}
		pw := strings.TrimSpace(string(b))
		if !regexp.MustCompile(`^[A-Za-z0-9-]*[A-Za-z-][A-Za-z0-9-]*$`).MatchString(pw) {
			t.Errorf("secret %s: the password in %s must be letters, digits and '-', not digits only (nats-server reads it as a config value)", secret, def.File)
		}
		passwords[secret] = pw
	}
	if secretOf[routerUser] == secretOf[gatewayUser] || passwords[secretOf[routerUser]] == passwords[secretOf[gatewayUser]] {
		t.Errorf("the router and gateway users share a password (secrets %s and %s)", secretOf[routerUser], secretOf[gatewayUser])
	}

	// Routers and gateways: their user, their password's file, no other.
	for _, target := range []string{"router", "gateway"} {
		user := "liveim-" + target
		for _, name := range liveimServices(c, target) {
			s := c.Services[name]
			if got := s.Environment["LIVEIM_NATS_USER"]; got != user {
				t.Errorf("%s: LIVEIM_NATS_USER=%q, want %s", name, got, user)
			}
			file := s.Environment["LIVEIM_NATS_PASSWORD_FILE"]
			if got := s.Secrets[file]; got == "" || got != secretOf[user] {
				t.Errorf("%s: LIVEIM_NATS_PASSWORD_FILE=%q is secret %q, want the file of secret %s (%s's password)", name, file, got, secretOf[user], user)
			}
			for _, secret := range s.Secrets {
				if secret != secretOf[user] && slices.Contains(slices.Collect(maps.Values(secretOf)), secret) {
					t.Errorf("%s: mounts secret %s, another NATS user's password", name, secret)
				}
			}
		}
	}

	// No password in plain sight.
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[name]
		plain := slices.Concat(s.Entrypoint, s.Command)
		for k, v := range s.Environment {
			plain = append(plain, v)
			if secretName.MatchString(k) {
				t.Errorf("%s: %s has a literal value: a password belongs in a secret's file", name, k)
			}
		}
		for _, p := range plain {
			for secret, pw := range passwords {
				if pw != "" && strings.Contains(p, pw) {
					t.Errorf("%s: a command or variable holds the password of secret %s", name, secret)
				}
			}
		}
	}
}

// TestDeployDocNATSPermissions checks that docs/deploy.md, which shows how
// to give the NATS servers liveim's users, lists the gateway's
// permissions as liveim's code has them.
func TestDeployDocNATSPermissions(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(repoPath(t, deployDoc))
	if err != nil {
		t.Fatal(err)
	}
	lists := allowList.FindAllStringSubmatch(authorizationConf(t, "r", "g"), -1)
	if len(lists) != 2 {
		t.Fatalf("natsserver.AuthorizationConf prints %d permission lists, want publish and subscribe", len(lists))
	}
	for _, l := range lists {
		if !strings.Contains(string(doc), "allow: "+l[2]) {
			t.Errorf("%s does not show the gateway's %s permissions as liveim has them: allow: %s", deployDoc, l[1], l[2])
		}
	}
}
