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
// does not bound them. Server processes are read from /proc: RSS and CPU.
//
// Scenarios in this release: idle (N logged-in connections joined to
// rooms), connect (a login storm) and fanout (one room, a sender at a
// rate, members read by one epoll loop per worker: latency, deliveries,
// HIGH lost and duplicated, NORMAL dropped). rooms and c2c are issue 6's
// remaining work.
package bench
