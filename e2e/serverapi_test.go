package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
)

// apiCluster starts two routers and two gateways with the server API on
// the first router.
func apiCluster(t *testing.T) (*testcluster.Cluster, *apiclient.Client) {
	t.Helper()
	c := cluster2(t, fastPresence())
	api := c.StartAPI(0, serverapi.Config{})
	return c, api.AppClient()
}

func do(t testing.TB, api *apiclient.Client, method, path string, in, out any) {
	t.Helper()
	if err := api.Do(ctxT(t), method, path, nil, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// TestServerAPIGroups: the app's backend creates a room with an owner and
// admins, describes, modifies, lists, closes and deletes it; a deleted
// room's ID and quota are free again.
func TestServerAPIGroups(t *testing.T) {
	c, api := apiCluster(t)
	var created struct {
		GroupID      string `json:"group_id"`
		AlreadyExist bool   `json:"already_exist"`
	}
	do(t, api, "POST", "/groups", map[string]any{"group_id": "show", "group_name": "The Show", "creator": "host", "admins": []string{"mod1"}}, &created)
	if created.GroupID != "show" || created.AlreadyExist {
		t.Fatalf("create: %+v", created)
	}
	do(t, api, "POST", "/groups", map[string]any{"group_id": "show", "group_name": "again"}, &created)
	if !created.AlreadyExist {
		t.Fatal("a second create of an open group is not already_exist")
	}
	var g serverapi.GroupView
	do(t, api, "GET", "/groups/show", nil, &g)
	if g.Creator != "host" || !slices.Equal(g.Admins, []string{"mod1"}) || g.GroupName != "The Show" || g.Statistics == nil {
		t.Fatalf("describe: %+v", g)
	}
	// The owner's client sees the room as the API made it.
	host := c.Login(t, 0, "host", "")
	info := join(t, host, "show")
	if info.Creator != "host" || !slices.Equal(info.Admins, []string{"mod1"}) {
		t.Fatalf("client's view: %+v", info)
	}
	do(t, api, "PATCH", "/groups/show", map[string]any{"group_meta": `{"cover":"x.jpg"}`}, &g)
	if g.GroupMeta != `{"cover":"x.jpg"}` {
		t.Fatalf("modify: %+v", g)
	}
	if ic := waitEvent(t, host, infoChange); ic.GroupMeta != `{"cover":"x.jpg"}` {
		t.Fatalf("infochange: %+v", ic)
	}
	do(t, api, "POST", "/groups", map[string]any{"group_id": "other", "group_name": "Other"}, nil)
	var list struct {
		Groups        []serverapi.GroupSummary `json:"groups"`
		NextPageToken string                   `json:"next_page_token"`
	}
	if err := api.Do(ctxT(t), "GET", "/groups", url.Values{"limit": {"1"}}, nil, &list); err != nil || len(list.Groups) != 1 || list.NextPageToken == "" {
		t.Fatalf("page 1: %+v %v", list, err)
	}
	first := list.Groups[0].GroupID
	if err := api.Do(ctxT(t), "GET", "/groups", url.Values{"limit": {"1"}, "page_token": {list.NextPageToken}}, nil, &list); err != nil || len(list.Groups) != 1 || list.Groups[0].GroupID == first {
		t.Fatalf("page 2: %+v %v", list, err)
	}

	do(t, api, "POST", "/groups/show/close", nil, nil)
	if ex := waitEvent(t, host, exitEvent); ex.Reason != liveimpb.ExitReason_EXIT_REASON_GROUP_CLOSED {
		t.Fatalf("exit: %+v", ex)
	}
	if err := api.Do(ctxT(t), "GET", "/groups", url.Values{"status": {"closed"}}, nil, &list); err != nil || len(list.Groups) != 1 || list.Groups[0].GroupID != "show" {
		t.Fatalf("closed groups: %+v %v", list, err)
	}

	// Delete: members get exit, history goes, the ID and quota are free.
	do(t, api, "POST", "/groups", map[string]any{"group_id": "gone", "group_name": "Gone"}, nil)
	join(t, host, "gone")
	do(t, api, "POST", "/groups/gone/messages", map[string]any{"type": 1, "data": "before delete"}, nil)
	do(t, api, "DELETE", "/groups/gone", nil, nil)
	for {
		if ex := waitEvent(t, host, exitEvent); ex.GroupId == "gone" {
			break
		}
	}
	err := api.Do(ctxT(t), "GET", "/groups/gone", nil, nil, nil)
	wantCode(t, err, 440)
	if _, err := c.Store.GetGroup(ctxT(t), testcluster.AppID, "gone"); err == nil {
		t.Fatal("the deleted group is still stored")
	}
	do(t, api, "POST", "/groups", map[string]any{"group_id": "gone", "group_name": "Back"}, &created)
	var msgs struct {
		Messages []serverapi.MessageView `json:"messages"`
	}
	do(t, api, "GET", "/groups/gone/messages", nil, &msgs)
	if created.AlreadyExist || len(msgs.Messages) != 0 {
		t.Fatalf("a deleted ID made again: %+v, %d old messages", created, len(msgs.Messages))
	}
}

// TestServerAPIGroupQuota: deleting a group gives its place in the app's
// group quota back.
func TestServerAPIGroupQuota(t *testing.T) {
	c, api := apiCluster(t)
	a, _ := c.Store.GetApp(ctxT(t), testcluster.AppID)
	a.MaxGroups = 1
	if err := c.Store.PutApp(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	// No router has read the app yet, so none caches the old limit.
	do(t, api, "POST", "/groups", map[string]any{"group_id": "a", "group_name": "A"}, nil)
	err := api.Do(ctxT(t), "POST", "/groups", nil, map[string]any{"group_id": "b", "group_name": "B"}, nil)
	wantCode(t, err, 443)
	do(t, api, "DELETE", "/groups/a", nil, nil)
	do(t, api, "POST", "/groups", map[string]any{"group_id": "b", "group_name": "B"}, nil)
}

// TestServerAPIMessages: the backend sends system messages (reserved
// types, NORMAL and HIGH) and messages as a named user, to a group, a user
// and every open group; lists them by time, type and page; deletes one.
// Clients see all of it.
func TestServerAPIMessages(t *testing.T) {
	c, api := apiCluster(t)
	for _, g := range []string{"r1", "r2", "r3"} {
		do(t, api, "POST", "/groups", map[string]any{"group_id": g, "group_name": g}, nil)
	}
	do(t, api, "POST", "/groups/r3/close", nil, nil)
	viewer := c.Login(t, 1, "viewer", "")
	join(t, viewer, "r1")
	join(t, viewer, "r2")
	// A client may not use the reserved types; the server API may.
	_, err := viewer.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "r1", Type: 5, Data: "fake gift"})
	wantCode(t, err, 400)

	var sent serverapi.SendReply
	do(t, api, "POST", "/groups/r1/messages", map[string]any{"type": 5, "data": "gift: rocket", "level": "high"}, &sent)
	m := waitEvent(t, viewer, groupMsg)
	if m.Type != 5 || m.Data != "gift: rocket" || m.Level != liveimpb.MessageLevel_MESSAGE_LEVEL_HIGH || m.Sender.GetUserId() != "" || m.MessageId != sent.MessageID || m.Seqnum != sent.Seqnum {
		t.Fatalf("system message: %+v (sent %+v)", m, sent)
	}
	// The next messages get a later millisecond than the gift.
	before := sent.TimestampMs + 1
	for time.Now().UnixMilli() < before {
		time.Sleep(time.Millisecond)
	}
	do(t, api, "POST", "/groups/r1/messages", map[string]any{"type": 10001, "data": "hello from the host", "sender_id": "host", "sender_extension": "{\"vip\":1}"}, &sent)
	if m := waitEvent(t, viewer, groupMsg); m.Sender.GetUserId() != "host" || m.Sender.GetUserExtension() != `{"vip":1}` || m.Data != "hello from the host" {
		t.Fatalf("as a user: %+v", m)
	}
	// A repeat with the same client_msg_id sends nothing new.
	var a, b serverapi.SendReply
	do(t, api, "POST", "/groups/r1/messages", map[string]any{"type": 10001, "data": "once", "client_msg_id": "op-1"}, &a)
	do(t, api, "POST", "/groups/r1/messages", map[string]any{"type": 10001, "data": "once", "client_msg_id": "op-1"}, &b)
	if a != b {
		t.Fatalf("a retried send: %+v then %+v", a, b)
	}

	// To a user (C2C): online receives, offline is 424 (HTTP 404).
	do(t, api, "POST", "/users/viewer/messages", map[string]any{"type": 7, "data": "you won"}, nil)
	testcluster.NextEvent(t, viewer, 10*time.Second, func(ev *liveimpb.Event) bool {
		return ev.GetC2CMessage().GetData() == "you won"
	})
	err = api.Do(ctxT(t), "POST", "/users/nobody/messages", nil, map[string]any{"type": 7, "data": "x"}, nil)
	wantCode(t, err, 424)

	// Broadcast reaches every open group, not the closed one.
	var br serverapi.BroadcastReply
	do(t, api, "POST", "/broadcast", map[string]any{"type": 2, "data": "maintenance at 3am"}, &br)
	if br.Sent != 2 || len(br.Failed) != 0 {
		t.Fatalf("broadcast: %+v", br)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		if m := waitEvent(t, viewer, groupMsg); m.Data == "maintenance at 3am" {
			got[m.GroupId] = true
		}
	}

	// List by type, time and page.
	var page struct {
		Messages      []serverapi.MessageView `json:"messages"`
		NextPageToken string                  `json:"next_page_token"`
		HasMore       bool                    `json:"has_more"`
	}
	if err := api.Do(ctxT(t), "GET", "/groups/r1/messages", url.Values{"type": {"10001"}}, nil, &page); err != nil || len(page.Messages) != 2 {
		t.Fatalf("by type: %+v %v", page, err)
	}
	q := url.Values{"begin_time": {itoa(before)}, "limit": {"1"}, "order": {"asc"}}
	var all []string
	for {
		if err := api.Do(ctxT(t), "GET", "/groups/r1/messages", q, nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			all = append(all, m.Data)
		}
		if !page.HasMore {
			break
		}
		q.Set("page_token", page.NextPageToken)
	}
	if want := []string{"hello from the host", "once", "maintenance at 3am"}; !slices.Equal(all, want) {
		t.Fatalf("paged from %d: %q, want %q", before, all, want)
	}
	err = api.Do(ctxT(t), "GET", "/groups/r1/messages", url.Values{"begin_time": {"10"}, "end_time": {"5"}}, nil, nil)
	wantCode(t, err, 400)

	// Delete (recall): members are told, history drops it.
	do(t, api, "DELETE", "/groups/r1/messages/"+sent.MessageID, nil, nil)
	if d := waitEvent(t, viewer, deleted); d.MessageId != sent.MessageID {
		t.Fatalf("deleted: %+v", d)
	}
	if err := api.Do(ctxT(t), "GET", "/groups/r1/messages", url.Values{"type": {"10001"}}, nil, &page); err != nil || len(page.Messages) != 1 || page.Messages[0].Data != "once" {
		t.Fatalf("after the delete: %+v %v", page, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestServerAPIUsersAndMutes: list a room's users, check who is online
// across gateways, kick with a ban, disconnect, mute all with a whitelist
// and mute users for a while.
func TestServerAPIUsersAndMutes(t *testing.T) {
	c, api := apiCluster(t)
	do(t, api, "POST", "/groups", map[string]any{"group_id": "room", "group_name": "Room", "creator": "host"}, nil)
	host := c.Login(t, 0, "host", "")
	troll := c.Login(t, 1, "troll", "")
	fan := c.Login(t, 1, "fan", "")
	for _, cl := range []*client.Client{host, troll, fan} {
		join(t, cl, "room")
	}
	var users struct {
		Users []serverapi.UserView `json:"users"`
	}
	do(t, api, "GET", "/groups/room/users", nil, &users)
	var ids []string
	for _, u := range users.Users {
		ids = append(ids, u.UserID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"fan", "host", "troll"}) {
		t.Fatalf("users: %v", ids)
	}
	var on serverapi.OnlineReply
	do(t, api, "POST", "/users/online", map[string]any{"user_ids": []string{"host", "fan", "ghost"}}, &on)
	if !slices.Equal(on.Online, []string{"fan", "host"}) || on.Gateways != 2 || on.Answered != 2 {
		t.Fatalf("online: %+v", on)
	}

	// Mute all but the whitelist; the system still speaks.
	var mv serverapi.MuteView
	do(t, api, "PUT", "/groups/room/mute-all", map[string]any{"white_user_list": []string{"fan"}}, &mv)
	if !mv.MuteAll || !slices.Equal(mv.WhiteUsers, []string{"fan"}) {
		t.Fatalf("mute all: %+v", mv)
	}
	_, err := troll.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "spam"})
	wantCode(t, err, 442)
	send(t, fan, "room", "whitelisted")
	do(t, api, "POST", "/groups/room/messages", map[string]any{"type": 1, "data": "system notice"}, nil)
	err = api.Do(ctxT(t), "POST", "/groups/room/messages", nil, map[string]any{"type": 10001, "data": "as troll", "sender_id": "troll"}, nil)
	wantCode(t, err, 442)
	do(t, api, "POST", "/groups/room/messages", map[string]any{"type": 10001, "data": "as troll, unmuted", "sender_id": "troll", "skip_mute_check": true}, nil)
	do(t, api, "DELETE", "/groups/room/mute-all", nil, &mv)

	// A timed mute ends by itself, with a mutechange.
	do(t, api, "POST", "/groups/room/muted-users", map[string]any{"user_ids": []string{"troll"}, "duration_seconds": 2}, &mv)
	if !slices.Equal(mv.MutedUsers, []string{"troll"}) {
		t.Fatalf("muted: %+v", mv)
	}
	_, err = troll.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "muted"})
	wantCode(t, err, 442)
	testcluster.WaitFor(t, 20*time.Second, func() error {
		_, err := troll.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "free again"})
		return err
	})
	do(t, api, "GET", "/groups/room/mutes", nil, &mv)
	if len(mv.MutedUsers) != 0 {
		t.Fatalf("after the timed mute: %+v", mv)
	}
	do(t, api, "POST", "/groups/room/muted-users", map[string]any{"user_ids": []string{"fan"}}, nil)
	do(t, api, "POST", "/groups/room/muted-users/remove", map[string]any{"user_ids": []string{"fan"}}, &mv)
	if len(mv.MutedUsers) != 0 {
		t.Fatalf("after unmuting: %+v", mv)
	}

	// Kick with a ban: exit(2), and joining again is 403 until it ends.
	do(t, api, "POST", "/groups/room/kick", map[string]any{"user_id": "troll", "ban_seconds": 2}, nil)
	if ex := waitEvent(t, troll, exitEvent); ex.GroupId != "room" || ex.Reason != liveimpb.ExitReason_EXIT_REASON_KICKED {
		t.Fatalf("exit: %+v", ex)
	}
	_, err = troll.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: chatType, Data: "still here?"})
	wantCode(t, err, 425)
	_, err = troll.JoinGroup(ctxT(t), "room")
	wantCode(t, err, 403)
	testcluster.WaitFor(t, 20*time.Second, func() error {
		_, err := troll.JoinGroup(ctxT(t), "room")
		return err
	})

	// Disconnect: the user's session ends with disconnect code 2.
	do(t, api, "POST", "/users/fan/disconnect", nil, nil)
	ev := testcluster.NextEvent(t, fan, 10*time.Second, func(ev *liveimpb.Event) bool { return ev.GetDisconnect() != nil })
	if d := ev.GetDisconnect(); d.Code != liveimpb.DisconnectCode_DISCONNECT_CODE_KICKED || d.Reconnect {
		t.Fatalf("disconnect: %+v", d)
	}
	testcluster.WaitFor(t, 10*time.Second, func() error {
		do(t, api, "POST", "/users/online", map[string]any{"user_ids": []string{"fan"}}, &on)
		if len(on.Online) != 0 {
			return errors.New("fan still online")
		}
		return nil
	})
}

