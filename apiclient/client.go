// Package apiclient calls liveim's server API (docs/serverapi.md) from Go:
// it signs each request of an app's backend with the app key, or sends
// the operator's admin key, and turns error replies into catalogue
// errors (match them with errors.Is(err, liveimpb.ErrGroupNotFound)).
//
//	c := apiclient.New("http://liveim-router:8081", apiclient.App("my-app", appKey))
//	var rep serverapi.SendReply
//	err := c.Do(ctx, "POST", "/groups/room-1/messages", nil,
//		map[string]any{"type": 1, "data": "the show starts"}, &rep)
//
// A Client is safe for concurrent use.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/proto/liveimpb"
)

// Client calls one liveim cluster's server API.
type Client struct {
	base string
	cred Credentials
	http *http.Client
	now  func() time.Time
}

// Credentials say who calls: App or Admin.
type Credentials struct {
	appID, appKey, adminKey string
}

// App signs requests as an app's backend.
func App(appID, appKey string) Credentials { return Credentials{appID: appID, appKey: appKey} }

// Admin authorises requests as the operator.
func Admin(adminKey string) Credentials { return Credentials{adminKey: adminKey} }

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client. Default: one with a 30s timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithClock sets the clock the signatures' timestamps come from.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a Client for the API at baseURL (scheme, host and port of
// a router's internal listener; /api/v1 is added).
func New(baseURL string, cred Credentials, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/") + "/api/v1", cred: cred, http: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Do calls the operation at path (below /api/v1, e.g. "/groups") with
// query parameters and in as its JSON body (nil: none), and decodes the
// reply into out (nil: discarded). An error reply is a *liveimpb.Error
// with the catalogue code.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("apiclient: %w", err)
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cred.adminKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred.adminKey)
	} else {
		auth.SignRequest(req, c.cred.appID, c.cred.appKey, body, c.now())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code int32  `json:"code"`
			Msg  string `json:"msg"`
		}
		if json.Unmarshal(b, &e) != nil || e.Code == 0 {
			return fmt.Errorf("apiclient: %s %s: HTTP %d: %.200s", method, path, resp.StatusCode, b)
		}
		return &liveimpb.Error{Code: liveimpb.ErrorCode(e.Code), Message: e.Msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("apiclient: %s %s: decode reply: %w", method, path, err)
	}
	return nil
}
