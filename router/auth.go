package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// Login credentials are checked here, not at the gateways: app keys stay
// with the routers (which own the store), so a gateway, the process that
// faces the internet, never holds a key that could sign tokens or server
// API calls.

// nonces binds each login nonce to the first token that used it, for the
// replay window (Config.NonceWindow), in NonceStream, shared by every
// router: one message per nonce, on subject.Nonce with a digest of the
// nonce, holding a digest of the token (boundDigest), never the token.
// The stream keeps one message per subject and refuses a second
// (DiscardNewPerSubject), so the first binding of a nonce wins on every
// router; its messages expire with the window (MaxAge). A recently bound
// token is remembered locally, by the same digest, so a reconnect with
// the same token costs no stream operation and neither the stream nor the
// router's memory holds a credential.
//
// A stream, not a KV bucket: a KV create stores its expected-sequence
// header with each entry, and a TTL per key adds a header and a timer
// entry; a binding held ~490 B of the NATS server's memory in the bucket
// of earlier versions and ~350 B here (BenchmarkNonceMemory), for every
// login of the window.
//
// The binding is a second line of defence (the nonce's fixed length and
// the lifetime cap already make a token name one user and one expiry), so
// a stream that cannot be reached, or is full (Config.NonceMaxBindings:
// logins with fresh tokens, say an app's guest tokens handed out to a
// flood, must not take the memory of JetStream's other streams), lets the
// login through unbound rather than locking every user out. A nonce
// already bound still refuses another token when the stream is full.
type nonces struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	window   time.Duration
	log      *slog.Logger
	unbound  prometheus.Counter
	lastWarn atomic.Int64 // Unix nanoseconds of the last warning about an unbound login

	mu   sync.Mutex                  // leaf lock
	seen map[[sha256.Size]byte]int64 // bound token's digest → end of its binding (Unix seconds)
}

// maxSeenTokens bounds nonces.seen; it is cleared when full.
const maxSeenTokens = 1 << 16

// boundDigest is how many bytes of a token's SHA-256 its binding keeps:
// 128 bits tell one token from another, and the stream is no credential
// store.
const boundDigest = 16

// The descriptions of the JetStream errors (JSStreamStoreFailedF, code
// 10077) that refuse a message under DiscardNew, from a single server or a
// clustered stream's leader alike: nats-server's ErrMaxMsgsPerSubject
// (the subject holds its one message) and ErrMaxMsgs (the stream is full;
// a clustered leader checks it first, so the subject may be bound too).
const (
	errSubjectFull = "maximum messages per subject exceeded"
	errStreamFull  = "maximum messages exceeded"
)

// errNoRoom is a binding refused because the stream is full.
var errNoRoom = errors.New("the nonce stream is full (--nonce-max-bindings)")

// unboundWarnEvery spaces the warnings about logins let through unbound.
const unboundWarnEvery = 10 * time.Second

func (n *nonces) setup(ctx context.Context, js jetstream.JetStream, replicas int, window time.Duration, maxBindings int, log *slog.Logger, unbound prometheus.Counter) error {
	// A replicated stream is on file: in memory it came back empty when
	// every NATS node restarted (the replay window open again), and its
	// replicas could wedge without a leader after a few kill -9s in a row.
	// A single node's stays in memory: liveim serve's embedded server
	// fsyncs every JetStream write (for HIGH messages), ~260 µs more per
	// login (BenchmarkNonceMemory), and has no replicas to wedge. Storage
	// cannot change in place: a stream on the other (an earlier version's,
	// or --stream-replicas changed) is made again, its bindings lost once.
	storage := jetstream.MemoryStorage
	if replicas > 1 {
		storage = jetstream.FileStorage
	}
	if old, err := js.Stream(ctx, subject.NonceStream); err == nil && old.CachedInfo().Config.Storage != storage {
		log.Warn("the login nonce stream changes storage; its bindings start afresh", "stream", subject.NonceStream, "storage", storage.String())
		if err := js.DeleteStream(ctx, subject.NonceStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("router: stream %s: %w", subject.NonceStream, err)
		}
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 subject.NonceStream,
		Description:          "login nonces bound to their first token, for the replay window",
		Subjects:             []string{subject.NonceCapture},
		Storage:              storage,
		Replicas:             replicas,
		MaxAge:               window,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgs:              int64(maxBindings),
		MaxBytes:             -1,
	})
	if err != nil {
		return fmt.Errorf("router: stream %s: %w", subject.NonceStream, err)
	}
	n.js, n.stream, n.window, n.log, n.unbound, n.seen = js, st, window, log, unbound, make(map[[sha256.Size]byte]int64)
	return nil
}

