// Package demoapp creates and reads the demo app that `liveim serve`
// makes on first start. Its credentials live in the store and, so that
// `liveim token` and `liveim app` can read them while the server runs, in
// <data>/app.json (mode 0600).
package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/serverapi"
	"github.com/liveim/liveim/storage"
)

// ID is the demo app's ID.
const ID = "demo"

// FileName is the credentials file under the data dir.
const FileName = "app.json"

// Info is what `liveim app` prints.
type Info struct {
	AppID   string `json:"app_id"`
	AppKey  string `json:"app_key"`
	AppSign string `json:"app_sign"`
}

// Ensure makes sure the demo app exists in st and in dir/app.json, and
// that its appSign advertises urls. It returns the app and whether it was
// created now. The store is the truth: app.json holding another key (an
// old copy) is rewritten from the store, with a warning on log.
func Ensure(ctx context.Context, st storage.Store, dir string, urls []string, log *slog.Logger) (Info, bool, error) {
	info, err := Load(dir)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		app, err := st.GetApp(ctx, ID)
		if errors.Is(err, storage.ErrNotFound) {
			// The same path as the admin API's POST /admin/apps.
			app, err = serverapi.CreateApp(ctx, st, ID, serverapi.AppSettings{GatewayURLs: &urls}, time.Now())
			if err != nil {
				return Info{}, false, fmt.Errorf("demoapp: %w", err)
			}
			created = true
		} else if err != nil {
			return Info{}, false, fmt.Errorf("demoapp: %w", err)
		}
		info = Info{AppID: app.ID, AppKey: app.Key}
	case err != nil:
		return Info{}, false, err
	default:
		app, err := st.GetApp(ctx, info.AppID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// A new store (a fresh ScyllaDB keyspace) beside an existing
			// app.json: the app moves into the store with its key.
			log.Warn("the demo app of app.json is not in the store; creating it there", "app_id", info.AppID)
			if err := st.PutApp(ctx, storage.App{ID: info.AppID, Key: info.AppKey, CreatedAtMs: time.Now().UnixMilli()}); err != nil {
				return Info{}, false, fmt.Errorf("demoapp: %w", err)
			}
		case err != nil:
			return Info{}, false, fmt.Errorf("demoapp: %w", err)
		case app.Key != info.AppKey:
			log.Warn("app.json and the store disagree on the demo app's key; the store wins and app.json is rewritten", "app_id", info.AppID)
			info.AppKey = app.Key
		}
	}
	info.AppSign = auth.AppSign{AppID: info.AppID, URLs: urls}.Encode()
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, FileName), append(b, '\n'), 0o600); err != nil {
		return Info{}, false, fmt.Errorf("demoapp: %w", err)
	}
	return info, created, nil
}

// Load reads dir/app.json.
func Load(dir string) (Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("demoapp: %s: %w", FileName, err)
	}
	if info.AppID == "" || info.AppKey == "" {
		return Info{}, fmt.Errorf("demoapp: %s: missing app_id or app_key", FileName)
	}
	return info, nil
}

// TokenReply is what an app server returns to its client for login, and
// what `liveim token` prints.
type TokenReply = auth.TokenReply

// Issue makes a TokenReply for userID, valid for ttl from now, with a
// fresh nonce of the demo app's length (the default).
func Issue(info Info, userID, role string, ttl time.Duration, now time.Time) TokenReply {
	c := auth.Issue(info.AppID, info.AppKey, userID, role, auth.NewNonce(auth.DefaultNonceLength), ttl, now)
	return auth.NewTokenReply(info.AppSign, c)
}
