package e2e

import (
	"context"
	"testing"
	"time"

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
