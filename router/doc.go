// Package router is liveim's worker pool on NATS: it owns group state,
// permission, mute and moderation checks, assigns each group message its
// seqnum, writes history to storage, publishes events on the group
// subjects, runs HIGH delivery through JetStream and tracks presence.
//
// Gateways publish group requests on liveim.rpc.<app>.<group>; the
// LIVEIM_RPC work-queue stream partitions them, and each partition is
// consumed by exactly one router (partitions.go: rendezvous placement over
// the live routers, JetStream pinned consumers as the fence). Requests
// that name no group arrive on liveim.any.<app> in a queue group. Replies
// go to the gateway's inbox.
//
//	r, err := router.New(router.Config{}, nc, store, logger)
//	err = r.Run(ctx) // until ctx ends; <-r.Ready() once serving
//
// Concurrency: group requests are spread over Config.Workers goroutines by
// a hash of (app, group), so a group's requests are handled one at a time
// in arrival order; that order is the group's seqnum order. Group state is
// cached per group behind its own mutex (groups.go) and written with
// compare-and-set, so a router holding a stale copy cannot overwrite a
// newer one. docs/architecture.md describes the ownership design.
package router
