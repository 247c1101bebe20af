package gateway

// Disconnect reasons: the values of liveim_gateway_disconnects_total's
// reason label, one per way a connection ends.
const (
	reasonClientClosed      = "client_closed"       // the client sent a close frame
	reasonConnectionLost    = "connection_lost"     // the socket ended or failed without a close frame
	reasonLogout            = "logout"              // the client logged out
	reasonProtocolError     = "protocol_error"      // a malformed, oversized, text or fragmented frame
	reasonLoginTimeout      = "login_timeout"       // no login within Config.LoginTimeout
	reasonHeartbeatTimeout  = "heartbeat_timeout"   // silent for the session's heartbeat timeout
	reasonTokenExpired      = "token_expired"       // the token expired without a refresh
	reasonUnauthorized      = "unauthorized"        // the login was refused with 401
	reasonKicked            = "kicked"              // the app's server disconnected the user
	reasonLoggedInElsewhere = "logged_in_elsewhere" // the user logged in again
	reasonSlowConsumer      = "slow_consumer"       // the socket could not keep up
	reasonOverloaded        = "overloaded"          // the room's NATS subscription overflowed
	reasonShutdown          = "shutdown"            // the gateway drained
	reasonOther             = "other"               // none of the above (a close this list misses)
)

// disconnectReasons lists every reason, for the metric's initial zeros.
var disconnectReasons = []string{
	reasonClientClosed, reasonConnectionLost, reasonLogout, reasonProtocolError, reasonLoginTimeout,
	reasonHeartbeatTimeout, reasonTokenExpired, reasonUnauthorized, reasonKicked, reasonLoggedInElsewhere,
	reasonSlowConsumer, reasonOverloaded, reasonShutdown, reasonOther,
}

// disconnectReason maps the reason text of a close frame the gateway
// sends (conn.closeWith) to a disconnect reason; the empty text is the
// echo of a client's own close frame. TestDisconnectReasons checks that
// every closeWith in the package maps to a reason other than "other".
func disconnectReason(text string) string {
	switch text {
	case "":
		return reasonClientClosed
	case "logout":
		return reasonLogout
	case "413 frame too large", "protocol error", "fragmented frames are not supported", "binary frames only":
		return reasonProtocolError
	case "login timeout":
		return reasonLoginTimeout
	case "heartbeat timeout":
		return reasonHeartbeatTimeout
	case "token expired":
		return reasonTokenExpired
	case "401 unauthorized":
		return reasonUnauthorized
	case "disconnected by the server":
		return reasonKicked
	case "logged in elsewhere":
		return reasonLoggedInElsewhere
	case "slow consumer":
		return reasonSlowConsumer
	case "overloaded, reconnect":
		return reasonOverloaded
	case shutdownText:
		return reasonShutdown
	}
	return reasonOther
}

// shutdownText is the close reason of a draining gateway.
const shutdownText = "gateway shutting down"
