package serverapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// GroupView is a group as the server API shows it.
type GroupView struct {
	GroupID      string          `json:"group_id"`
	GroupName    string          `json:"group_name"`
	GroupMeta    string          `json:"group_meta"`
	CreateTimeMs int64           `json:"create_time"`
	Creator      string          `json:"creator"`
	Admins       []string        `json:"admins"`
	Closed       bool            `json:"closed"`
	LastSeqnum   int64           `json:"last_seqnum"`
	Statistics   *StatisticsView `json:"statistics,omitempty"`
	Mutes        *MuteView       `json:"mutes,omitempty"`
}

// StatisticsView is a group's statistics.
type StatisticsView struct {
	PV          int64            `json:"pv"`
	OnlineCount int64            `json:"online_count"`
	MsgAmount   map[string]int64 `json:"msg_amount"` // by message type
}

// MuteView is a group's mute state.
type MuteView struct {
	MuteAll    bool     `json:"mute_all"`
	MutedUsers []string `json:"muted_users"`
	WhiteUsers []string `json:"white_users"`
}

func groupView(g *liveimpb.GroupInfo) GroupView {
	v := GroupView{
		GroupID: g.GroupId, GroupName: g.GroupName, GroupMeta: g.GroupMeta, CreateTimeMs: g.CreateTime,
		Creator: g.Creator, Admins: nonNil(g.Admins), Closed: g.Closed, LastSeqnum: g.LastSeqnum,
	}
	if st := g.Statistics; st != nil {
		v.Statistics = &StatisticsView{PV: st.Pv, OnlineCount: st.OnlineCount, MsgAmount: map[string]int64{}}
		for t, n := range st.MsgAmount {
			v.Statistics.MsgAmount[strconv.Itoa(int(t))] = n
		}
	}
	if m := g.MuteStatus; m != nil {
		mv := muteView(m)
		v.Mutes = &mv
	}
	return v
}

func muteView(m *liveimpb.MuteStatus) MuteView {
	return MuteView{MuteAll: m.MuteAll, MutedUsers: nonNil(m.MuteUserList), WhiteUsers: nonNil(m.WhiteUserList)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type createGroupRequest struct {
	GroupID   string   `json:"group_id,omitempty"`
	GroupName string   `json:"group_name"`
	GroupMeta string   `json:"group_meta,omitempty"`
	Creator   string   `json:"creator,omitempty"`
	Admins    []string `json:"admins,omitempty"`
}

type createGroupReply struct {
	GroupID      string `json:"group_id"`
	AlreadyExist bool   `json:"already_exist"`
}

// createGroup creates a group (or opens a closed one again) owned by
// creator, empty for a group only the server API manages, with admins.
// An open group of that ID is left as it is (already_exist).
func (s *Server) createGroup(r *http.Request, app storage.App, body []byte) (any, error) {
	var req createGroupRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.GroupID == "" {
		req.GroupID = ids.New()
	} else if err := ids.Check("group_id", req.GroupID); err != nil {
		return nil, err
	}
	if req.Creator != "" {
		if err := ids.Check("creator", req.Creator); err != nil {
			return nil, err
		}
	}
	// The router checks the admins before it makes the group and sets
	// them with it: a request it refuses makes nothing.
	rep, err := s.rpc.frame(r.Context(), app.ID, req.GroupID, req.Creator, &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CreateGroup{CreateGroup: &liveimpb.CreateGroupRequest{
		GroupId: req.GroupID, GroupName: req.GroupName, GroupMeta: req.GroupMeta,
	}}}, func(q *liveimpb.RouterRequest) { q.CreateAdmins = req.Admins })
	if err != nil {
		return nil, err
	}
	return createGroupReply{GroupID: rep.GetCreateGroup().GetGroupId(), AlreadyExist: rep.GetCreateGroup().GetAlreadyExist()}, nil
}

func (s *Server) describeGroup(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	rep, err := s.rpc.frame(r.Context(), app.ID, groupID, "", &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_QueryGroup{QueryGroup: &liveimpb.QueryGroupRequest{GroupId: groupID}}})
	if err != nil {
		return nil, err
	}
	return groupView(rep.GetGroupInfo()), nil
}

