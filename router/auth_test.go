package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/liveim/liveim/internal/natstest"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://live.example.com", "https://*.example.org/"}
	tests := []struct {
		origin string
		want   bool
	}{
		{"", true},
		{"https://live.example.com", true},
		{"HTTPS://LIVE.EXAMPLE.COM", true},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://example.org", false},
		{"http://a.example.org", false},
		{"https://evilexample.org", false},
		{"https://live.example.com.evil.test", false},
		{"null", false},
	}
	for _, tt := range tests {
		if got := originAllowed(allowed, tt.origin); got != tt.want {
			t.Errorf("originAllowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if !originAllowed(nil, "https://anything.test") {
		t.Error("an empty list must allow every origin")
	}
}

// FuzzOriginAllowed: an origin is let in only by an exact entry or a
// wildcard entry whose suffix it carries.
func FuzzOriginAllowed(f *testing.F) {
	f.Add("https://live.example.com")
	f.Add("https://x.example.org")
	f.Add("null")
	f.Fuzz(func(t *testing.T, origin string) {
		allowed := []string{"https://live.example.com", "https://*.example.org"}
		if !originAllowed(allowed, origin) || origin == "" {
			return
		}
		o := strings.ToLower(origin)
		if o != "https://live.example.com" && !(strings.HasPrefix(o, "https://") && strings.HasSuffix(o, ".example.org")) {
			t.Fatalf("%q let in", origin)
		}
	})
}

func TestParseMemberPageToken(t *testing.T) {
	tests := []struct {
		tok      string
		wantTime int64
		wantUser string
		bad      bool
	}{
		{"", 0, "", false},
		{"12", 0, "", false},
		{"1700000000000_alice", 1700000000000, "alice", false},
		{"x_alice", 0, "", true},
		{"1_al.ice", 0, "", true},
		{"1_", 0, "", true},
		{"alice", 0, "", true},
	}
	for _, tt := range tests {
		ts, user, err := parseMemberPageToken(tt.tok)
		if (err != nil) != tt.bad || ts != tt.wantTime || user != tt.wantUser {
			t.Errorf("parseMemberPageToken(%q) = %d %q %v", tt.tok, ts, user, err)
		}
	}
}

// FuzzMemberPageToken: a token either is refused with 400 or names a
// valid user; the tokens the router makes parse back to what they say.
func FuzzMemberPageToken(f *testing.F) {
	f.Add("1700000000000_alice")
	f.Add("12")
	f.Add("_")
	f.Fuzz(func(t *testing.T, tok string) {
		ts, user, err := parseMemberPageToken(tok)
		if err != nil {
			return
		}
		if user != "" {
			if again, u2, err := parseMemberPageToken(strconv.FormatInt(ts, 10) + "_" + user); err != nil || again != ts || u2 != user {
				t.Fatalf("%q does not round-trip", tok)
			}
		}
	})
}

func TestRedactURLError(t *testing.T) {
	err := redactURLError(&url.Error{Op: "Post", URL: "https://user:pw@hook.example/audit?token=s3cret", Err: errors.New("dial tcp: refused")})
	if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "pw@") || !strings.Contains(msg, "hook.example/audit") {
		t.Fatalf("redacted error %q", msg)
	}
}

