package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
	"github.com/liveim/liveim/serverapi"
)

func TestGroupLifecycle(t *testing.T) {
	c := cluster2(t, router.Config{})
	alice := c.Login(t, 0, "alice", "admin")
	bob := c.Login(t, 0, "bob", "")

	rep, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-1", GroupName: "Room", GroupMeta: "meta"})
	if err != nil || rep.GroupId != "room-1" || rep.AlreadyExist {
		t.Fatalf("create: %+v, %v", rep, err)
	}
	rep, err = alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "room-1", GroupName: "Other"})
	if err != nil || !rep.AlreadyExist {
		t.Fatalf("create again: %+v, %v; want alreadyExist", rep, err)
	}
	gen, err := alice.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupName: "Generated"})
	if err != nil || gen.GroupId == "" || gen.AlreadyExist {
		t.Fatalf("create with empty id: %+v, %v", gen, err)
	}
	if _, err := bob.JoinGroup(ctxT(t), gen.GroupId); err != nil {
		t.Fatalf("join generated group: %v", err)
	}

	info := join(t, bob, "room-1")
	if info.GroupName != "Room" || info.GroupMeta != "meta" || info.Creator != "alice" || info.Statistics.GetPv() != 1 {
		t.Fatalf("join info: %+v", info)
	}
	join(t, alice, "room-1")
	q, err := bob.QueryGroup(ctxT(t), "room-1")
	if err != nil || q.Statistics.GetPv() != 2 || q.GroupName != "Room" {
		t.Fatalf("query: %+v, %v", q, err)
	}
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "like", RepeatCount: 5}); err != nil {
		t.Fatal(err)
	}
	m := testcluster.NextEvent(t, bob, 10*time.Second, isGroupMessage).GetGroupMessage()
	if m.RepeatCount != 5 || m.TotalMsgs != 5 {
		t.Fatalf("repeat: %+v", m)
	}
	q, _ = bob.QueryGroup(ctxT(t), "room-1")
	if got := q.Statistics.GetMsgAmount()[chatType]; got != 5 {
		t.Fatalf("msgAmount[%d] = %d, want 5", chatType, got)
	}

	if err := bob.LeaveGroup(ctxT(t), "room-1"); err != nil {
		t.Fatal(err)
	}
	if err := bob.LeaveGroup(ctxT(t), "room-1"); testcluster.ErrCode(err) != 425 {
		t.Fatalf("second leave: %v, want 425", err)
	}
	if _, err := bob.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "x"}); testcluster.ErrCode(err) != 425 {
		t.Fatalf("send after leave: %v, want 425", err)
	}
	if _, err := bob.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room-1"}); testcluster.ErrCode(err) != 425 {
		t.Fatalf("listRecentMessage after leave: %v, want 425", err)
	}
	// After leaving, bob gets nothing more from the room; a C2C message
	// sent afterwards arrives first.
	if _, err := alice.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room-1", Type: chatType, Data: "after bob left"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "bob", Type: chatType, Data: "marker"}); err != nil {
		t.Fatal(err)
	}
	ev := testcluster.NextEvent(t, bob, 10*time.Second, func(ev *liveimpb.Event) bool {
		return ev.GetGroupMessage() != nil || ev.GetC2CMessage() != nil // memberchange may still trail in
	})
	if ev.GetC2CMessage().GetData() != "marker" {
		t.Fatalf("bob got %v after leaving, want only the C2C marker", ev)
	}
	if got := c.Gateway(0).Stats().Rooms; got != 2 {
		t.Fatalf("gateway holds %d room subscriptions, want 2 (room-1 for alice, the generated room for bob)", got)
	}
}

