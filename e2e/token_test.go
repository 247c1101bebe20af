package e2e

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/gateway"
	"github.com/liveim/liveim/internal/testcluster"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestSessionEndsWithItsToken: a session is told its token expires
// (TokenExpiringEvent, TokenExpiryNotice ahead) and, without a refresh,
// is closed at the expiry with disconnect(5) and status 4001; a session
// that refreshed goes on past the old expiry.
func TestSessionEndsWithItsToken(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Gateway: gateway.Config{TokenExpiryNotice: 3 * time.Second}})
	login := func(userID string) (*client.Client, *liveimpb.UserAuth) {
		cl, err := testcluster.Dial(t, c.Gateway(0).URL)
		if err != nil {
			t.Fatal(err)
		}
		a := testcluster.AuthTTL(userID, "", 5*time.Second)
		if _, err := cl.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: userID, Auth: a}); err != nil {
			t.Fatal(err)
		}
		return cl, a
	}
	lapsed, lapsedAuth := login("lapsed")
	renewed, renewedAuth := login("renewed")

	for _, tc := range []struct {
		cl   *client.Client
		auth *liveimpb.UserAuth
	}{{lapsed, lapsedAuth}, {renewed, renewedAuth}} {
		ev := testcluster.NextEvent(t, tc.cl, 15*time.Second, func(ev *liveimpb.Event) bool { return ev.GetTokenExpiring() != nil })
		if got := ev.GetTokenExpiring().ExpireAt; got != tc.auth.Timestamp {
			t.Fatalf("TokenExpiringEvent expire_at %d, want the token's %d", got, tc.auth.Timestamp)
		}
	}
	if err := renewed.RefreshToken(ctxT(t), testcluster.Auth("renewed", "")); err != nil {
		t.Fatal(err)
	}

	ev := testcluster.NextEvent(t, lapsed, 15*time.Second, func(ev *liveimpb.Event) bool { return ev.GetDisconnect() != nil })
	if d := ev.GetDisconnect(); d.Code != liveimpb.DisconnectCode_DISCONNECT_CODE_TOKEN_EXPIRED || !d.Reconnect {
		t.Fatalf("disconnect %v, want code 5 (token expired) with reconnect", d)
	}
	if st := closeStatus(t, lapsed); st != 4001 {
		t.Fatalf("close status %d, want 4001", st)
	}
	if now := time.Now().Unix(); now < lapsedAuth.Timestamp {
		t.Fatalf("closed at %d, before the token's expiry %d", now, lapsedAuth.Timestamp)
	}
	// The renewed session outlives its first token.
	testcluster.WaitFor(t, 15*time.Second, func() error {
		if time.Now().Unix() <= renewedAuth.Timestamp+1 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if _, err := renewed.Ping(ctxT(t)); err != nil {
		t.Fatalf("refreshed session closed: %v", err)
	}
}

// TestTokenNamesOneUserAndOneExpiry: the hosted formula hashes
// appId+appKey+userId+nonce+timestamp+role with no separators, so
// characters could move between fields. Each such move must be refused:
// nonces have the app's fixed length, lifetimes are capped (7 days by
// default) and a nonce belongs to one token.
func TestTokenNamesOneUserAndOneExpiry(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	now := time.Now()
	nonce := auth.NewNonce(auth.DefaultNonceLength)
	nonce = nonce[:len(nonce)-1] + "7" // a nonce ending in a digit
	bob := auth.Issue(testcluster.AppID, testcluster.AppKey, "bob", "", nonce, time.Hour, now)
	exp := strconv.FormatInt(bob.Timestamp, 10)
	moved := func(userID, nonce, ts string) auth.Credentials {
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Credentials{UserID: userID, Nonce: nonce, Timestamp: n, Token: bob.Token}
	}
	longLived := auth.Issue(testcluster.AppID, testcluster.AppKey, "carol", "", auth.NewNonce(auth.DefaultNonceLength), 8*24*time.Hour, now)
	reused := auth.Issue(testcluster.AppID, testcluster.AppKey, "dave", "", nonce, time.Hour, now) // bob's nonce in another token
	cases := []struct {
		name string
		cred auth.Credentials
		code int32
	}{
		{"user's last letter into the nonce", moved("bo", "b"+nonce, exp), 400},
		{"user's last letter into the nonce, nonce's last digit into the expiry", moved("bo", "b"+nonce[:len(nonce)-1], "7"+exp), 401},
		{"nonce's last digit into the expiry", moved("bob", nonce[:len(nonce)-1], "7"+exp), 400},
		{"nonce's first letter into the user", moved("bob"+nonce[:1], nonce[1:], exp), 400},
		{"lifetime over the app's maximum", longLived, 401},
		{"nonce of another token", reused, 401},
		{"short nonce", auth.Issue(testcluster.AppID, testcluster.AppKey, "erin", "", "n", time.Hour, now), 400},
	}
	// bob's own token works, and binds its nonce.
	login := func(cr auth.Credentials) error {
		cl, err := testcluster.Dial(t, c.Gateway(0).URL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Login(ctxT(t), client.Login{AppID: testcluster.AppID, UserID: cr.UserID, Auth: &liveimpb.UserAuth{
			Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token,
		}})
		return err
	}
	if err := login(bob); err != nil {
		t.Fatalf("bob's own token: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, login(tc.cred), tc.code)
		})
	}
	// The same token again (a reconnect) is fine.
	if err := login(bob); err != nil {
		t.Fatalf("bob's token again: %v", err)
	}
}

// TestOriginAllowList: an app that lists its web origins refuses logins
// from pages of other origins (403, a cross-site WebSocket hijack);
// clients that send no Origin (native apps, mini-programs) and listed
// origins log in.
func TestOriginAllowList(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	app, _ := c.Store.GetApp(context.Background(), testcluster.AppID)
	app.AllowedOrigins = []string{"https://live.example.com", "https://*.example.org"}
	if err := c.Store.PutApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		origin string
		code   int32
	}{
		{"", 0},
		{"https://live.example.com", 0},
		{"https://shop.example.org", 0},
		{"https://evil.example", 403},
		{"http://live.example.com", 403},
		{"https://live.example.com.evil.example", 403},
		{"https://example.org", 403},
		{"null", 403},
	}
	for _, tc := range cases {
		t.Run("origin "+tc.origin, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			rc := dialRawHeader(t, c.Gateway(0).URL, hdr)
			wantCode(t, rc.login("origin-user"), tc.code)
		})
	}
}
