package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestSkipAuditOnlyForManagers: a member's skipAudit is ignored, so
// clients cannot switch moderation off; the group's owner and admins may
// skip it. A client's C2C message is always moderated.
func TestSkipAuditOnlyForManagers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.BlockedWords = []string{"badword"}
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	if _, err := owner.ModifyGroup(ctxT(t), &liveimpb.ModifyGroupRequest{GroupId: "room", ForceUpdateAdmins: true, Admins: []string{"helper"}}); err != nil {
		t.Fatal(err)
	}
	helper := c.Login(t, 0, "helper", "")
	member := c.Login(t, 0, "member", "")
	// A login role of admin alone does not make a group's manager.
	other := c.Login(t, 0, "other-admin", "admin")
	for _, cl := range []*client.Client{owner, helper, member, other} {
		join(t, cl, "room")
	}
	cases := []struct {
		name string
		cl   *client.Client
		code int32
	}{
		{"member", member, 451},
		{"admin role without group rights", other, 451},
		{"group admin", helper, 0},
		{"owner", owner, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "a badword from " + tc.name, SkipAudit: true})
			wantCode(t, err, tc.code)
		})
	}
	_, err := owner.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "member", Type: chatType, Data: "badword", SkipAudit: true})
	wantCode(t, err, 451)
	page, err := owner.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dataOf(page.MessageList), []string{"a badword from group admin", "a badword from owner"}; !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

// TestRepeatCountBounded: one send stands for at most MaxRepeatCount
// messages; more is 400 and counts nothing.
func TestRepeatCountBounded(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	for _, n := range []int32{math.MaxInt32, 1001} {
		_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "like", RepeatCount: n})
		wantCode(t, err, 400)
	}
	if _, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "like", RepeatCount: 1000}); err != nil {
		t.Fatalf("repeatCount 1000: %v", err)
	}
	info, err := owner.QueryGroup(ctxT(t), "room")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Statistics.MsgAmount[chatType]; got != 1000 {
		t.Fatalf("msgAmount %d, want 1000", got)
	}
}

// TestHistoryFarEndTime: an endTime too large to turn into milliseconds
// is no bound at all, not an overflow that finds nothing.
func TestHistoryFarEndTime(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	send(t, owner, "room", "one")
	send(t, owner, "room", "two")
	now := time.Now().Unix()
	for _, end := range []int64{math.MaxInt64, math.MaxInt64 / 1000, 1 << 62} {
		page, err := owner.ListHistoryMessage(ctxT(t), &liveimpb.ListHistoryMessageRequest{GroupId: "room", BeginTime: now - 60, EndTime: end})
		if err != nil {
			t.Fatalf("endTime %d: %v", end, err)
		}
		if got := dataOf(page.MessageList); !slices.Equal(got, []string{"one", "two"}) {
			t.Fatalf("endTime %d: got %q", end, got)
		}
	}
	page, err := owner.ListHistoryMessage(ctxT(t), &liveimpb.ListHistoryMessageRequest{GroupId: "room", BeginTime: math.MaxInt64})
	if err != nil || len(page.MessageList) != 0 {
		t.Fatalf("beginTime in the far future: %v, %v", page.GetMessageList(), err)
	}
}

// TestRequestRateAndJoinCap: every kind of request counts against a
// session's request rate (412 beyond it), and a session may be in at most
// MaxGroupsPerSession groups at once (443), joins in flight included.
func TestRequestRateAndJoinCap(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{RequestRate: 2, RequestBurst: 10, MaxGroupsPerSession: 3}})
	owner := c.Login(t, 0, "owner", "admin")
	var codes []int32
	for range 20 {
		_, err := owner.QueryGroup(ctxT(t), "nowhere")
		codes = append(codes, testcluster.ErrCode(err))
	}
	first := slices.Index(codes, 412)
	if first < 10 || codes[0] != 440 {
		t.Fatalf("codes %v: want 440 for the first 10 (no such group), then 412", codes)
	}

	joiner := c.Login(t, 0, "joiner", "admin")
	for i := range 5 {
		createGroup(t, joiner, fmt.Sprint("g", i))
	}
	// Five joins at once: three are let in, two hit the cap.
	errs := make(chan error, 5)
	for i := range 5 {
		go func() {
			_, err := joiner.JoinGroup(ctxT(t), fmt.Sprint("g", i))
			errs <- err
		}()
	}
	var joined, capped int
	for range 5 {
		switch err := <-errs; testcluster.ErrCode(err) {
		case 0:
			joined++
		case 443:
			capped++
		default:
			t.Fatalf("join: %v", err)
		}
	}
	if joined != 3 || capped != 2 {
		t.Fatalf("%d joined, %d capped; want 3 and 2", joined, capped)
	}
}

// TestCountedTypesBounded: statistics.msgAmount is keyed by a type the
// sender chooses; a group counts at most maxCountedTypes of them, so a
// member sending a new type each time cannot grow the group's record and
// every join's answer without end (at ~110,000 types the group's info no
// longer fitted a NATS message and nobody could join the room). A message
// of a type past the cap is still delivered and stored, uncounted; the
// types counted before go on counting.
func TestCountedTypesBounded(t *testing.T) {
	const maxCountedTypes = 256 // router.maxCountedTypes
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{SendRate: 1e4, SendBurst: 1000}})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	for i := range maxCountedTypes + 44 {
		if _, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType + int32(i), Data: "x", NoStorage: true}); err != nil {
			t.Fatalf("type %d: %v", chatType+int32(i), err)
		}
	}
	if _, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "counted", RepeatCount: 2}); err != nil {
		t.Fatal(err)
	}
	past, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType + 1000, Data: "past the cap"})
	if err != nil || past.MessageId == "" {
		t.Fatalf("a type past the cap: %v %v, want delivered uncounted", past, err)
	}
	info, err := owner.QueryGroup(ctxT(t), "room")
	if err != nil {
		t.Fatal(err)
	}
	amount := info.Statistics.MsgAmount
	if len(amount) != maxCountedTypes || amount[chatType] != 3 {
		t.Fatalf("%d types counted, %d of type %d; want %d types and 3", len(amount), amount[chatType], chatType, maxCountedTypes)
	}
	if _, ok := amount[chatType+1000]; ok {
		t.Fatal("a type past the cap was counted")
	}
	page, err := owner.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	if got := dataOf(page.GetMessageList()); err != nil || !slices.Contains(got, "past the cap") {
		t.Fatalf("recent messages %q %v: the uncounted message was not stored", got, err)
	}
}
