// Package auth computes and verifies liveim login tokens (SPEC section 2)
// and encodes the public appSign credential.
//
//	tok := auth.Token(appID, appKey, userID, nonce, expiry, role)
//	err := auth.Verify(appKey, auth.Credentials{...}, time.Now())
//
// Everything here is pure and safe for concurrent use.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
)

// RoleAdmin is the login role that may create groups.
const RoleAdmin = "admin"

// MaxNonceLen is the longest nonce accepted, in bytes.
const MaxNonceLen = 64

// Token returns lowercase_hex(sha256(appID + appKey + userID + nonce +
// timestamp + role)), where timestamp is the token's expiry in Unix seconds
// written in decimal.
func Token(appID, appKey, userID, nonce string, expiry int64, role string) string {
	h := sha256.New()
	for _, s := range []string{appID, appKey, userID, nonce, strconv.FormatInt(expiry, 10), role} {
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Credentials are what a client presents at login.
type Credentials struct {
	AppID     string
	UserID    string
	Nonce     string
	Timestamp int64 // expiry, Unix seconds
	Role      string
	Token     string
}

// Verify checks c against the app's key: the role and nonce must be well
// formed (400), the token must match in constant time and must not have
// expired at now (401).
func Verify(appKey string, c Credentials, now time.Time) error {
	if c.Role != "" && c.Role != RoleAdmin {
		return liveimpb.InvalidParam("role", "must be %q or empty", RoleAdmin)
	}
	if len(c.Nonce) > MaxNonceLen {
		return liveimpb.InvalidParam("nonce", "longer than %d bytes", MaxNonceLen)
	}
	want := Token(c.AppID, appKey, c.UserID, c.Nonce, c.Timestamp, c.Role)
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.Token)) != 1 {
		return liveimpb.ErrUnauthorized.With("token invalid")
	}
	if c.Timestamp <= now.Unix() {
		return liveimpb.ErrUnauthorized.With("token expired")
	}
	return nil
}

// Issue returns credentials for userID valid for ttl from now.
func Issue(appID, appKey, userID, role, nonce string, ttl time.Duration, now time.Time) Credentials {
	exp := now.Add(ttl).Unix()
	return Credentials{
		AppID: appID, UserID: userID, Nonce: nonce, Timestamp: exp, Role: role,
		Token: Token(appID, appKey, userID, nonce, exp, role),
	}
}
