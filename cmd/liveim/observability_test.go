package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/proto/liveimpb"
)

// The Grafana dashboard and the Prometheus alert rules shipped with
// liveim.
const (
	dashboardFile = "../../deploy/observability/liveim-dashboard.json"
	alertsFile    = "../../deploy/observability/liveim-alerts.yml"
)

// metricName matches a liveim metric name in a PromQL expression.
var metricName = regexp.MustCompile(`\bliveim_[a-z0-9_]+\b`)

// TestDashboardAndAlertMetrics: every liveim metric the Grafana dashboard
// and the alert rules query exists on the /metrics of a running `liveim
// serve` that has seen a little traffic (logins, one refused, a group, a
// NORMAL and a HIGH message, a client leaving), so neither can drift from
// the code unnoticed. (scripts/test also runs `promtool check rules` on
// the rules.)
func TestDashboardAndAlertMetrics(t *testing.T) {
	used := map[string][]string{} // metric -> files using it
	for _, name := range dashboardExprMetrics(t) {
		used[name] = append(used[name], dashboardFile)
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range metricName.FindAllString(string(rules), -1) {
		if !slices.Contains(used[name], alertsFile) {
			used[name] = append(used[name], alertsFile)
		}
	}
	if len(used) < 15 {
		t.Fatalf("the dashboard and rules name only %d liveim metrics: %v", len(used), used)
	}

	dir := t.TempDir()
	addr, ops := freeAddr(t), freeAddr(t)
	serve := exec.Command(liveimBin, "serve", "--data", dir, "--addr", addr, "--nats-listen", freeAddr(t), "--http-addr", ops, "--log-level", "warn")
	serve.Stderr = os.Stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	waitHTTP(t, "http://"+addr+"/readyz", 30*time.Second)
	app, err := demoapp.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user, token string) (*client.Client, error) {
		cl, err := client.Dial(ctxT(t), "ws://"+addr+"/ws")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		cr := auth.Issue(app.AppID, app.AppKey, user, auth.RoleAdmin, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
		if token != "" {
			cr.Token = token
		}
		_, err = cl.Login(ctxT(t), client.Login{AppID: app.AppID, UserID: user,
			Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}})
		return cl, err
	}
	if _, err := login("mallory", strings.Repeat("0", 64)); err == nil {
		t.Fatal("a wrong token logged in")
	}
	alice, err := login("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "watched", GroupName: "watched"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.JoinGroup(ctxT(t), "watched"); err != nil {
		t.Fatal(err)
	}
	for _, level := range []liveimpb.MessageLevel{liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL, liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH} {
		if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "watched", Type: 10001, Data: "hi", Level: level}); err != nil {
			t.Fatal(err)
		}
	}
	_ = alice.Close()

	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		exposed := exposedMetrics(t, "http://"+ops+"/metrics")
		missing = missing[:0]
		for name, files := range used {
			if !exposed[name] {
				missing = append(missing, fmt.Sprintf("%s (in %s)", name, strings.Join(files, ", ")))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(missing)
	t.Fatalf("metrics the dashboard or the alert rules use that liveim does not expose:\n  %s", strings.Join(missing, "\n  "))
}

// dashboardExprMetrics returns the liveim metrics named by the
// expressions of the dashboard's panels.
func dashboardExprMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var names []string
	exprs := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs++
			found := metricName.FindAllString(target.Expr, -1)
			if len(found) == 0 {
				t.Errorf("%s: panel %q queries no liveim metric: %s", dashboardFile, p.Title, target.Expr)
			}
			names = append(names, found...)
		}
	}
	if exprs == 0 {
		t.Fatalf("%s has no queries", dashboardFile)
	}
	return names
}

// exposedMetrics returns the names of the samples a /metrics page holds
// (histograms as their _bucket, _sum and _count series).
func exposedMetrics(t *testing.T, url string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(httpBody(t, url)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
