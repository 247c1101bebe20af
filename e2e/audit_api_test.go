package e2e

// Audit of the server API (serverapi/ and the router operations it
// reaches): each test fails on the code it was written against and passes
// once the fault it names is fixed.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/router"

	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
)

// TestAuditAPICreateGroupRefusedAdminsCreateNothing: POST /groups with
// admins the router refuses (more than 3, or a malformed ID) answers 400,
// as SPEC §4 has it for a bad parameter; a refused request must change
// nothing. The API creates the group first and sets its admins in a second
// request, so the 400 leaves an open group with no admins behind (counted
// in the app's quota), and the app's corrected retry is answered
// already_exist with its admins dropped.
func TestAuditAPICreateGroupRefusedAdminsCreateNothing(t *testing.T) {
	_, api := apiCluster(t)
	for _, bad := range [][]string{{"a1", "a2", "a3", "a4"}, {"not valid!"}} {
		id := "room-" + itoa(int64(len(bad)))
		err := api.Do(ctxT(t), "POST", "/groups", nil, map[string]any{"group_id": id, "group_name": "Room", "admins": bad}, nil)
		wantCode(t, err, 400)
		// The app's backend fixes its request and sends it again.
		var created struct {
			GroupID      string `json:"group_id"`
			AlreadyExist bool   `json:"already_exist"`
		}
		do(t, api, "POST", "/groups", map[string]any{"group_id": id, "group_name": "Room", "admins": []string{"a1"}}, &created)
		var g serverapi.GroupView
		do(t, api, "GET", "/groups/"+id, nil, &g)
		if created.AlreadyExist || len(g.Admins) != 1 {
			t.Errorf("admins %q refused with 400, yet the group was created: the corrected retry answered already_exist=%v and the group has admins %q, not [a1]",
				bad, created.AlreadyExist, g.Admins)
		}
	}
}

// TestAuditAPIUserMessageRetryIsOneMessage: docs/serverapi.md, "Retries":
// every operation is safe to repeat, and a send repeated with the same
// client_msg_id is answered with the first send's result. POST
// /users/{id}/messages takes client_msg_id (it is not refused) but never
// passes it to the router, which derives a C2C message's ID from it "so the
// receiver can drop a repeat": each retry reaches the user as a new
// message with a new message_id.
func TestAuditAPIUserMessageRetryIsOneMessage(t *testing.T) {
	c, api := apiCluster(t)
	viewer := c.Login(t, 1, "viewer", "")
	body := map[string]any{"type": 7, "data": "you won", "client_msg_id": "prize-42"}
	var a, b serverapi.SendReply
	do(t, api, "POST", "/users/viewer/messages", body, &a)
	do(t, api, "POST", "/users/viewer/messages", body, &b) // the backend's retry after a timeout
	first := waitEvent(t, viewer, func(ev *liveimpb.Event) *liveimpb.Message { return ev.GetC2CMessage() })
	if a.MessageID != b.MessageID || first.MessageId != a.MessageID {
		t.Fatalf("one send repeated with client_msg_id prize-42: answered message IDs %s and %s (the user got %s first): two messages it cannot tell are one",
			a.MessageID, b.MessageID, first.MessageId)
	}
}

// TestAuditAPIUserMessageNotResentByTheAPI: the API retries a router's 503
// itself (serverapi/rpc.go, call), and the router answers a C2C send 503
// when the receiver's gateway takes longer than --c2c-timeout to
// acknowledge it, though the gateway has it. Without a client message ID
// every one of those retries is a new message with a new ID: one request
// of the app's backend reaches the user four times, as four different
// messages. Here the receiver's gateway is stood in for by a NATS
// subscriber on the user's subject that takes the message and never
// acknowledges it (a gateway stalled or cut off from NATS after taking it).
func TestAuditAPIUserMessageNotResentByTheAPI(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Router: router.Config{C2CTimeout: 500 * time.Millisecond}})
	api := c.StartAPI(0, serverapi.Config{}).AppClient()
	nc := c.Connect()
	got := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(subject.User(testcluster.AppID, "viewer"), got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	err = api.Do(ctxT(t), "POST", "/users/viewer/messages", nil, map[string]any{"type": 7, "data": "you won", "client_msg_id": "prize-43"}, nil)
	if testcluster.ErrCode(err) != 503 {
		t.Fatalf("a send whose receiver never acknowledges: %v, want 503", err)
	}
	ids := map[string]bool{}
	deliveries := 0
	for len(got) > 0 {
		m := <-got
		var f liveimpb.ServerFrame
		if proto.Unmarshal(m.Data, &f) != nil || f.GetEvent().GetC2CMessage() == nil {
			continue
		}
		deliveries++
		ids[f.GetEvent().GetC2CMessage().GetMessageId()] = true
	}
	if deliveries == 0 {
		t.Fatal("the receiver's subject got nothing")
	}
	if len(ids) != 1 {
		t.Fatalf("one request of the app's backend reached the user's gateway %d times as %d different messages %v", deliveries, len(ids), ids)
	}
}