// nonceJetStream is JetStream on a new in-process NATS server, for the
// nonce stream.
func nonceJetStream(tb testing.TB) jetstream.JetStream {
	js, err := jetstream.New(natstest.Connect(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// newTestNonces is one router's nonce binding on js's stream, its cache
// empty, with the stream's window and cap.
func newTestNonces(tb testing.TB, js jetstream.JetStream, window time.Duration, maxBindings int) *nonces {
	var n nonces
	unbound := prometheus.NewCounter(prometheus.CounterOpts{Name: "unbound"})
	if err := n.setup(context.Background(), js, 1, window, maxBindings, slog.New(slog.DiscardHandler), unbound); err != nil {
		tb.Fatal(err)
	}
	return &n
}

// TestNonceBinding: the nonce stream binds a nonce to the first token
// that used it, and holds a digest of the token, not the token: anyone
// who can read the stream must not find login credentials there. A router
// with an empty cache (another router, or a restart) accepts the bound
// token again and refuses another token with the same nonce. A binding
// lasts the window: then another token may use the nonce, and a router
// that cached the first token checks the stream again.
func TestNonceBinding(t *testing.T) {
	js := nonceJetStream(t)
	ctx := context.Background()
	router := func() *nonces { return newTestNonces(t, js, time.Hour, 1000) }
	now := time.Now()
	const app = "app1"
	tokenA, tokenB := "token-of-bob-0123456789abcdef", "token-of-dave-0123456789abcdef"
	first := router()
	if err := first.bind(ctx, app, "nonce-1", tokenA, now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	st, err := js.Stream(ctx, subject.NonceStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(m.Data, []byte(tokenA)) || strings.Contains(m.Subject, "nonce-1") || !strings.HasPrefix(m.Subject, "liveim.nonce."+app+".") {
		t.Fatalf("the stream holds the token or the nonce: subject %q, data %q", m.Subject, m.Data)
	}
	// Nor does the router's own cache of recent tokens: a dump of its
	// memory finds no credential either.
	if strings.Contains(fmt.Sprint(first.seen), tokenA) {
		t.Fatal("the router's cache of recent tokens holds the token")
	}
	if err := first.bind(ctx, app, "nonce-1", tokenB, now); liveimpb.AsError(err).Code != liveimpb.ErrUnauthorized.Code {
		t.Fatalf("another token with a nonce this router bound: %v, want 401", err)
	}
	other := router() // nothing cached
	if err := other.bind(ctx, app, "nonce-1", tokenA, now); err != nil {
		t.Fatalf("the same token on another router: %v", err)
	}
	if err := other.bind(ctx, app, "nonce-1", tokenB, now); liveimpb.AsError(err).Code != liveimpb.ErrUnauthorized.Code {
		t.Fatalf("another token with a bound nonce: %v, want 401", err)
	}
	if err := other.bind(ctx, "app2", "nonce-1", tokenB, now); err != nil {
		t.Fatalf("the same nonce in another app: %v", err)
	}

	// The window: a router set up with a shorter one shortens the
	// stream's, as every router of a cluster shares its setting.
	short := newTestNonces(t, js, 2*time.Second, 1000)
	if err := short.bind(ctx, app, "nonce-2", tokenA, now); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.GetLastMsgForSubject(ctx, nonceSubject(app, "nonce-2"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binding outlived its window: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	later := now.Add(3 * time.Second)
	if err := router().bind(ctx, app, "nonce-2", tokenB, later); err != nil {
		t.Fatalf("another token after the window: %v", err)
	}
	if err := short.bind(ctx, app, "nonce-2", tokenA, later); liveimpb.AsError(err).Code != liveimpb.ErrUnauthorized.Code {
		t.Fatalf("the first token, cached, after its window and another token's binding: %v, want 401", err)
	}
}

// TestNonceStreamFull: past Config.NonceMaxBindings a login with a nonce
// not yet bound goes through unbound and is counted, so a flood of fresh
// tokens cannot take the NATS server's memory; a nonce already bound
// still refuses another token, and its own token still logs in.
func TestNonceStreamFull(t *testing.T) {
	js := nonceJetStream(t)
	ctx := context.Background()
	now := time.Now()
	n := newTestNonces(t, js, time.Hour, 2)
	for i, nonce := range []string{"nonce-1", "nonce-2"} {
		if err := n.bind(ctx, "app1", nonce, fmt.Sprintf("token-%d", i), now); err != nil {
			t.Fatalf("%s: %v", nonce, err)
		}
	}
	if err := n.bind(ctx, "app1", "nonce-3", "token-3", now); err != nil {
		t.Fatalf("a fresh nonce with the stream full: %v, want let through", err)
	}
	if got := testutil.ToFloat64(n.unbound); got != 1 {
		t.Fatalf("unbound logins %v, want 1", got)
	}
	st, err := js.Stream(ctx, subject.NonceStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %+v, %v; want the 2 bindings of its cap", info.State, err)
	}
	other := newTestNonces(t, js, time.Hour, 2) // nothing cached
	if err := other.bind(ctx, "app1", "nonce-1", "token-9", now); liveimpb.AsError(err).Code != liveimpb.ErrUnauthorized.Code {
		t.Fatalf("another token with a bound nonce, the stream full: %v, want 401", err)
	}
	if err := other.bind(ctx, "app1", "nonce-1", "token-0", now); err != nil {
		t.Fatalf("a bound nonce's own token, the stream full: %v", err)
	}
	if got := testutil.ToFloat64(other.unbound); got != 0 {
		t.Fatalf("unbound logins %v on the second router, want 0", got)
	}
}

// TestNonceStreamChangesStorage: a nonce stream on the other storage than
// the router's replicas ask for (made by an earlier version, whose streams
// were all in memory, or before --stream-replicas changed) is made again
// (storage cannot change in place) when a router sets up, and binds nonces
// from then on. Here a single node's file stream goes to memory; the
// cluster test (e2e/cluster.TestNonceBindingsSurviveNATSRestart) has R3
// on file.
func TestNonceStreamChangesStorage(t *testing.T) {
	js := nonceJetStream(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subject.NonceStream, Subjects: []string{subject.NonceCapture}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	n := newTestNonces(t, js, time.Hour, 1000)
	st, err := js.Stream(ctx, subject.NonceStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Storage; got != jetstream.MemoryStorage {
		t.Fatalf("the single node's nonce stream is on %v storage, want memory", got)
	}
	now := time.Now()
	if err := n.bind(ctx, "app1", "nonce-1", "token-of-bob-0123456789abcdef", now); err != nil {
		t.Fatal(err)
	}
	if err := newTestNonces(t, js, time.Hour, 1000).bind(ctx, "app1", "nonce-1", "token-of-dave-0123456789abcdef", now); err == nil || liveimpb.AsError(err).Code != liveimpb.ErrUnauthorized.Code {
		t.Fatalf("another token with a bound nonce: %v, want 401", err)
	}
}
