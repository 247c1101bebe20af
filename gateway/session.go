package gateway

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"google.golang.org/protobuf/proto"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/ids"
	"github.com/liveim/liveim/internal/subject"
	"github.com/liveim/liveim/proto/liveimpb"
)

// session is a logged-in user on one connection. Its fields are set before
// it is published in conn.sess and never change, except the token's
// times (setToken).
type session struct {
	id       string
	appID    string
	userID   string
	userExt  string
	role     string
	deviceID string
	// multiDevice: the app lets the user log in from several devices; a
	// takeover then closes only a session with the same deviceID.
	multiDevice bool
	// onlineEvents and offlineEvents: the app wants callback events when
	// the session starts and ends.
	onlineEvents, offlineEvents bool
	userKey                     string // appID/userID
	heartbeat                   time.Duration

	// expiry is the token's expiry in Unix seconds; a refresh moves it.
	// noticeAt is when the session is told (Unix seconds) and warned the
	// expiry a TokenExpiringEvent went out for.
	expiry, noticeAt, warned atomic.Int64

	mu       sync.Mutex // guards the buckets and laterLogins
	sends    bucket     // messages (Config.SendRate)
	requests bucket     // every other request (Config.RequestRate)

	// Takeover notices (deliverToUser): ownNotice is set once this
	// session's own came, which the router sends before it answers the
	// login's check; a notice of another session that comes after it is
	// of a later login. laterLogins are the devices of such notices that
	// came while this login still waited for its check.
	ownNotice   atomic.Bool
	laterLogins []string
	checkedAt   time.Time // when the router passed the login
}

// ownNoticeWait is how long after its check a session whose own takeover
// notice never came (lost in a NATS reconnect) takes any other session's
// notice for a later login's; without it, no later login could end it.
const ownNoticeWait = 10 * time.Second

// noticed takes a takeover notice of session from, on device, for a
// login still waiting for its check; it reports nothing: login looks at
// what it recorded once the check is done (supersededBy).
func (s *session) noticed(from, device string) {
	if from == s.id {
		s.ownNotice.Store(true)
		return
	}
	if !s.ownNotice.Load() {
		return // a login before this one: its session closes
	}
	s.mu.Lock()
	s.laterLogins = append(s.laterLogins, device)
	s.mu.Unlock()
}

// takenOverBy reports whether a login of session from on device, noticed
// at now, ends this session: a later login (this session's own notice
// came first, or ownNoticeWait has passed), on any device or, when the
// app allows several, on this one.
func (s *session) takenOverBy(from, device string, now time.Time) bool {
	if from == s.id {
		s.ownNotice.Store(true)
		return false
	}
	later := s.ownNotice.Load() || now.Sub(s.checkedAt) > ownNoticeWait
	return later && (!s.multiDevice || s.deviceID == device)
}

// supersededWhileChecked reports whether a later login of the user, on
// any device or on this one, came while this login waited for its check.
func (s *session) supersededWhileChecked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.laterLogins {
		if !s.multiDevice || d == s.deviceID {
			return true
		}
	}
	return false
}

// setToken records the session's token expiry and when to tell the
// session about it: notice ahead, or halfway through the lifetime left now
// when that is shorter (the SDK asks its app at the same moment).
func (s *session) setToken(expiry int64, now time.Time, notice time.Duration) {
	lead := min(int64(notice/time.Second), (expiry-now.Unix())/2)
	s.noticeAt.Store(expiry - lead)
	s.expiry.Store(expiry)
}

// bucket is a token bucket whose rate and burst are the gateway's (every
// session has two, so it holds only what differs: 16 bytes); its owner's
// lock guards it.
type bucket struct {
	tokens float64
	last   int64 // Unix nanoseconds of the last take
}

func newBucket(burst int, now time.Time) bucket {
	return bucket{tokens: float64(burst), last: now.UnixNano()}
}

