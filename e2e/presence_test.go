package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
)

func userIDs[T interface{ GetUserId() string }](list []T) []string {
	out := make([]string, len(list))
	for i, u := range list {
		out[i] = u.GetUserId()
	}
	return out
}

// TestMembershipIsPresence: joins and leaves reach members as aggregated
// memberchange events; a lost connection leaves after the grace period,
// a reconnect inside it keeps the membership; member lists page by join
// time.
func TestMembershipIsPresence(t *testing.T) {
	c := cluster2(t, fastPresence())
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")

	// A burst of joins arrives as few memberchange events whose counts add
	// up, each with a capped list.
	const viewers = 30
	var cls []*client.Client
	for i := range viewers {
		cl := c.Login(t, i%2, fmt.Sprintf("v%02d", i), "")
		join(t, cl, "room")
		cls = append(cls, cl)
		time.Sleep(2 * time.Millisecond) // distinct join times
	}
	joined, events := int64(0), 0 // the owner's own join is counted too
	for joined < viewers+1 {
		mc := waitEvent(t, owner, memberChange)
		joined += mc.JoinCount
		events++
		if len(mc.JoinUsers) > 20 || int64(len(mc.JoinUsers)) > mc.JoinCount {
			t.Fatalf("memberchange lists %d users for %d joins", len(mc.JoinUsers), mc.JoinCount)
		}
		if joined == viewers+1 && mc.MemberCount != viewers+1 {
			t.Fatalf("memberCount %d, want %d", mc.MemberCount, viewers+1)
		}
	}
	if joined != viewers+1 || events >= viewers {
		t.Fatalf("%d joins in %d events: not aggregated", joined, events)
	}

	// listRecentGroupUser: newest first; listGroupUser pages by join time.
	recent, err := cls[0].ListRecentGroupUser(ctxT(t), "room")
	if err != nil || recent.Total != viewers+1 || recent.UserList[0].UserId != fmt.Sprintf("v%02d", viewers-1) {
		t.Fatalf("listRecentGroupUser: %+v, %v", recent, err)
	}
	for _, sort := range []liveimpb.SortType{liveimpb.SortType_SORT_TYPE_ASC, liveimpb.SortType_SORT_TYPE_DESC} {
		var all []string
		token := ""
		for page := 0; ; page++ {
			rep, err := owner.ListGroupUser(ctxT(t), &liveimpb.ListGroupUserRequest{GroupId: "room", PageSize: 7, SortType: sort, NextPageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, userIDs(rep.UserList)...)
			if !rep.HasMore {
				break
			}
			token = rep.NextPageToken
		}
		want := []string{"owner"}
		for i := range viewers {
			want = append(want, fmt.Sprintf("v%02d", i))
		}
		if sort == liveimpb.SortType_SORT_TYPE_DESC {
			slices.Reverse(want)
		}
		if !slices.Equal(all, want) {
			t.Fatalf("listGroupUser %v: %v, want %v", sort, all, want)
		}
	}
	_, err = owner.ListGroupUser(ctxT(t), &liveimpb.ListGroupUserRequest{GroupId: "room", PageSize: 51})
	wantCode(t, err, 400)
	_, err = cls[1].ListGroupUser(ctxT(t), &liveimpb.ListGroupUserRequest{GroupId: "room"})
	wantCode(t, err, 403)
	// The seed passes a number as the first page token.
	if rep, err := owner.ListGroupUser(ctxT(t), &liveimpb.ListGroupUserRequest{GroupId: "room", NextPageToken: "12", PageSize: 10}); err != nil || rep.UserList[0].UserId != "owner" {
		t.Fatalf("numeric token: %+v, %v", rep, err)
	}

	// v00 drops its connection and comes back inside the grace period: it
	// stays a member. v01 drops and does not come back: it leaves.
	_ = cls[0].Close()
	_ = cls[1].Close()
	back := c.Login(t, 1, "v00", "")
	join(t, back, "room")
	mc := waitEvent(t, owner, memberChange)
	if mc.LeaveCount != 1 || len(mc.LeaveUsers) != 1 || mc.LeaveUsers[0].UserId != "v01" || mc.JoinCount != 0 || mc.MemberCount != viewers {
		t.Fatalf("after drops: %+v, want only v01 leaving", mc)
	}
	q, _ := owner.QueryGroup(ctxT(t), "room")
	if q.Statistics.GetOnlineCount() != viewers || q.Statistics.GetPv() != viewers+1 {
		t.Fatalf("online %d pv %d, want %d and %d", q.Statistics.GetOnlineCount(), q.Statistics.GetPv(), viewers, viewers+1)
	}

	// An explicit leaveGroup leaves at once.
	if err := cls[2].LeaveGroup(ctxT(t), "room"); err != nil {
		t.Fatal(err)
	}
	if mc := waitEvent(t, owner, memberChange); mc.LeaveCount != 1 || mc.LeaveUsers[0].UserId != "v02" {
		t.Fatalf("after leaveGroup: %+v", mc)
	}
}

// TestKick: a server API kick (on one router, sent to the group's owner,
// perhaps the other) gives the user exit(groupId, 2) and takes its
// membership; without a ban the user may join again.
func TestKick(t *testing.T) {
	c := cluster2(t, fastPresence())
	owner := c.Login(t, 0, "owner", "admin")
	bad := c.Login(t, 1, "troll", "")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	join(t, bad, "room")

	api := c.StartAPI(1, serverapi.Config{}).AppClient()
	if err := api.Do(ctxT(t), "POST", "/groups/room/kick", nil, map[string]any{"user_id": "troll"}, nil); err != nil {
		t.Fatal(err)
	}
	if ex := waitEvent(t, bad, exitEvent); ex.GroupId != "room" || ex.Reason != 2 {
		t.Fatalf("exit: %+v", ex)
	}
	_, err := bad.SendGroupMessage(context.Background(), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "x"})
	wantCode(t, err, 425)
	for { // earlier joins may still be reported first
		if mc := waitEvent(t, owner, memberChange); slices.Contains(userIDs(mc.LeaveUsers), "troll") {
			break
		}
	}
	join(t, bad, "room")
}