// TestGroupLifecycleLasts: closed groups leave the app's group quota, and
// creating a group whose ID is closed opens it again for a new live
// session (a streamer's fixed room ID): empty of members, mutes and
// statistics, with the new name and meta and the new creator, its
// history kept and its seqnums going on.
func TestGroupLifecycleLasts(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{MaxGroups: 2}})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "stream-a")
	createGroup(t, owner, "stream-b")
	_, err := owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "stream-c", GroupName: "c"})
	wantCode(t, err, 443)
	join(t, owner, "stream-a")
	first := send(t, owner, "stream-a", "first show")
	if _, err := owner.MuteUser(ctxT(t), "stream-a", "troll"); err != nil {
		t.Fatal(err)
	}
	if err := owner.CloseGroup(ctxT(t), "stream-a"); err != nil {
		t.Fatal(err)
	}
	// The closed group no longer counts: a third one fits.
	createGroup(t, owner, "stream-c")
	if err := owner.CloseGroup(ctxT(t), "stream-c"); err != nil {
		t.Fatal(err)
	}

	// The next show reopens stream-a, by another admin of the app.
	host := c.Login(t, 0, "host", "admin")
	rep, err := host.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "stream-a", GroupName: "Second show", GroupMeta: "m2"})
	if err != nil || rep.AlreadyExist {
		t.Fatalf("reopen: %+v, %v; want a new session (alreadyExist false)", rep, err)
	}
	info := join(t, host, "stream-a")
	if info.GroupName != "Second show" || info.GroupMeta != "m2" || info.Creator != "host" || info.Closed ||
		len(info.MuteStatus.GetMuteUserList()) != 0 || info.Statistics.Pv != 1 || info.Statistics.OnlineCount != 1 {
		t.Fatalf("reopened group: %+v", info)
	}
	second := send(t, host, "stream-a", "second show")
	if second.Seqnum <= first.Seqnum {
		t.Fatalf("seqnum %d after reopening, want above %d", second.Seqnum, first.Seqnum)
	}
	page, err := host.ListHistoryMessage(ctxT(t), &liveimpb.ListHistoryMessageRequest{GroupId: "stream-a"})
	if err != nil || len(page.MessageList) != 2 {
		t.Fatalf("history after reopening: %v, %v; want both shows", page.GetMessageList(), err)
	}
	// An open group is not reopened: createGroup says it exists.
	if rep, err := owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "stream-a", GroupName: "x"}); err != nil || !rep.AlreadyExist {
		t.Fatalf("create an open group: %+v, %v", rep, err)
	}
	// Reopening counts against the quota again: stream-a and stream-b are
	// open, so stream-c cannot reopen.
	_, err = owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "stream-c", GroupName: "c"})
	wantCode(t, err, 443)
}

// TestIdleGroupsLeaveMemory: a router keeps a group in memory while it has
// members, and otherwise until --group-idle after its last request (it
// used to keep every group it ever loaded: an app opening and closing a
// room per stream grew every router's memory, and each tick's walk, for
// as long as it ran). A group with a timed mute to announce stays too. A
// group that left is loaded again by its next request, as it was.
func TestIdleGroupsLeaveMemory(t *testing.T) {
	rc := fastPresence()
	rc.GroupIdle = time.Second
	c := testcluster.Start(t, testcluster.Options{Router: rc})
	api := c.StartAPI(0, serverapi.Config{}).AppClient()
	var sent []int64
	for i := range 10 {
		id := fmt.Sprintf("quiet-%d", i)
		do(t, api, "POST", "/groups", map[string]any{"group_id": id, "group_name": "quiet " + id, "group_meta": "m"}, nil)
		var rep struct {
			Seqnum int64 `json:"seqnum"`
		}
		do(t, api, "POST", "/groups/"+id+"/messages", map[string]any{"type": chatType, "data": "before", "client_msg_id": "a"}, &rep)
		sent = append(sent, rep.Seqnum)
	}
	do(t, api, "POST", "/groups/quiet-9/close", nil, nil)
	do(t, api, "POST", "/groups", map[string]any{"group_id": "muted", "group_name": "muted"}, nil)
	do(t, api, "POST", "/groups/muted/muted-users", map[string]any{"user_ids": []string{"troll"}, "duration_seconds": 3600}, nil)
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "live")
	join(t, owner, "live")

	testcluster.WaitFor(t, time.Minute, func() error {
		if n := c.Router(0).Stats().GroupsCached; n != 2 {
			return fmt.Errorf("%d groups cached, want live and muted", n)
		}
		return nil
	})
	// quiet-0 comes back as it was: its name, its messages, its seqnums
	// going on, and its remembered send looked up in the store.
	info := join(t, owner, "quiet-0")
	if info.GroupName != "quiet quiet-0" || info.GroupMeta != "m" {
		t.Fatalf("reloaded group: %+v", info)
	}
	var again struct {
		Seqnum int64 `json:"seqnum"`
	}
	do(t, api, "POST", "/groups/quiet-0/messages", map[string]any{"type": chatType, "data": "before", "client_msg_id": "a"}, &again)
	if again.Seqnum != sent[0] {
		t.Fatalf("a retry after the reload got seqnum %d, want the first send's %d", again.Seqnum, sent[0])
	}
	after := send(t, owner, "quiet-0", "after")
	page, err := owner.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "quiet-0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := dataOf(page.MessageList); !slices.Equal(got, []string{"before", "after"}) || after.Seqnum <= sent[0] {
		t.Fatalf("messages %q, seqnum after the reload %d (before %d)", got, after.Seqnum, sent[0])
	}
	if _, err := owner.JoinGroup(ctxT(t), "quiet-9"); testcluster.ErrCode(err) != 441 {
		t.Fatalf("joining the closed group after it left memory: %v, want 441", err)
	}
}
