package serverapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

type tokenRequest struct {
	UserID string `json:"user_id"`
	Role   string `json:"role,omitempty"`
	// TTLSeconds is the token's lifetime. Default a day, at most the
	// app's maximum token lifetime.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// issueToken makes a login token for a user of the app, as the app's
// backend would with its key (docs/protocol.md): for backends that
// prefer not to sign tokens themselves.
func (s *Server) issueToken(_ *http.Request, app storage.App, body []byte) (any, error) {
	var req tokenRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := ids.Check("user_id", req.UserID); err != nil {
		return nil, err
	}
	if req.Role != "" && req.Role != auth.RoleAdmin {
		return nil, liveimpb.InvalidParam("role", `"admin" or empty`)
	}
	policy := app.TokenPolicy().WithDefaults()
	ttl := 24 * time.Hour
	if req.TTLSeconds != 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	if ttl <= 0 || ttl > policy.MaxLifetime {
		return nil, liveimpb.InvalidParam("ttl_seconds", "1 to %d (the app's maximum token lifetime)", int64(policy.MaxLifetime/time.Second))
	}
	c := auth.Issue(app.ID, app.Key, req.UserID, req.Role, auth.NewNonce(policy.NonceLength), min(ttl, policy.MaxLifetime), s.cfg.Now())
	return auth.NewTokenReply(view(app).AppSign, c), nil
}

// UserView is a member of a group.
type UserView struct {
	UserID        string `json:"user_id"`
	UserExtension string `json:"user_extension"`
	JoinTimeMs    int64  `json:"join_time"`
}

// maxMemberPage is the largest page of a group's users (the router's).
const maxMemberPage = 50

func (s *Server) listGroupUsers(r *http.Request, app storage.App, _ []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	limit, err := pageSize(q.Get("limit"), maxMemberPage)
	if err != nil {
		return nil, err
	}
	req := &liveimpb.ListGroupUserRequest{GroupId: groupID, PageSize: int32(limit), NextPageToken: q.Get("page_token")}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		req.SortType = liveimpb.SortType_SORT_TYPE_DESC
	default:
		return nil, liveimpb.InvalidParam("order", "asc or desc")
	}
	rep, err := s.rpc.frame(r.Context(), app.ID, groupID, "", &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListGroupUser{ListGroupUser: req}})
	if err != nil {
		return nil, err
	}
	l := rep.GetListGroupUser()
	out := struct {
		Users         []UserView `json:"users"`
		NextPageToken string     `json:"next_page_token"`
		HasMore       bool       `json:"has_more"`
	}{Users: []UserView{}, NextPageToken: l.GetNextPageToken(), HasMore: l.GetHasMore()}
	for _, u := range l.GetUserList() {
		out.Users = append(out.Users, UserView{UserID: u.UserId, UserExtension: u.UserExtension, JoinTimeMs: u.JoinTime})
	}
	return out, nil
}

type onlineRequest struct {
	UserIDs []string `json:"user_ids"`
}

// OnlineReply answers an online check.
type OnlineReply struct {
	// Online lists the users with a logged-in session on some gateway.
	Online []string `json:"online"`
	// Gateways is how many gateways are running; Answered how many of
	// them answered in time. Fewer answers mean Online may miss users.
	Gateways int `json:"gateways"`
	Answered int `json:"answered"`
}

// maxOnlineUsers is the most users one online check asks about.
const maxOnlineUsers = 500

// online asks every gateway which of the users it holds.
func (s *Server) online(r *http.Request, app storage.App, body []byte) (any, error) {
	var req onlineRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs) == 0 || len(req.UserIDs) > maxOnlineUsers {
		return nil, liveimpb.InvalidParam("user_ids", "1 to %d users", maxOnlineUsers)
	}
	for _, u := range req.UserIDs {
		if err := ids.Check("user_ids", u); err != nil {
			return nil, err
		}
	}
	data, err := proto.Marshal(&liveimpb.OnlineQuery{AppId: app.ID, UserIds: req.UserIDs})
	if err != nil {
		return nil, err
	}
	inbox := nats.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, liveimpb.ErrUnavailable.With("subscribe: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	out := OnlineReply{Online: []string{}, Gateways: s.cluster.LiveGateways()}
	if err := s.nc.PublishRequest(subject.Online, inbox, data); err != nil {
		return nil, liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	seen := map[string]bool{}
	timer := time.NewTimer(s.cfg.OnlineTimeout)
	defer timer.Stop()
	for out.Answered < out.Gateways {
		select {
		case m := <-ch:
			var rep liveimpb.OnlineReply
			if proto.Unmarshal(m.Data, &rep) != nil || seen[rep.GatewayId] {
				continue
			}
			seen[rep.GatewayId] = true
			out.Answered++
			out.Online = append(out.Online, rep.UserIds...)
		case <-timer.C:
			return finishOnline(out), nil
		case <-r.Context().Done():
			return nil, liveimpb.ErrUnavailable.With("%v", r.Context().Err())
		}
	}
	return finishOnline(out), nil
}

func finishOnline(out OnlineReply) OnlineReply {
	out.Online = nonNil(slices.Compact(slices.Sorted(slices.Values(out.Online))))
	return out
}

type kickRequest struct {
	UserID string `json:"user_id"`
	// BanSeconds keeps the user from joining again for so long; 0 lets it
	// join at once.
	BanSeconds int64 `json:"ban_seconds,omitempty"`
}

// kick removes a user from a group: its sessions get exit with reason 2,
// and with a ban it cannot join again (403) until the ban ends.
func (s *Server) kick(r *http.Request, app storage.App, body []byte) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	var req kickRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := ids.Check("user_id", req.UserID); err != nil {
		return nil, err
	}
	_, err = s.rpc.call(r.Context(), app.ID, groupID, &liveimpb.RouterRequest{
		Caller: serverCaller(app.ID, ""), Kick: &liveimpb.KickUser{GroupId: groupID, UserId: req.UserID, BanSeconds: req.BanSeconds},
	})
	return nil, err
}

