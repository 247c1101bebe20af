package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/router"
)

func dataOf(list []*liveimpb.Message) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.Data
	}
	return out
}

// TestMessageOptionsAndHistory: every sendGroupMessage option, delete and
// recall, and the three history queries.
func TestMessageOptionsAndHistory(t *testing.T) {
	c := cluster2(t, router.Config{RecallWindow: time.Hour})
	owner := c.Login(t, 0, "owner", "admin")
	member := c.Login(t, 1, "member", "")
	outsider := c.Login(t, 1, "outsider", "")
	createGroup(t, owner, "room")
	join(t, owner, "room")
	join(t, member, "room")

	start := time.Now()
	var sent []*liveimpb.SendMessageReply
	for i := range 60 {
		typ := int32(chatType)
		if i%3 == 0 {
			typ = 20002
		}
		rep, err := sendRetrying(ctxT(t), member, &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: typ, Data: "m" + string(rune('A'+i%26)) + strings.Repeat("!", i/26)})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, rep)
	}
	// noStorage: delivered live, absent from history.
	if _, err := sendRetrying(ctxT(t), member, &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "ephemeral", NoStorage: true}); err != nil {
		t.Fatal(err)
	}
	var live []*liveimpb.Message
	for len(live) < 61 {
		live = append(live, waitEvent(t, owner, groupMsg))
	}
	if live[60].Data != "ephemeral" {
		t.Fatalf("noStorage message not delivered live: %q", live[60].Data)
	}

	// repeatCount: delivered once, counted N times, totalMsgs runs on.
	for i, n := range []int32{5, 7} {
		if _, err := sendRetrying(ctxT(t), member, &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: 30003, Data: "like", RepeatCount: n, NoStorage: true}); err != nil {
			t.Fatal(err)
		}
		m := waitEvent(t, owner, groupMsg)
		if want := []int64{5, 12}[i]; m.RepeatCount != n || m.TotalMsgs != want {
			t.Fatalf("like %d: repeat %d total %d, want %d and %d", i, m.RepeatCount, m.TotalMsgs, n, want)
		}
	}
	q, _ := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.GroupInfo, error) { return owner.QueryGroup(ctx, "room") })
	if a := q.Statistics.GetMsgAmount(); a[30003] != 12 || a[chatType] != 41 || a[20002] != 20 {
		t.Fatalf("msgAmount %v", a)
	}

	// listRecentMessage: members only, the last 50 stored, oldest first.
	recent, err := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return member.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	})
	if err != nil || len(recent.MessageList) != 50 || recent.MessageList[49].MessageId != sent[59].MessageId || recent.MessageList[0].MessageId != sent[10].MessageId {
		t.Fatalf("listRecentMessage: %d messages, %v", len(recent.MessageList), err)
	}
	_, err = retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return outsider.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	})
	wantCode(t, err, 425)

	// Delete: the owner deletes any message, a sender recalls its own,
	// others may not; members are told; the message leaves every query.
	wantCode(t, outsider.DeleteMessage(ctxT(t), "room", sent[1].MessageId), 403)
	if err := owner.DeleteMessage(ctxT(t), "room", sent[59].MessageId); err != nil {
		t.Fatal(err)
	}
	if err := member.DeleteMessage(ctxT(t), "room", sent[58].MessageId); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sent[59].MessageId, sent[58].MessageId} {
		if d := waitEvent(t, member, deleted); d.MessageId != id || d.GroupId != "room" {
			t.Fatalf("deletegroupmessage %+v, want %s", d, id)
		}
	}
	wantCode(t, owner.DeleteMessage(ctxT(t), "room", sent[59].MessageId), 400)
	recent, _ = retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return member.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	})
	if last := recent.MessageList[len(recent.MessageList)-1]; last.MessageId != sent[57].MessageId {
		t.Fatalf("listRecentMessage after delete ends with %q, want the last undeleted message", last.Data)
	}

	// listMessage: admins only; type filter, pages both ways, ≤30.
	_, err = retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return member.ListMessage(ctx, &liveimpb.ListMessageRequest{GroupId: "room"})
	})
	wantCode(t, err, 403)
	_, err = retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return owner.ListMessage(ctx, &liveimpb.ListMessageRequest{GroupId: "room", PageSize: 31})
	})
	wantCode(t, err, 400)
	for _, sort := range []liveimpb.SortType{liveimpb.SortType_SORT_TYPE_ASC, liveimpb.SortType_SORT_TYPE_DESC} {
		var got []string
		token := ""
		for {
			page, err := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
				return owner.ListMessage(ctx, &liveimpb.ListMessageRequest{GroupId: "room", Type: 20002, PageSize: 6, SortType: sort, NextPageToken: token})
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.MessageList) > 6 {
				t.Fatalf("page of %d", len(page.MessageList))
			}
			for _, m := range page.MessageList {
				if m.Type != 20002 {
					t.Fatalf("type filter let %d through", m.Type)
				}
				got = append(got, m.MessageId)
			}
			if !page.HasMore {
				break
			}
			token = page.NextPageToken
		}
		var want []string
		for i := 0; i < 60; i += 3 {
			want = append(want, sent[i].MessageId)
		}
		if sort == liveimpb.SortType_SORT_TYPE_DESC {
			slices.Reverse(want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listMessage %v: %d ids, want %d", sort, len(got), len(want))
		}
	}

	// listHistoryMessage: no membership needed, seconds range, 0 = open.
	all := func(req *liveimpb.ListHistoryMessageRequest) []*liveimpb.Message {
		var out []*liveimpb.Message
		for {
			page, err := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
				return outsider.ListHistoryMessage(ctx, req)
			})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.MessageList...)
			if !page.HasMore {
				return out
			}
			req.NextPageToken = page.NextPageToken
		}
	}
	hist := all(&liveimpb.ListHistoryMessageRequest{GroupId: "room", PageSize: 30})
	if len(hist) != 58 || hist[0].MessageId != sent[0].MessageId {
		t.Fatalf("history: %d messages, want 58 (60 stored, 2 deleted, noStorage absent)", len(hist))
	}
	for _, m := range hist {
		if m.MessageId == sent[59].MessageId || m.MessageId == sent[58].MessageId || m.Data == "ephemeral" || m.Data == "like" {
			t.Fatalf("history holds %q", m.Data)
		}
	}
	if got := all(&liveimpb.ListHistoryMessageRequest{GroupId: "room", BeginTime: start.Add(-time.Hour).Unix(), EndTime: start.Add(-time.Minute).Unix()}); len(got) != 0 {
		t.Fatalf("history before the messages: %d", len(got))
	}
	if got := all(&liveimpb.ListHistoryMessageRequest{GroupId: "room", BeginTime: start.Unix(), Type: 20002, SortType: liveimpb.SortType_SORT_TYPE_DESC}); len(got) != 20 || got[0].MessageId != sent[57].MessageId {
		t.Fatalf("history of type 20002 since start: %d", len(got))
	}
	_, err = retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
		return outsider.ListHistoryMessage(ctx, &liveimpb.ListHistoryMessageRequest{GroupId: "nope"})
	})
	wantCode(t, err, 440)
}

