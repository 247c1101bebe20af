package serverapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/internal/ratelimit"
	"github.com/liveim/liveim/proto/liveimpb"
	"github.com/liveim/liveim/storage"
)

// Prefix is where the server API is served.
const Prefix = "/api/v1"

// NonceBucket is the KV bucket of the signed requests' nonces seen within
// the replay window.
const NonceBucket = "liveim_api_nonces"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the server API.
func OpenAPI() []byte { return openAPI }

// Cluster is what the server API needs of the router it runs in.
type Cluster interface {
	// SignServer marks a RouterRequest (data) as the server API's.
	SignServer(h nats.Header, data []byte)
	// LiveGateways is how many gateways are running.
	LiveGateways() int
	// Ready is closed once the router serves.
	Ready() <-chan struct{}
}

// Server serves the server API.
type Server struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	store   storage.Store
	cluster Cluster
	log     *slog.Logger
	nonces  jetstream.KeyValue
	rpc     *rpcClient
	mux     *http.ServeMux
	routes  []string      // "METHOD /path" of every operation, for the OpenAPI test
	ready   chan struct{} // closed once Run has set up
	// rates are the apps' request buckets (Config.AppRate): one app's
	// backend in a loop must not fill the routers' shared queues, which
	// every other app's requests wait in too. Only apps that signed a
	// request have one, so the map is as big as the apps that use the API.
	rates *ratelimit.Keyed
}

// New builds the server API; Setup must run before it serves.
func New(cfg Config, nc *nats.Conn, store storage.Store, cluster Cluster, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("serverapi: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, nc: nc, js: js, store: store, cluster: cluster, log: log, mux: http.NewServeMux(), ready: make(chan struct{}),
		rates: &ratelimit.Keyed{Rate: cfg.AppRate, Burst: float64(cfg.AppBurst)}}
	s.rpc = newRPCClient(nc, cluster, cfg.RequestTimeout)
	s.routes = s.register()
	return s, nil
}

// Run serves until ctx ends: once the router serves, it makes the nonce
// bucket and the reply inbox, and requests are taken (503 before).
func (s *Server) Run(ctx context.Context) error {
	select {
	case <-s.cluster.Ready():
	case <-ctx.Done():
		return nil
	}
	if err := s.setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while setting up
		}
		return err
	}
	close(s.ready)
	<-ctx.Done()
	s.rpc.stop()
	return nil
}

// Ready is closed once the server API takes requests.
func (s *Server) Ready() <-chan struct{} { return s.ready }

func (s *Server) setup(ctx context.Context) error {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      NonceBucket,
		Description: "server API request nonces within the replay window",
		TTL:         2*auth.RequestWindow + time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.StreamReplicas,
		MaxBytes:    s.cfg.NonceMaxBytes,
	})
	if err != nil {
		return fmt.Errorf("serverapi: bucket %s: %w", NonceBucket, err)
	}
	s.nonces = kv
	return s.rpc.start()
}

// Handler serves Prefix and everything under it.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes lists the operations as "METHOD /path" with {params}.
func (s *Server) Routes() []string { return s.routes }

// appHandler serves an operation of an app's backend, signed with the
// app's key; it returns the JSON reply body.
type appHandler func(r *http.Request, app storage.App, body []byte) (any, error)

// adminHandler serves an operation of the operator.
type adminHandler func(r *http.Request, body []byte) (any, error)

// forApp checks the signature of an app's request, then runs h.
func (s *Server) forApp(h appHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.ready:
		default:
			writeError(w, liveimpb.ErrUnavailable.With("the server API is starting"))
			return
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
		// What can be checked before the body is, so a caller without a
		// valid app and a fresh timestamp is not read up to MaxBodyBytes.
		sr, app, err := s.identify(r)
		if err != nil {
			writeError(w, err)
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		if err := s.verify(r, sr, app, body); err != nil {
			writeError(w, err)
			return
		}
		if !s.rates.Allow(app.ID, s.cfg.Now()) {
			writeError(w, liveimpb.ErrTooFast.With("more than %.0f requests/s from this app to this router", s.cfg.AppRate))
			return
		}
		out, err := h(r, app, body)
		s.writeResult(w, r, out, err)
	}
}