// bind binds the nonce of an already verified token to it. A nonce bound
// to another token is 401.
func (n *nonces) bind(ctx context.Context, appID, nonce, token string, now time.Time) error {
	digest := tokenDigest(token)
	n.mu.Lock()
	until, ok := n.seen[digest]
	n.mu.Unlock()
	if ok && now.Unix() < until {
		return nil
	}
	bound, err := n.store(ctx, nonceSubject(appID, nonce), digest[:boundDigest])
	switch {
	case err != nil:
		n.unboundLogin(appID, err)
		return nil
	case !bytes.Equal(bound, digest[:boundDigest]):
		return liveimpb.ErrUnauthorized.With("nonce already used by another token")
	}
	n.mu.Lock()
	if len(n.seen) >= maxSeenTokens {
		clear(n.seen)
	}
	n.seen[digest] = now.Add(n.window).Unix()
	n.mu.Unlock()
	return nil
}

// unboundLogin counts a login let through without a binding and warns
// about it, at most every unboundWarnEvery: a full stream would otherwise
// log every login of a flood.
func (n *nonces) unboundLogin(appID string, err error) {
	n.unbound.Inc()
	now, last := time.Now().UnixNano(), n.lastWarn.Load()
	if now-last < int64(unboundWarnEvery) || !n.lastWarn.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("nonce binding unavailable; logins let through on the token's other checks (liveim_router_logins_unbound_total counts them)", "app_id", appID, "err", err)
}

// store binds subj, a nonce's subject, to a token's digest unless it is
// bound already, and returns the digest it is bound to. A binding the
// stream refuses is read back from the stream's leader (the stream allows
// no direct gets, which any replica answers, maybe before it has the
// binding); refused because the stream is full and not found, it is
// errNoRoom. On a replicated stream the first binding may still be in
// flight there, proposed and not yet applied, and at the window's end it
// may have just expired: a binding refused as a second one yet not found
// is tried again until one of the two answers, or ctx ends.
func (n *nonces) store(ctx context.Context, subj string, digest []byte) ([]byte, error) {
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		_, err := n.js.Publish(ctx, subj, digest)
		apiErr := (*jetstream.APIError)(nil)
		if !errors.As(err, &apiErr) || apiErr.Description != errSubjectFull && apiErr.Description != errStreamFull {
			return digest, err
		}
		full := apiErr.Description == errStreamFull
		m, err := n.stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case err == nil:
			return m.Data, nil
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, err
		case full:
			return nil, errNoRoom
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// nonceSubject is where a nonce's binding lives: the app, then 128 bits
// of the nonce's SHA-256 in a subject token's characters.
func nonceSubject(appID, nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return subject.Nonce(appID, base64.RawURLEncoding.EncodeToString(sum[:16]))
}

// tokenDigest keys a token in the router's cache, and the nonce stream
// holds its first boundDigest bytes: enough to tell the token that bound
// a nonce from another, but no credential to anyone who can read either.
func tokenDigest(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token))
}

// onAuth answers a gateway's AuthRequest on its own goroutine (bounded):
// the nonce check may wait for JetStream.
func (r *Router) onAuth(m *nats.Msg) {
	select {
	case r.authSlots <- struct{}{}:
	default:
		r.respondAuth(m, liveimpb.ErrUnavailable.With("router busy"), nil)
		return
	}
	go func() {
		defer func() { <-r.authSlots }()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AuthTimeout)
		defer cancel()
		var req liveimpb.AuthRequest
		if err := proto.Unmarshal(m.Data, &req); err != nil {
			r.respondAuth(m, liveimpb.InvalidParam("auth", "malformed auth request"), nil)
			return
		}
		app, err := r.authenticate(ctx, &req)
		if err == nil && req.SessionId != "" {
			err = r.takeOver(&req)
		}
		r.respondAuth(m, err, app)
	}()
}

