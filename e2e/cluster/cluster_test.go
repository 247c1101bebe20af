// Package cluster runs liveim as it runs in production: three clustered
// nats-server processes with JetStream (streams R3), routers and gateways
// as separate `liveim` processes, the store on the CQL server. The test
// keeps clients chatting while it kills and restarts processes, and checks
// what users would: no HIGH message lost or duplicated, groups in order.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/natsserver"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage/scylla"
)

var liveimBin, natsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liveim-cluster-bin")
	if err != nil {
		panic(err)
	}
	liveimBin, natsBin = filepath.Join(dir, "liveim"), filepath.Join(dir, "nats-server")
	for bin, pkg := range map[string]string{liveimBin: "../../cmd/liveim", natsBin: "github.com/nats-io/nats-server/v2"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// natsCluster starts three clustered nats-servers with JetStream and
// waits for a JetStream leader.
//
// The servers accept only liveim's two users, with the permissions of
// natsserver.LiveimUsers, so routers and gateways run with the credentials
// flags and the narrow gateway permissions of production.
func natsCluster(t *testing.T) (nodes []*proc, urls []string, creds natsCreds) {
	t.Helper()
	dir := t.TempDir()
	creds = natsCreds{router: filepath.Join(dir, "router.password"), gateway: filepath.Join(dir, "gateway.password")}
	routerPW, gatewayPW := auth.NewNonce(32), auth.NewNonce(32)
	conf := filepath.Join(dir, "nats.conf")
	for path, content := range map[string]string{creds.router: routerPW, creds.gateway: gatewayPW, conf: natsserver.AuthorizationConf(routerPW, gatewayPW)} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nodes, urls = startNATSNodes(t, conf)
	nc, err := nats.Connect(strings.Join(urls, ","), nats.UserInfo(subject.RouterUser, routerPW))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nodes, urls, creds
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startNATSNodes starts the three nodes on ports freePorts picks, each
// ready once its client and cluster ports are bound and JetStream is on.
// Their ports are in each other's arguments, so when a port turns out to
// be taken (another process bound it after freePorts let it go) it kills
// the nodes it started and starts all three again on fresh ports, up to 5
// times. Any other failure fails the test.
func startNATSNodes(t *testing.T, conf string) (nodes []*proc, urls []string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 9)
		clientPorts, clusterPorts, monitorPorts := ports[0:3], ports[3:6], ports[6:9]
		var clusterURLs []string
		urls = nil
		for i := range 3 {
			clusterURLs = append(clusterURLs, fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i]))
			urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
		}
		nodes = nil
		var err error
		for i := range 3 {
			n := &proc{t: t, name: fmt.Sprintf("nats-%d", i+1), ready: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", monitorPorts[i]), args: []string{natsBin,
				"-c", conf, "-a", "127.0.0.1", "-p", fmt.Sprint(clientPorts[i]), "-m", fmt.Sprint(monitorPorts[i]), "-js", "-sd", filepath.Join(t.TempDir(), "js"),
				"-n", fmt.Sprintf("nats-%d", i+1), "--cluster_name", "liveim",
				"-cluster", clusterURLs[i], "-routes", strings.Join(clusterURLs, ","),
			}}
			if err = n.tryStart(); err != nil {
				break
			}
			t.Cleanup(n.kill9)
			nodes = append(nodes, n)
		}
		if err == nil {
			return nodes, urls
		}
		for _, n := range nodes {
			n.kill9()
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("%v\n(attempt %d) starting the NATS nodes again with fresh ports", err, attempt)
	}
}

// natsCreds are the password files of the two NATS users.
type natsCreds struct{ router, gateway string }

// member is a client that stays in the group through every fault: when
// its connection ends it logs in again on the next gateway, rejoins,
// resumes HIGH and goes on.
type member struct {
	user     string
	gateways []string
	app      demoapp.Info

	// recalls: the sender recalls messages, so NORMAL events may be
	// recalls too; the member tracks them through resumes.
	recalls bool

	mu            sync.Mutex
	tracker       *client.HighTracker
	highs         []int64 // HIGH seqnums delivered, in delivery order
	resumed       []resumedMsg
	normals       int
	recallsLearnt int
	reconnects    int
	orderErrors   []string
}