// TestModeration: the app's word list and audit hook refuse with 451;
// skipAudit bypasses them; a hook that does not answer refuses unless the
// app chose fail-open.
func TestModeration(t *testing.T) {
	var hookCalls, badSignatures atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The hook checks the request is liveim's, signed with the app key.
		body, _ := io.ReadAll(r.Body)
		sr, err := auth.RequestHeaders(r)
		if err == nil {
			err = auth.VerifyRequest([]string{testcluster.AppKey}, sr, r.Method, r.URL.EscapedPath(), r.URL.Query(), body, time.Now())
		}
		if err != nil || sr.AppID != testcluster.AppID {
			badSignatures.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req struct {
			Data string `json:"data"`
		}
		_ = json.Unmarshal(body, &req)
		hookCalls.Add(1)
		if req.Data == "slow" {
			time.Sleep(2 * time.Second)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"pass": !strings.Contains(req.Data, "spam"), "reason": "spam"})
	}))
	defer hook.Close()
	c := cluster2(t, router.Config{AuditTimeout: 300 * time.Millisecond})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.BlockedWords = []string{"BadWord"}
	app.AuditURL = hook.URL
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	join(t, owner, "room")

	cases := []struct {
		name string
		data string
		skip bool
		code int32
	}{
		{"clean", "hello", false, 0},
		{"blocked word, any case", "a BADWORD here", false, 451},
		{"hook refuses", "buy spam", false, 451},
		{"hook times out: fail closed", "slow", false, 451},
		{"skipAudit passes", "a badword and spam", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: tc.data, SkipAudit: tc.skip})
			wantCode(t, err, tc.code)
		})
	}
	_, err := owner.SendC2CMessage(ctxT(t), &liveimpb.SendC2CMessageRequest{ReceiverId: "owner", Type: chatType, Data: "badword"})
	wantCode(t, err, 451)
	// Nothing refused was delivered or stored.
	page, _ := owner.ListRecentMessage(ctxT(t), &liveimpb.ListRecentMessageRequest{GroupId: "room"})
	if got := dataOf(page.MessageList); !slices.Equal(got, []string{"hello", "a badword and spam"}) {
		t.Fatalf("stored %q", got)
	}
	if hookCalls.Load() == 0 || badSignatures.Load() != 0 {
		t.Fatalf("the audit hook was called %d times with a good signature, %d with a bad one", hookCalls.Load(), badSignatures.Load())
	}
	app.AuditFailOpen = true
	_ = c.Store.PutApp(context.Background(), app)
	testcluster.WaitFor(t, 15*time.Second, func() error { // the router caches apps for a few seconds
		_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "slow"})
		return err
	})
}

