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

// Pages returns the handler of the demo page and its assets.
func Pages() http.Handler {
	sub, _ := fs.Sub(assets, "assets") // the directory is embedded, so Sub cannot fail
	return http.FileServerFS(sub)
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts) {
			http.Error(w, "this development endpoint answers only on loopback or the configured address", http.StatusForbidden)
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
	})
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