// writeTimeout bounds writing an answer (the internal listener has no
// WriteTimeout of its own: its CPU profiles take their seconds).
const writeTimeout = 30 * time.Second

// identify checks what a signed request says before its body: its
// headers, that its app exists, and its timestamp.
func (s *Server) identify(r *http.Request) (auth.SignedRequest, storage.App, error) {
	sr, err := auth.RequestHeaders(r)
	if err != nil {
		return sr, storage.App{}, err
	}
	app, err := s.store.GetApp(r.Context(), sr.AppID)
	if errors.Is(err, storage.ErrNotFound) {
		return sr, storage.App{}, liveimpb.ErrUnauthorized.With("%s: unknown app", auth.HeaderApp)
	}
	if err != nil {
		return sr, storage.App{}, fmt.Errorf("get app: %w", err)
	}
	if err := auth.CheckTimestamp(sr, s.cfg.Now()); err != nil {
		return sr, storage.App{}, err
	}
	return sr, app, nil
}

// verify checks a signed request of app (identify): the signature with
// the app's current or (in the grace period) previous key, and that its
// nonce was not seen within the window.
func (s *Server) verify(r *http.Request, sr auth.SignedRequest, app storage.App, body []byte) error {
	now := s.cfg.Now()
	if err := auth.VerifyRequest(app.Keys(now), sr, r.Method, r.URL.EscapedPath(), r.URL.Query(), body, now); err != nil {
		return err
	}
	if app.Disabled {
		return liveimpb.ErrForbidden.With("the app is disabled")
	}
	sum := sha256.Sum256([]byte(app.ID + "\x00" + sr.Nonce))
	if _, err := s.nonces.Create(r.Context(), hex.EncodeToString(sum[:16]), nil); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return liveimpb.ErrUnauthorized.With("%s: already used (a replay?): sign every request with a fresh nonce", auth.HeaderNonce)
		}
		return liveimpb.ErrUnavailable.With("nonce cache: %v", err)
	}
	return nil
}

// forAdmin checks the admin key, then runs h.
func (s *Server) forAdmin(h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
		if s.cfg.AdminKey == "" {
			writeError(w, liveimpb.ErrForbidden.With("the admin API is off: start the router with --admin-key-file"))
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminKey)) != 1 {
			writeError(w, liveimpb.ErrUnauthorized.With("Authorization: Bearer <admin key> missing or wrong"))
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		out, err := h(r, body)
		s.writeResult(w, r, out, err)
	}
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, liveimpb.ErrTooLarge.With("request body over %d bytes", s.cfg.MaxBodyBytes)
	}
	if err != nil {
		return nil, liveimpb.InvalidParam("body", "unreadable: %v", err)
	}
	return body, nil
}

// decode reads a JSON request body into v; unknown fields are refused so
// a misspelt option does not pass silently.
func decode(body []byte, v any) error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return liveimpb.InvalidParam("body", "%v", err)
	}
	if dec.More() {
		return liveimpb.InvalidParam("body", "more than one JSON value")
	}
	return nil
}

// Error is the body of every error reply: a code from the catalogue
// (docs/protocol.md) and a message saying what was wrong.
type Error struct {
	Code int32  `json:"code"`
	Msg  string `json:"msg"`
}

func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, out any, err error) {
	if err != nil {
		if liveimpb.AsError(err) == liveimpb.ErrInternal {
			s.log.Error("server API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, err)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	writeJSON(w, http.StatusOK, out)
}

func writeError(w http.ResponseWriter, err error) {
	e := liveimpb.AsError(err)
	writeJSON(w, HTTPStatus(int32(e.Code)), Error{Code: int32(e.Code), Msg: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":500,"msg":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// HTTPStatus maps a catalogue code onto the HTTP status of its reply.
func HTTPStatus(code int32) int {
	switch code {
	case 400:
		return http.StatusBadRequest
	case 401:
		return http.StatusUnauthorized
	case 403, 442, 451:
		return http.StatusForbidden
	case 412:
		return http.StatusTooManyRequests
	case 413:
		return http.StatusRequestEntityTooLarge
	case 424, 440:
		return http.StatusNotFound
	case 425, 441, 443:
		return http.StatusConflict
	case 503:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
