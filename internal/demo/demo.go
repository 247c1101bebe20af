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
	"net/http"
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
func TokenHandler(info demoapp.Info, ttl time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
