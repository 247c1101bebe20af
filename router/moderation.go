package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/telemetry"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// appCache caches app records (moderation settings, limits).
type appCache struct {
	store storage.Store
	ttl   time.Duration

	mu      sync.Mutex // leaf lock
	entries map[string]appEntry
}

type appEntry struct {
	app     storage.App
	expires time.Time
}

func (a *appCache) get(ctx context.Context, appID string) (storage.App, error) {
	now := time.Now()
	a.mu.Lock()
	e, ok := a.entries[appID]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.app, nil
	}
	app, err := a.store.GetApp(ctx, appID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.App{}, liveimpb.ErrUnauthorized.With("unknown app")
	}
	if err != nil {
		return storage.App{}, fmt.Errorf("get app: %w", err)
	}
	lowered := make([]string, 0, len(app.BlockedWords))
	for _, w := range app.BlockedWords {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			lowered = append(lowered, w)
		}
	}
	app.BlockedWords = lowered
	a.mu.Lock()
	a.entries[appID] = appEntry{app: app, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return app, nil
}

// AuditRequest is what an app's audit hook receives as JSON.
type AuditRequest struct {
	AppID    string `json:"app_id"`
	GroupID  string `json:"group_id,omitempty"`
	SenderID string `json:"sender_id"`
	Type     int32  `json:"type"`
	Data     string `json:"data"`
}

// AuditResponse is what an app's audit hook answers; Pass false refuses
// the message (451) with Reason.
type AuditResponse struct {
	Pass   bool   `json:"pass"`
	Reason string `json:"reason,omitempty"`
}

// moderate runs the app's word list, then its audit hook; a refusal is
// 451 and nothing is delivered or stored.
func (r *Router) moderate(ctx context.Context, c *liveimpb.Caller, groupID string, msgType int32, data string) error {
	hook, err := r.checkWords(ctx, c.AppId, data)
	if err != nil || hook == nil {
		return err
	}
	return r.audit(ctx, hook, c, groupID, msgType, data)
}

// auditHook is an app's HTTP moderation hook.
type auditHook struct {
	url      string
	failOpen bool
	appKey   string // signs the request, as the server API's (docs/serverapi.md)
}

// checkWords runs the app's word list (fast, in memory) and returns the
// app's audit hook, nil if it has none, for the caller to run where a
// slow answer blocks nobody else.
func (r *Router) checkWords(ctx context.Context, appID, data string) (*auditHook, error) {
	app, err := r.apps.get(ctx, appID)
	if err != nil {
		return nil, err
	}
	if len(app.BlockedWords) > 0 {
		lower := strings.ToLower(data)
		for _, w := range app.BlockedWords {
			if strings.Contains(lower, w) {
				return nil, liveimpb.ErrModerationRefused.With("refused by the app's word list")
			}
		}
	}
	if app.AuditURL == "" {
		return nil, nil
	}
	return &auditHook{url: app.AuditURL, failOpen: app.AuditFailOpen, appKey: app.Key}, nil
}

// audit asks the app's audit hook about a message.
func (r *Router) audit(ctx context.Context, hook *auditHook, c *liveimpb.Caller, groupID string, msgType int32, data string) error {
	if !r.audits.take(c.AppId, r.cfg.AuditsPerApp) {
		return liveimpb.ErrUnavailable.With("%d calls to the app's audit hook in flight; retry", r.cfg.AuditsPerApp)
	}
	defer r.audits.done(c.AppId)
	pass, reason, err := r.callAuditHook(ctx, hook, AuditRequest{AppID: c.AppId, GroupID: groupID, SenderID: c.UserId, Type: msgType, Data: data})
	if err != nil {
		r.log.WarnContext(ctx, "audit hook failed", telemetry.LogAppID, c.AppId, telemetry.LogGroupID, groupID, "err", err, "fail_open", hook.failOpen)
		if hook.failOpen {
			return nil
		}
		return liveimpb.ErrModerationRefused.With("the audit hook did not answer")
	}
	if !pass {
		if reason == "" {
			reason = "refused by the app's audit hook"
		}
		return liveimpb.ErrModerationRefused.With("%s", reason)
	}
	return nil
}

// auditsInFlight counts each app's audit-hook calls in flight
// (Config.AuditsPerApp).
type auditsInFlight struct {
	mu sync.Mutex
	n  map[string]int
}

// take counts one more call of app's, unless it has max in flight.
func (a *auditsInFlight) take(app string, max int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[app] >= max {
		return false
	}
	if a.n == nil {
		a.n = make(map[string]int)
	}
	a.n[app]++
	return true
}

// done ends a call counted by take.
func (a *auditsInFlight) done(app string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[app]--; a.n[app] <= 0 {
		delete(a.n, app)
	}
}

// callAuditHook POSTs req to the hook, signed with the app key the way
// server API requests are (auth.SignRequest), so the app knows it comes
// from liveim.
func (r *Router) callAuditHook(ctx context.Context, hook *auditHook, req AuditRequest) (bool, string, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AuditTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.url, bytes.NewReader(body))
	if err != nil {
		return false, "", err
	}
	hreq.Header.Set("Content-Type", "application/json")
	auth.SignRequest(hreq, req.AppID, hook.appKey, body, r.now())
	resp, err := r.auditClient.Do(hreq)
	if err != nil {
		return false, "", redactURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, "", fmt.Errorf("audit hook answered %s", resp.Status)
	}
	var ar AuditResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ar); err != nil {
		return false, "", fmt.Errorf("audit hook answer: %w", err)
	}
	return ar.Pass, ar.Reason, nil
}

// redactURLError keeps an HTTP client error from carrying the hook URL's
// credentials or query (apps put tokens there) into logs: the URL is cut
// to scheme, host and path.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return fmt.Errorf("%s (unparsable URL): %w", ue.Op, ue.Err)
	}
	return fmt.Errorf("%s %s://%s%s: %w", ue.Op, u.Scheme, u.Host, u.Path, ue.Err)
}