type modifyGroupRequest struct {
	GroupMeta *string   `json:"group_meta,omitempty"`
	Admins    *[]string `json:"admins,omitempty"`
}

func (s *Server) modifyGroup(r *http.Request, app storage.App, body []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	var req modifyGroupRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	m := &liveimpb.ModifyGroupRequest{GroupId: groupID}
	if req.GroupMeta != nil {
		m.ForceUpdateGroupMeta, m.GroupMeta = true, *req.GroupMeta
	}
	if req.Admins != nil {
		m.ForceUpdateAdmins, m.Admins = true, *req.Admins
	}
	if !m.ForceUpdateGroupMeta && !m.ForceUpdateAdmins {
		return nil, liveimpb.InvalidParam("body", "set group_meta, admins or both")
	}
	if _, err := s.rpc.frame(r.Context(), app.ID, groupID, "", &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ModifyGroup{ModifyGroup: m}}); err != nil {
		return nil, err
	}
	return s.describeGroup(r, app, nil)
}

func (s *Server) closeGroup(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	_, err = s.rpc.frame(r.Context(), app.ID, groupID, "", &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CloseGroup{CloseGroup: &liveimpb.CloseGroupRequest{GroupId: groupID}}})
	return nil, err
}

func (s *Server) deleteGroup(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	_, err = s.rpc.call(r.Context(), app.ID, groupID, &liveimpb.RouterRequest{
		Caller: serverCaller(app.ID, ""), DeleteGroup: &liveimpb.DeleteGroup{GroupId: groupID},
	})
	return nil, err
}

// GroupSummary is a group in a list.
type GroupSummary struct {
	GroupID      string `json:"group_id"`
	GroupName    string `json:"group_name"`
	Creator      string `json:"creator"`
	CreateTimeMs int64  `json:"create_time"`
	Closed       bool   `json:"closed"`
}

// Page sizes of lists.
const (
	defaultPage = 20
	maxPage     = 100
)

func (s *Server) listGroups(r *http.Request, app storage.App, _ []byte) (any, error) {
	q := r.URL.Query()
	limit, err := pageSize(q.Get("limit"), maxPage)
	if err != nil {
		return nil, err
	}
	gq := storage.GroupQuery{AppID: app.ID, Limit: limit, PageToken: q.Get("page_token")}
	if gq.PageToken != "" && !ids.Valid(gq.PageToken) {
		return nil, liveimpb.InvalidParam("page_token", "not a token this server returned")
	}
	switch q.Get("status") {
	case "", "all":
	case "open":
		gq.Status = storage.OpenGroups
	case "closed":
		gq.Status = storage.ClosedGroups
	default:
		return nil, liveimpb.InvalidParam("status", "open, closed or all")
	}
	page, err := s.store.ListGroups(r.Context(), gq)
	if err != nil {
		return nil, storeErr(err)
	}
	out := struct {
		Groups        []GroupSummary `json:"groups"`
		NextPageToken string         `json:"next_page_token"`
	}{Groups: []GroupSummary{}, NextPageToken: page.NextPageToken}
	for _, g := range page.Groups {
		out.Groups = append(out.Groups, GroupSummary{GroupID: g.ID, GroupName: g.Name, Creator: g.Creator, CreateTimeMs: g.CreateTimeMs, Closed: g.Closed})
	}
	return out, nil
}

// pathID reads and checks an ID in the request path.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	return id, ids.Check(name, id)
}

// pageSize reads a page size parameter: default defaultPage, 1..max.
func pageSize(v string, max int) (int, error) {
	if v == "" {
		return min(defaultPage, max), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, liveimpb.InvalidParam("limit", "1 to %d", max)
	}
	return n, nil
}

// storeErr maps a store's refusal of a query onto 400.
func storeErr(err error) error {
	if err != nil && errors.Is(err, storage.ErrInvalidQuery) {
		return liveimpb.InvalidParam("page_token", "not a token this server returned")
	}
	return err
}
