package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/liveim/liveim/proto/liveimpb"
)

// Headers of a signed server API request (docs/serverapi.md).
const (
	HeaderApp       = "X-Liveim-App"
	HeaderTimestamp = "X-Liveim-Timestamp"
	HeaderNonce     = "X-Liveim-Nonce"
	HeaderSignature = "X-Liveim-Signature"
)

// RequestWindow is how far a signed request's timestamp may be from the
// server's clock.
const RequestWindow = 5 * time.Minute

// StringToSign is what a server API request's signature covers, one field
// a line:
//
//	METHOD
//	PATH (escaped as sent)
//	QUERY (parameters sorted by name, then value, each name=value escaped, joined by &)
//	TIMESTAMP (Unix seconds)
//	NONCE
//	hex(sha256(BODY))
func StringToSign(method, path string, query url.Values, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{strings.ToUpper(method), path, canonicalQuery(query), timestamp, nonce, hex.EncodeToString(sum[:])}, "\n")
}

// canonicalQuery sorts the parameters by name, then by value.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for name, values := range q {
		for _, v := range values {
			pairs = append(pairs, url.QueryEscape(name)+"="+url.QueryEscape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// Sign returns the signature of a server API request with the app key:
// lowercase hex of HMAC-SHA256(appKey, StringToSign(...)).
func Sign(appKey, method, path string, query url.Values, timestamp, nonce string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appKey))
	mac.Write([]byte(StringToSign(method, path, query, timestamp, nonce, body)))
	return hex.EncodeToString(mac.Sum(nil))
}

// SignRequest adds the signature headers to req, whose body is body, for
// the app with key appKey at now, with a fresh nonce.
func SignRequest(req *http.Request, appID, appKey string, body []byte, now time.Time) {
	ts, nonce := strconv.FormatInt(now.Unix(), 10), NewNonce(DefaultNonceLength)
	req.Header.Set(HeaderApp, appID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/" // what the server sees for http://host
	}
	req.Header.Set(HeaderSignature, Sign(appKey, req.Method, path, req.URL.Query(), ts, nonce, body))
}

// SignedRequest is what VerifyRequest reads of a request.
type SignedRequest struct {
	AppID, Timestamp, Nonce, Signature string
}

// RequestHeaders reads the signature headers of req; a missing one is 401
// naming it.
func RequestHeaders(req *http.Request) (SignedRequest, error) {
	s := SignedRequest{
		AppID: req.Header.Get(HeaderApp), Timestamp: req.Header.Get(HeaderTimestamp),
		Nonce: req.Header.Get(HeaderNonce), Signature: req.Header.Get(HeaderSignature),
	}
	for name, v := range map[string]string{HeaderApp: s.AppID, HeaderTimestamp: s.Timestamp, HeaderNonce: s.Nonce, HeaderSignature: s.Signature} {
		if v == "" {
			return s, liveimpb.ErrUnauthorized.With("missing header %s", name)
		}
	}
	return s, nil
}

// CheckTimestamp checks a signed request's timestamp: Unix seconds within
// RequestWindow of now (VerifyRequest does too; a server checks it before
// reading the body).
func CheckTimestamp(s SignedRequest, now time.Time) error {
	ts, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return liveimpb.ErrUnauthorized.With("%s: not Unix seconds", HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > RequestWindow || d < -RequestWindow {
		return liveimpb.ErrUnauthorized.With("%s: %v from the server's clock, more than %v", HeaderTimestamp, d.Round(time.Second), RequestWindow)
	}
	return nil
}

// VerifyRequest checks a signed request against the app's valid keys:
// the timestamp within RequestWindow of now, a nonce of 8..64 visible
// characters, and the signature (constant time) over method, path, query,
// timestamp, nonce and body. Each refusal is 401 saying what was wrong.
// Replays within the window are the caller's to refuse (a nonce cache).
func VerifyRequest(keys []string, s SignedRequest, method, path string, query url.Values, body []byte, now time.Time) error {
	if err := CheckTimestamp(s, now); err != nil {
		return err
	}
	if len(s.Nonce) < 8 || len(s.Nonce) > MaxNonceLen || strings.ContainsFunc(s.Nonce, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return liveimpb.ErrUnauthorized.With("%s: 8 to %d visible characters", HeaderNonce, MaxNonceLen)
	}
	got, err := hex.DecodeString(s.Signature)
	if err != nil {
		return liveimpb.ErrUnauthorized.With("%s: not hex", HeaderSignature)
	}
	for _, key := range keys {
		want, _ := hex.DecodeString(Sign(key, method, path, query, s.Timestamp, s.Nonce, body))
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return liveimpb.ErrUnauthorized.With("%s does not match: sign METHOD, PATH, sorted QUERY, TIMESTAMP, NONCE and hex(sha256(BODY)), one a line, with the app key", HeaderSignature)
}
