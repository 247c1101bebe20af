// Package router is liveim's worker pool on NATS: it owns group state,
// permission and mute checks, assigns each group message its seqnum, writes
// history to storage and publishes events on the group subjects.
//
// Gateways publish a RouterRequest (the client's frame plus the
// authenticated Caller) on liveim.rpc.<app>.<group|_>; every router
// subscribes to liveim.rpc.> in the queue group liveim-router and answers
// with a Reply on the NATS reply subject.
//
//	r, err := router.New(router.Config{}, nc, store, logger)
//	err = r.Run(ctx) // until ctx ends
//
// Concurrency: requests are spread over Config.Workers goroutines by a hash
// of their subject, so the requests of one group are handled one at a time
// and in arrival order; that order is the group's seqnum order. Group state
// is cached in memory (groups.go) behind a mutex per group.
//
// This release assumes one router process per group at a time (liveim
// serve runs exactly one); sequencing with several routers is described in
// docs/architecture.md as future work.
package router
