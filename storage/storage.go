package storage

import (
	"context"
	"errors"
	"time"

	"github.com/liveim/liveim/auth"
)

// Store is liveim's persistent state: apps, groups and group message
// history. Implementations are safe for concurrent use.
//
// Sequencing is the caller's job: the router that owns a group assigns each
// message its seqnum and the store keeps what it is given. Writes are
// idempotent: putting the same app, group or message (same key) twice
// leaves one copy.
type Store interface {
	// PutApp creates or replaces an app.
	PutApp(ctx context.Context, app App) error
	// UpdateApp reads an app, applies change to it and stores the result
	// unless the app was written in between, in which case it reads and
	// applies change again: no change of a concurrent UpdateApp is lost
	// (a key rotation beside a settings change). It returns the app
	// stored; ErrNotFound when the app does not exist, and change's own
	// error as is.
	UpdateApp(ctx context.Context, appID string, change func(*App) error) (App, error)
	// GetApp returns ErrNotFound when the app does not exist.
	GetApp(ctx context.Context, appID string) (App, error)
	// ListApps returns every app, by ID.
	ListApps(ctx context.Context) ([]App, error)

	// CreateGroup stores g, with Version 1, unless a group with its ID
	// already exists in the app, in which case it returns the existing
	// group and created=false.
	CreateGroup(ctx context.Context, g Group) (existing Group, created bool, err error)
	// GetGroup returns ErrNotFound when the group does not exist.
	GetGroup(ctx context.Context, appID, groupID string) (Group, error)
	// PutGroup replaces a group's state (name, meta, admins, closed flag,
	// mutes, counters) if the stored Version equals g.Version, storing it
	// with Version+1, which it returns. A stale g.Version is ErrConflict:
	// someone else wrote the group since g was read. A group never created
	// is ErrNotFound.
	PutGroup(ctx context.Context, g Group) (version int64, err error)
	// CountGroups returns how many open (not closed) groups the app has:
	// what counts toward its group limit.
	CountGroups(ctx context.Context, appID string) (int, error)
	// ListGroups returns a page of an app's groups, by ID.
	ListGroups(ctx context.Context, q GroupQuery) (GroupPage, error)
	// DeleteGroup removes a group with everything of it: its record, its
	// members and its whole history, so its ID is free again. A group that
	// does not exist is ErrNotFound.
	DeleteGroup(ctx context.Context, appID, groupID string) error

	// AppendMessage stores a group message under (app, group, seqnum).
	AppendMessage(ctx context.Context, m Message) error
	// LastSeq returns the highest seqnum stored for the group, 0 if none.
	LastSeq(ctx context.Context, appID, groupID string) (int64, error)
	// ListMessages returns a page of a group's messages that match q.
	// Messages older than their app's RetentionDays (by timestamp) are
	// never returned, by ListMessages or GetMessage.
	ListMessages(ctx context.Context, q MessageQuery) (MessagePage, error)
	// GetMessage returns a stored, not deleted message by ID, or
	// ErrNotFound.
	GetMessage(ctx context.Context, appID, groupID, messageID string) (Message, error)
	// DeleteMessage marks a message deleted so no query returns it again,
	// and records the deletion as the group's deleteSeq-th (the group's
	// owner counts them; see Group.DeleteSeq). It returns the deleted
	// message, or ErrNotFound.
	DeleteMessage(ctx context.Context, appID, groupID, messageID string, deleteSeq int64) (Message, error)
	// ListDeletions returns the group's deletions after the afterSeq-th,
	// in order, at most limit: what a client that was away must forget.
	// Deletions of messages older than their app's RetentionDays may be
	// gone.
	ListDeletions(ctx context.Context, appID, groupID string, afterSeq int64, limit int) ([]Deletion, error)

	// SaveMembers records who is in a group: upserts replace members by
	// user ID, removes deletes them. Either may be empty.
	SaveMembers(ctx context.Context, appID, groupID string, upserts []Member, removes []string) error
	// ListMembers returns every recorded member of a group, in no
	// particular order.
	ListMembers(ctx context.Context, appID, groupID string) ([]Member, error)

	// Close releases the store.
	Close() error
}

// System names the database behind s for telemetry (OpenTelemetry's
// db.system.name): what its System method returns, "other" for a store
// without one.
func System(s Store) string {
	if n, ok := s.(interface{ System() string }); ok {
		return n.System()
	}
	return "other"
}

