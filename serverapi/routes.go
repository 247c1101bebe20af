package serverapi

import (
	"net/http"
	"strings"

	"github.com/liveim/liveim/proto/liveimpb"
)

// register adds every operation to the mux and returns them as
// "METHOD /path". openapi.json describes the same set (openapi_test.go).
func (s *Server) register() []string {
	var routes []string
	add := func(pattern string, h http.HandlerFunc) {
		s.mux.Handle(pattern, h)
		routes = append(routes, pattern)
	}
	app := func(method, path string, h appHandler) { add(method+" "+Prefix+path, s.forApp(h)) }
	admin := func(method, path string, h adminHandler) { add(method+" "+Prefix+path, s.forAdmin(h)) }

	admin("POST", "/admin/apps", s.createApp)
	admin("GET", "/admin/apps", s.listApps)
	admin("GET", "/admin/apps/{appId}", s.showApp)
	admin("PATCH", "/admin/apps/{appId}", s.setApp)
	admin("POST", "/admin/apps/{appId}/rotate-key", s.rotateKey)
	admin("POST", "/admin/apps/{appId}/disable", s.disableApp)

	app("POST", "/tokens", s.issueToken)
	app("POST", "/groups", s.createGroup)
	app("GET", "/groups", s.listGroups)
	app("GET", "/groups/{groupId}", s.describeGroup)
	app("PATCH", "/groups/{groupId}", s.modifyGroup)
	app("DELETE", "/groups/{groupId}", s.deleteGroup)
	app("POST", "/groups/{groupId}/close", s.closeGroup)
	app("POST", "/groups/{groupId}/messages", s.sendGroupMessage)
	app("GET", "/groups/{groupId}/messages", s.listMessages)
	app("DELETE", "/groups/{groupId}/messages/{messageId}", s.deleteMessage)
	app("GET", "/groups/{groupId}/users", s.listGroupUsers)
	app("POST", "/groups/{groupId}/kick", s.kick)
	app("GET", "/groups/{groupId}/mutes", s.mutes)
	app("PUT", "/groups/{groupId}/mute-all", s.muteAll)
	app("DELETE", "/groups/{groupId}/mute-all", s.cancelMuteAll)
	app("POST", "/groups/{groupId}/muted-users", s.muteUsers)
	app("POST", "/groups/{groupId}/muted-users/remove", s.unmuteUsers)
	app("POST", "/broadcast", s.broadcast)
	app("POST", "/users/online", s.online)
	app("POST", "/users/{userId}/messages", s.sendUserMessage)
	app("POST", "/users/{userId}/disconnect", s.disconnect)

	s.mux.HandleFunc("GET "+Prefix+"/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	// Anything else under the prefix is HTTP 404 with a JSON body (code
	// 400: the request names no operation), not net/http's text.
	s.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Code: int32(liveimpb.ErrInvalidParameter.Code),
			Msg: "no operation " + r.Method + " " + strings.TrimPrefix(r.URL.Path, Prefix) + " (see " + Prefix + "/openapi.json)"})
	})
	return routes
}
