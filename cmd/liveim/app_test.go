package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
)

// startServeAPI starts liveim serve with its internal listener (and so
// the server API) on a known address, and waits until the API answers.
func startServeAPI(t *testing.T, dataDir string) (gwAddr, apiURL string) {
	t.Helper()
	gwAddr, opsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(liveimBin, "serve", "--data", dataDir, "--addr", gwAddr, "--nats-listen", freeAddr(t), "--http-addr", opsAddr, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	apiURL = "http://" + opsAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Post(apiURL+"/api/v1/groups", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized { // up, and wants a signature
				return gwAddr, apiURL
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server API did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appCLI runs `liveim app ARGS --api URL --admin-key-file F` and decodes
// its JSON.
func appCLI(t *testing.T, apiURL, keyFile string, out any, args ...string) error {
	t.Helper()
	args = append(append([]string{"app"}, args...), "--api", apiURL, "--admin-key-file", keyFile)
	b, err := exec.Command(liveimBin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return errors.New(string(ee.Stderr))
		}
		return err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("liveim %v printed %q: %v", args, b, err)
		}
	}
	return nil
}

// TestAppCLI: `liveim app` creates, lists, shows, changes, re-keys and
// disables apps of a running liveim serve through its admin API, and what
// it does shows in the server API.
func TestAppCLI(t *testing.T) {
	data := t.TempDir()
	gwAddr, api := startServeAPI(t, data)
	keyFile := filepath.Join(data, serverapi.AdminKeyFile)
	run := func(out any, args ...string) {
		t.Helper()
		if err := appCLI(t, api, keyFile, out, args...); err != nil {
			t.Fatalf("liveim app %v: %v", args, err)
		}
	}

	// The demo app was made through the same path, with this gateway's URL.
	var demo serverapi.AppView
	run(&demo, "show", "demo")
	if !slices.Equal(demo.GatewayURLs, []string{"ws://" + gwAddr + "/ws"}) || demo.AppSign == "" {
		t.Fatalf("demo app: %+v", demo)
	}

	var shop serverapi.AppView
	run(&shop, "create", "--id", "shop", "--callback-url", "http://127.0.0.1:9/events", "--callback-events", "group.message,group.join", "--retention-days", "7", "--max-token-lifetime", "2h")
	if shop.ID != "shop" || len(shop.Key) != 64 || shop.CallbackURL != "http://127.0.0.1:9/events" ||
		!slices.Equal(shop.CallbackEvents, []string{"group.join", "group.message"}) || shop.RetentionDays != 7 || shop.MaxTokenLifetimeSec != 7200 {
		t.Fatalf("created: %+v", shop)
	}
	if err := appCLI(t, api, keyFile, nil, "create", "--id", "shop"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("creating shop again: %v", err)
	}
	var list struct {
		Apps []serverapi.AppView `json:"apps"`
	}
	run(&list, "list")
	var ids []string
	for _, a := range list.Apps {
		ids = append(ids, a.ID)
	}
	if !slices.Contains(ids, "demo") || !slices.Contains(ids, "shop") {
		t.Fatalf("list: %v", ids)
	}

	var changed serverapi.AppView
	run(&changed, "set", "shop", "--multi-device")
	if !changed.MultiDevice || changed.CallbackURL != shop.CallbackURL || changed.Key != shop.Key {
		t.Fatalf("set changed more than asked: %+v", changed)
	}

	// Rotation: the new key works at once, the old one through the grace.
	var rotated serverapi.AppView
	run(&rotated, "rotate-key", "shop", "--grace", "1h")
	if rotated.Key == shop.Key || rotated.PreviousKey != shop.Key {
		t.Fatalf("rotated: %+v", rotated)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, key := range []string{rotated.Key, shop.Key} {
		if err := apiclient.New(api, apiclient.App("shop", key)).Do(ctx, "POST", "/groups", nil, map[string]any{"group_id": "g1", "group_name": "G"}, nil); err != nil {
			t.Fatalf("with key %s…: %v", key[:8], err)
		}
	}
	if err := apiclient.New(api, apiclient.App("shop", "not-the-key")).Do(ctx, "GET", "/groups", nil, nil, nil); !errors.Is(err, liveimpb.ErrUnauthorized) {
		t.Fatalf("a wrong key: %v", err)
	}

	var disabled serverapi.AppView
	run(&disabled, "disable", "shop")
	if !disabled.Disabled {
		t.Fatalf("disable: %+v", disabled)
	}
	if err := apiclient.New(api, apiclient.App("shop", rotated.Key)).Do(ctx, "GET", "/groups", nil, nil, nil); !errors.Is(err, liveimpb.ErrForbidden) {
		t.Fatalf("a disabled app's server API call: %v", err)
	}

	// Without the admin key nothing happens.
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	_ = os.WriteFile(wrong, []byte("0123456789abcdef0123"), 0o600)
	if err := appCLI(t, api, wrong, nil, "list"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrong admin key: %v", err)
	}
}

// TestAppCLIFirstApp: what the Helm hook Job runs, `app create --id ID
// --if-missing --no-key`, creates the app once, leaves it as it is the
// second time, and never prints a key; settings never come from LIVEIM_*
// variables meant for the router beside it.
func TestAppCLIFirstApp(t *testing.T) {
	data := t.TempDir()
	_, api := startServeAPI(t, data)
	keyFile := filepath.Join(data, serverapi.AdminKeyFile)
	t.Setenv("LIVEIM_ROOM_RATE", "7")
	t.Setenv("LIVEIM_RETENTION_DAYS", "3")
	var first, second map[string]any
	if err := appCLI(t, api, keyFile, &first, "create", "--id", "default", "--if-missing", "--no-key", "--gateway-urls", "wss://live.example.com/ws"); err != nil {
		t.Fatal(err)
	}
	if err := appCLI(t, api, keyFile, &second, "create", "--id", "default", "--if-missing", "--no-key", "--gateway-urls", "wss://other.example.com/ws"); err != nil {
		t.Fatalf("the second run: %v", err)
	}
	for _, out := range []map[string]any{first, second} {
		if _, ok := out["app_key"]; ok || out["app_id"] != "default" {
			t.Fatalf("printed %v", out)
		}
		if _, ok := out["room_rate"]; ok {
			t.Fatalf("LIVEIM_ROOM_RATE became an app setting: %v", out)
		}
	}
	if urls, _ := second["gateway_urls"].([]any); len(urls) != 1 || urls[0] != "wss://live.example.com/ws" {
		t.Fatalf("the second run changed the app: %v", second)
	}
	var shown serverapi.AppView
	if err := appCLI(t, api, keyFile, &shown, "show", "default"); err != nil || len(shown.Key) != 64 || shown.RetentionDays != 0 {
		t.Fatalf("show: %+v %v", shown, err)
	}
	if err := appCLI(t, api, keyFile, nil, "create", "--if-missing"); err == nil {
		t.Fatal("--if-missing without --id passed")
	}
}