// ErrNotFound is returned when the asked-for app, group or message does not
// exist.
var ErrNotFound = errors.New("storage: not found")

// ErrConflict is returned by PutGroup when the group changed since the
// caller read it.
var ErrConflict = errors.New("storage: version conflict")

// ErrInvalidQuery is returned by ListMessages for a query it cannot run:
// a limit below 1, a negative BeforeSeq, or a page token it did not make.
// Page tokens are opaque and specific to a store.
var ErrInvalidQuery = errors.New("storage: invalid query")

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("storage: closed")

// App is a tenant.
type App struct {
	ID            string `json:"app_id"`
	Key           string `json:"app_key"`
	CreatedAtMs   int64  `json:"created_at_ms"`
	RetentionDays int    `json:"retention_days,omitempty"` // 0 = keep forever
	// BlockedWords are refused (451) in messages sent without skipAudit;
	// matching is case-insensitive on substrings.
	BlockedWords []string `json:"blocked_words,omitempty"`
	// AuditURL, when set, receives each message sent without skipAudit as
	// an HTTP POST and decides whether it may pass.
	AuditURL string `json:"audit_url,omitempty"`
	// AuditFailOpen lets messages pass when the audit hook fails or times
	// out; by default they are refused (451).
	AuditFailOpen bool `json:"audit_fail_open,omitempty"`
	// MaxGroups caps the app's groups (443); 0 means the router default.
	MaxGroups int `json:"max_groups,omitempty"`
	// MultiDevice lets a user be logged in from several devices at once:
	// a new login then closes only the older session of the same deviceId.
	MultiDevice bool `json:"multi_device,omitempty"`
	// Disabled refuses every login (401).
	Disabled bool `json:"disabled,omitempty"`
	// AllowedOrigins lists the web origins whose pages may log in
	// ("https://live.example.com", "https://*.example.com"); a login from a
	// page of another origin is 403. Empty allows every origin. Clients
	// that send no Origin (native apps, mini-programs) are not affected.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// NonceLength is the exact length of a login token's nonce; 0 means
	// auth.DefaultNonceLength (32). See package auth.
	NonceLength int `json:"nonce_length,omitempty"`
	// MaxTokenLifetimeSec caps how far ahead a login token may expire, in
	// seconds; 0 means auth.DefaultMaxLifetime (7 days).
	MaxTokenLifetimeSec int64 `json:"max_token_lifetime_sec,omitempty"`
	// PreviousKey is the key before the last rotation; it stays valid
	// (tokens, server API signatures) until PreviousKeyUntilMs, so what was
	// signed with it just before the rotation still works.
	PreviousKey        string `json:"previous_key,omitempty"`
	PreviousKeyUntilMs int64  `json:"previous_key_until_ms,omitempty"`
	// GatewayURLs are the WebSocket URLs the app's appSign names.
	GatewayURLs []string `json:"gateway_urls,omitempty"`
	// RoomRate caps the NORMAL messages per second one group of the app
	// accepts (412, shed); 0 means the router's --room-rate.
	RoomRate float64 `json:"room_rate,omitempty"`
	// CallbackURL receives the app's events (docs/serverapi.md) as signed
	// HTTP POSTs; CallbackEvents names the kinds it wants, all when empty.
	CallbackURL    string   `json:"callback_url,omitempty"`
	CallbackEvents []string `json:"callback_events,omitempty"`
}

// Keys returns the keys valid for the app at now: its key, and its
// previous one while the rotation's grace period lasts.
func (a App) Keys(now time.Time) []string {
	if a.PreviousKey != "" && now.UnixMilli() < a.PreviousKeyUntilMs {
		return []string{a.Key, a.PreviousKey}
	}
	return []string{a.Key}
}

// TokenPolicy returns the app's login token rules.
func (a App) TokenPolicy() auth.Policy {
	return auth.Policy{NonceLength: a.NonceLength, MaxLifetime: time.Duration(a.MaxTokenLifetimeSec) * time.Second}
}