// TestLimits: every size and rate limit answers with its code and keeps
// the connection.
func TestLimits(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		Routers: 2, Gateways: 2,
		Router:  router.Config{RoomRate: 5, MaxGroups: 3},
		Gateway: gateway.Config{SendRate: 5, SendBurst: 10},
	})
	owner := c.Login(t, 0, "owner", "admin")
	for _, g := range []string{"g1", "g2", "g3"} {
		createGroup(t, owner, g)
	}
	_, err := owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "g4", GroupName: "one too many"})
	wantCode(t, err, 443)
	if rep, err := owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "g1", GroupName: "again"}); err != nil || !rep.AlreadyExist {
		t.Fatalf("existing group at the limit: %+v, %v", rep, err)
	}
	_, err = owner.CreateGroup(ctxT(t), &liveimpb.CreateGroupRequest{GroupId: "g5", GroupName: "x", GroupMeta: strings.Repeat("m", 32<<10+1)})
	wantCode(t, err, 413)
	join(t, owner, "g1")

	// Per session: a burst of 10, then 412 (HIGH, which the room's own
	// cap never sheds).
	// The bucket refills at 5/s while the sends run, so a slow store may
	// let one or two more through; the first 10 always pass.
	var codes []int32
	start := time.Now()
	for range 20 {
		_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "g1", Type: chatType, Data: "x", Level: liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH})
		codes = append(codes, testcluster.ErrCode(err))
	}
	accepted := len(codes) - len(slices.DeleteFunc(slices.Clone(codes), func(c int32) bool { return c == 0 }))
	refill := int(time.Since(start).Seconds()*5) + 1
	if first := slices.Index(codes, 412); first < 10 || first == -1 || accepted > 10+refill {
		t.Fatalf("codes %v: want the first 10 accepted, then 412 (at most %d refilled)", codes, refill)
	}

	// Per room: NORMAL over 20/s is shed with 412, HIGH never.
	var senders []*client.Client
	for i := range 6 {
		cl := c.Login(t, i%2, "s"+string(rune('a'+i)), "")
		join(t, cl, "g2")
		senders = append(senders, cl)
	}
	// Six senders at once, so the room is over its rate however slow the
	// store is.
	var normalShed, highShed atomic.Int32
	errs := make(chan error, len(senders))
	for i, cl := range senders {
		go func() {
			for round := range 8 {
				level := liveimpb.MessageLevel_MESSAGE_LEVEL_NORMAL
				if (round+i)%2 == 1 {
					level = liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH
				}
				_, err := cl.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "g2", Type: chatType, Data: "x", Level: level})
				switch code := testcluster.ErrCode(err); {
				case code == 412 && level == liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH:
					highShed.Add(1)
				case code == 412:
					normalShed.Add(1)
				case err != nil:
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if normalShed.Load() == 0 || highShed.Load() != 0 {
		t.Fatalf("room cap shed %d NORMAL and %d HIGH; want some NORMAL and no HIGH", normalShed.Load(), highShed.Load())
	}
}

// TestSlowAuditHookBlocksNoOtherGroup: a send waiting for the app's audit
// hook does not hold up the groups that share its router worker (one
// worker here, so every group shares it).
func TestSlowAuditHookBlocksNoOtherGroup(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Data string `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Data == "slow" {
			<-release
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"pass": true})
	}))
	defer hook.Close()
	defer close(release)
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{Workers: 1, AuditTimeout: time.Minute}})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.AuditURL = hook.URL
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	owner := c.Login(t, 0, "owner", "admin")
	for _, g := range []string{"slow-room", "busy-room"} {
		createGroup(t, owner, g)
		join(t, owner, g)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "slow-room", Type: chatType, Data: "slow"})
		slowDone <- err
	}()
	// The other group is served while the hook still thinks.
	for i := range 5 {
		if _, err := owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "busy-room", Type: chatType, Data: fmt.Sprint("fast ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := owner.QueryGroup(ctxT(t), "slow-room"); err != nil {
		t.Fatalf("the audited group's own queries wait for the hook: %v", err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow send finished (%v) before the hook answered", err)
	default:
	}
	release <- struct{}{}
	if err := <-slowDone; err != nil {
		t.Fatalf("the audited send: %v", err)
	}
}
