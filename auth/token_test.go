package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
)

func TestTokenIsSpecConcatenation(t *testing.T) {
	sum := sha256.Sum256([]byte("app1" + "key1" + "user1" + "n" + "1700000000" + "admin"))
	if got, want := Token("app1", "key1", "user1", "n", 1700000000, "admin"), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Token = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	nonce := NewNonce(DefaultNonceLength)
	good := Issue("app1", "key1", "u1", "", nonce, time.Hour, now)
	reissue := func(c *Credentials) { c.Token = Token(c.AppID, "key1", c.UserID, c.Nonce, c.Timestamp, c.Role) }
	tests := []struct {
		name   string
		key    string
		policy Policy
		mod    func(c *Credentials)
		want   *liveimpb.Error
	}{
		{"valid", "key1", Policy{}, func(*Credentials) {}, nil},
		{"wrong key", "key2", Policy{}, func(*Credentials) {}, liveimpb.ErrUnauthorized},
		{"forged token", "key1", Policy{}, func(c *Credentials) { c.Token = "00" + c.Token[2:] }, liveimpb.ErrUnauthorized},
		{"other user", "key1", Policy{}, func(c *Credentials) { c.UserID = "u2" }, liveimpb.ErrUnauthorized},
		{"role escalation", "key1", Policy{}, func(c *Credentials) { c.Role = RoleAdmin }, liveimpb.ErrUnauthorized},
		{"bad role", "key1", Policy{}, func(c *Credentials) { c.Role = "root" }, liveimpb.ErrInvalidParameter},
		{"expired", "key1", Policy{}, func(c *Credentials) { c.Timestamp = now.Unix() - 1; reissue(c) }, liveimpb.ErrUnauthorized},
		{"expires now", "key1", Policy{}, func(c *Credentials) { c.Timestamp = now.Unix(); reissue(c) }, liveimpb.ErrUnauthorized},
		{"lifetime at the maximum", "key1", Policy{}, func(c *Credentials) { c.Timestamp = now.Add(DefaultMaxLifetime).Unix(); reissue(c) }, nil},
		{"lifetime over the maximum", "key1", Policy{}, func(c *Credentials) {
			c.Timestamp = now.Add(DefaultMaxLifetime + ClockSkew + time.Second).Unix()
			reissue(c)
		}, liveimpb.ErrUnauthorized},
		{"lifetime over the app's maximum", "key1", Policy{MaxLifetime: time.Minute}, func(*Credentials) {}, liveimpb.ErrUnauthorized},
		{"nonce too short", "key1", Policy{}, func(c *Credentials) { c.Nonce = c.Nonce[1:]; reissue(c) }, liveimpb.ErrInvalidParameter},
		{"nonce too long", "key1", Policy{}, func(c *Credentials) { c.Nonce += "x"; reissue(c) }, liveimpb.ErrInvalidParameter},
		{"empty nonce", "key1", Policy{}, func(c *Credentials) { c.Nonce = ""; reissue(c) }, liveimpb.ErrInvalidParameter},
		{"nonce with a space", "key1", Policy{}, func(c *Credentials) { c.Nonce = " " + c.Nonce[1:]; reissue(c) }, liveimpb.ErrInvalidParameter},
		{"the app's nonce length", "key1", Policy{NonceLength: 36}, func(c *Credentials) {
			c.Nonce = "123e4567-e89b-12d3-a456-426614174000"
			reissue(c)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := Verify(tt.key, c, tt.policy, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestTokenFieldsCannotMove: whatever way the characters of a valid
// token's userId, nonce and timestamp are re-split, the result is refused.
func TestTokenFieldsCannotMove(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, user := range []string{"bob", "bob7", "7", "a-very-long-user-id-0123456789"} {
		for range 20 {
			nonce := NewNonce(DefaultNonceLength)
			c := Issue("app1", "key1", user, "", nonce, time.Hour, now)
			joined := user + nonce + strconv.FormatInt(c.Timestamp, 10)
			for i := 1; i < len(joined); i++ {
				for j := i; j < len(joined); j++ {
					ts, err := strconv.ParseInt(joined[j:], 10, 64)
					if err != nil || strconv.FormatInt(ts, 10) != joined[j:] {
						continue // not a timestamp the wire can carry
					}
					moved := Credentials{AppID: "app1", UserID: joined[:i], Nonce: joined[i:j], Timestamp: ts, Token: c.Token}
					if moved == c {
						continue
					}
					if err := Verify("key1", moved, Policy{}, now); err == nil {
						t.Fatalf("%+v verifies as %+v", c, moved)
					}
				}
			}
		}
	}
}

func TestNewNonce(t *testing.T) {
	a, b := NewNonce(32), NewNonce(32)
	if len(a) != 32 || a == b || CheckNonce(a, Policy{}) != nil {
		t.Fatalf("NewNonce: %q, %q", a, b)
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	c := Issue("app1", "key1", "u1", "", NewNonce(DefaultNonceLength), time.Hour, now)
	f.Add(c.UserID, c.Nonce, c.Timestamp, c.Role, c.Token)
	f.Add("u", "", int64(0), "admin", "")
	f.Fuzz(func(t *testing.T, user, nonce string, ts int64, role, token string) {
		in := Credentials{AppID: "app1", UserID: user, Nonce: nonce, Timestamp: ts, Role: role, Token: token}
		err := Verify("key1", in, Policy{}, now)
		if err == nil && (in.Token != Token("app1", "key1", user, nonce, ts, role) || ts <= now.Unix() || len(nonce) != DefaultNonceLength) {
			t.Fatalf("accepted %+v", in)
		}
		if err != nil && liveimpb.AsError(err) == liveimpb.ErrInternal {
			t.Fatalf("Verify = %v: not from the catalogue", err)
		}
	})
}

func TestAppSignRoundTrip(t *testing.T) {
	s := AppSign{AppID: "demo", URLs: []string{"ws://127.0.0.1:8080/ws"}}
	got, err := ParseAppSign(s.Encode())
	if err != nil || got.AppID != "demo" || len(got.URLs) != 1 || got.URLs[0] != s.URLs[0] {
		t.Fatalf("ParseAppSign = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "lim1.", "lim1.!!", "x" + s.Encode()} {
		if _, err := ParseAppSign(bad); !errors.Is(err, ErrBadAppSign) {
			t.Errorf("ParseAppSign(%q) = %v, want ErrBadAppSign", bad, err)
		}
	}
}

func FuzzParseAppSign(f *testing.F) {
	f.Add(AppSign{AppID: "a", URLs: []string{"ws://x"}}.Encode())
	f.Add("lim1.e30")
	f.Fuzz(func(t *testing.T, s string) {
		sign, err := ParseAppSign(s)
		if err == nil && sign.AppID == "" {
			t.Fatal("accepted appSign without app id")
		}
	})
}

func TestVerifyKeys(t *testing.T) {
	now := time.Now()
	c := Issue("app", "old", "u", "", NewNonce(DefaultNonceLength), time.Hour, now)
	if err := VerifyKeys([]string{"new", "old"}, c, Policy{}, now); err != nil {
		t.Fatalf("a token of the second key: %v", err)
	}
	if err := VerifyKeys([]string{"new"}, c, Policy{}, now); err == nil {
		t.Fatal("a token of a key not given was taken")
	}
	if err := VerifyKeys(nil, c, Policy{}, now); err == nil {
		t.Fatal("no keys: taken")
	}
}