// TestAuditAPIGroupQuotaHoldsUnderConcurrency: an app's max_groups is
// checked by counting its open groups and then creating the group
// (router/group_ops.go, createGroup: checkGroupQuota, then
// store.CreateGroup), on the group's own worker. Creates of different
// groups run on different workers and routers at once, so several backend
// instances creating rooms together all pass the count and go past the
// quota. The store here answers creates as a loaded ScyllaDB may, a little
// late: each create waits (at most 10 s) until a second one has reached
// the store too.
func TestAuditAPIGroupQuotaHoldsUnderConcurrency(t *testing.T) {
	slow := &pairedCreates{both: make(chan struct{})}
	c := testcluster.Start(t, testcluster.Options{Routers: 2, Gateways: 1,
		RouterStore: func(_ int, s storage.Store) storage.Store { slow.Store = s; return slow }})
	api := c.StartAPI(0, serverapi.Config{}).AppClient()
	a, _ := c.Store.GetApp(ctxT(t), testcluster.AppID)
	a.MaxGroups = 1
	if err := c.Store.PutApp(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int32]int{}
	for i := range 6 {
		wg.Go(func() {
			err := api.Do(ctxT(t), "POST", "/groups", nil, map[string]any{"group_id": "q-" + itoa(int64(i)), "group_name": "q"}, nil)
			mu.Lock()
			codes[testcluster.ErrCode(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	n, err := c.Store.CountGroups(ctxT(t), testcluster.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		t.Fatalf("max_groups 1: 6 creates at once left %d open groups (answers by code: %v)", n, codes)
	}
}

// pairedCreates is a router's view of the real store whose group creates
// wait, at most 5 s, until a second create has arrived.
type pairedCreates struct {
	storage.Store
	mu      sync.Mutex
	arrived int
	both    chan struct{}
}

func (s *pairedCreates) CreateGroup(ctx context.Context, g storage.Group) (storage.Group, bool, error) {
	s.mu.Lock()
	if s.arrived++; s.arrived == 2 {
		close(s.both)
	}
	s.mu.Unlock()
	select {
	case <-s.both:
	case <-time.After(5 * time.Second):
	}
	return s.Store.CreateGroup(ctx, g)
}

// TestAuditAPISenderExtensionBounded: SPEC §1 bounds userExtension at 512
// bytes; the gateway refuses a bigger one at login, but the server API
// takes sender_extension of any size (up to its 1 MiB body) and the router
// stores and delivers it with the message. A dozen such messages make the
// room's listRecentMessage answer too big for NATS: every member's recent
// messages fail.
func TestAuditAPISenderExtensionBounded(t *testing.T) {
	c, api := apiCluster(t)
	do(t, api, "POST", "/groups", map[string]any{"group_id": "show", "group_name": "Show"}, nil)
	viewer := c.Login(t, 1, "viewer", "")
	join(t, viewer, "show")
	ext := `{"nick":"` + strings.Repeat("x", 100<<10) + `"}`
	err := api.Do(ctxT(t), "POST", "/groups/show/messages", nil, map[string]any{"type": 10001, "data": "hi", "sender_id": "host", "sender_extension": ext}, nil)
	if code := testcluster.ErrCode(err); code != 400 && code != 413 {
		// Accepted: show what it does to the room.
		var wg sync.WaitGroup
		for range 11 {
			wg.Go(func() {
				_ = api.Do(ctxT(t), "POST", "/groups/show/messages", nil, map[string]any{"type": 10001, "data": "hi", "sender_id": "host", "sender_extension": ext}, nil)
			})
		}
		wg.Wait()
		_, rerr := retry503(ctxT(t), func(ctx context.Context) (*liveimpb.ListMessageReply, error) {
			return viewer.ListRecentMessage(ctx, &liveimpb.ListRecentMessageRequest{GroupId: "show"})
		})
		t.Fatalf("a %d-byte sender_extension (SPEC: userExtension ≤ 512 bytes) was accepted (err %v); after 12 of them, a member's listRecentMessage: %v",
			len(ext), err, rerr)
	}
}

// TestAuditAPIWhitelistCanBeEmptied: PUT /groups/{id}/mute-all takes
// white_user_list, which "when set, replaces the users who may still send"
// (serverapi/users.go, docs/protocol.md). An empty list is sent to the
// router as a protobuf repeated field with no items, which is the same as
// no list at all (router/group_ops.go, muteAll: white != nil), so it
// changes nothing: once a user is whitelisted, the app can take it off
// only by naming someone else, and never empty the whitelist. The user it
// meant to silence goes on sending under mute-all.
func TestAuditAPIWhitelistCanBeEmptied(t *testing.T) {
	c, api := apiCluster(t)
	do(t, api, "POST", "/groups", map[string]any{"group_id": "show", "group_name": "Show"}, nil)
	vip := c.Login(t, 1, "vip", "")
	join(t, vip, "show")
	var mv serverapi.MuteView
	do(t, api, "PUT", "/groups/show/mute-all", map[string]any{"white_user_list": []string{"vip"}}, &mv)
	if !mv.MuteAll || len(mv.WhiteUsers) != 1 {
		t.Fatalf("mute-all with vip whitelisted: %+v", mv)
	}
	// The VIP misbehaves: the app empties the whitelist.
	do(t, api, "PUT", "/groups/show/mute-all", map[string]any{"white_user_list": []string{}}, &mv)
	_, err := vip.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "show", Type: chatType, Data: "still here"})
	if len(mv.WhiteUsers) != 0 || testcluster.ErrCode(err) != 442 {
		t.Fatalf("mute-all with white_user_list [] answered white_users %q; the user taken off it sends: %v (want 442)", mv.WhiteUsers, err)
	}
}
