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
// Concurrency: group requests are spread over Config.Workers workers by a
// hash of (app, group), and a group's worker is the only owner of its
// state (worker.go): its requests, timers (presence, memberchange),
// flushes and partition hand-overs all run as jobs on that one goroutine,
// in arrival order, which is the group's seqnum order, so group state has
// no lock and none is held across I/O. Work that would make the worker
// wait without needing the state runs off it and comes back as a job: an
// app's audit hook, history queries, resume reads, and a message's append
// to the store (sends.go: the worker finishes a group's sends in seqnum
// order as they are stored). The worker publishes a group's HIGH
// messages too, and a goroutine per group with HIGH messages unsettled
// (high.go) reads the stream's answers in order and puts right what the
// stream took out of order or not at all. Partition consumers
// never wait for a worker (a per-worker inbox), so a busy router keeps
// its partitions. Group writes are compare-and-set, so a router holding a
// stale copy cannot overwrite a newer one. docs/architecture.md describes
// the ownership design.
//
// Locks (every one a leaf: no code holds two at once):
//
//	Router.qmu        closing the workers' job queues (read-held to queue)
//	worker.inMu       a worker's inbox of requests
//	partitions.mu     the partitions consumed and their pins
//	gatewayTracker.mu gateways' last heartbeats
//	appCache.mu       cached app records
//	nonces.mu         tokens bound recently
//	highChains.mu     each group's HIGH messages not settled in the stream
package router
