package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

const chatType = 10001

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createGroup(t testing.TB, cl *client.Client, groupID string) {
	t.Helper()
	if _, err := cl.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: groupID, GroupName: "room " + groupID}); err != nil {
		t.Fatalf("createGroup %s: %v", groupID, err)
	}
}

func join(t testing.TB, cl *client.Client, groupID string) *liveimpb.GroupInfo {
	t.Helper()
	info, err := cl.JoinGroup(ctxT(t), groupID)
	if err != nil {
		t.Fatalf("joinGroup %s: %v", groupID, err)
	}
	return info
}

func isGroupMessage(ev *liveimpb.Event) bool { return ev.GetGroupMessage() != nil }

// collect reads n group messages from cl.
func collect(t testing.TB, cl *client.Client, n int) []*liveimpb.Message {
	t.Helper()
	out := make([]*liveimpb.Message, 0, n)
	for len(out) < n {
		out = append(out, testcluster.NextEvent(t, cl, 10*time.Second, isGroupMessage).GetGroupMessage())
	}
	return out
}

func TestTwoUsersInOneRoomSeeEachOtherInOrder(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 0, "bob", "")
	carol := c.Login(t, 0, "carol", "")
	createGroup(t, alice, "room-1")
	createGroup(t, alice, "room-2")
	join(t, alice, "room-1")
	join(t, bob, "room-1")
	join(t, carol, "room-2")

	const perSender = 50
	errs := make(chan error, 2)
	for _, s := range []struct {
		cl   *client.Client
		name string
	}{{alice, "alice"}, {bob, "bob"}} {
		go func() {
			for i := range perSender {
				_, err := s.cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{
					GroupId: "room-1", Type: chatType, Data: fmt.Sprintf("%s-%d", s.name, i),
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	fromAlice := collect(t, alice, 2*perSender)
	fromBob := collect(t, bob, 2*perSender)
	for i := range fromAlice {
		a, b := fromAlice[i], fromBob[i]
		if a.MessageId != b.MessageId {
			t.Fatalf("message %d: alice saw %s (%q), bob saw %s (%q)", i, a.MessageId, a.Data, b.MessageId, b.Data)
		}
		if i > 0 && a.Seqnum <= fromAlice[i-1].Seqnum {
			t.Fatalf("seqnum not increasing at %d: %d after %d", i, a.Seqnum, fromAlice[i-1].Seqnum)
		}
	}
	// Each sender's own messages arrive in the order they were sent.
	for _, name := range []string{"alice", "bob"} {
		next := 0
		for _, m := range fromAlice {
			if strings.HasPrefix(m.Data, name+"-") {
				if want := fmt.Sprintf("%s-%d", name, next); m.Data != want {
					t.Fatalf("got %q, want %q", m.Data, want)
				}
				if m.Sender.GetUserId() != name || m.GroupId != "room-1" || m.Type != chatType {
					t.Fatalf("bad message fields: %+v", m)
				}
				next++
			}
		}
		if next != perSender {
			t.Fatalf("%s: saw %d of own messages, want %d", name, next, perSender)
		}
	}
	// Carol, in another room, saw none of it: her first group message is
	// the one sent to her room afterwards.
	join(t, alice, "room-2")
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-2", Type: chatType, Data: "hello room 2"}); err != nil {
		t.Fatal(err)
	}
	got := testcluster.NextEvent(t, carol, 10*time.Second, isGroupMessage).GetGroupMessage()
	if got.GroupId != "room-2" || got.Data != "hello room 2" {
		t.Fatalf("carol got %q in %s, want only room-2 traffic", got.Data, got.GroupId)
	}
}

func TestC2C(t *testing.T) {
	c := cluster2(t, router.Config{})
	alice := c.Login(t, 0, "alice", "")
	bob := c.Login(t, 1, "bob", "") // on the other gateway

	rep, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "bob", Type: chatType, Data: "hi bob"})
	if err != nil {
		t.Fatalf("c2c to online user: %v", err)
	}
	ev := testcluster.NextEvent(t, bob, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetC2CMessage() != nil })
	m := ev.GetC2CMessage()
	if m.Data != "hi bob" || m.Sender.GetUserId() != "alice" || m.MessageId != rep.MessageId || m.ReceiverId != "bob" {
		t.Fatalf("bob got %+v, want alice's message %s", m, rep.MessageId)
	}

	_, err = alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "dave", Type: chatType, Data: "hi dave"})
	if code := testcluster.ErrCode(err); code != 424 {
		t.Fatalf("c2c to offline user: err %v (code %d), want 424", err, code)
	}

	// After bob leaves, he is offline.
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 10*time.Second, func() error {
		_, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "bob", Type: chatType, Data: "still there?"})
		if code := testcluster.ErrCode(err); code != 424 {
			return fmt.Errorf("err %v, want 424", err)
		}
		return nil
	})
}
