// Package bench is `liveim bench`: a load generator that measures a
// liveim server it starts itself (`liveim serve` plus extra `liveim
// gateway` processes on the same embedded NATS, as gateway pods scale) or
// a running one (--target, --pid).
//
// Clients live in worker processes (`liveim bench-worker`), at most
// PerWorker each, since these machines cap a process at 20,000 open files.
// A worker's clients are plain sockets with no goroutine while idle, so the
// load generator costs no more per connection than the server; workers
// dial from several loopback source addresses so one address's port range
// does not bound them. With extra gateway processes the clients connect to
// those only, so their figures are a gateway's alone; liveim serve then
// holds NATS and the router. Every server process is read from /proc (RSS,
// CPU) and its /metrics (Go heap).
//
// Scenarios:
//   - idle: N logged-in connections joined to rooms; memory per connection.
//   - connect: a login storm (login only); logins per second.
//   - fanout: one room, a sender at Rate, 1 in HighEvery HIGH; members are
//     read by one epoll loop per worker: send-to-receipt latency,
//     deliveries, HIGH lost and duplicated, NORMAL dropped.
//   - rooms: Rooms rooms of Connections/Rooms members; the members
//     themselves send Rate messages a second in all.
//   - c2c: user n sends to user n+1, Rate in all.
//
// The readers walk the protobuf wire format instead of decoding messages,
// so a worker reading a million deliveries a second stays cheaper than the
// gateway it measures. `liveim ceiling` (package ceiling) measures the
// machine's limits the figures are read against.
//
// Linux only: the readers are epoll loops (reader_linux.go) and the
// figures come from /proc. Elsewhere the package builds, and Run and
// RunWorker return an error saying so.
package bench