// TestServerAPITokens: the API issues login tokens a client logs in with.
func TestServerAPITokens(t *testing.T) {
	c, api := apiCluster(t)
	var tok auth.TokenReply
	do(t, api, "POST", "/tokens", map[string]any{"user_id": "alice", "role": "admin", "ttl_seconds": 600}, &tok)
	if tok.AppID != testcluster.AppID || tok.Auth.UserID != "alice" || tok.Auth.Role != "admin" || len(tok.Auth.Nonce) != auth.DefaultNonceLength {
		t.Fatalf("token: %+v", tok)
	}
	cl, err := testcluster.Dial(t, c.Gateway(0).URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Login(ctxT(t), client.Login{AppID: tok.AppID, UserID: "alice", Auth: &liveimpb.UserAuth{
		Timestamp: tok.Auth.Timestamp, Nonce: tok.Auth.Nonce, Role: tok.Auth.Role, Token: tok.AppToken,
	}}); err != nil {
		t.Fatalf("login with the API's token: %v", err)
	}
	err = api.Do(ctxT(t), "POST", "/tokens", nil, map[string]any{"user_id": "alice", "ttl_seconds": 30 * 24 * 3600}, nil)
	wantCode(t, err, 400)
}

// TestServerAPISignature: every way a request can be wrongly signed is a
// 401 saying what was wrong; a replayed request is refused.
func TestServerAPISignature(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	api := c.StartAPI(0, serverapi.Config{})
	now := time.Now()
	signed := func(mutate func(r *http.Request)) *http.Request {
		body := []byte(`{"group_id":"g","group_name":"G"}`)
		r, _ := http.NewRequest("POST", api.URL+"/api/v1/groups", strings.NewReader(string(body)))
		auth.SignRequest(r, testcluster.AppID, testcluster.AppKey, body, now)
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		want   string
	}{
		{"no signature", func(r *http.Request) { r.Header.Del(auth.HeaderSignature) }, auth.HeaderSignature},
		{"unknown app", func(r *http.Request) { r.Header.Set(auth.HeaderApp, "nope") }, "unknown app"},
		{"wrong key", func(r *http.Request) {
			r.Header.Set(auth.HeaderSignature, auth.Sign("other-key", "POST", "/api/v1/groups", nil, r.Header.Get(auth.HeaderTimestamp), r.Header.Get(auth.HeaderNonce), []byte(`{"group_id":"g","group_name":"G"}`)))
		}, "does not match"},
		{"stale timestamp", func(r *http.Request) { r.Header.Set(auth.HeaderTimestamp, itoa(now.Add(-time.Hour).Unix())) }, auth.HeaderTimestamp},
		{"other path", func(r *http.Request) { r.URL.Path = "/api/v1/groups/g/close" }, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(signed(tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e serverapi.Error
			_ = jsonDecode(resp, &e)
			if resp.StatusCode != 401 || e.Code != 401 || !strings.Contains(e.Msg, tc.want) {
				t.Fatalf("HTTP %d %+v, want 401 naming %q", resp.StatusCode, e, tc.want)
			}
		})
	}
	r := signed(nil)
	replay := r.Clone(context.Background())
	replay.Body = http.NoBody
	resp, err := http.DefaultClient.Do(r)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("signed: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	replay = signed(func(x *http.Request) {
		for _, h := range []string{auth.HeaderTimestamp, auth.HeaderNonce, auth.HeaderSignature} {
			x.Header.Set(h, r.Header.Get(h))
		}
	})
	resp, err = http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a replay: HTTP %d", resp.StatusCode)
	}
	// The admin API takes only the admin key.
	err = api.AppClient().Do(ctxT(t), "GET", "/admin/apps", nil, nil, nil)
	wantCode(t, err, 401)

	// A request whose headers already fail is answered before its body:
	// anyone who reaches the listener could otherwise make a router read
	// and hold a body of up to 1 MiB each, with no key.
	conn, err := net.Dial("tcp", strings.TrimPrefix(api.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /api/v1/groups HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n" +
		auth.HeaderApp + ": nope\r\n" + auth.HeaderTimestamp + ": " + itoa(now.Unix()) + "\r\n" +
		auth.HeaderNonce + ": 0123456789abcdef\r\n" + auth.HeaderSignature + ": 00\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 401 ") {
		t.Fatalf("an unknown app's request, body not sent: %q %v, want 401 at once", status, err)
	}
}

// TestServerRightsNeedTheAPI: requests that reach routers without the
// server API's MAC (a gateway's, or anyone's on NATS) get no server
// rights, whatever their Caller says.
func TestServerRightsNeedTheAPI(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	owner := c.Login(t, 0, "owner", "admin")
	createGroup(t, owner, "room")
	nc := c.ConnectAs(subject.GatewayUser)
	call := func(req *liveimpb.RouterRequest) *liveimpb.Reply {
		env, _ := proto.Marshal(req)
		inbox := nc.NewInbox()
		sub, _ := nc.SubscribeSync(inbox)
		defer sub.Unsubscribe()
		msg := nats.NewMsg(subject.RPC(testcluster.AppID, "room"))
		msg.Data = env
		msg.Header.Set(subject.HeaderReply, inbox)
		msg.Header.Set(subject.HeaderServerMAC, strings.Repeat("ab", 32))
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		r, err := sub.NextMsg(10 * time.Second)
		var rep liveimpb.Reply
		if err != nil || proto.Unmarshal(r.Data, &rep) != nil {
			t.Fatalf("reply: %v", err)
		}
		return &rep
	}
	forged := &liveimpb.Caller{AppId: testcluster.AppID, UserId: "mallory", Server: true}
	if rep := call(&liveimpb.RouterRequest{Caller: forged, Kick: &liveimpb.KickUser{GroupId: "room", UserId: "owner"}}); rep.Code != 403 {
		t.Fatalf("forged kick: %+v", rep)
	}
	if rep := call(&liveimpb.RouterRequest{Caller: forged, DeleteGroup: &liveimpb.DeleteGroup{GroupId: "room"}}); rep.Code != 403 {
		t.Fatalf("forged delete: %+v", rep)
	}
	if rep := call(&liveimpb.RouterRequest{Caller: forged, Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CloseGroup{CloseGroup: &liveimpb.CloseGroupRequest{GroupId: "room"}}}}); rep.Code != 403 {
		t.Fatalf("forged close: %+v", rep)
	}
	if rep := call(&liveimpb.RouterRequest{Caller: forged, Frame: &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_SendGroupMessage{SendGroupMessage: &liveimpb.SendGroupMessageRequest{GroupId: "room", Type: 5, Data: "fake gift"}}}}); rep.Code != 400 {
		t.Fatalf("forged system message: %+v", rep)
	}
}

