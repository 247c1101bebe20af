// Package demo serves the live-room demo page of `liveim serve` and, in
// development mode only, the token endpoint the page logs in with.
//
// The page (assets/) is plain HTML and JavaScript on the SDK's browser
// bundle (assets/liveim-im.iife.js, built from sdk/js by
// scripts/build-sdk), embedded in the binary.
package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/internal/ids"
)

//go:embed assets
var assets embed.FS

// Pages returns the handler of the demo page and its assets, with
// headers that keep other sites from framing it (its moderation buttons)
// and the browser to what the page loads itself.
func Pages() http.Handler {
	sub, _ := fs.Sub(assets, "assets") // the directory is embedded, so Sub cannot fail
	return secured(http.FileServerFS(sub))
}

// pagePolicy is the demo page's Content-Security-Policy: its own scripts
// and styles only, WebSockets to any gateway (the appSign's URLs may name
// other ports or hosts), and no framing.
const pagePolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secured sets the demo's security headers on every answer of h.
func secured(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pagePolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// devRefused answers 403 and reports true when a request may not reach a
// development endpoint: its Host names another server (DNS rebinding; see
// TokenHandler), or it came through a proxy, which says the endpoint is
// reachable from beyond this machine (a proxy that rewrites Host to its
// upstream, 127.0.0.1:8080, would pass the Host check). Neither is access
// control against a client that reaches the endpoint directly and writes
// its own Host: development mode must not listen where others can reach
// it (docs/security.md).
func devRefused(w http.ResponseWriter, r *http.Request, hosts []string) bool {
	switch {
	case !hostAllowed(r.Host, hosts):
		http.Error(w, "this development endpoint answers only on loopback or the configured address", http.StatusForbidden)
	case forwarded(r.Header):
		http.Error(w, "this development endpoint does not answer through a proxy", http.StatusForbidden)
	default:
		return false
	}
	return true
}

// forwarded reports whether a proxy's forwarding headers are present.
func forwarded(h http.Header) bool {
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// TokenHandler mints login tokens for the demo app: GET
// /dev/token?user=U[&role=admin] answers what an app server would
// (demoapp.TokenReply). It lets anyone log in as anyone, so `liveim
// serve` mounts it only in development mode.
//
// It answers only requests whose Host is a loopback name or address
// (localhost, 127.0.0.1, [::1], any port) or one of hosts ("host:port" as
// browsers send it): a page on another site that points its own DNS name
// at this server (DNS rebinding) sends its own name as Host and gets 403.
func TokenHandler(info demoapp.Info, ttl time.Duration, hosts []string) http.Handler {
	return secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if devRefused(w, r, hosts) {
			return
		}
		user, role := r.URL.Query().Get("user"), r.URL.Query().Get("role")
		if !ids.Valid(user) {
			http.Error(w, "user: 1-64 of A-Z a-z 0-9 -", http.StatusBadRequest)
			return
		}
		if role != "" && role != auth.RoleAdmin {
			http.Error(w, `role: "admin" or empty`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(demoapp.Issue(info, user, role, ttl, time.Now()))
	}))
}

// hostAllowed reports whether a request's Host names this server: a
// loopback name or address, or one of hosts exactly.
func hostAllowed(host string, hosts []string) bool {
	if host == "" {
		return false
	}
	if slices.Contains(hosts, strings.ToLower(host)) {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