// TestStoppedGatewayMembersLeave: when a gateway stops, its users leave
// their groups after the grace period unless they reconnect elsewhere.
func TestStoppedGatewayMembersLeave(t *testing.T) {
	c := cluster2(t, fastPresence())
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	gone := c.Login(t, 1, "gone", "")
	moved := c.Login(t, 1, "moved", "")
	join(t, gone, "room")
	join(t, moved, "room")
	for { // until the joins of owner, gone and moved were all reported
		if waitEvent(t, owner, memberChange).MemberCount == 3 {
			break
		}
	}
	if err := c.Gateway(1).Stop(); err != nil {
		t.Fatal(err)
	}
	again := c.Login(t, 0, "moved", "") // reconnects to the other gateway
	join(t, again, "room")
	mc := waitEvent(t, owner, memberChange)
	if !slices.Equal(userIDs(mc.LeaveUsers), []string{"gone"}) || mc.MemberCount != 2 {
		t.Fatalf("memberchange: %+v, want gone leaving and 2 members", mc)
	}
}

// TestHandoverSendsPendingMemberChange: joins a router has answered but
// not yet announced (the memberchange interval had not come) go out when
// the router hands the group's partition over, here by stopping; they
// were lost when a partition moved while a room filled.
func TestHandoverSendsPendingMemberChange(t *testing.T) {
	rc := fastPresence()
	rc.MemberChangeInterval = time.Hour // only the first change goes out by the clock
	c := testcluster.Start(t, testcluster.Options{Routers: 1, Gateways: 1, Router: rc})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	if mc := waitEvent(t, owner, memberChange); mc.JoinCount != 1 {
		t.Fatalf("first memberchange: %+v", mc)
	}
	join(t, c.Login(t, 0, "viewer", ""), "room")
	if err := c.Router(0).Stop(); err != nil {
		t.Fatal(err)
	}
	mc := waitEvent(t, owner, memberChange)
	if mc.JoinCount != 1 || len(mc.JoinUsers) != 1 || mc.JoinUsers[0].UserId != "viewer" || mc.MemberCount != 2 {
		t.Fatalf("memberchange on handover: %+v, want viewer's join", mc)
	}
}

