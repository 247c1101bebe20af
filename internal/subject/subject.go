// Package subject names every NATS subject, stream, bucket and header
// liveim uses, in one place. App, group and user IDs are [A-Za-z0-9-]+,
// so they are always single, safe subject tokens.
package subject

import (
	"strconv"
	"strings"
)

const (
	// RPCStream is the JetStream work-queue stream that holds group-scoped
	// requests until the group's owning router takes them. It captures
	// liveim.rpc.<app>.<group> and stores each request under
	// liveim.rpcp.<partition>.<app>.<group>.
	RPCStream = "LIVEIM_RPC"
	// RPCCapture is the subject filter RPCStream captures.
	RPCCapture = "liveim.rpc.*.*"
	// LegacyHighStream is the one stream that held every group's HIGH
	// messages before they were spread over HighStream's shards
	// (liveim.grp.<app>.<group>.h): routers read it while it holds
	// messages, and delete it once it is empty.
	LegacyHighStream = "LIVEIM_HIGH"
	// AnyWildcard is what routers subscribe to, in QueueGroup, for requests
	// that name no group (C2C, createGroup without an ID).
	AnyWildcard = "liveim.any.*"
	// Auth answers AuthRequest (routers, in QueueGroup).
	Auth = "liveim.sys.auth"
	// GatewayHeartbeat carries GatewayHeartbeat from every gateway.
	GatewayHeartbeat = "liveim.sys.gw"
	// Online is where the server API asks every gateway which users it
	// holds (OnlineQuery, answered by OnlineReply).
	Online = "liveim.sys.online"
	// QueueGroup is the queue group of router workers.
	QueueGroup = "liveim-router"
	// RouterBucket is the KV bucket where live routers announce themselves.
	RouterBucket = "liveim_routers"
	// NonceStream is the memory stream binding each login nonce to the
	// first token that used it: one message per nonce, on Nonce.
	NonceStream = "LIVEIM_NONCES"
	// NonceCapture is the subject filter NonceStream captures.
	NonceCapture = "liveim.nonce.*.*"
	// ClusterBucket is the KV bucket of the secrets routers share (the MAC
	// key of server API requests); only routers may read it.
	ClusterBucket = "liveim_cluster"
	// PriorityGroup is the JetStream priority group routers pull with.
	PriorityGroup = "routers"
)

// Header names carried on NATS messages.
const (
	// HeaderKind tells what a message on a user subject is: KindC2C,
	// KindTakeover, KindKick or KindDisconnect.
	HeaderKind = "Liveim-Kind"
	// HeaderSession is the session ID a takeover comes from.
	HeaderSession = "Liveim-Session"
	// HeaderDevice is the device ID a takeover comes from.
	HeaderDevice = "Liveim-Device"
	// HeaderGroup names the group of a kick.
	HeaderGroup = "Liveim-Group"
	// HeaderLevel is "1" on HIGH group messages.
	HeaderLevel = "Liveim-Level"
	// HeaderNoStorage is "1" on HIGH group messages sent with noStorage:
	// a resume gives them only to members that were in the group then.
	HeaderNoStorage = "Liveim-No-Storage"
	// HeaderSeq is a group message's seqnum in decimal.
	HeaderSeq = "Liveim-Seq"
	// HeaderReply is where the router answers a request that went through
	// RPCStream (a stream keeps the NATS reply subject for its own acks).
	HeaderReply = "Liveim-Reply"
	// HeaderDeadline is the Unix millisecond after which the gateway has
	// given up on a request; routers drop requests found past it.
	HeaderDeadline = "Liveim-Deadline"
	// HeaderHops counts how often a router sent a group request on to the
	// group's new owner.
	HeaderHops = "Liveim-Hops"
	// HeaderServerMAC carries the cluster's HMAC of a server API request:
	// routers trust Caller.Server only with it (router/server.go).
	HeaderServerMAC = "Liveim-Server-Mac"
	// HeaderExit marks a group event after which gateways drop the room's
	// local members (closeGroup).
	HeaderExit = "Liveim-Exit"
)

