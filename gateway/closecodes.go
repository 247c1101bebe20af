package gateway

import "github.com/gobwas/ws"

// WebSocket close statuses liveim sends beyond those gobwas/ws names
// (docs/protocol.md lists when each is used).
const (
	// closeTryAgainLater (1013): the gateway is overloaded; reconnect.
	closeTryAgainLater ws.StatusCode = 1013
	// closeUnauthorized (4001): login refused with 401.
	closeUnauthorized ws.StatusCode = 4001
	// closeKicked (4002): the app's server disconnected the user.
	closeKicked ws.StatusCode = 4002
	// closeLoggedInElsewhere (4004): the same user logged in again.
	closeLoggedInElsewhere ws.StatusCode = 4004
)