// resumedMsg is a HIGH message a member got by resume, and when.
type resumedMsg struct {
	id string
	at time.Time
}

func (m *member) run(ctx context.Context, start int) {
	m.tracker = client.NewHighTracker()
	for i := start; ctx.Err() == nil; i++ {
		url := m.gateways[i%len(m.gateways)]
		if err := m.session(ctx, url); err != nil && ctx.Err() == nil {
			m.mu.Lock()
			m.reconnects++
			m.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// session is one connection: login, join, resume, then live events until
// the connection ends.
func (m *member) session(ctx context.Context, url string) error {
	cl, err := login(ctx, url, m.app, m.user, "")
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := cl.JoinGroup(ctx, "live")
	if err != nil {
		return err
	}
	m.tracker.Joined(info)
	resumeAt := time.Now()
	missed, deleted, err := m.tracker.Resume(ctx, cl, "live")
	m.record(missed)
	m.mu.Lock()
	for _, msg := range missed {
		m.resumed = append(m.resumed, resumedMsg{id: msg.MessageId, at: resumeAt})
	}
	m.recallsLearnt += len(deleted)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	var lastLive int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-cl.Events():
			if !ok {
				return cl.Err()
			}
			if del := ev.GetDeleteGroupMessage(); del != nil {
				m.tracker.Deleted(del)
				m.mu.Lock()
				m.recallsLearnt++
				m.mu.Unlock()
				continue
			}
			msg := ev.GetGroupMessage()
			if msg == nil {
				continue
			}
			if msg.Seqnum <= lastLive {
				m.mu.Lock()
				m.orderErrors = append(m.orderErrors, fmt.Sprintf("seqnum %d after %d on one connection", msg.Seqnum, lastLive))
				m.mu.Unlock()
			}
			lastLive = msg.Seqnum
			if msg.Level != liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
				m.mu.Lock()
				m.normals++
				m.mu.Unlock()
				continue
			}
			if m.tracker.Accept(msg) {
				m.record([]*liveimpb.Message{msg})
			}
		}
	}
}

func (m *member) record(msgs []*liveimpb.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range msgs {
		m.highs = append(m.highs, msg.Seqnum)
	}
}

func login(ctx context.Context, url string, app demoapp.Info, user, role string) (*client.Client, error) {
	return loginAs(ctx, url, app.AppID, auth.Issue(app.AppID, app.AppKey, user, role, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now()))
}

// loginAs dials url and logs in to app appID with the credentials cr.
func loginAs(ctx context.Context, url, appID string, cr auth.Credentials) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := cl.Login(ctx, client.Login{AppID: appID, UserID: cr.UserID,
		Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// sender sends a message every interval, one in three HIGH, through one
// gateway after another as they fail. A send acknowledged with a seqnum is
// accepted: every member must get it if HIGH. A send that failed may or
// may not have been accepted.
type sender struct {
	gateways []string
	app      demoapp.Info

	mu        sync.Mutex
	ackedHigh []int64
	ackedN    int
	failed    int
	firstErr  error
}

func (s *sender) run(ctx context.Context, interval time.Duration) {
	var cl *client.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, g := 0, 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if cl == nil {
			var err error
			if cl, err = login(ctx, s.gateways[g%len(s.gateways)], s.app, "sender", auth.RoleAdmin); err == nil {
				go func(events <-chan *liveimpb.Event) { // its own messages
					for range events {
					}
				}(cl.Events())
				_, err = cl.JoinGroup(ctx, "live")
			}
			if err != nil {
				if cl != nil {
					cl.Close()
					cl = nil
				}
				s.mu.Lock()
				s.failed++
				if s.firstErr == nil {
					s.firstErr = fmt.Errorf("login or join: %w", err)
				}
				s.mu.Unlock()
				g++
				continue
			}
		}
		level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
		if i%3 == 0 {
			level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
		}
		sctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		rep, err := cl.SendGroupMessage(sctx, &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: fmt.Sprint(i), Level: level})
		cancel()
		s.mu.Lock()
		switch {
		case err == nil && level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH:
			s.ackedHigh = append(s.ackedHigh, rep.Seqnum)
		case err == nil:
			s.ackedN++
		default:
			s.failed++
			if s.firstErr == nil {
				s.firstErr = err
			}
		}
		s.mu.Unlock()
		select {
		case <-cl.Done(): // the gateway went away: the next send uses another
			cl.Close()
			cl = nil
			g++
		default:
		}
	}
}

