package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/testcert"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

var liveimBin, quickstartBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liveim-bin")
	if err != nil {
		panic(err)
	}
	liveimBin = filepath.Join(dir, "liveim")
	if out, err := exec.Command("go", "build", "-o", liveimBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build liveim: %v\n%s", err, out)
		os.Exit(1)
	}
	quickstartBin = filepath.Join(dir, "quickstart")
	if out, err := exec.Command("go", "build", "-o", quickstartBin, "../../examples/quickstart").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build quickstart: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `liveim serve` on dataDir and waits until /healthz answers.
func startServe(t *testing.T, dataDir, addr, natsAddr string) *exec.Cmd {
	t.Helper()
	return startServeWith(t, dataDir, addr, natsAddr, nil)
}

// startServeWith is startServe with extra flags; with roots, the gateway
// serves TLS (--tls-cert in extra) with a certificate roots trust.
func startServeWith(t *testing.T, dataDir, addr, natsAddr string, roots *x509.CertPool, extra ...string) *exec.Cmd {
	t.Helper()
	web, wsURL, hc := "http://", "ws://", http.DefaultClient
	if roots != nil {
		web, wsURL = "https://", "wss://"
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
	}
	args := append([]string{"serve", "--data", dataDir, "--addr", addr, "--nats-listen", natsAddr, "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	cmd := exec.Command(liveimBin, args...)
	cmd.Stderr = os.Stderr
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
		var sb strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			sb.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "  liveim token") {
				banner <- sb.String()
			}
		}
	}()
	select {
	case b := <-banner:
		if !strings.Contains(b, "  WebSocket:  "+wsURL+addr+"/ws") || !strings.Contains(b, "  demo page:  "+web+addr+"/") {
			t.Fatalf("banner does not say how to connect:\n%s", b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("liveim serve printed no banner")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(web + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("liveim serve not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("liveim serve exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("liveim serve did not stop on SIGTERM")
	}
}

// tokenFor runs `liveim token` and turns its JSON into login credentials.
func tokenFor(t *testing.T, dataDir, user, role string) (demoapp.TokenReply, *liveimpb.UserAuth) {
	t.Helper()
	args := []string{"token", "--data", dataDir, "--user", user}
	if role != "" {
		args = append(args, "--role", role)
	}
	out, err := exec.Command(liveimBin, args...).Output()
	if err != nil {
		t.Fatalf("liveim token: %v", err)
	}
	var tr demoapp.TokenReply
	if err := json.Unmarshal(out, &tr); err != nil {
		t.Fatalf("liveim token output %q: %v", out, err)
	}
	return tr, &liveimpb.UserAuth{Timestamp: tr.Auth.Timestamp, Nonce: tr.Auth.Nonce, Role: tr.Auth.Role, Token: tr.AppToken}
}

func loginVia(t *testing.T, dataDir, user, role string) *client.Client {
	t.Helper()
	return loginWith(t, dataDir, user, role, ws.DefaultDialer)
}

// loginWith logs user in through the URL the demo app's appSign
// advertises, dialled with d.
func loginWith(t *testing.T, dataDir, user, role string, d ws.Dialer) *client.Client {
	t.Helper()
	tr, ua := tokenFor(t, dataDir, user, role)
	sign, err := auth.ParseAppSign(tr.AppSign)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.DialWith(ctx, d, sign.URLs[0]) // the URL the appSign advertises
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	if _, err := cl.Login(ctx, client.Login{AppID: tr.AppID, UserID: user, Auth: ua}); err != nil {
		t.Fatalf("login: %v", err)
	}
	return cl
}

func TestServeKeepsGroupsAndMessagesAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	addr, natsAddr := freeAddr(t), freeAddr(t)
	srv := startServe(t, dataDir, addr, natsAddr)

	// `liveim app` prints the demo app; its appSign names this server.
	out, err := exec.Command(liveimBin, "app", "--data", dataDir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var app demoapp.Info
	if err := json.Unmarshal(out, &app); err != nil || app.AppID != demoapp.ID || app.AppKey == "" {
		t.Fatalf("liveim app printed %q (%v)", out, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := loginVia(t, dataDir, "alice", "admin")
	if _, err := alice.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: "live-1", GroupName: "Launch", GroupMeta: `{"cover":"x"}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.JoinGroup(ctx, "live-1"); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for i := range 5 {
		rep, err := alice.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live-1", Type: 10001, Data: fmt.Sprintf("msg %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, rep.MessageId)
	}
	if _, err := alice.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live-1", Type: 10001, Data: "live only", NoStorage: true}); err != nil {
		t.Fatal(err)
	}
	_ = alice.Close()
	stopServe(t, srv)

	srv = startServe(t, dataDir, addr, natsAddr)
	defer stopServe(t, srv)
	bob := loginVia(t, dataDir, "bob", "")
	info, err := bob.JoinGroup(ctx, "live-1")
	if err != nil {
		t.Fatalf("join after restart: %v", err)
	}
	if info.GroupName != "Launch" || info.GroupMeta != `{"cover":"x"}` || info.Creator != "alice" {
		t.Fatalf("group after restart: %+v", info)
	}
	list, err := bob.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "live-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.MessageList) != len(sent) {
		t.Fatalf("after restart %d recent messages, want %d", len(list.MessageList), len(sent))
	}
	for i, m := range list.MessageList {
		if m.MessageId != sent[i] || m.Data != fmt.Sprintf("msg %d", i) {
			t.Fatalf("recent[%d] = %s %q, want %s", i, m.MessageId, m.Data, sent[i])
		}
	}
	// Sequencing continues above everything handed out before the restart.
	rep, err := bob.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live-1", Type: 10001, Data: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if last := list.MessageList[len(list.MessageList)-1].Seqnum; rep.Seqnum <= last+1 {
		t.Fatalf("seqnum after restart %d, want above %d (the noStorage message took %d)", rep.Seqnum, last+1, last+1)
	}
}

// TestServeTLS: `liveim serve --tls-cert --tls-key` serves https:// and
// wss:// itself, advertises wss:// in the demo app's appSign, and real
// TLS WebSocket clients chat through it.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, roots := testcert.Write(t)
	dataDir := t.TempDir()
	addr, natsAddr := freeAddr(t), freeAddr(t)
	srv := startServeWith(t, dataDir, addr, natsAddr, roots, "--tls-cert", certFile, "--tls-key", keyFile)
	defer stopServe(t, srv)

	d := ws.Dialer{TLSConfig: &tls.Config{RootCAs: roots}}
	alice := loginWith(t, dataDir, "alice", "admin", d)
	bob := loginWith(t, dataDir, "bob", "", d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := alice.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: "tls-1", GroupName: "Secure"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{alice, bob} {
		if _, err := cl.JoinGroup(ctx, "tls-1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "tls-1", Type: 10001, Data: "over wss"}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-bob.Events():
			if m := ev.GetGroupMessage(); m != nil {
				if m.Data != "over wss" {
					t.Fatalf("bob got %q", m.Data)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("bob got no message over wss://")
		}
	}
}

// TestReadmeQuickStart runs the README's quick start against a real
// `liveim serve`: token from the CLI, then the Go client example.
func TestReadmeQuickStart(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServe(t, dataDir, freeAddr(t), freeAddr(t))
	defer stopServe(t, srv)
	tok, err := exec.Command(liveimBin, "token", "--data", dataDir, "--user", "alice", "--role", "admin").Output()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alice.json")
	if err := os.WriteFile(file, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(quickstartBin, file).CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	if want := "received in quickstart from alice (seqnum 1): hello, live room"; !strings.Contains(string(out), want) {
		t.Fatalf("quickstart printed %q, want %q", out, want)
	}
}

// TestBench runs `liveim bench` end to end on a small idle run: it starts
// its own server and a second gateway, spreads clients over two worker
// processes and reads the servers from /proc.
func TestBench(t *testing.T) {
	out, err := exec.Command(liveimBin, "bench", "--scenario", "idle", "--connections", "300", "--per-worker", "200",
		"--gateways", "2", "--rooms", "5", "--settle", "500ms", "--json").Output()
	if err != nil {
		t.Fatalf("liveim bench: %v", err)
	}
	var r struct {
		Scenario        string  `json:"scenario"`
		Connections     int     `json:"connections"`
		Gateways        int     `json:"gateways"`
		Errors          int     `json:"errors"`
		LoginsPerSec    float64 `json:"logins_per_sec"`
		RSSBytesPerConn float64 `json:"rss_bytes_per_conn"`
		CPUSeconds      float64 `json:"cpu_seconds"`
		ServerRSSBytes  int64   `json:"server_rss_bytes"`
		HeapPerConn     float64 `json:"heap_bytes_per_conn"`
		Processes       []struct {
			Role      string `json:"role"`
			Clients   bool   `json:"clients"`
			HeapBytes int64  `json:"heap_bytes"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("liveim bench printed %q: %v", out, err)
	}
	if r.Scenario != "idle" || r.Connections != 300 || r.Gateways != 2 || r.Errors != 0 || r.LoginsPerSec <= 0 || r.ServerRSSBytes <= 0 || r.CPUSeconds <= 0 {
		t.Fatalf("bench result %+v", r)
	}
	// With an extra gateway the clients are all on it: its figures are a
	// gateway's alone.
	if len(r.Processes) != 2 || r.Processes[0].Role != "serve" || r.Processes[0].Clients ||
		r.Processes[1].Role != "gateway" || !r.Processes[1].Clients || r.Processes[1].HeapBytes <= 0 || r.HeapPerConn <= 0 {
		t.Fatalf("bench processes %+v, heap per connection %v", r.Processes, r.HeapPerConn)
	}
}

// TestBenchSends runs the rooms and c2c scenarios small: the workers'
// clients send, every message reaches every member once.
func TestBenchSends(t *testing.T) {
	for _, run := range [][]string{{"rooms"}, {"rooms", "--no-storage"}, {"rooms", "--read-interval", "20ms"}, {"c2c"}} {
		scenario := strings.Join(run, "")
		t.Run(scenario, func(t *testing.T) {
			out, err := exec.Command(liveimBin, append([]string{"bench", "--scenario", run[0], "--connections", "200", "--rooms", "20",
				"--per-worker", "120", "--rate", "200", "--duration", "1s", "--json"}, run[1:]...)...).Output()
			if err != nil {
				t.Fatalf("liveim bench: %v", err)
			}
			var r struct {
				Scenario         string  `json:"scenario"`
				Errors           int     `json:"errors"`
				Stored           int64   `json:"stored"`
				FrameWriteP99Ms  float64 `json:"frame_write_p99_ms"`
				CPUPerMessage    float64 `json:"cpu_us_per_message"`
				Unavailable      int     `json:"unavailable"`
				Sent             int64   `json:"sent"`
				Rejected         int64   `json:"rejected"`
				DeliveriesPerSec float64 `json:"deliveries_per_sec"`
				P99Ms            float64 `json:"p99_ms"`
				HighLost         int     `json:"high_lost"`
				HighDuplicated   int     `json:"high_duplicated"`
				NormalDropped    int     `json:"normal_dropped"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("liveim bench printed %q: %v", out, err)
			}
			if r.Errors != 0 || r.Sent < 100 || r.Rejected != 0 || r.DeliveriesPerSec <= 0 || r.P99Ms <= 0 ||
				r.HighLost != 0 || r.HighDuplicated != 0 || r.NormalDropped != 0 {
				t.Fatalf("%s result %+v", scenario, r)
			}
			if r.CPUPerMessage <= 0 || r.Unavailable != 0 {
				t.Fatalf("%s: %.0f µs of server CPU per message, %d router 503s", scenario, r.CPUPerMessage, r.Unavailable)
			}
			// Group messages are stored unless the run says otherwise, in
			// its name too; every room frame's time in the gateway shows.
			switch scenario {
			case "rooms":
				// (a message stored in the instant between the last scrape
				// and the workers' report is delivered but not counted)
				if r.Scenario != "rooms" || r.Stored > r.Sent || r.Stored < r.Sent*9/10 || r.FrameWriteP99Ms <= 0 {
					t.Fatalf("rooms: scenario %q, %d of %d messages stored, broadcast p99 %.3f ms", r.Scenario, r.Stored, r.Sent, r.FrameWriteP99Ms)
				}
			case "rooms--no-storage":
				if r.Scenario != "rooms-nostorage" || r.Stored != 0 {
					t.Fatalf("rooms --no-storage: scenario %q, %d of %d messages stored", r.Scenario, r.Stored, r.Sent)
				}
			}
		})
	}
}

// TestBenchFanout runs a small fanout: every member receives every
// message; none is lost or duplicated at this load.
func TestBenchFanout(t *testing.T) {
	out, err := exec.Command(liveimBin, "bench", "--scenario", "fanout", "--members", "200", "--per-worker", "120",
		"--rate", "50", "--duration", "1s", "--json").Output()
	if err != nil {
		t.Fatalf("liveim bench: %v", err)
	}
	var r struct {
		Errors           int     `json:"errors"`
		DeliveriesPerSec float64 `json:"deliveries_per_sec"`
		P50Ms            float64 `json:"p50_ms"`
		P99Ms            float64 `json:"p99_ms"`
		HighLost         int     `json:"high_lost"`
		HighDuplicated   int     `json:"high_duplicated"`
		NormalDropped    int     `json:"normal_dropped"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("liveim bench printed %q: %v", out, err)
	}
	if r.Errors != 0 || r.DeliveriesPerSec <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.HighLost != 0 || r.HighDuplicated != 0 || r.NormalDropped != 0 {
		t.Fatalf("fanout result %+v", r)
	}
}

// TestServeBehindAProxyHasNoDevEndpoints: the documented single node
// behind a TLS proxy is `liveim serve --public-url wss://im.example.com/ws`
// with the gateway on its default loopback address; the proxy forwards
// the world's requests with the public Host. Development mode must not
// come on by itself there: /dev/token mints admin tokens for any user.
func TestServeBehindAProxyHasNoDevEndpoints(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(liveimBin, "serve", "--data", t.TempDir(), "--addr", addr, "--nats-listen", freeAddr(t),
		"--http-addr", "127.0.0.1:0", "--log-level", "warn", "--public-url", "wss://im.example.com/ws")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var resp *http.Response
	testcluster.WaitFor(t, time.Minute, func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/dev/token?user=alice&role=admin", nil)
		req.Host = "im.example.com" // what the proxy forwards for https://im.example.com/dev/token
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		if r.StatusCode == http.StatusServiceUnavailable { // not serving yet
			r.Body.Close()
			return errors.New(r.Status)
		}
		resp = r
		return nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("a request through the proxy got a token: %s", body)
	}
}

func TestLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{
		"ws://127.0.0.1:8080/ws": true, "ws://localhost:8080/ws": true, "ws://[::1]:8080/ws": true,
		"wss://im.example.com/ws": false, "ws://10.0.0.5:8080/ws": false, "ws://0.0.0.0:8080/ws": false, "::": false,
	} {
		if got := loopbackURL(u); got != want {
			t.Errorf("loopbackURL(%q) = %v, want %v", u, got, want)
		}
	}
}