// take takes a token if one is there, refilling at rate up to burst.
func (b *bucket) take(rate float64, burst int, now time.Time) bool {
	n := now.UnixNano()
	b.tokens = min(float64(burst), b.tokens+float64(n-b.last)/1e9*rate)
	b.last = n
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// allowSend takes a send token, reporting false when the session sends
// faster than Config.SendRate (412).
func (s *session) allowSend(cfg *Config, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends.take(cfg.SendRate, cfg.SendBurst, now)
}

// allowRequest takes a request token, reporting false when the session
// makes requests faster than Config.RequestRate (412).
func (s *session) allowRequest(cfg *Config, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests.take(cfg.RequestRate, cfg.RequestBurst, now)
}

// login runs on its own goroutine for the length of one login: it may
// wait for an app lookup and for NATS to confirm the user subscription.
func (g *Gateway) login(c *conn, id uint32, req *liveimpb.LoginRequest) {
	defer c.loggingIn.Store(false)
	s, err := g.authenticate(c, req)
	if err != nil {
		g.metrics.loginFailed(err)
		c.replyErr(id, err)
		if e := liveimpb.AsError(err); e.Code == liveimpb.ErrUnauthorized.Code {
			c.closeWith(closeUnauthorized, "401 unauthorized", nil)
		}
		return
	}
	g.sessions.add(s.userKey, s, c)
	c.sess.Store(s)
	g.presenceEvent(s, callback.UserOnline)
	c.mu.Lock()
	gone := c.closed || c.closing
	c.mu.Unlock()
	if gone {
		// The connection closed during login and its release may have run
		// before the session was stored: undo what login set up. Undoing
		// twice is harmless (user.offline may then come twice).
		g.sessions.remove(s.userKey, c)
		g.presenceEvent(s, callback.UserOffline)
		return
	}
	c.touch()
	c.reply(id, &liveimpb.Reply{Body: &liveimpb.Reply_Login{Login: &liveimpb.LoginReply{
		SessionId:        s.id,
		ServerTime:       g.now().UnixMilli(),
		HeartbeatTimeout: uint32(s.heartbeat / time.Second),
	}}})
	if s.supersededWhileChecked() {
		c.takenOver() // a later login's notice came while this one waited
	}
}

// maxDeviceID bounds a login's deviceId.
const maxDeviceID = 128

// checkDeviceID accepts a login's deviceId: empty, or up to maxDeviceID
// bytes with no control character and no space at either end. It reaches
// the user's other sessions in a NATS header (a takeover notice), which
// trims a value and turns line breaks into spaces: "phone " would never
// match itself there, and "a\nb" would match "a b".
func checkDeviceID(id string) error {
	if len(id) > maxDeviceID {
		return liveimpb.InvalidParam("deviceId", "longer than %d bytes", maxDeviceID)
	}
	if strings.TrimSpace(id) != id || strings.ContainsFunc(id, unicode.IsControl) {
		return liveimpb.InvalidParam("deviceId", "no control characters, no spaces at either end")
	}
	return nil
}

// authenticate checks a login request and returns the session it opens.
// The credentials are checked by a router: gateways hold no app keys.
func (g *Gateway) authenticate(c *conn, req *liveimpb.LoginRequest) (*session, error) {
	if err := ids.Check("appId", req.AppId); err != nil {
		return nil, err
	}
	if err := ids.Check("userId", req.User.GetUserId()); err != nil {
		return nil, err
	}
	if len(req.User.GetUserExtension()) > liveimpb.MaxUserExtension {
		return nil, liveimpb.InvalidParam("userExtension", "larger than %d bytes", liveimpb.MaxUserExtension)
	}
	if err := checkDeviceID(req.DeviceId); err != nil {
		return nil, err
	}
	if req.Auth == nil {
		return nil, liveimpb.InvalidParam("userAuth", "required")
	}
	hb := g.cfg.HeartbeatTimeout
	if t := req.HeartbeatTimeout; t != 0 {
		if t < 15 || t > 120 {
			return nil, liveimpb.InvalidParam("heartbeatTimeout", "must be 15..120 seconds")
		}
		hb = time.Duration(t) * time.Second
	}
	s := &session{
		id:        ids.New(),
		appID:     req.AppId,
		userID:    req.User.UserId,
		userExt:   req.User.UserExtension,
		role:      req.Auth.Role,
		deviceID:  req.DeviceId,
		userKey:   req.AppId + "/" + req.User.UserId,
		heartbeat: hb,
		sends:     newBucket(g.cfg.SendBurst, g.now()),
		requests:  newBucket(g.cfg.RequestBurst, g.now()),
	}
	// The router that passes the credentials tells the user's older
	// sessions (a takeover notice), this one's among them. The user's
	// subject is subscribed first, before the check goes out on the same
	// connection, so a notice of a login checked meanwhile reaches this
	// one too: two logins at once both stayed
	// (e2e.TestAuditGWConcurrentLoginsLeaveOneSession).
	if err := g.sessions.acquire(s.userKey, s); err != nil {
		return nil, liveimpb.ErrUnavailable.With("subscribe: %v", err)
	}
	rep, err := g.checkCredentials(&liveimpb.AuthRequest{AppId: req.AppId, UserId: req.User.UserId, Auth: req.Auth, Origin: c.origin,
		SessionId: s.id, DeviceId: req.DeviceId})
	if err != nil {
		g.sessions.abandon(s.userKey, s)
		return nil, err
	}
	s.multiDevice, s.onlineEvents, s.offlineEvents = rep.MultiDevice, rep.OnlineEvents, rep.OfflineEvents
	s.checkedAt = g.now()
	s.setToken(req.Auth.Timestamp, g.now(), g.cfg.TokenExpiryNotice)
	return s, nil
}

// refresh accepts a new token for the session's user and role.
func (g *Gateway) refresh(c *conn, s *session, req *liveimpb.RefreshTokenRequest) error {
	if req.Auth == nil {
		return liveimpb.InvalidParam("userAuth", "required")
	}
	if req.Auth.Role != s.role {
		return liveimpb.InvalidParam("role", "cannot change within a session")
	}
	if _, err := g.checkCredentials(&liveimpb.AuthRequest{AppId: s.appID, UserId: s.userID, Auth: req.Auth, Origin: c.origin}); err != nil {
		return err
	}
	s.setToken(req.Auth.Timestamp, g.now(), g.cfg.TokenExpiryNotice)
	return nil
}

// checkCredentials asks a router to check credentials; it waits for the
// answer, so it runs off the event loops.
func (g *Gateway) checkCredentials(req *liveimpb.AuthRequest) (*liveimpb.AuthReply, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, liveimpb.InvalidParam("userAuth", "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RequestTimeout)
	defer cancel()
	m, err := g.nc.RequestWithContext(ctx, subject.Auth, b)
	if err != nil {
		return nil, liveimpb.ErrUnavailable.With("credential check: %v", err)
	}
	var rep liveimpb.AuthReply
	if err := proto.Unmarshal(m.Data, &rep); err != nil {
		return nil, liveimpb.ErrUnavailable.With("credential check: %v", err)
	}
	if rep.Code != 0 {
		return nil, &liveimpb.Error{Code: liveimpb.ErrorCode(rep.Code), Message: rep.Msg}
	}
	return &rep, nil
}

// presenceEvent publishes user.online or user.offline of a session if its
// app wants them (package callback).
func (g *Gateway) presenceEvent(s *session, kind string) {
	if (kind == callback.UserOnline && !s.onlineEvents) || (kind == callback.UserOffline && !s.offlineEvents) {
		return
	}
	g.events.Publish(callback.Event{Type: kind, AppID: s.appID, SessionID: s.id, User: &callback.User{UserID: s.userID, UserExtension: s.userExt}})
}