// liveCluster is a running cluster: three nats-servers, routers and
// gateways as processes, the store on the CQL server, the demo app and the
// group "live".
type liveCluster struct {
	nats, routers, gateways []*proc
	wsURLs                  []string
	app                     demoapp.Info
	storeCfg                scylla.Config
}

// cqlHosts returns the CQL server the routers of a test cluster share
// (LIVEIM_CQL_HOSTS), or skips t without one.
func cqlHosts(t *testing.T) string {
	t.Helper()
	hosts := os.Getenv("LIVEIM_CQL_HOSTS")
	if hosts == "" {
		t.Skip("LIVEIM_CQL_HOSTS is not set: routers of a cluster share the CQL store (scripts/test starts one)")
	}
	return hosts
}

// startCluster starts a cluster with a fresh keyspace on the CQL server at
// hosts, its routers with routerFlags added; it is torn down when the test
// ends.
func startCluster(t *testing.T, hosts string, nRouters, nGateways int, routerFlags ...string) *liveCluster {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	keyspace := "liveim_cluster_" + hex.EncodeToString(b[:])
	storeCfg := scylla.Config{Hosts: strings.Split(hosts, ","), Keyspace: keyspace, Consistency: "ONE", Timeout: 20 * time.Second}
	ctx := context.Background()
	store, err := scylla.Open(ctx, storeCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = scylla.DropKeyspace(context.Background(), storeCfg) })

	natsNodes, natsURLs, creds := natsCluster(t)
	natsURL := strings.Join(natsURLs, ",")
	c := &liveCluster{nats: natsNodes, storeCfg: storeCfg}
	for i := range nRouters {
		c.routers = append(c.routers, startFresh(t, func() *proc {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			return &proc{t: t, name: fmt.Sprintf("router-%d", i+1), ready: "http://" + addr + "/readyz", args: append([]string{liveimBin, "router",
				"--nats", natsURL, "--nats-user", subject.RouterUser, "--nats-password-file", creds.router, "--stream-replicas", "3", "--http-addr", addr, "--id", fmt.Sprintf("router-%d", i+1),
				"--store", "scylla", "--scylla-hosts", hosts, "--scylla-keyspace", keyspace, "--scylla-consistency", "ONE",
				"--log-level", "warn"}, routerFlags...)}
		}))
	}
	for i := range nGateways {
		var wsURL string
		c.gateways = append(c.gateways, startFresh(t, func() *proc {
			ports := freePorts(t, 2)
			addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
			wsURL = "ws://" + addr + "/ws"
			// Ready on the public port: its /readyz answers once it is bound.
			return &proc{t: t, name: fmt.Sprintf("gateway-%d", i+1), ready: "http://" + addr + "/readyz", args: []string{liveimBin, "gateway",
				"--nats", natsURL, "--nats-user", subject.GatewayUser, "--nats-password-file", creds.gateway, "--addr", addr, "--http-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--id", fmt.Sprintf("gateway-%d", i+1), "--drain-delay", "200ms",
				"--log-level", "warn"}}
		}))
		c.wsURLs = append(c.wsURLs, wsURL)
	}
	app, _, err := demoapp.Ensure(ctx, store, t.TempDir(), c.wsURLs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	c.app = app
	admin, err := login(ctx, c.wsURLs[0], app, "admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: "live", GroupName: "live"}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClusterSurvivesFaults: chat goes on through kill -9 of a gateway, of
// a router and of a NATS node, and a rolling restart of the gateways; no
// acknowledged HIGH message is lost or duplicated at any member and each
// member's HIGH messages come in seqnum order.
func TestClusterSurvivesFaults(t *testing.T) {
	hosts := cqlHosts(t)
	if testing.Short() {
		t.Skip("the cluster test takes a minute")
	}
	cl := startCluster(t, hosts, 2, 3)
	routers, gateways, natsNodes, wsURLs, app := cl.routers, cl.gateways, cl.nats, cl.wsURLs, cl.app
	ctx := context.Background()

	runCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	var members []*member
	for i := range 6 {
		m := &member{user: fmt.Sprintf("member-%d", i), gateways: wsURLs, app: app}
		members = append(members, m)
		wg.Go(func() { m.run(runCtx, i) })
	}
	time.Sleep(time.Second) // members joined
	snd := &sender{gateways: wsURLs, app: app}
	sendCtx, stopSending := context.WithCancel(ctx)
	var sendWG sync.WaitGroup
	sendWG.Go(func() { snd.run(sendCtx, 50*time.Millisecond) })

	step := func(what string, f func()) {
		time.Sleep(3 * time.Second)
		t.Log(what)
		f()
	}
	step("kill -9 gateway-1", func() { gateways[0].kill9() })
	step("gateway-1 back", func() { gateways[0].start() })
	step("kill -9 router-1", func() { routers[0].kill9() })
	step("router-1 back", func() { routers[0].start() })
	step("kill -9 nats-3", func() { natsNodes[2].kill9() })
	step("nats-3 back", func() { natsNodes[2].start() })
	step("rolling restart of the gateways", func() {
		for _, g := range gateways {
			g.term()
			g.start()
			time.Sleep(time.Second)
		}
	})
	time.Sleep(3 * time.Second)
	stopSending()
	sendWG.Wait()

	snd.mu.Lock()
	acked := append([]int64(nil), snd.ackedHigh...)
	t.Logf("sender: %d HIGH and %d NORMAL acknowledged, %d sends failed during faults (first: %v)", len(acked), snd.ackedN, snd.failed, snd.firstErr)
	snd.mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d HIGH messages acknowledged: the cluster was down most of the time", len(acked))
	}

	// Every member gets every acknowledged HIGH message, once, in order.
	checkMembers(t, members, acked, stopClients, &wg)
	for _, m := range members {
		m.mu.Lock()
		normalLoss := 1 - float64(m.normals)/float64(max(snd.ackedN, 1))
		t.Logf("%s: %d HIGH delivered, %d NORMAL (%.1f%% NORMAL lost), %d reconnects",
			m.user, len(m.highs), m.normals, 100*normalLoss, m.reconnects)
		m.mu.Unlock()
	}
}

// checkMembers waits (up to a minute) until every member got every HIGH
// seqnum of acked, then stops the members and checks each got its HIGH
// messages once, in order, and saw no seqnum go back on one connection.
func checkMembers(t *testing.T, members []*member, acked []int64, stop context.CancelFunc, wg *sync.WaitGroup) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, m := range members {
		for {
			m.mu.Lock()
			missing := missingFrom(m.highs, acked)
			m.mu.Unlock()
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d acknowledged HIGH messages never arrived, first %v", m.user, len(missing), missing[0])
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	stop()
	wg.Wait()
	for _, m := range members {
		m.mu.Lock()
		for i := 1; i < len(m.highs); i++ {
			if m.highs[i] <= m.highs[i-1] {
				t.Errorf("%s: HIGH seqnum %d delivered after %d (duplicate or out of order)", m.user, m.highs[i], m.highs[i-1])
			}
		}
		for _, e := range m.orderErrors {
			t.Errorf("%s: %s", m.user, e)
		}
		m.mu.Unlock()
	}
}

// missingFrom returns the seqnums of want absent from got.
func missingFrom(got, want []int64) []int64 {
	have := make(map[int64]bool, len(got))
	for _, s := range got {
		have[s] = true
	}
	var out []int64
	for _, s := range want {
		if !have[s] {
			out = append(out, s)
		}
	}
	return out
}
