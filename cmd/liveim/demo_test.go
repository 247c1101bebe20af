package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demo"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
)

// startDemo runs `liveim demo --addr <free port> ARGS` and waits for its
// banner, which it prints once it holds the app and listens. It returns
// the listen address and the process.
func startDemo(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	addr, cmd, banner, _ := launchDemo(t, args...)
	awaitBanner(t, addr, banner)
	return addr, cmd
}

// launchDemo starts `liveim demo --addr <free port> ARGS`; the channel
// gets its banner's page line, and is closed when its output ends; the
// buffer collects its log.
func launchDemo(t *testing.T, args ...string) (string, *exec.Cmd, <-chan string, *lockedBuffer) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(liveimBin, append([]string{"demo", "--addr", addr, "--log-level", "warn"}, args...)...)
	log := &lockedBuffer{}
	cmd.Stderr = io.MultiWriter(os.Stderr, log)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	banner := make(chan string, 1)
	go func() {
		defer close(banner)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "  demo page:") {
				banner <- sc.Text()
			}
		}
	}()
	return addr, cmd, banner, log
}

// pollUntil calls cond until it returns nil, failing the test with its
// last error after timeout.
func pollUntil(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitBanner waits for a demo's banner and checks it names its page.
func awaitBanner(t *testing.T, addr string, banner <-chan string) {
	t.Helper()
	select {
	case line, ok := <-banner:
		if !ok {
			t.Fatal("liveim demo exited without its banner")
		}
		if !strings.Contains(line, "http://"+addr+"/") {
			t.Fatalf("banner %q does not name http://%s/", line, addr)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("liveim demo printed no banner")
	}
}

// demoToken asks a demo's /dev/token for a user's login, with the Host
// header host (empty: the address itself). It returns the status and the
// reply.
func demoToken(t *testing.T, addr, host, user, role string) (int, demoapp.TokenReply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/dev/token?user="+user+"&role="+role, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr demoapp.TokenReply
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tr
}

// loginWithToken logs in at the first gateway URL of the reply's appSign,
// as the page does.
func loginWithToken(t *testing.T, tr demoapp.TokenReply) *client.Client {
	t.Helper()
	sign, err := auth.ParseAppSign(tr.AppSign)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, sign.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	ua := &liveimpb.UserAuth{Timestamp: tr.Auth.Timestamp, Nonce: tr.Auth.Nonce, Role: tr.Auth.Role, Token: tr.AppToken}
	if _, err := cl.Login(ctx, client.Login{AppID: tr.AppID, UserID: tr.Auth.UserID, Auth: ua}); err != nil {
		t.Fatalf("login of %s to app %s at %s: %v", tr.Auth.UserID, tr.AppID, sign.URLs[0], err)
	}
	return cl
}

// TestDemo runs `liveim demo` as an app's backend next to a real `liveim
// serve`: started before any router answers, it waits for the server API,
// creates its app there and mints tokens the gateway accepts; another one
// finds the app and changes only its gateway URLs; one reads an app file
// that `liveim app create` printed; a wrong admin key stops it at once.
// The first one kicks and mutes through the server API (/dev/kick,
// /dev/mute); the one on an app file has no server API to do it with.
func TestDemo(t *testing.T) {
	data := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	if err := os.WriteFile(keyFile, []byte(serverapi.NewKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gwAddr, opsAddr := freeAddr(t), freeAddr(t)
	api, gwURL := "http://"+opsAddr, "ws://"+gwAddr+"/ws"

	// The demo starts first, and tries the server API (and another
	// address, where nothing ever listens) in vain before serve starts.
	demoAddr, demoProc, banner, demoLog := launchDemo(t, "--api", "http://"+freeAddr(t)+","+api, "--admin-key-file", keyFile, "--app", "shop", "--gateway-urls", gwURL)
	pollUntil(t, 30*time.Second, func() error {
		if !strings.Contains(demoLog.String(), `"api":"`+api+`"`) {
			return errors.New("liveim demo has not tried " + api + " yet")
		}
		return nil
	})
	serve := exec.Command(liveimBin, "serve", "--data", data, "--addr", gwAddr, "--http-addr", opsAddr,
		"--nats-listen", freeAddr(t), "--admin-key-file", keyFile, "--log-level", "warn")
	serve.Stderr = os.Stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	awaitBanner(t, demoAddr, banner)

	// The page, and tokens for Hosts of this server only.
	page, err := http.Get("http://" + demoAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(body), "liveim-im.iife.js") {
		t.Fatalf("GET /: %d %.200s", page.StatusCode, body)
	}
	_, port, _ := strings.Cut(demoAddr, ":")
	for _, host := range []string{"attacker.example:" + port, "liveim.example:" + port} {
		if code, _ := demoToken(t, demoAddr, host, "mallory", "admin"); code != http.StatusForbidden {
			t.Errorf("/dev/token with Host %s: %d, want 403", host, code)
		}
	}
	code, tr := demoToken(t, demoAddr, "localhost:"+port, "alice", "admin")
	if code != http.StatusOK || tr.AppID != "shop" {
		t.Fatalf("/dev/token: %d %+v", code, tr)
	}

	// The app is in the cluster, with the demo's gateway URL, and its key
	// signed the token, which the gateway accepts.
	var shop serverapi.AppView
	if err := appCLI(t, api, keyFile, &shop, "show", "shop"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shop.GatewayURLs, []string{gwURL}) || shop.AppSign != tr.AppSign {
		t.Fatalf("app shop: %+v; the token's appSign %s", shop, tr.AppSign)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := loginWithToken(t, tr)
	if _, err := alice.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: "stage", GroupName: "Stage"}); err != nil {
		t.Fatalf("admin token: create group: %v", err)
	}
	if code, tr := demoToken(t, demoAddr, "", "bob", ""); code != http.StatusOK {
		t.Fatalf("/dev/token for bob: %d", code)
	} else if _, err := loginWithToken(t, tr).JoinGroup(ctx, "stage"); err != nil {
		t.Fatalf("bob joins: %v", err)
	}

	// Kicks and timed mutes through the server API, as the app.
	checkDevModeration(t, demoAddr, "moderated")

	// SIGTERM stops it cleanly.
	if err := demoProc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := demoProc.Wait(); err != nil {
		t.Fatalf("liveim demo on SIGTERM: %v", err)
	}

	t.Run("existing app, other gateway URLs", func(t *testing.T) {
		urls := []string{gwURL, "wss://live.example/ws"}
		addr, _ := startDemo(t, "--api", api, "--admin-key-file", keyFile, "--app", "shop", "--gateway-urls", strings.Join(urls, ","))
		var again serverapi.AppView
		if err := appCLI(t, api, keyFile, &again, "show", "shop"); err != nil {
			t.Fatal(err)
		}
		if again.Key != shop.Key || !slices.Equal(again.GatewayURLs, urls) {
			t.Fatalf("app after a second demo: key kept %v, gateway URLs %v, want %v", again.Key == shop.Key, again.GatewayURLs, urls)
		}
		_, tr := demoToken(t, addr, "", "carol", "")
		loginWithToken(t, tr)
	})

	t.Run("app file", func(t *testing.T) {
		out, err := exec.Command(liveimBin, "app", "create", "--id", "from-file", "--gateway-urls", gwURL, "--api", api, "--admin-key-file", keyFile).Output()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "app.json")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		addr, _ := startDemo(t, "--app-file", file)
		code, tr := demoToken(t, addr, "", "dave", "")
		if code != http.StatusOK || tr.AppID != "from-file" {
			t.Fatalf("/dev/token: %d %+v", code, tr)
		}
		loginWithToken(t, tr)
		// No server API to kick or mute through.
		if status, code := demoModerate(t, addr, demo.KickPath, tr, "stage", "bob", 0); status != http.StatusForbidden || code != 403 {
			t.Errorf("/dev/kick without --api: %d code %d, want 403", status, code)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		wrongKey := filepath.Join(t.TempDir(), "wrong.key")
		if err := os.WriteFile(wrongKey, []byte(serverapi.NewKey()), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []string
			want string
		}{
			{"a wrong admin key is final", []string{"--api", api, "--admin-key-file", wrongKey}, "401"},
			{"no app", nil, "--app-file or --api"},
			{"two apps", []string{"--api", api, "--admin-key-file", keyFile, "--app-file", "x.json"}, "--app-file or --api"},
			{"no admin key", []string{"--api", api}, "--admin-key-file"},
			{"no gateway URL", []string{"--api", api, "--admin-key-file", keyFile, "--app", "no-urls"}, "no gateway URL"},
		} {
			cmd := exec.Command(liveimBin, append([]string{"demo", "--addr", freeAddr(t)}, c.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("%s: %v, stderr %q; want an exit naming %q", c.name, err, stderr.String(), c.want)
			}
		}
	})
}

// TestDemoConfig checks the flag rules without a server.
func TestDemoConfig(t *testing.T) {
	base := demoConfig{TTL: time.Hour, AppID: "demo"}
	for _, c := range []struct {
		name string
		cfg  func(demoConfig) demoConfig
		ok   bool
	}{
		{"app file", func(c demoConfig) demoConfig { c.AppFile = "app.json"; return c }, true},
		{"admin API", func(c demoConfig) demoConfig { c.API, c.AdminKeyFile = []string{"http://r:8081"}, "k"; return c }, true},
		{"bad app ID", func(c demoConfig) demoConfig {
			c.API, c.AdminKeyFile, c.AppID = []string{"http://r:8081"}, "k", "a.b"
			return c
		}, false},
		{"http gateway URL", func(c demoConfig) demoConfig {
			c.AppFile, c.GatewayURLs = "app.json", []string{"http://127.0.0.1:8080/ws"}
			return c
		}, false},
		{"TTL over the maximum", func(c demoConfig) demoConfig { c.AppFile, c.TTL = "app.json", 8*24*time.Hour; return c }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cfg(base).validate(); (err == nil) != c.ok {
				t.Fatalf("validate: %v, want ok %v", err, c.ok)
			}
		})
	}
}
