// Package gateway terminates client WebSockets and bridges them to NATS.
//
// Sockets are upgraded on /ws (gobwas/ws, zero-copy) by the gateway
// itself, which hands every other request to net/http (upgrade.go); then
// an engine (io.go) owns the socket and the goroutine that read the
// request ends. There are two I/O paths, Config.IO, and they share
// everything but the socket calls:
// frame parsing (frame.go), request handling (handle.go), sessions, the
// outbound queue with its bound, drops, slow-consumer rule and close
// statuses (conn.go), and the timers, all run the same code; an engine
// only reads bytes into conn.handleBytes and moves conn's queue to the
// socket (connIO).
//
//   - epoll (epoll.go, loop.go; Linux only, the default there): the fd is
//     duplicated out of Go's netpoller into one of Config.Loops event
//     loops, so an idle connection holds no goroutine and no read buffer.
//     A loop reads whatever a socket has into one buffer shared by all its
//     connections, handles every complete frame and keeps only the bytes of
//     an incomplete one, so a client that stalls mid-frame delays nobody.
//   - portable (portable.go; any OS, and the path for in-process TLS,
//     Config.TLSCertFile, since epoll reads raw fds): a reader goroutine per
//     connection blocks in net.Conn.Read and hands what it read to the same
//     conn.handleBytes, in a buffer of its own that starts at 4 KiB and
//     grows to hold one frame of at most Config.MaxFrameBytes; a writer
//     goroutine runs while the connection has frames queued and writes the
//     queue with one writev (net.Buffers), or in 16 KiB TLS records. An
//     idle connection costs one goroutine and its small buffer. Frames are
//     parsed by parseFrame here too, not by gobwas/ws's wsutil.Reader: one
//     decoder gives both paths the same limits and close statuses.
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
//	// wss:// in process, on the portable path, on any OS:
//	gw, err = gateway.New(gateway.Config{Addr: ":8443", TLSCertFile: "cert.pem", TLSKeyFile: "key.pem"}, nc, logger)
//
// Writes: conn.send queues under conn.mu, bounded by
// Config.OutboundQueueBytes of bytes not yet handed to the socket. On
// epoll it writes at once when the queue is empty, and a socket that can
// take more gets its whole queue in one writev; on the portable path the
// writer goroutine takes the queue and writes it, so no caller ever
// blocks on a socket (a stuck socket holds that batch and a full queue
// behind it: up to about twice the bound). NORMAL
// events beyond the bound are dropped; anything else, or dropping for
// longer than Config.SlowConsumerTimeout, closes the slow socket with a
// reconnect hint (the client resumes its HIGH events). A close lets the
// frames queued before it out: on epoll write(2) has put them in the
// kernel; a portable writer gets up to a second to finish them.
// The lock order is written in registry.go: every lock is a leaf.
package gateway
