package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

// joinSlowMember logs user "slow" in on a socket with a tiny receive
// buffer, joins groupID, and never reads again.
func joinSlowMember(t *testing.T, url, groupID string) {
	t.Helper()
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = setRecvBuffer(fd, 4096) })
		}}
		return nd.DialContext(ctx, network, addr)
	}}
	conn, _, _, err := d.Dial(ctxT(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	slow := &rawConn{Conn: conn, r: conn}
	if err := slow.login("slow"); err != nil {
		t.Fatal(err)
	}
	if err := slow.join(groupID); err != nil {
		t.Fatal(err)
	}
}

// TestSlowSocketDropsNormalNeverHigh: a member that stops reading loses
// NORMAL messages once its queue is full; the first HIGH message that does
// not fit closes its socket instead of being dropped, and after a
// reconnect the member gets every HIGH message back.
func TestSlowSocketDropsNormalNeverHigh(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		Routers: 2, Gateways: 2,
		// Resume replies of 4 messages (48 KiB) fit the member's queue.
		Router: router.Config{RoomRate: 1e6, ResumeBatch: 4},
		// The slow member's gateway has a small queue. The sender's keeps
		// the default: the sender gets its own messages too, and with a
		// small queue a moment without reading closed it as well (ci-local
		// saw "connection closed" at the sender once).
		GatewayConfig: func(i int, cfg gateway.Config) gateway.Config {
			if i == 0 {
				cfg.OutboundQueueBytes = 64 << 10
			}
			return cfg
		},
	})
	sender := c.Login(t, 1, "sender", "admin")
	createGroup(t, sender, "live")
	join(t, sender, "live")

	// The slow member: a tiny receive buffer, and it never reads.
	joinSlowMember(t, c.Gateway(0).URL, "live")

	// noStorage: the test is about socket queues, and HIGH replay comes
	// from JetStream, not the history store.
	var highSeqs []int64
	sendLevel := func(level liveimpb.MessageLevel, data string) {
		rep, err := sendRetrying(ctxT(t), sender, &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: data, Level: level, NoStorage: true})
		if err != nil {
			t.Fatal(err)
		}
		if level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH {
			highSeqs = append(highSeqs, rep.Seqnum)
		}
	}
	sendLevel(liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, "first high")
	big := strings.Repeat("n", 12<<10)
	gw := c.Gateway(0)
	for i := 0; gw.Stats().DroppedFrames == 0; i++ {
		if i == 3000 {
			t.Fatal("36 MB of NORMAL messages and nothing dropped")
		}
		sendLevel(liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL, big)
	}
	if gw.Stats().Connections != 1 {
		t.Fatalf("the slow socket was closed for NORMAL traffic")
	}
	// A HIGH message that does not fit closes the socket instead of being
	// dropped (a small one would still be queued). The first drop may come
	// while the kernel can still take more (its send buffer grows, and a
	// writer catches up), so HIGH messages go on until one does not fit;
	// the resume below shows none was lost.
	for i := 0; gw.Stats().Connections != 0; i++ {
		if i == 500 {
			t.Fatal("6 MB of HIGH messages and the slow socket is still open")
		}
		sendLevel(liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH, fmt.Sprint("high ", i, big))
	}

	// It comes back and resumes: every HIGH message, in order, once.
	back := c.Login(t, 1, "slow", "")
	join(t, back, "live")
	tracker := client.NewHighTracker()
	got, _, err := tracker.Resume(ctxT(t), back, "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(highSeqs) {
		t.Fatalf("resumed %d HIGH messages, want %d", len(got), len(highSeqs))
	}
	for i, m := range got {
		if m.Seqnum != highSeqs[i] {
			t.Fatalf("HIGH %d: seqnum %d, want %d", i, m.Seqnum, highSeqs[i])
		}
	}
}

// TestChronicSlowConsumerClosed: a member whose queue stays full, with
// only NORMAL traffic, is closed once it has been dropping events for
// SlowConsumerTimeout, so it reconnects instead of silently missing the
// room for ever.
func TestChronicSlowConsumerClosed(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		Router:  router.Config{RoomRate: 1e6},
		Gateway: gateway.Config{OutboundQueueBytes: 32 << 10, SlowConsumerTimeout: 300 * time.Millisecond, MergeWindow: -1},
	})
	sender := c.Login(t, 0, "sender", "admin")
	createGroup(t, sender, "live")
	join(t, sender, "live")
	joinSlowMember(t, c.Gateway(0).URL, "live")
	gw := c.Gateway(0)
	big := strings.Repeat("n", 8<<10)
	deadline := time.Now().Add(20 * time.Second)
	var firstDrop time.Time
	for gw.Stats().Connections == 2 {
		if time.Now().After(deadline) {
			t.Fatal("the slow member was never closed")
		}
		if _, err := sender.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: big, NoStorage: true}); err != nil {
			t.Fatal(err)
		}
		if firstDrop.IsZero() && gw.Stats().DroppedFrames > 0 {
			firstDrop = time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	// Only NORMAL messages were sent: without the chronic rule this socket
	// would stay open, dropping, for ever.
	if firstDrop.IsZero() {
		t.Fatal("closed before any NORMAL message was dropped")
	}
}
