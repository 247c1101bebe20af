package serverapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// AppSettings are an app's settings as the admin API takes them: a field
// left out (nil) keeps its value, or its default for a new app.
type AppSettings struct {
	RetentionDays       *int      `json:"retention_days,omitempty"`
	MaxGroups           *int      `json:"max_groups,omitempty"`
	MultiDevice         *bool     `json:"multi_device,omitempty"`
	RoomRate            *float64  `json:"room_rate,omitempty"`
	BlockedWords        *[]string `json:"blocked_words,omitempty"`
	AuditURL            *string   `json:"audit_url,omitempty"`
	AuditFailOpen       *bool     `json:"audit_fail_open,omitempty"`
	CallbackURL         *string   `json:"callback_url,omitempty"`
	CallbackEvents      *[]string `json:"callback_events,omitempty"`
	GatewayURLs         *[]string `json:"gateway_urls,omitempty"`
	AllowedOrigins      *[]string `json:"allowed_origins,omitempty"`
	NonceLength         *int      `json:"nonce_length,omitempty"`
	MaxTokenLifetimeSec *int64    `json:"max_token_lifetime_sec,omitempty"`
	Disabled            *bool     `json:"disabled,omitempty"`
}

// Limits of app settings.
const (
	maxBlockedWords = 10000
	maxListItems    = 100
	maxRoomRate     = 1e6
	maxRetention    = 100 * 365
)

// apply validates the settings and writes the set ones into app.
func (s AppSettings) apply(app *storage.App) error {
	if v := s.RetentionDays; v != nil {
		if *v < 0 || *v > maxRetention {
			return liveimpb.InvalidParam("retention_days", "0 (keep forever) to %d", maxRetention)
		}
		app.RetentionDays = *v
	}
	if v := s.MaxGroups; v != nil {
		if *v < 0 {
			return liveimpb.InvalidParam("max_groups", "0 (the router default) or more")
		}
		app.MaxGroups = *v
	}
	if v := s.RoomRate; v != nil {
		if *v < 0 || *v > maxRoomRate {
			return liveimpb.InvalidParam("room_rate", "0 (the router default) to %g", maxRoomRate)
		}
		app.RoomRate = *v
	}
	if v := s.BlockedWords; v != nil {
		if len(*v) > maxBlockedWords || slices.Contains(*v, "") {
			return liveimpb.InvalidParam("blocked_words", "at most %d non-empty words", maxBlockedWords)
		}
		app.BlockedWords = slices.Clone(*v)
	}
	for name, v := range map[string]*string{"audit_url": s.AuditURL, "callback_url": s.CallbackURL} {
		if v != nil && *v != "" {
			if err := checkURL(name, *v, "http", "https"); err != nil {
				return err
			}
		}
	}
	if s.AuditURL != nil {
		app.AuditURL = *s.AuditURL
	}
	if s.CallbackURL != nil {
		app.CallbackURL = *s.CallbackURL
	}
	if v := s.CallbackEvents; v != nil {
		for _, k := range *v {
			if !callback.Known(k) {
				return liveimpb.InvalidParam("callback_events", "%q is not one of %s", k, strings.Join(callback.Kinds, ", "))
			}
		}
		app.CallbackEvents = slices.Compact(slices.Sorted(slices.Values(*v)))
	}
	if v := s.GatewayURLs; v != nil {
		if len(*v) > maxListItems {
			return liveimpb.InvalidParam("gateway_urls", "at most %d", maxListItems)
		}
		for _, u := range *v {
			if err := checkURL("gateway_urls", u, "ws", "wss"); err != nil {
				return err
			}
		}
		app.GatewayURLs = slices.Clone(*v)
	}
	if v := s.AllowedOrigins; v != nil {
		if len(*v) > maxListItems {
			return liveimpb.InvalidParam("allowed_origins", "at most %d", maxListItems)
		}
		for _, o := range *v {
			if err := checkURL("allowed_origins", strings.Replace(o, "*.", "x.", 1), "http", "https"); err != nil {
				return err
			}
		}
		app.AllowedOrigins = slices.Clone(*v)
	}
	if v := s.NonceLength; v != nil {
		if *v < 0 || *v > auth.MaxNonceLen || (*v > 0 && *v < 8) {
			return liveimpb.InvalidParam("nonce_length", "0 (default %d) or 8 to %d", auth.DefaultNonceLength, auth.MaxNonceLen)
		}
		app.NonceLength = *v
	}
	if v := s.MaxTokenLifetimeSec; v != nil {
		if *v < 0 || *v > int64(auth.DefaultMaxLifetime/time.Second)*52 {
			return liveimpb.InvalidParam("max_token_lifetime_sec", "0 (default %v) to a year", auth.DefaultMaxLifetime)
		}
		app.MaxTokenLifetimeSec = *v
	}
	if s.MultiDevice != nil {
		app.MultiDevice = *s.MultiDevice
	}
	if s.AuditFailOpen != nil {
		app.AuditFailOpen = *s.AuditFailOpen
	}
	if s.Disabled != nil {
		app.Disabled = *s.Disabled
	}
	return nil
}

