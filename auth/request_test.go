package auth

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
)

func TestSignedRequest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"groupName":"live"}`)
	req := httptest.NewRequest("POST", "/api/v1/groups?b=2&a=1&a=0", bytes.NewReader(body))
	SignRequest(req, "app1", "key1", body, now)
	s, err := RequestHeaders(req)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(keys []string, method, path string, q url.Values, body []byte, at time.Time, s SignedRequest) error {
		return VerifyRequest(keys, s, method, path, q, body, at)
	}
	q := req.URL.Query()
	tamper := func(f func(*SignedRequest)) SignedRequest { c := s; f(&c); return c }
	tests := []struct {
		name string
		err  error
	}{
		{"valid", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now, s)},
		{"valid with the previous key", verify([]string{"key2", "key1"}, "POST", "/api/v1/groups", q, body, now, s)},
		{"query in another order", verify([]string{"key1"}, "POST", "/api/v1/groups", url.Values{"a": {"1", "0"}, "b": {"2"}}, body, now, s)},
	}
	for _, tt := range tests {
		if tt.err != nil {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	refused := []struct {
		name string
		err  error
	}{
		{"wrong key", verify([]string{"key2"}, "POST", "/api/v1/groups", q, body, now, s)},
		{"other method", verify([]string{"key1"}, "PUT", "/api/v1/groups", q, body, now, s)},
		{"other path", verify([]string{"key1"}, "POST", "/api/v1/groups/x", q, body, now, s)},
		{"other query", verify([]string{"key1"}, "POST", "/api/v1/groups", url.Values{"a": {"1"}}, body, now, s)},
		{"other body", verify([]string{"key1"}, "POST", "/api/v1/groups", q, []byte(`{}`), now, s)},
		{"too old", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now.Add(RequestWindow+time.Second), s)},
		{"from the future", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now.Add(-RequestWindow-time.Second), s)},
		{"short nonce", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now, tamper(func(c *SignedRequest) { c.Nonce = "abc" }))},
		{"bad timestamp", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now, tamper(func(c *SignedRequest) { c.Timestamp = "x" }))},
		{"other timestamp", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now, tamper(func(c *SignedRequest) { c.Timestamp = strconv.FormatInt(now.Unix()+1, 10) }))},
		{"signature not hex", verify([]string{"key1"}, "POST", "/api/v1/groups", q, body, now, tamper(func(c *SignedRequest) { c.Signature = "zz" }))},
	}
	for _, tt := range refused {
		if !errors.Is(tt.err, liveimpb.ErrUnauthorized) {
			t.Errorf("%s: %v, want 401", tt.name, tt.err)
		}
	}
	req.Header.Del(HeaderNonce)
	if _, err := RequestHeaders(req); !errors.Is(err, liveimpb.ErrUnauthorized) {
		t.Fatalf("missing nonce: %v", err)
	}
}

// FuzzVerifyRequest: whatever a caller sends, verification answers from
// the catalogue and accepts only what the key signed.
func FuzzVerifyRequest(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add("POST", "/api/v1/groups", "a=1", ts, "0123456789abcdef", Sign("k", "POST", "/api/v1/groups", url.Values{"a": {"1"}}, ts, "0123456789abcdef", []byte("{}")), []byte("{}"))
	f.Add("GET", "/", "", "x", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, rawQuery, ts, nonce, sig string, body []byte) {
		q, _ := url.ParseQuery(rawQuery)
		err := VerifyRequest([]string{"k"}, SignedRequest{AppID: "a", Timestamp: ts, Nonce: nonce, Signature: sig}, method, path, q, body, now)
		if err == nil && !strings.EqualFold(sig, Sign("k", method, path, q, ts, nonce, body)) {
			t.Fatal("accepted a signature the key did not make")
		}
		if err != nil && !errors.Is(err, liveimpb.ErrUnauthorized) {
			t.Fatalf("%v: not 401", err)
		}
	})
}

// TestSignRequestRootPath: a request to a URL without a path (a hook at
// http://host:port) is signed for "/", the path its server sees.
func TestSignRequestRootPath(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	req := httptest.NewRequest("POST", "http://hooks.example", strings.NewReader("{}"))
	req.URL.Path = ""
	SignRequest(req, "app", "key", []byte("{}"), now)
	sr, err := RequestHeaders(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRequest([]string{"key"}, sr, "POST", "/", nil, []byte("{}"), now); err != nil {
		t.Fatal(err)
	}
}
