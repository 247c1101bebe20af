package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/demoapp"
)

func TestTokenHandler(t *testing.T) {
	info := demoapp.Info{AppID: "demo", AppKey: "k", AppSign: "lim1.x"}
	h := TokenHandler(info, time.Hour, []string{"live.example.test:8443"})
	tests := []struct {
		name, host, query string
		status            int
	}{
		{"member", "127.0.0.1:8080", "user=alice", 200},
		{"admin", "127.0.0.1:8080", "user=bob&role=admin", 200},
		{"localhost", "localhost:8080", "user=alice", 200},
		{"IPv6 loopback", "[::1]:8080", "user=alice", 200},
		{"configured host", "live.example.test:8443", "user=alice", 200},
		{"DNS rebinding: another name for this server", "attacker.example:8080", "user=mallory&role=admin", 403},
		{"configured name on another port", "live.example.test:9999", "user=alice", 403},
		{"no host", "", "user=alice", 403},
		{"through a proxy", "127.0.0.1:8080", "user=mallory&role=admin&via=proxy", 403},
		{"bad user", "127.0.0.1:8080", "user=a.b", 400},
		{"no user", "127.0.0.1:8080", "", 400},
		{"bad role", "127.0.0.1:8080", "user=a&role=root", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/dev/token?"+tt.query, nil)
			req.Host = tt.host
			if req.URL.Query().Get("via") == "proxy" {
				// A proxy that rewrites Host to its upstream (nginx's
				// default) passes the Host check; its forwarding header
				// says the request came from beyond this machine.
				req.Header.Set("X-Forwarded-For", "203.0.113.7")
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				return
			}
			var tr demoapp.TokenReply
			if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
				t.Fatal(err)
			}
			c := auth.Credentials{AppID: tr.AppID, UserID: tr.Auth.UserID, Nonce: tr.Auth.Nonce, Timestamp: tr.Auth.Timestamp, Role: tr.Auth.Role, Token: tr.AppToken}
			if err := auth.Verify(info.AppKey, c, auth.Policy{}, time.Now()); err != nil || tr.AppSign != info.AppSign {
				t.Fatalf("token does not verify: %v (%+v)", err, tr)
			}
		})
	}
}

// TestPagesServeTheDemo checks that the page loads the SDK bundle and
// that every file it refers to is served (the page fetches nothing from
// elsewhere).
func TestPagesServeTheDemo(t *testing.T) {
	rec := httptest.NewRecorder()
	Pages().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	page := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(page, `src="liveim-im.iife.js"`) {
		t.Fatalf("GET / = %d, page does not load the SDK bundle", rec.Code)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("page refers to %d files: %q", len(refs), refs)
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if strings.Contains(ref, "//") || strings.HasPrefix(ref, "/") {
			t.Errorf("page refers to %q: only files beside it", ref)
			continue
		}
		rec := httptest.NewRecorder()
		Pages().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+ref, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("GET /%s = %d (%d bytes)", ref, rec.Code, rec.Body.Len())
		}
	}
}

// TestDemoSecurityHeaders: the page (whose moderation buttons end a live
// or kick) and the development endpoints cannot be framed by another
// site, and the page runs only what it loads from its own server.
func TestDemoSecurityHeaders(t *testing.T) {
	info := demoapp.Info{AppID: "demo", AppKey: "k", AppSign: "lim1.x"}
	for name, h := range map[string]http.Handler{
		"/":          Pages(),
		"/style.css": Pages(),
		"/dev/token": TokenHandler(info, time.Hour, nil),
		KickPath:     ModerationHandler(info, nil, nil),
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, name+"?user=alice", nil)
		req.Host = "127.0.0.1:8080"
		h.ServeHTTP(rec, req)
		hd := rec.Header()
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") ||
			hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (status %d): headers %v", name, rec.Code, hd)
		}
	}
}
