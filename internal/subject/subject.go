// Package subject names every NATS subject and header liveim uses, in one
// place. App, group and user IDs are [A-Za-z0-9-]+, so they are always
// single, safe subject tokens.
package subject

import "strings"

const (
	// RPCWildcard is what routers subscribe to, in QueueGroup.
	RPCWildcard = "liveim.rpc.>"
	// AppLookup answers AppLookupRequest (routers, in QueueGroup).
	AppLookup = "liveim.sys.app"
	// QueueGroup is the queue group of router workers.
	QueueGroup = "liveim-router"
	// NoGroup is the scope token of requests that name no group. '_' never
	// appears in an ID, so it cannot collide with a group.
	NoGroup = "_"
)

// Header names carried on NATS messages.
const (
	// HeaderKind tells what a message on a user subject is: KindC2C or
	// KindTakeover.
	HeaderKind = "Liveim-Kind"
	// HeaderSession is the session ID a takeover comes from.
	HeaderSession = "Liveim-Session"
	// HeaderLevel is "1" on HIGH group messages.
	HeaderLevel = "Liveim-Level"
	// HeaderSeq is a group message's seqnum in decimal.
	HeaderSeq = "Liveim-Seq"
)

// Values of HeaderKind.
const (
	KindC2C      = "c2c"
	KindTakeover = "takeover"
)

// RPC is the subject a gateway sends a client request to. scope is the
// group ID, or NoGroup.
func RPC(appID, scope string) string {
	return "liveim.rpc." + appID + "." + scope
}

// Group is the subject carrying a group's pushed events, each an encoded
// ServerFrame ready for the socket.
func Group(appID, groupID string) string {
	return "liveim.grp." + appID + "." + groupID
}

// ParseGroup splits a Group subject into its app and group IDs.
func ParseGroup(s string) (appID, groupID string, ok bool) {
	rest, ok := strings.CutPrefix(s, "liveim.grp.")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// User is the subject every session of a user subscribes to: C2C messages
// (as requests, so "no responders" means offline) and takeover notices.
func User(appID, userID string) string {
	return "liveim.usr." + appID + "." + userID
}

// ParseUser splits a User subject into its app and user IDs.
func ParseUser(s string) (appID, userID string, ok bool) {
	rest, ok := strings.CutPrefix(s, "liveim.usr.")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// Inbox is the prefix of a gateway's reply subjects.
func Inbox(gatewayID string) string {
	return "_INBOX.liveim." + gatewayID + "."
}
