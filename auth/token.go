// Package auth computes and verifies liveim login tokens (SPEC section 2)
// and encodes the public appSign credential.
//
//	nonce := auth.NewNonce(auth.DefaultNonceLength)
//	cred := auth.Issue(appID, appKey, userID, role, nonce, 24*time.Hour, time.Now())
//	err := auth.Verify(appKey, cred, auth.Policy{}, time.Now())
//
// # One token, one user, one expiry
//
// The hosted formula hashes appId+appKey+userId+nonce+timestamp+role with
// no separators, so on its own characters could move between the fields:
// bob's token would log in as "bo" with the nonce "b"+nonce, and a nonce
// ending in a digit would stretch the expiry by centuries. liveim keeps
// the formula, so app servers port unchanged, and makes the split
// unambiguous with two rules Verify enforces:
//
//   - the nonce has the app's fixed length (Policy.NonceLength, 32 by
//     default) of visible ASCII, so userId and nonce cannot trade
//     characters;
//   - the expiry lies at most Policy.MaxLifetime ahead (7 days by
//     default), so it is a ten-digit number today and no digit can move
//     into or out of it.
//
// With the role last (only "admin" or empty, never digits), every token
// then names exactly one (userId, nonce, timestamp, role). The router
// also binds each nonce to the first token that uses it until that token
// expires, so a nonce is never reused for another token.
//
// Everything here is pure and safe for concurrent use.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
)

// RoleAdmin is the login role that may create groups.
const RoleAdmin = "admin"

// MaxNonceLen is the longest nonce any app may ask for, in bytes.
const MaxNonceLen = 64

// DefaultNonceLength is the nonce length of an app that sets none.
const DefaultNonceLength = 32

// DefaultMaxLifetime is the longest token lifetime of an app that sets
// none: a token's expiry may lie at most this far ahead.
const DefaultMaxLifetime = 7 * 24 * time.Hour

// ClockSkew is how far an app server's clock may run ahead of liveim's:
// a token may expire up to MaxLifetime+ClockSkew from now.
const ClockSkew = 5 * time.Minute

// Policy is an app's token rules. The zero value means the defaults.
type Policy struct {
	// NonceLength is the exact nonce length, 1..MaxNonceLen. Default
	// DefaultNonceLength.
	NonceLength int
	// MaxLifetime caps how far ahead a token may expire. Default
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.NonceLength <= 0 {
		p.NonceLength = DefaultNonceLength
	}
	if p.MaxLifetime <= 0 {
		p.MaxLifetime = DefaultMaxLifetime
	}
	return p
}

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

// CheckNonce reports a nonce that does not have the policy's shape (400
// naming nonce).
func CheckNonce(nonce string, p Policy) error {
	p = p.WithDefaults()
	if len(nonce) != p.NonceLength {
		return liveimpb.InvalidParam("nonce", "must be exactly %d characters (the app's nonce length)", p.NonceLength)
	}
	for i := 0; i < len(nonce); i++ {
		if nonce[i] < 0x21 || nonce[i] > 0x7e {
			return liveimpb.InvalidParam("nonce", "visible ASCII characters only")
		}
	}
	return nil
}

// CheckLifetime reports an expiry that is past (401) or further ahead
// than the policy allows (401).
func CheckLifetime(expiry int64, p Policy, now time.Time) error {
	p = p.WithDefaults()
	if expiry <= now.Unix() {
		return liveimpb.ErrUnauthorized.With("token expired")
	}
	if expiry > now.Add(p.MaxLifetime+ClockSkew).Unix() {
		return liveimpb.ErrUnauthorized.With("token lifetime over the app's maximum of %v", p.MaxLifetime)
	}
	return nil
}

// Verify checks c against the app's key and policy: the role and nonce
// must be well formed (400), the token must match in constant time (401)
// and its expiry must lie between now and the policy's maximum lifetime
// (401).
func Verify(appKey string, c Credentials, p Policy, now time.Time) error {
	if c.Role != "" && c.Role != RoleAdmin {
		return liveimpb.InvalidParam("role", "must be %q or empty", RoleAdmin)
	}
	if err := CheckNonce(c.Nonce, p); err != nil {
		return err
	}
	want := Token(c.AppID, appKey, c.UserID, c.Nonce, c.Timestamp, c.Role)
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.Token)) != 1 {
		return liveimpb.ErrUnauthorized.With("token invalid")
	}
	return CheckLifetime(c.Timestamp, p, now)
}

// VerifyKeys is Verify with any of keys: an app's key and, while a
// rotation's grace period lasts, its previous one (storage.App.Keys), so
// tokens issued before a rotation log in until the grace period ends.
// The error is the first key's.
func VerifyKeys(keys []string, c Credentials, p Policy, now time.Time) error {
	var first error
	for _, k := range keys {
		err := Verify(k, c, p, now)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return liveimpb.ErrUnauthorized.With("the app has no key")
	}
	return first
}

// Issue returns credentials for userID valid for ttl from now, with the
// given nonce (NewNonce makes one).
func Issue(appID, appKey, userID, role, nonce string, ttl time.Duration, now time.Time) Credentials {
	exp := now.Add(ttl).Unix()
	return Credentials{
		AppID: appID, UserID: userID, Nonce: nonce, Timestamp: exp, Role: role,
		Token: Token(appID, appKey, userID, nonce, exp, role),
	}
}

// TokenReply is what an app's server gives its client to log in: the
// appSign to initialise with and the token with its userAuth fields
// (docs/protocol.md). The server API's POST /tokens returns it.
type TokenReply struct {
	AppID    string    `json:"app_id"`
	AppSign  string    `json:"app_sign"`
	AppToken string    `json:"app_token"`
	Auth     TokenAuth `json:"auth"`
}

// TokenAuth is the userAuth part of TokenReply.
type TokenAuth struct {
	UserID    string `json:"user_id"`
	Nonce     string `json:"nonce"`
	Timestamp int64  `json:"timestamp"`
	Role      string `json:"role"`
}

// NewTokenReply wraps credentials for the client.
func NewTokenReply(appSign string, c Credentials) TokenReply {
	return TokenReply{
		AppID: c.AppID, AppSign: appSign, AppToken: c.Token,
		Auth: TokenAuth{UserID: c.UserID, Nonce: c.Nonce, Timestamp: c.Timestamp, Role: c.Role},
	}
}

// nonceAlphabet is what NewNonce draws from: 62 letters and digits.
const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewNonce returns n random letters and digits (n ≤ MaxNonceLen), from
// crypto/rand.
func NewNonce(n int) string {
	n = min(max(n, 0), MaxNonceLen)
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = nonceAlphabet[int(b[i])%len(nonceAlphabet)]
	}
	return string(b)
}
