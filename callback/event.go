package callback

import "slices"

// Kinds of events an app may ask for (storage.App.CallbackEvents).
const (
	GroupCreated   = "group.created"
	GroupClosed    = "group.closed"
	GroupDeleted   = "group.deleted"
	GroupJoin      = "group.join"
	GroupLeave     = "group.leave"
	GroupMessage   = "group.message"
	MessageDeleted = "message.deleted"
	UserOnline     = "user.online"
	UserOffline    = "user.offline"
)

// Kinds lists every event kind.
var Kinds = []string{GroupCreated, GroupClosed, GroupDeleted, GroupJoin, GroupLeave, GroupMessage, MessageDeleted, UserOnline, UserOffline}

// Known reports whether kind is an event kind.
func Known(kind string) bool { return slices.Contains(Kinds, kind) }

// Event is one event as the app receives it.
type Event struct {
	// ID names the event; a redelivered event has the same ID, so the app
	// can drop one it has seen.
	ID      string `json:"id"`
	Type    string `json:"type"`
	AppID   string `json:"app_id"`
	GroupID string `json:"group_id,omitempty"`
	// TimeMs is when it happened (Unix ms).
	TimeMs int64 `json:"time"`
	// User is who joined, left, came online or went offline, or created
	// the group.
	User *User `json:"user,omitempty"`
	// SessionID names the session of user.online and user.offline: a user
	// with several devices has several.
	SessionID string `json:"session_id,omitempty"`
	// Message is the message of group.message.
	Message *Message `json:"message,omitempty"`
	// MessageID is the message of message.deleted.
	MessageID string `json:"message_id,omitempty"`
}

// User is a user in an event.
type User struct {
	UserID        string `json:"user_id"`
	UserExtension string `json:"user_extension,omitempty"`
}

// Message is a group message, in events and in the server API's lists.
type Message struct {
	MessageID       string `json:"message_id"`
	GroupID         string `json:"group_id"`
	Type            int32  `json:"type"`
	SenderID        string `json:"sender_id"`
	SenderExtension string `json:"sender_extension"`
	Data            string `json:"data"`
	Seqnum          int64  `json:"seqnum"`
	TimestampMs     int64  `json:"timestamp"`
	Level           string `json:"level"` // "normal" or "high"
	RepeatCount     int32  `json:"repeat_count"`
	TotalMsgs       int64  `json:"total_msgs"`
}

// Batch is the body of one callback POST: events of one app, oldest
// first.
type Batch struct {
	AppID  string  `json:"app_id"`
	Events []Event `json:"events"`
}

// Wants reports whether an app with callback URL url asking for events
// (all when empty) wants events of kind.
func Wants(url string, events []string, kind string) bool {
	return url != "" && (len(events) == 0 || slices.Contains(events, kind))
}
