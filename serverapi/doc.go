// Package serverapi is liveim's server API: HTTP + JSON under /api/v1 for
// an app's own backend (rooms, messages as the system, kicks, mutes,
// tokens; each request signed with the app key) and for the operator (app
// management, with the admin key). docs/serverapi.md is its guide,
// openapi.json (served at /api/v1/openapi.json) its contract.
//
// It runs inside routers, on their internal listener (--http-addr): it
// holds no state of its own (replayed nonces are refused through a
// JetStream key-value bucket every instance shares), reads apps and lists
// from the store, and sends everything that changes a group to the
// group's owner through the RPC stream, as gateways do, marked with the
// cluster's server MAC so routers grant it server rights.
//
//	api, err := serverapi.New(cfg, nc, store, rt, log)
//	ops.Handle(serverapi.Prefix+"/", api.Handler())
//	err = api.Run(ctx) // takes requests once rt is ready
//
// Concurrency: every request runs on its net/http goroutine; the only
// shared state is the table of router requests in flight (rpc.go), under
// one leaf lock.
package serverapi
