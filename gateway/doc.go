// Package gateway terminates client WebSockets and bridges them to NATS.
//
// Sockets are upgraded by net/http on /ws (gobwas/ws, zero-copy), then the
// fd is moved to one of Config.Loops epoll event loops and the HTTP
// goroutine ends: an idle connection holds no goroutine and no read buffer.
// A loop reads whatever a socket has into one buffer shared by all its
// connections, handles every complete frame and keeps only the bytes of an
// incomplete one, so a client that stalls mid-frame delays nobody.
//
// Requests that need a router go out as NATS requests on
// liveim.rpc.<app>.<group|_> with a reply subject on this gateway's inbox;
// the reply is matched in rpcTable, so waiting costs no goroutine. Login
// runs on a short-lived goroutine of its own: a router checks the
// credentials (liveim.sys.auth; gateways hold no app keys), then a NATS
// flush. Every session is held to its token's expiry, and every client
// address and session to the rate limits of Config.
//
// Each group with local members has ONE NATS subscription (rooms); each
// user with sessions here one on liveim.usr.<app>.<user>, however many
// sessions (devices), for C2C messages and takeover notices. Both are channel subscriptions drained by
// Config.Dispatchers goroutines (dispatch.go), a subject always to the
// same one, so a group's events keep their order. A broadcast builds the
// WebSocket frame once and queues the same bytes on every member's socket.
// A room with Config.MergeMinMembers local members or more merges its
// events for Config.MergeWindow into one EventBatch frame: one socket
// write per member per window instead of one per event.
//
//	gw, err := gateway.New(gateway.Config{Addr: ":8080"}, nc, logger)
//	err = gw.Run(ctx) // until ctx ends
//
// Writes: conn.send writes at once when the socket's queue is empty and
// otherwise queues, bounded by Config.OutboundQueueBytes; a socket that
// can take more gets its whole queue in one writev. NORMAL events beyond
// the bound are dropped; anything else, or dropping for longer than
// Config.SlowConsumerTimeout, closes the slow socket with a reconnect
// hint (the client resumes its HIGH events).
// The lock order is written in registry.go: every lock is a leaf.
package gateway