// TestJoinRefusedForAKickLeavesNoMember: a join whose answer reaches the
// gateway after a kick notice for its group is refused there (the router
// may have joined the user before the kick); when the router in fact took
// the join after the kick, its member must not stay in the room with no
// connection behind it. The router is stopped so that the join waits in
// the RPC stream while the kick notice (as a router publishes it) reaches
// the gateway; a C2C event published behind the notice on the same
// connection shows the gateway has handled it.
func TestJoinRefusedForAKickLeavesNoMember(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateways: 2, Router: fastPresence(), Gateway: gateway.Config{RequestTimeout: 2 * time.Minute}})
	owner := c.Login(t, 1, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	viewer := c.Login(t, 0, "viewer", "")
	if err := c.Router(0).Stop(); err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() {
		_, err := viewer.JoinGroup(context.Background(), "room")
		joined <- err
	}()
	// The join is on its way once the gateway counts the room.
	testcluster.WaitFor(t, time.Minute, func() error {
		if n := c.Gateway(0).Stats().Rooms; n < 1 {
			return fmt.Errorf("%d rooms at the gateway", n)
		}
		return nil
	})
	nc := c.Connect()
	notice := nats.NewMsg(subject.User(testcluster.AppID, "viewer"))
	notice.Data, _ = proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{Body: &liveimpb.Event_Exit{Exit: &liveimpb.ExitEvent{GroupId: "room", Reason: liveimpb.ExitReason_EXIT_REASON_KICKED}}}}})
	notice.Header.Set(subject.HeaderKind, subject.KindKick)
	notice.Header.Set(subject.HeaderGroup, "room")
	marker := nats.NewMsg(subject.User(testcluster.AppID, "viewer"))
	marker.Data, _ = proto.Marshal(&liveimpb.ServerFrame{Body: &liveimpb.ServerFrame_Event{Event: &liveimpb.Event{Body: &liveimpb.Event_C2CMessage{C2CMessage: &liveimpb.Message{MessageId: "marker", Data: "after the kick"}}}}})
	marker.Header.Set(subject.HeaderKind, subject.KindC2C)
	for _, m := range []*nats.Msg{notice, marker} {
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, viewer, func(ev *liveimpb.Event) *liveimpb.Message { return ev.GetC2CMessage() })
	c.StartRouter()
	select {
	case err := <-joined:
		wantCode(t, err, 403)
	case <-time.After(2 * time.Minute):
		t.Fatal("the join was not answered")
	}
	testcluster.WaitFor(t, time.Minute, func() error {
		page, err := owner.ListGroupUser(ctxT(t), &liveimpb.ListGroupUserRequest{GroupId: "room", PageSize: 50})
		if err != nil {
			return err
		}
		if users := userIDs(page.GetUserList()); slices.Contains(users, "viewer") {
			return fmt.Errorf("members %v: the refused join's user is still in", users)
		}
		return nil
	})
}

// TestBansBounded: the users banned from one group are capped (every kick
// with a ban rewrites the group's record on a worker other apps' groups
// share): past --max-bans a kick with a ban is 443 and changes nothing,
// a ban renewed for a user already banned still goes through, and bans
// that ended make room.
func TestBansBounded(t *testing.T) {
	rc := fastPresence()
	rc.MaxBans = 3
	c := testcluster.Start(t, testcluster.Options{Router: rc})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	api := c.StartAPI(0, serverapi.Config{}).AppClient()
	kick := func(user string, seconds int) error {
		return api.Do(ctxT(t), "POST", "/groups/room/kick", nil, map[string]any{"user_id": user, "ban_seconds": seconds}, nil)
	}
	for i, s := range []int{1, 3600, 3600} {
		if err := kick(fmt.Sprintf("troll-%d", i), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := kick("troll-3", 3600); testcluster.ErrCode(err) != 443 {
		t.Fatalf("a fourth ban: %v, want 443", err)
	}
	if err := kick("troll-2", 7200); err != nil {
		t.Fatalf("a ban renewed at the cap: %v", err)
	}
	// troll-0's second-long ban ends and makes room.
	testcluster.WaitFor(t, time.Minute, func() error { return kick("troll-3", 3600) })
	g, err := c.Store.GetGroup(ctxT(t), testcluster.AppID, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Bans) != 3 || g.Bans["troll-0"] != 0 {
		t.Fatalf("bans %v, want troll-1, -2 and -3", g.Bans)
	}
}
