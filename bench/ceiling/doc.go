// Package ceiling measures the limits liveim's fan-out figures should be
// read against, on the same machine and with the same load generator
// design as `liveim bench --scenario fanout`:
//
//   - nats-fanout: a bare nats-server (in a child process, so its CPU is
//     read apart from the load generator's) delivering each message to M
//     core-NATS connections, each with one subscription on one subject.
//     The subscribers speak the raw NATS protocol on plain sockets read by
//     epoll loops, not nats.go, so a subscriber costs no goroutine. One
//     nats.go connection publishes Rate messages a second.
//   - ws-broadcast: a minimal gobwas/ws server that, Rate times a second,
//     writes one prebuilt binary frame to each of its M sockets with
//     unix.Write: no NATS, no protobuf, no queue unless a socket is full.
//     This is the lower bound of the cost of writing one frame to one
//     socket.
//   - ws-echo: the same server echoing frames; Members clients each send a
//     small masked frame and wait for its echo, in a loop.
//
// Every run reports deliveries (round trips for ws-echo) per second, the
// server processes' CPU-seconds from /proc, deliveries per server
// CPU-second and the p50/p99/p99.9 latency from send to receipt, on the
// latency histogram `liveim bench` uses, so the figures compare one to
// one.
//
// Servers and clients run in child processes: the same binary re-executed
// (Config.WorkerCommand, `liveim ceiling-worker` by default), told its
// role as one JSON line on stdin (see RunWorker). These machines cap a
// process at 20,000 open files, so clients are spread over workers of at
// most PerWorker sockets and members over ceil(M/19000) servers (a NATS
// cluster when nats-fanout needs more than one), and clients dial from
// several loopback source addresses so one address's port range does not
// bound them.
//
// Linux only, like `liveim bench`: the servers and clients are epoll loops
// (poller_linux.go) and CPU time comes from /proc. Elsewhere the package
// builds, and Run and RunWorker return an error saying so.
package ceiling
