package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestSendsAfterNATSRestart: when every NATS node dies (kill -9) and
// comes back, as in a full restart of the NATS StatefulSet, rooms work
// again by themselves: the routers' streams and bucket (the RPC work queue
// and the routers' bucket are in memory) come back, partitions are taken
// again, and a HIGH message sent after it reaches a member. Messages of
// the room sent before are still in its history (the store).
func TestSendsAfterNATSRestart(t *testing.T) {
	c := startCluster(t, cqlHosts(t), 2, 1)
	ctx := context.Background()
	admin, err := login(ctx, c.wsURLs[0], c.app, "admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.JoinGroup(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: "before"}); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	for _, n := range c.nats {
		n.kill9()
	}
	for _, n := range c.nats {
		n.start()
	}
	restarted := time.Now()
	deadline := restarted.Add(3 * time.Minute)
	var last error
	for i := 0; ; i++ {
		if last = sendAndReceive(ctx, c, i); last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HIGH message went through within 3 minutes of the NATS restart: %v", last)
		}
		time.Sleep(time.Second)
	}
	t.Logf("a HIGH message went through %v after the NATS nodes were started again", time.Since(restarted).Round(time.Second))
	reader, err := login(ctx, c.wsURLs[0], c.app, "reader", "")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.JoinGroup(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	hist, err := reader.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "live"})
	if err != nil {
		t.Fatal(err)
	}
	var datas []string
	for _, m := range hist.MessageList {
		datas = append(datas, m.Data)
	}
	if !slices.Contains(datas, "before") {
		t.Fatalf("history after the restart: %q, want the message sent before it", datas)
	}
}

// sendAndReceive logs in a member and a sender, sends a HIGH message and
// waits for the member to get it.
func sendAndReceive(ctx context.Context, c *liveCluster, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	member, err := login(ctx, c.wsURLs[0], c.app, fmt.Sprint("member-", i), "")
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer member.Close()
	if _, err := member.JoinGroup(ctx, "live"); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	data := fmt.Sprint("after-", i)
	rep, err := member.SendGroupMessage(ctx, &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: 10001, Data: data, Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	for {
		select {
		case ev, ok := <-member.Events():
			if !ok {
				return fmt.Errorf("connection closed: %v", member.Err())
			}
			if m := ev.GetGroupMessage(); m != nil && m.Seqnum == rep.Seqnum && m.Data == data {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("message %d not received: %w", rep.Seqnum, ctx.Err())
		}
	}
}
