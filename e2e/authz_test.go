package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// The roles of the authorization matrix, for a group owned by "owner"
// (login role admin) with "helper" as group admin, "member" and "muted"
// (muted by name) joined, "outsider" logged in but not joined, "stranger"
// a user of another app (login role admin there) and "anonymous" a
// connection that never logged in. The server API's column joins when it
// exists (issue 13).
var authzRoles = []string{"anonymous", "member", "muted", "helper", "owner", "outsider", "stranger"}

// authzOp is one client operation on group g; msgID is a message of the
// owner's in g.
type authzOp struct {
	name string
	do   func(cl *client.Client, g, msgID string) error
	want map[string]int32 // by role; roles not listed expect 0
}

func codes(anon, member, muted, helper, owner, outsider, stranger int32) map[string]int32 {
	return map[string]int32{"anonymous": anon, "member": member, "muted": muted, "helper": helper, "owner": owner, "outsider": outsider, "stranger": stranger}
}

// TestAuthorizationMatrix runs every client operation as every role and
// checks the code each gets, cross-app isolation included: a user of
// another app sees none of this app's groups or users.
func TestAuthorizationMatrix(t *testing.T) {
	// Every cell joins its own group: lift the per-session group cap. The
	// anonymous client never logs in, and the matrix takes longer than the
	// login timeout on a busy machine: lift that too, so the cells see the
	// refusal of a request before login, not a socket the timer closed.
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{MaxGroupsPerSession: 1000, LoginTimeout: time.Hour}})
	const otherApp, otherKey = "other-app", "other-app-key"
	if err := c.Store.PutApp(context.Background(), storage.App{ID: otherApp, Key: otherKey}); err != nil {
		t.Fatal(err)
	}
	ctx := func() context.Context { return ctxT(t) }
	var (
		manage   = codes(404, 403, 403, 0, 0, 403, 440)
		anyLogin = codes(404, 0, 0, 0, 0, 0, 440)
		joined   = codes(404, 0, 0, 0, 0, 425, 425)
	)
	ops := []authzOp{
		{"createGroup", func(cl *client.Client, g, _ string) error {
			_, err := cl.CreateGroup(ctx(), &liveimpb.CreateGroupRequest{GroupId: g + "-new", GroupName: "x"})
			return err
		}, codes(404, 403, 403, 403, 0, 403, 0)},
		{"closeGroup", func(cl *client.Client, g, _ string) error { return cl.CloseGroup(ctx(), g) }, manage},
		{"joinGroup", func(cl *client.Client, g, _ string) error { _, err := cl.JoinGroup(ctx(), g); return err }, anyLogin},
		{"leaveGroup", func(cl *client.Client, g, _ string) error { return cl.LeaveGroup(ctx(), g) }, joined},
		{"queryGroup", func(cl *client.Client, g, _ string) error { _, err := cl.QueryGroup(ctx(), g); return err }, anyLogin},
		{"modifyGroup", func(cl *client.Client, g, _ string) error {
			_, err := cl.ModifyGroup(ctx(), &liveimpb.ModifyGroupRequest{GroupId: g, ForceUpdateGroupMeta: true, GroupMeta: "m"})
			return err
		}, manage},
		{"listRecentGroupUser", func(cl *client.Client, g, _ string) error { _, err := cl.ListRecentGroupUser(ctx(), g); return err }, anyLogin},
		{"listGroupUser", func(cl *client.Client, g, _ string) error {
			_, err := cl.ListGroupUser(ctx(), &liveimpb.ListGroupUserRequest{GroupId: g})
			return err
		}, manage},
		{"muteAll", func(cl *client.Client, g, _ string) error { _, err := cl.MuteAll(ctx(), g); return err }, manage},
		{"cancelMuteAll", func(cl *client.Client, g, _ string) error { _, err := cl.CancelMuteAll(ctx(), g); return err }, manage},
		{"muteUser", func(cl *client.Client, g, _ string) error { _, err := cl.MuteUser(ctx(), g, "member"); return err }, manage},
		{"cancelMuteUser", func(cl *client.Client, g, _ string) error { _, err := cl.CancelMuteUser(ctx(), g, "muted"); return err }, manage},
		{"listMuteUsers", func(cl *client.Client, g, _ string) error { _, err := cl.ListMuteUsers(ctx(), g); return err }, manage},
		{"sendGroupMessage", func(cl *client.Client, g, _ string) error {
			_, err := cl.SendGroupMessage(ctx(), &liveimpb.SendGroupMessageRequest{GroupId: g, Type: chatType, Data: "hi"})
			return err
		}, codes(404, 0, 442, 0, 0, 425, 425)},
		{"sendGroupMessage skipMuteCheck", func(cl *client.Client, g, _ string) error {
			_, err := cl.SendGroupMessage(ctx(), &liveimpb.SendGroupMessageRequest{GroupId: g, Type: chatType, Data: "hi", SkipMuteCheck: true})
			return err
		}, codes(404, 0, 442, 0, 0, 425, 425)},
		{"deleteMessage of the owner's", func(cl *client.Client, g, msgID string) error { return cl.DeleteMessage(ctx(), g, msgID) },
			codes(404, 403, 403, 0, 0, 403, 440)},
		{"listRecentMessage", func(cl *client.Client, g, _ string) error {
			_, err := cl.ListRecentMessage(ctx(), &liveimpb.ListRecentMessageRequest{GroupId: g})
			return err
		}, joined},
		{"listMessage", func(cl *client.Client, g, _ string) error {
			_, err := cl.ListMessage(ctx(), &liveimpb.ListMessageRequest{GroupId: g})
			return err
		}, manage},
		{"listHistoryMessage", func(cl *client.Client, g, _ string) error {
			_, err := cl.ListHistoryMessage(ctx(), &liveimpb.ListHistoryMessageRequest{GroupId: g})
			return err
		}, anyLogin},
		{"resumeGroup", func(cl *client.Client, g, _ string) error { _, err := cl.ResumeGroup(ctx(), g, 0, 0); return err }, joined},
		{"sendC2CMessage to a member", func(cl *client.Client, _, _ string) error {
			_, err := cl.SendC2CMessage(ctx(), &liveimpb.SendC2CMessageRequest{ReceiverId: "member", Type: chatType, Data: "psst"})
			return err
		}, codes(404, 0, 0, 0, 0, 0, 424)},
	}

	// One client per role, all on one gateway.
	clients := map[string]*client.Client{}
	for _, role := range []string{"member", "muted", "helper", "outsider"} {
		clients[role] = c.Login(t, 0, role, "")
	}
	clients["owner"] = c.Login(t, 0, "owner", "admin")
	anon, err := testcluster.Dial(t, c.Gateway(0).URL)
	if err != nil {
		t.Fatal(err)
	}
	clients["anonymous"] = anon
	stranger, err := testcluster.Dial(t, c.Gateway(0).URL)
	if err != nil {
		t.Fatal(err)
	}
	cr := auth.Issue(otherApp, otherKey, "stranger", auth.RoleAdmin, auth.NewNonce(auth.DefaultNonceLength), time.Hour, time.Now())
	if _, err := stranger.Login(ctx(), client.Login{AppID: otherApp, UserID: "stranger", Auth: &liveimpb.UserAuth{
		Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}}); err != nil {
		t.Fatal(err)
	}
	clients["stranger"] = stranger

	for i, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, role := range authzRoles {
				// A fresh group per cell: what one role did (close, leave,
				// mute, delete) never decides another's answer.
				g := fmt.Sprintf("g%d-%s", i, role)
				owner := clients["owner"]
				createGroup(t, owner, g)
				if _, err := owner.ModifyGroup(ctx(), &liveimpb.ModifyGroupRequest{GroupId: g, ForceUpdateAdmins: true, Admins: []string{"helper"}}); err != nil {
					t.Fatal(err)
				}
				for _, r := range []string{"owner", "helper", "member", "muted"} {
					join(t, clients[r], g)
				}
				if _, err := owner.MuteUser(ctx(), g, "muted"); err != nil {
					t.Fatal(err)
				}
				msg := send(t, owner, g, "the owner's")
				want := op.want[role]
				err := op.do(clients[role], g, msg.MessageId)
				if got := testcluster.ErrCode(err); err != nil && got == 0 {
					t.Errorf("%s as %s: %v, want code %d", op.name, role, err, want) // not an answer: a dead socket, a timeout
				} else if got != want {
					t.Errorf("%s as %s: code %d, want %d", op.name, role, got, want)
				}
			}
		})
	}
}