// disconnect ends every session of a user: disconnect code 2, and the SDK
// does not reconnect. It does not stop the user logging in again; that is
// the app's token issuing to decide.
func (s *Server) disconnect(r *http.Request, app storage.App, _ []byte) (any, error) {
	userID, err := pathID(r, "userId")
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject.User(app.ID, userID))
	m.Header.Set(subject.HeaderKind, subject.KindDisconnect)
	if err := s.nc.PublishMsg(m); err != nil {
		return nil, liveimpb.ErrUnavailable.With("publish: %v", err)
	}
	if err := s.nc.FlushTimeout(s.cfg.RequestTimeout); err != nil {
		return nil, liveimpb.ErrUnavailable.With("flush: %v", err)
	}
	return nil, nil
}

func (s *Server) mutes(r *http.Request, app storage.App, _ []byte) (any, error) {
	return s.muteOp(r, app, func(groupID string) *liveimpb.ClientFrame {
		return &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_ListMuteUsers{ListMuteUsers: &liveimpb.ListMuteUsersRequest{GroupId: groupID}}}
	})
}

type muteAllRequest struct {
	// WhiteUserList, when set (also to []), replaces the users who may
	// still send.
	WhiteUserList []string `json:"white_user_list,omitempty"`
}

func (s *Server) muteAll(r *http.Request, app storage.App, body []byte) (any, error) {
	var req muteAllRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return s.muteOp(r, app, func(groupID string) *liveimpb.ClientFrame {
		return &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_MuteAll{MuteAll: &liveimpb.MuteAllRequest{GroupId: groupID, WhiteUserList: req.WhiteUserList}}}
	}, func(q *liveimpb.RouterRequest) { q.ReplaceWhiteList = req.WhiteUserList != nil }) // [] empties it
}

func (s *Server) cancelMuteAll(r *http.Request, app storage.App, _ []byte) (any, error) {
	return s.muteOp(r, app, func(groupID string) *liveimpb.ClientFrame {
		return &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CancelMuteAll{CancelMuteAll: &liveimpb.CancelMuteAllRequest{GroupId: groupID}}}
	})
}

type muteUsersRequest struct {
	UserIDs []string `json:"user_ids"`
	// DurationSeconds ends the mute by itself; 0 mutes until cancelled.
	DurationSeconds int64 `json:"duration_seconds,omitempty"`
}

func (s *Server) muteUsers(r *http.Request, app storage.App, body []byte) (any, error) {
	var req muteUsersRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return s.muteOp(r, app, func(groupID string) *liveimpb.ClientFrame {
		return &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_MuteUser{MuteUser: &liveimpb.MuteUserRequest{GroupId: groupID, UserList: req.UserIDs, DurationSeconds: req.DurationSeconds}}}
	})
}

func (s *Server) unmuteUsers(r *http.Request, app storage.App, body []byte) (any, error) {
	var req muteUsersRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.DurationSeconds != 0 {
		return nil, liveimpb.InvalidParam("duration_seconds", "not for unmuting")
	}
	return s.muteOp(r, app, func(groupID string) *liveimpb.ClientFrame {
		return &liveimpb.ClientFrame{Body: &liveimpb.ClientFrame_CancelMuteUser{CancelMuteUser: &liveimpb.CancelMuteUserRequest{GroupId: groupID, UserList: req.UserIDs}}}
	})
}

func (s *Server) muteOp(r *http.Request, app storage.App, frame func(groupID string) *liveimpb.ClientFrame, with ...func(*liveimpb.RouterRequest)) (any, error) {
	groupID, err := pathID(r, "groupId")
	if err != nil {
		return nil, err
	}
	rep, err := s.rpc.frame(r.Context(), app.ID, groupID, "", frame(groupID), with...)
	if err != nil {
		return nil, err
	}
	return muteView(rep.GetMuteStatus()), nil
}
