package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/serverapi"
)

// Paths of the moderation ModerationHandler serves.
const (
	KickPath = "/dev/kick"
	MutePath = "/dev/mute"
)

// ModerationRequest is the body of POST /dev/kick and POST /dev/mute.
type ModerationRequest struct {
	// Auth and AppToken are the caller's login as /dev/token gave it.
	Auth     auth.TokenAuth `json:"auth"`
	AppToken string         `json:"app_token"`
	GroupID  string         `json:"group_id"`
	UserID   string         `json:"user_id"`
	// Seconds: for a kick, how long the user may not join again (0: it
	// may come back at once); for a mute, how long it lasts (0: until
	// cancelled).
	Seconds int64 `json:"seconds,omitempty"`
}

// moderationTimeout bounds one request's calls to the server API.
const moderationTimeout = 15 * time.Second

// ModerationHandler serves what a room's owner and admins need from the
// app's backend because the client API cannot do it: POST /dev/kick
// removes a user from the room (its sessions get exit with reason 2),
// with an optional ban; POST /dev/mute mutes a user for a time (the
// client's muteUser has no duration). Both take a ModerationRequest and
// call the server API at api (routers' internal listeners, tried in turn
// while none answers), signed with the app's key, as an app's backend
// does. With no api they answer 403, saying so.
//
// It is development-only and guarded like TokenHandler: only loopback
// Hosts and hosts. The caller proves who it is with its login from
// /dev/token (checked against the app key) and must be the room's owner
// or one of its admins; the room's owner and admins cannot be kicked or
// muted. Bodies must be application/json, which another site's page can
// send only after a CORS preflight this handler never grants.
func ModerationHandler(info demoapp.Info, api []string, hosts []string) http.Handler {
	return secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if devRefused(w, r, hosts) {
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		var req ModerationRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, liveimpb.InvalidParam("body", "%v", err))
			return
		}
		if len(api) == 0 {
			writeError(w, liveimpb.ErrForbidden.With("this demo backend has no server API to call: run liveim demo with --api"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), moderationTimeout)
		defer cancel()
		m := moderator{info: info, api: api}
		var err error
		switch r.URL.Path {
		case KickPath:
			err = m.do(ctx, req, "/kick", map[string]any{"user_id": req.UserID, "ban_seconds": req.Seconds})
		case MutePath:
			err = m.do(ctx, req, "/muted-users", map[string]any{"user_ids": []string{req.UserID}, "duration_seconds": req.Seconds})
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	}))
}

// moderator runs one moderation request against the server API.
type moderator struct {
	info demoapp.Info
	api  []string
}

// do checks req and its caller's rights, then POSTs body to the group's
// operation op (below /groups/{id}).
func (m moderator) do(ctx context.Context, req ModerationRequest, op string, body any) error {
	if err := ids.Check("group_id", req.GroupID); err != nil {
		return err
	}
	if err := ids.Check("user_id", req.UserID); err != nil {
		return err
	}
	if req.Seconds < 0 {
		return liveimpb.InvalidParam("seconds", "must not be negative")
	}
	caller := auth.Credentials{AppID: m.info.AppID, UserID: req.Auth.UserID, Nonce: req.Auth.Nonce,
		Timestamp: req.Auth.Timestamp, Role: req.Auth.Role, Token: req.AppToken}
	if err := auth.Verify(m.info.AppKey, caller, auth.Policy{}, time.Now()); err != nil {
		return err
	}
	var g serverapi.GroupView
	if err := m.call(ctx, http.MethodGet, "/groups/"+req.GroupID, nil, &g); err != nil {
		return err
	}
	managers := append([]string{g.Creator}, g.Admins...)
	switch {
	case !slices.Contains(managers, caller.UserID):
		return liveimpb.ErrForbidden.With("only the room's owner and admins moderate it")
	case slices.Contains(managers, req.UserID):
		return liveimpb.ErrForbidden.With("the room's owner and admins are not kicked or muted")
	}
	return m.call(ctx, http.MethodPost, "/groups/"+req.GroupID+op, body, nil)
}

// call calls the server API, trying each address in turn while none
// answers; a catalogue error is the answer.
func (m moderator) call(ctx context.Context, method, path string, in, out any) error {
	var err error
	for _, base := range m.api {
		err = apiclient.New(base, apiclient.App(m.info.AppID, m.info.AppKey)).Do(ctx, method, path, nil, in, out)
		var e *liveimpb.Error
		if err == nil || errors.As(err, &e) || ctx.Err() != nil {
			return err
		}
	}
	return liveimpb.ErrUnavailable.With("no server API answered: %v", err)
}

func writeError(w http.ResponseWriter, err error) {
	e := liveimpb.AsError(err)
	writeJSON(w, serverapi.HTTPStatus(int32(e.Code)), serverapi.Error{Code: int32(e.Code), Msg: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // only the reply structs above: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
