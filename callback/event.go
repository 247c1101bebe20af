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