// takeOver tells a user's older sessions, on every gateway, that a login
// passed (a takeover notice on the user's subject): each closes with
// disconnect(4) unless the app allows many devices and it is on another
// device. Routers send it, not the gateway of the login: the gateway
// forwards what comes on a user's subject to the user's sessions, so
// gateways may not publish there. The notice goes out before the answer,
// on the same connection.
func (r *Router) takeOver(req *liveimpb.AuthRequest) error {
	notice := nats.NewMsg(subject.User(req.AppId, req.UserId))
	notice.Header.Set(subject.HeaderKind, subject.KindTakeover)
	notice.Header.Set(subject.HeaderSession, req.SessionId)
	notice.Header.Set(subject.HeaderDevice, req.DeviceId)
	if err := r.nc.PublishMsg(notice); err != nil {
		return liveimpb.ErrUnavailable.With("nats: %v", err)
	}
	return nil
}

func (r *Router) respondAuth(m *nats.Msg, err error, app *storage.App) {
	rep := &liveimpb.AuthReply{}
	if err != nil {
		e := liveimpb.AsError(err)
		if e == liveimpb.ErrInternal {
			r.log.Error("auth", "err", err)
		}
		rep.Code, rep.Msg = int32(e.Code), e.Message
	} else {
		rep.MultiDevice = app.MultiDevice
		rep.OnlineEvents = callback.Wants(app.CallbackURL, app.CallbackEvents, callback.UserOnline)
		rep.OfflineEvents = callback.Wants(app.CallbackURL, app.CallbackEvents, callback.UserOffline)
	}
	r.metrics.logins.WithLabelValues(loginResult(rep.Code)).Inc()
	b, _ := proto.Marshal(rep)
	_ = m.Respond(b)
}

// authenticate checks a client's credentials against its app: the key,
// the app's nonce and lifetime rules, the nonce binding and the Origin
// allow-list.
func (r *Router) authenticate(ctx context.Context, req *liveimpb.AuthRequest) (*storage.App, error) {
	if err := ids.Check("appId", req.AppId); err != nil {
		return nil, err
	}
	if err := ids.Check("userId", req.UserId); err != nil {
		return nil, err
	}
	a := req.Auth
	if a == nil {
		return nil, liveimpb.InvalidParam("userAuth", "required")
	}
	app, err := r.apps.get(ctx, req.AppId)
	if err != nil {
		return nil, err
	}
	if app.Disabled {
		return nil, liveimpb.ErrUnauthorized.With("app disabled")
	}
	if !originAllowed(app.AllowedOrigins, req.Origin) {
		return nil, liveimpb.ErrForbidden.With("origin %q is not allowed for this app", req.Origin)
	}
	cred := auth.Credentials{AppID: req.AppId, UserID: req.UserId, Nonce: a.Nonce, Timestamp: a.Timestamp, Role: a.Role, Token: a.Token}
	now := r.now()
	if err := auth.VerifyKeys(app.Keys(now), cred, app.TokenPolicy(), now); err != nil {
		return nil, err
	}
	if err := r.nonces.bind(ctx, req.AppId, a.Nonce, a.Token, now); err != nil {
		return nil, err
	}
	return &app, nil
}

// originAllowed reports whether a WebSocket upgrade with this Origin may
// log in to an app with the given allow-list. An empty list allows every
// origin; a request without Origin (a native or mini-program client, which
// could send any Origin anyway) is allowed. Entries are exact origins
// ("https://live.example.com") or a wildcard for subdomains
// ("https://*.example.com").
func originAllowed(allowed []string, origin string) bool {
	if len(allowed) == 0 || origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSuffix(a, "/"))
		if a == origin || a == "*" {
			return true
		}
		scheme, host, ok := strings.Cut(a, "://*.")
		if ok && strings.HasPrefix(origin, scheme+"://") && strings.HasSuffix(origin, "."+host) {
			return true
		}
	}
	return false
}

func loginResult(code int32) string {
	if code == 0 {
		return "ok"
	}
	return fmt.Sprint(code)
}
