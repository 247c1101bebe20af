package e2e

import (
	"slices"
	"testing"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestGroupOperations runs every group operation of SPEC §3 through two
// gateways and two routers: create, query, modify (infochange), admins,
// mutes with a whitelist (mutechange), close (exit 1), in one room.
func TestGroupOperations(t *testing.T) {
	c := cluster2(t, fastPresence())
	owner := c.Login(t, 0, "owner", "admin")
	admin := c.Login(t, 1, "admin1", "")
	viewer := c.Login(t, 1, "viewer", "")
	vip := c.Login(t, 0, "vip", "")
	createGroup(t, owner, "live")
	join(t, owner, "live")
	join(t, admin, "live")
	join(t, viewer, "live")
	join(t, vip, "live")

	// Only owner and admins may manage.
	_, err := viewer.MuteUser(ctxT(t), "live", "vip")
	wantCode(t, err, 403)
	_, err = admin.MuteAll(ctxT(t), "live")
	wantCode(t, err, 403) // not an admin yet

	info, err := owner.ModifyGroup(ctxT(t), &liveimpb.ModifyGroupRequest{GroupId: "live", ForceUpdateAdmins: true, Admins: []string{"admin1"}, ForceUpdateGroupMeta: true, GroupMeta: `{"title":"launch"}`})
	if err != nil || !slices.Equal(info.Admins, []string{"admin1"}) || info.GroupMeta != `{"title":"launch"}` {
		t.Fatalf("modifyGroup: %+v, %v", info, err)
	}
	ic := waitEvent(t, viewer, infoChange)
	if ic.GroupId != "live" || ic.GroupMeta != `{"title":"launch"}` || !slices.Equal(ic.AdminList, []string{"admin1"}) {
		t.Fatalf("infochange: %+v", ic)
	}
	_, err = owner.ModifyGroup(ctxT(t), &liveimpb.ModifyGroupRequest{GroupId: "live", ForceUpdateAdmins: true, Admins: []string{"a", "b", "c", "d"}})
	wantCode(t, err, 400)

	// The new admin mutes everyone but a whitelisted user.
	st, err := admin.MuteAll(ctxT(t), "live", "vip")
	if err != nil || !st.MuteAll || !slices.Equal(st.WhiteUserList, []string{"vip"}) {
		t.Fatalf("muteAll: %+v, %v", st, err)
	}
	if mc := waitEvent(t, viewer, muteChange); !mc.Status.GetMuteAll() {
		t.Fatalf("mutechange: %+v", mc)
	}
	_, err = viewer.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: "x"})
	wantCode(t, err, 442)
	_, err = viewer.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: "x", SkipMuteCheck: true})
	wantCode(t, err, 442) // skipMuteCheck is for owner and admins only
	send(t, vip, "live", "whitelisted")
	send(t, admin, "live", "admins are never muted")
	send(t, owner, "live", "owners are never muted")

	if _, err := owner.CancelMuteAll(ctxT(t), "live"); err != nil {
		t.Fatal(err)
	}
	send(t, viewer, "live", "free again")
	st, err = owner.MuteUser(ctxT(t), "live", "viewer", "vip")
	if err != nil || !slices.Equal(st.MuteUserList, []string{"viewer", "vip"}) {
		t.Fatalf("muteUser: %+v, %v", st, err)
	}
	_, err = vip.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: "x"})
	wantCode(t, err, 442)
	if _, err := owner.MuteUser(ctxT(t), "live", "admin1"); err != nil {
		t.Fatal(err)
	}
	send(t, admin, "live", "muting an admin has no effect")
	if _, err := owner.CancelMuteUser(ctxT(t), "live", "vip"); err != nil {
		t.Fatal(err)
	}
	send(t, vip, "live", "unmuted")
	st, err = admin.ListMuteUsers(ctxT(t), "live")
	if err != nil || st.MuteAll || !slices.Equal(st.MuteUserList, []string{"admin1", "viewer"}) {
		t.Fatalf("listMuteUsers: %+v, %v", st, err)
	}
	_, err = viewer.ListMuteUsers(ctxT(t), "live")
	wantCode(t, err, 403)
	_, err = owner.MuteUser(ctxT(t), "live", "bad.id")
	wantCode(t, err, 400)

	// Query shows what changed, and the mutes survive in the store: a
	// fresh router state would load them (checked in the failover test).
	q, err := viewer.QueryGroup(ctxT(t), "live")
	if err != nil || q.Creator != "owner" || q.Statistics.GetOnlineCount() != 4 || q.Statistics.GetPv() != 4 ||
		!slices.Equal(q.MuteStatus.GetMuteUserList(), []string{"admin1", "viewer"}) {
		t.Fatalf("queryGroup: %+v, %v", q, err)
	}

	// Closing: members get exit(live, 1); later joins get 441.
	wantCode(t, viewer.CloseGroup(ctxT(t), "live"), 403)
	if err := admin.CloseGroup(ctxT(t), "live"); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{owner, admin, viewer, vip} {
		if ex := waitEvent(t, cl, exitEvent); ex.GroupId != "live" || ex.Reason != 1 {
			t.Fatalf("exit: %+v", ex)
		}
	}
	_, err = viewer.JoinGroup(ctxT(t), "live")
	wantCode(t, err, 441)
	_, err = owner.SendGroupMessage(ctxT(t), &liveimpb.SendGroupMessageRequest{GroupId: "live", Type: chatType, Data: "x"})
	wantCode(t, err, 425) // the gateway dropped the membership with the exit
}
