package demo

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/serverapi"
)

// TestModerationHandlerRefusals checks what /dev/kick and /dev/mute refuse
// before they call the server API (cmd/liveim's tests and tests/browser
// run them against a real one).
func TestModerationHandlerRefusals(t *testing.T) {
	info := demoapp.Info{AppID: "demo", AppKey: "k", AppSign: "lim1.x"}
	// Nothing listens at this API: every case must be refused before it.
	api := []string{"http://127.0.0.1:1"}
	alice := demoapp.Issue(info, "alice", "admin", time.Hour, time.Now())
	body := func(tr demoapp.TokenReply, group, user string, seconds int64) string {
		b, _ := json.Marshal(ModerationRequest{Auth: tr.Auth, AppToken: tr.AppToken, GroupID: group, UserID: user, Seconds: seconds})
		return string(b)
	}
	forged := alice
	forged.Auth.UserID = "mallory"
	other := demoapp.Issue(demoapp.Info{AppID: "demo", AppKey: "another"}, "alice", "admin", time.Hour, time.Now())
	tests := []struct {
		name, method, path, host, ctype, body string
		api                                   []string
		status, code                          int
	}{
		{"DNS rebinding", "POST", KickPath, "attacker.example:8080", "application/json", body(alice, "r", "bob", 0), api, 403, 0},
		{"through a proxy", "POST", KickPath, "127.0.0.1:8080", "application/json", body(alice, "r", "bob", 0), api, 403, 0},
		{"GET", "GET", KickPath, "127.0.0.1:8080", "", "", api, 405, 0},
		{"a form from another site", "POST", KickPath, "127.0.0.1:8080", "application/x-www-form-urlencoded", "user_id=bob", api, 415, 0},
		{"text/plain from another site", "POST", MutePath, "127.0.0.1:8080", "text/plain", body(alice, "r", "bob", 0), api, 415, 0},
		{"not JSON", "POST", KickPath, "127.0.0.1:8080", "application/json", "{", api, 400, 400},
		{"unknown field", "POST", KickPath, "127.0.0.1:8080", "application/json", `{"user":"bob"}`, api, 400, 400},
		{"no server API", "POST", KickPath, "localhost:8070", "application/json", body(alice, "r", "bob", 0), nil, 403, 403},
		{"bad group", "POST", KickPath, "127.0.0.1:8080", "application/json", body(alice, "a.b", "bob", 0), api, 400, 400},
		{"bad user", "POST", MutePath, "127.0.0.1:8080", "application/json", body(alice, "r", "", 0), api, 400, 400},
		{"negative seconds", "POST", MutePath, "127.0.0.1:8080", "application/json", body(alice, "r", "bob", -1), api, 400, 400},
		{"no login", "POST", KickPath, "127.0.0.1:8080", "application/json", `{"group_id":"r","user_id":"bob"}`, api, 400, 400},
		{"a token for another user", "POST", KickPath, "127.0.0.1:8080", "application/json; charset=utf-8", body(forged, "r", "bob", 0), api, 401, 401},
		{"a token of another app key", "POST", MutePath, "127.0.0.1:8080", "application/json", body(other, "r", "bob", 60), api, 401, 401},
		{"no server API answers", "POST", KickPath, "127.0.0.1:8080", "application/json", body(alice, "r", "bob", 0), api, 503, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ModerationHandler(info, tt.api, nil)
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Host = tt.host
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if strings.Contains(tt.name, "proxy") {
				req.Header.Set("Forwarded", "for=203.0.113.7")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.code == 0 {
				return
			}
			var e serverapi.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || int(e.Code) != tt.code || e.Msg == "" {
				t.Fatalf("reply %s (%v), want code %d with a message", rec.Body, err, tt.code)
			}
		})
	}
}