func checkURL(field, raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		return liveimpb.InvalidParam(field, "%q is not a %s URL", raw, strings.Join(schemes, " or "))
	}
	return nil
}

// NewKey returns a fresh app key: 32 random bytes in hex.
func NewKey() string {
	var k [32]byte
	_, _ = rand.Read(k[:])
	return hex.EncodeToString(k[:])
}

// CreateApp creates an app with settings s, a fresh key and appID (a new
// ID when empty); an existing ID is refused (400). The admin API and
// `liveim serve`'s demo app both create apps through it.
func CreateApp(ctx context.Context, st storage.Store, appID string, s AppSettings, now time.Time) (storage.App, error) {
	if appID == "" {
		appID = ids.New()
	} else if err := ids.Check("app_id", appID); err != nil {
		return storage.App{}, err
	}
	switch _, err := st.GetApp(ctx, appID); {
	case err == nil:
		return storage.App{}, liveimpb.InvalidParam("app_id", "%q exists", appID)
	case !errors.Is(err, storage.ErrNotFound):
		return storage.App{}, fmt.Errorf("get app: %w", err)
	}
	app := storage.App{ID: appID, Key: NewKey(), CreatedAtMs: now.UnixMilli()}
	if err := s.apply(&app); err != nil {
		return storage.App{}, err
	}
	if err := st.PutApp(ctx, app); err != nil {
		return storage.App{}, fmt.Errorf("put app: %w", err)
	}
	return app, nil
}

// AppView is an app as the admin API shows it: its record and the appSign
// its clients initialise with.
type AppView struct {
	storage.App
	AppSign string `json:"app_sign"`
}

func view(app storage.App) AppView {
	return AppView{App: app, AppSign: auth.AppSign{AppID: app.ID, URLs: app.GatewayURLs}.Encode()}
}

type createAppRequest struct {
	AppID string `json:"app_id,omitempty"`
	AppSettings
}

type rotateKeyRequest struct {
	// GraceSeconds is how long the old key stays valid. Default 24 h.
	GraceSeconds *int64 `json:"grace_seconds,omitempty"`
}

// defaultGrace is how long a rotated-out key stays valid by default.
const defaultGrace = 24 * time.Hour

func (s *Server) createApp(r *http.Request, body []byte) (any, error) {
	var req createAppRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	app, err := CreateApp(r.Context(), s.store, req.AppID, req.AppSettings, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	return view(app), nil
}

func (s *Server) listApps(r *http.Request, _ []byte) (any, error) {
	apps, err := s.store.ListApps(r.Context())
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := struct {
		Apps []AppView `json:"apps"`
	}{Apps: []AppView{}}
	for _, a := range apps {
		out.Apps = append(out.Apps, view(a))
	}
	return out, nil
}

func (s *Server) getApp(r *http.Request) (storage.App, error) {
	id := r.PathValue("appId")
	app, err := s.store.GetApp(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.App{}, liveimpb.InvalidParam("appId", "no app %q", id)
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("get app: %w", err)
	}
	return app, nil
}

func (s *Server) showApp(r *http.Request, _ []byte) (any, error) {
	app, err := s.getApp(r)
	if err != nil {
		return nil, err
	}
	return view(app), nil
}

func (s *Server) setApp(r *http.Request, body []byte) (any, error) {
	var req AppSettings
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return s.changeApp(r, func(app *storage.App) error { return req.apply(app) })
}

func (s *Server) disableApp(r *http.Request, _ []byte) (any, error) {
	return s.changeApp(r, func(app *storage.App) error { app.Disabled = true; return nil })
}

func (s *Server) rotateKey(r *http.Request, body []byte) (any, error) {
	var req rotateKeyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	grace := defaultGrace
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 || *req.GraceSeconds > 30*24*3600 {
			return nil, liveimpb.InvalidParam("grace_seconds", "0 to 30 days")
		}
		grace = time.Duration(*req.GraceSeconds) * time.Second
	}
	now := s.cfg.Now()
	return s.changeApp(r, func(app *storage.App) error {
		app.PreviousKey, app.PreviousKeyUntilMs, app.Key = app.Key, now.Add(grace).UnixMilli(), NewKey()
		return nil
	})
}

// changeApp applies change to the app named in the path, with no other
// change lost (storage.Store.UpdateApp): a PATCH beside a key rotation
// could otherwise write the old key back, and leave the operator a new
// key that does not work and the old one, perhaps leaked, valid.
func (s *Server) changeApp(r *http.Request, change func(*storage.App) error) (any, error) {
	app, err := s.getApp(r)
	if err != nil {
		return nil, err
	}
	id := app.ID
	var changeErr error
	app, err = s.store.UpdateApp(r.Context(), id, func(a *storage.App) error {
		changeErr = change(a)
		return changeErr
	})
	switch {
	case err != nil && err == changeErr:
		return nil, err
	case errors.Is(err, storage.ErrNotFound):
		return nil, liveimpb.InvalidParam("appId", "no app %q", id)
	case err != nil:
		return nil, fmt.Errorf("update app: %w", err)
	}
	return view(app), nil
}
