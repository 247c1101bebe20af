package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	good := Issue("app1", "key1", "u1", "", "nonce", time.Hour, now)
	tests := []struct {
		name string
		key  string
		mod  func(c *Credentials)
		want *liveimpb.Error
	}{
		{"valid", "key1", func(*Credentials) {}, nil},
		{"wrong key", "key2", func(*Credentials) {}, liveimpb.ErrUnauthorized},
		{"forged token", "key1", func(c *Credentials) { c.Token = "00" + c.Token[2:] }, liveimpb.ErrUnauthorized},
		{"other user", "key1", func(c *Credentials) { c.UserID = "u2" }, liveimpb.ErrUnauthorized},
		{"role escalation", "key1", func(c *Credentials) { c.Role = RoleAdmin }, liveimpb.ErrUnauthorized},
		{"bad role", "key1", func(c *Credentials) { c.Role = "root" }, liveimpb.ErrInvalidParameter},
		{"expired", "key1", func(c *Credentials) {
			c.Timestamp = now.Unix() - 1
			c.Token = Token(c.AppID, "key1", c.UserID, c.Nonce, c.Timestamp, c.Role)
		}, liveimpb.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := Verify(tt.key, c, now)
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