// Values of HeaderKind.
const (
	KindC2C      = "c2c"
	KindTakeover = "takeover"
	KindKick     = "kick"
	// KindDisconnect ends every session of the user (server API), with
	// disconnect code 2.
	KindDisconnect = "disconnect"
)

// CallbackStream is the stream of the apps' callback events (package
// callback), on CallbackWildcard.
const (
	CallbackStream   = "LIVEIM_CALLBACKS"
	CallbackWildcard = "liveim.cb.>"
)

// CallbackGroup is the subject of a group's callback events: one subject
// per group keeps them in order.
func CallbackGroup(appID, groupID string) string {
	return "liveim.cb." + appID + ".g." + groupID
}

// CallbackUser is the subject of a user's callback events (online,
// offline).
func CallbackUser(appID, userID string) string {
	return "liveim.cb." + appID + ".u." + userID
}

// CallbackApp is the filter of every callback event of an app.
func CallbackApp(appID string) string {
	return "liveim.cb." + appID + ".>"
}

// RPC is the subject a gateway sends a group-scoped request to.
func RPC(appID, groupID string) string {
	return "liveim.rpc." + appID + "." + groupID
}

// RPCTransform is the stream's subject transform destination: the
// partition of (app, group), then app and group.
func RPCTransform(partitions int) string {
	return "liveim.rpcp.{{partition(" + strconv.Itoa(partitions) + ",1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"
}

// RPCPartition is the filter of the requests of one partition.
func RPCPartition(p int) string {
	return "liveim.rpcp." + strconv.Itoa(p) + ".>"
}

// ParseRPCPartition splits a stored request subject into its partition,
// app and group.
func ParseRPCPartition(s string) (p int, appID, groupID string, ok bool) {
	rest, ok := strings.CutPrefix(s, "liveim.rpcp.")
	if !ok {
		return 0, "", "", false
	}
	ps, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, "", "", false
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return 0, "", "", false
	}
	appID, groupID, ok = strings.Cut(rest, ".")
	return p, appID, groupID, ok
}

// Any is the subject of an app's requests that name no group.
func Any(appID string) string {
	return "liveim.any." + appID
}

// GroupEvents is the subject of a group's live events and NORMAL
// messages.
func GroupEvents(appID, groupID string) string {
	return "liveim.grp." + appID + "." + groupID + ".e"
}

// HighStream names the shard-th JetStream stream holding HIGH group
// messages for replay; it captures HighCapture(shard). A group's HIGH
// messages are all in one shard (HighShard): with one stream for all, its
// one write loop (an fsync per message on a single node) bounded every
// group's HIGH messages together.
func HighStream(shard int) string {
	return "LIVEIM_HIGH_" + strconv.Itoa(shard)
}

// HighCapture is the subject filter of HIGH stream shard.
func HighCapture(shard int) string {
	return "liveim.grp.*.*.h" + strconv.Itoa(shard)
}

// HighShard returns the HIGH stream shard, of shards, of a group: FNV-1a
// of its app and group IDs.
func HighShard(appID, groupID string, shards int) int {
	h := uint32(2166136261)
	for _, s := range []string{appID, "/", groupID} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return int(h % uint32(max(shards, 1)))
}

// GroupHigh is the subject of a group's HIGH messages, stored in HIGH
// stream shard (HighShard).
func GroupHigh(appID, groupID string, shard int) string {
	return "liveim.grp." + appID + "." + groupID + ".h" + strconv.Itoa(shard)
}

// LegacyGroupHigh is the subject of a group's HIGH messages in
// LegacyHighStream.
func LegacyGroupHigh(appID, groupID string) string {
	return "liveim.grp." + appID + "." + groupID + ".h"
}

// GroupAll is what a gateway subscribes to for a room: both of the above
// with one subscription.
func GroupAll(appID, groupID string) string {
	return "liveim.grp." + appID + "." + groupID + ".*"
}