// TestServerAPIFromShell: examples/serverapi/call.sh, the curl + openssl
// signing docs/serverapi.md shows, is accepted, query and all.
func TestServerAPIFromShell(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/test installs it)", tool)
		}
	}
	c := testcluster.Start(t, testcluster.Options{})
	api := c.StartAPI(0, serverapi.Config{})
	call := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("../examples/serverapi/call.sh", args...)
		cmd.Env = append(os.Environ(), "LIVEIM_API="+api.URL, "APP_ID="+testcluster.AppID, "APP_KEY="+testcluster.AppKey)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("call.sh %v: %v\n%s", args, err, out)
		}
		return out
	}
	var created struct {
		GroupID string `json:"group_id"`
	}
	if out := call("POST", "/api/v1/groups", `{"group_id":"shell-room","group_name":"From the shell"}`); json.Unmarshal(out, &created) != nil || created.GroupID != "shell-room" {
		t.Fatalf("create: %s", out)
	}
	var list struct {
		Groups []serverapi.GroupSummary `json:"groups"`
	}
	if out := call("GET", "/api/v1/groups?status=open&limit=10"); json.Unmarshal(out, &list) != nil || len(list.Groups) != 1 {
		t.Fatalf("list: %s", out)
	}
}

// TestServerAPIAppRate: one app's requests to a router's server API are
// bounded (--api-app-rate, --api-app-burst): past them a request is 412
// (HTTP 429) and does nothing, while another app's requests go through.
func TestServerAPIAppRate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	otherKey := strings.Repeat("ab", 32)
	if err := c.Store.PutApp(ctxT(t), storage.App{ID: "other", Key: otherKey}); err != nil {
		t.Fatal(err)
	}
	api := c.StartAPI(0, serverapi.Config{AppRate: 0.01, AppBurst: 3}) // one more a hundred seconds
	mine, other := api.AppClient(), apiclient.New(api.URL, apiclient.App("other", otherKey))
	var refused int
	for i := range 6 {
		err := mine.Do(ctxT(t), "POST", "/groups", nil, map[string]any{"group_id": fmt.Sprintf("g-%d", i), "group_name": "g"}, nil)
		switch testcluster.ErrCode(err) {
		case 0:
		case 412:
			refused++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if refused != 3 {
		t.Fatalf("%d of 6 requests refused, want the 3 past the burst", refused)
	}
	if _, err := c.Store.GetGroup(ctxT(t), testcluster.AppID, "g-5"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused request created its group: %v", err)
	}
	if err := other.Do(ctxT(t), "POST", "/groups", nil, map[string]any{"group_id": "theirs", "group_name": "g"}, nil); err != nil {
		t.Fatalf("another app's request: %v", err)
	}
	// The HTTP status says "slow down".
	req, _ := http.NewRequest("GET", api.URL+"/api/v1/groups", nil)
	auth.SignRequest(req, testcluster.AppID, testcluster.AppKey, nil, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("HTTP %d, want 429", resp.StatusCode)
	}
}