// Group is a live room's persistent state.
type Group struct {
	AppID        string   `json:"app_id"`
	ID           string   `json:"group_id"`
	Name         string   `json:"group_name"`
	Meta         string   `json:"group_meta"`
	Creator      string   `json:"creator"`
	Admins       []string `json:"admins,omitempty"`
	CreateTimeMs int64    `json:"create_time_ms"`
	Closed       bool     `json:"closed,omitempty"`
	MuteAll      bool     `json:"mute_all,omitempty"`
	MutedUsers   []string `json:"muted_users,omitempty"`
	// MuteUntil holds when a timed mute of a user in MutedUsers ends
	// (Unix ms); a user not in it is muted until the mute is cancelled.
	MuteUntil map[string]int64 `json:"mute_until,omitempty"`
	// Bans holds users kicked with a ban and when the ban ends (Unix ms):
	// they may not join before.
	Bans       map[string]int64 `json:"bans,omitempty"`
	WhiteUsers []string         `json:"white_users,omitempty"`
	PV         int64            `json:"pv,omitempty"`
	MsgAmount  map[int32]int64  `json:"msg_amount,omitempty"`
	// SeqReserved is the highest seqnum the owning router may hand out
	// before it writes the group again; a restarted router starts above
	// it, so a seqnum is never reused.
	SeqReserved int64 `json:"seq_reserved,omitempty"`
	// DeleteSeq counts the group's message deletions; each deletion is
	// recorded under its number (Store.ListDeletions).
	DeleteSeq int64 `json:"delete_seq,omitempty"`
	// Version counts the writes of the group; PutGroup compares and sets
	// it, so two routers that both think they own a group cannot silently
	// overwrite each other.
	Version int64 `json:"version"`
}

// Message is a stored group message.
type Message struct {
	AppID       string `json:"app_id"`
	GroupID     string `json:"group_id"`
	ID          string `json:"message_id"`
	Seq         int64  `json:"seqnum"`
	Type        int32  `json:"type"`
	SenderID    string `json:"sender_id"`
	SenderExt   string `json:"sender_ext,omitempty"`
	Data        string `json:"data"`
	TimestampMs int64  `json:"timestamp_ms"`
	Level       int32  `json:"level,omitempty"`
	RepeatCount int32  `json:"repeat_count,omitempty"`
	TotalMsgs   int64  `json:"total_msgs,omitempty"`
}

// GroupStatus selects groups by their closed flag.
type GroupStatus int

// Values of GroupStatus.
const (
	AnyGroup GroupStatus = iota
	OpenGroups
	ClosedGroups
)

// GroupQuery selects a page of an app's groups.
type GroupQuery struct {
	AppID  string
	Status GroupStatus
	// Limit is the page size; it must be positive.
	Limit int
	// PageToken continues a previous query; empty starts at the first
	// group.
	PageToken string
}

// GroupPage is one page of groups, by ID.
type GroupPage struct {
	Groups []Group
	// NextPageToken continues the query; empty when there is nothing more.
	NextPageToken string
}

// Deletion is one deletion of a group's message.
type Deletion struct {
	// Seq numbers the group's deletions: 1, 2, 3, ...
	Seq int64 `json:"delete_seq"`
	// MessageSeq and MessageID name the deleted message.
	MessageSeq int64  `json:"seqnum"`
	MessageID  string `json:"message_id"`
}

// Member is a user present in a group, with the sessions that joined it.
type Member struct {
	UserID     string          `json:"user_id"`
	UserExt    string          `json:"user_ext,omitempty"`
	JoinTimeMs int64           `json:"join_time_ms"`
	Sessions   []MemberSession `json:"sessions,omitempty"`
}

// MemberSession is one session of a member: where it is connected.
type MemberSession struct {
	GatewayID string `json:"gateway_id"`
	SessionID string `json:"session_id"`
}

// MessageQuery selects a page of a group's messages.
type MessageQuery struct {
	AppID   string
	GroupID string
	// Type keeps only messages of this type; 0 keeps all.
	Type int32
	// FromMs and ToMs bound the timestamp (inclusive, milliseconds); 0 means
	// unbounded.
	FromMs, ToMs int64
	// BeforeSeq keeps only messages with a seqnum below it; 0 means no bound.
	BeforeSeq int64
	// Desc returns newest first; otherwise oldest first.
	Desc bool
	// Limit is the page size; it must be positive.
	Limit int
	// PageToken continues a previous query with the same parameters; empty
	// starts at the beginning.
	PageToken string
}

// MessagePage is one page of messages in the requested order.
type MessagePage struct {
	Messages []Message
	// NextPageToken continues the query; empty when there is nothing more.
	NextPageToken string
}