// ParseGroup splits a group subject into its app and group IDs.
func ParseGroup(s string) (appID, groupID string, ok bool) {
	rest, ok := strings.CutPrefix(s, "liveim.grp.")
	if !ok {
		return "", "", false
	}
	appID, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return "", "", false
	}
	groupID, _, ok = strings.Cut(rest, ".")
	return appID, groupID, ok
}

// User is the subject every session of a user subscribes to: C2C messages
// (as requests, so "no responders" means offline), takeover notices and
// kicks.
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

// Nonce is the subject of a login nonce's binding in NonceStream: key is
// a digest of the nonce, in characters valid in a subject token.
func Nonce(appID, key string) string {
	return "liveim.nonce." + appID + "." + key
}

// GatewayInboxPrefix is the root of every reply subject of a gateway:
// its replies from routers (Inbox) and the inboxes of its own NATS
// requests (a gateway connects with nats.CustomInboxPrefix of it). A
// gateway may subscribe under it only, so it cannot read what is sent to
// routers' inboxes: JetStream deliveries of the requests routers take
// (server requests with their MACs), and the answers to their
// JetStream and bucket reads (the cluster secret).
const GatewayInboxPrefix = "_INBOX.liveim"

// Inbox is the prefix of a gateway's reply subjects.
func Inbox(gatewayID string) string {
	return GatewayInboxPrefix + "." + gatewayID + "."
}

// The NATS users of a liveim cluster and what each may do. Routers own
// every subject; a gateway, the process that faces the internet, may
// only send requests to routers, announce itself, publish users' online
// and offline events, and listen to rooms, users and its replies. It can neither publish into
// a room directly nor touch JetStream (its streams and buckets: HIGH
// messages, login nonces, live routers), and it may answer a request (a
// C2C delivery) only with the one reply the request asked for.
const (
	// RouterUser is the NATS user name routers connect as.
	RouterUser = "liveim-router"
	// GatewayUser is the NATS user name gateways connect as.
	GatewayUser = "liveim-gateway"
)

// GatewayPublish returns the subjects a gateway may publish to.
func GatewayPublish() []string {
	return []string{"liveim.rpc.*.*", "liveim.any.*", Auth, GatewayHeartbeat, "liveim.cb.*.u.*"}
}

// GatewaySubscribe returns the subjects a gateway may subscribe to.
func GatewaySubscribe() []string {
	return []string{"liveim.grp.*.*.*", "liveim.usr.*.*", Online, GatewayInboxPrefix + ".>"}
}

// Templates of the subjects above that hold IDs: the subject with
// {app}, {group} and {user} in place of the IDs. They name a destination
// with low cardinality (OpenTelemetry's messaging.destination.template,
// and the destination in span names).
const (
	RPCTemplate         = "liveim.rpc.{app}.{group}"
	AnyTemplate         = "liveim.any.{app}"
	GroupEventsTemplate = "liveim.grp.{app}.{group}.e"
	GroupHighTemplate   = "liveim.grp.{app}.{group}.h{shard}"
	UserTemplate        = "liveim.usr.{app}.{user}"
)

// Template returns the template of a subject liveim sends requests,
// events or user messages on (RPC, Any, GroupEvents, GroupHigh, User), or
// "" for any other subject.
func Template(s string) string {
	switch {
	case strings.HasPrefix(s, "liveim.rpc."):
		return RPCTemplate
	case strings.HasPrefix(s, "liveim.any."):
		return AnyTemplate
	case strings.HasPrefix(s, "liveim.usr."):
		return UserTemplate
	case strings.HasPrefix(s, "liveim.grp.") && strings.HasSuffix(s, ".e"):
		return GroupEventsTemplate
	case strings.HasPrefix(s, "liveim.grp.") && isHighToken(s[strings.LastIndexByte(s, '.')+1:]):
		return GroupHighTemplate
	}
	return ""
}

// isHighToken reports whether t is the last token of a HIGH subject: h
// and a shard number, or h alone (LegacyGroupHigh).
func isHighToken(t string) bool {
	n, ok := strings.CutPrefix(t, "h")
	if !ok {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}
