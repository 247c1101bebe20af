// Package callback tells an app's backend what happens in its rooms:
// joins, leaves, messages, deletes, groups created, closed and deleted,
// users online and offline (docs/serverapi.md lists them with their JSON).
//
// Routers and gateways publish each event (Publisher) into the JetStream
// stream LIVEIM_CALLBACKS, one subject per group or user, so events of a
// group stay in order; publishing is asynchronous and never waits for the
// app. Every router runs a Dispatcher. For each app with a callback URL
// one dispatcher at a time holds the app's lease (a key in a KV bucket
// with a TTL; another takes over when the holder dies) and reads the app's
// events in stream order with a consumer of its own, from the one after the
// app's cursor (another KV bucket). It POSTs them in batches to the app's
// URL, signed with the app key like server API requests. A batch the app
// does not answer with 2xx is retried with backoff, holding back later
// events; once taken, the cursor moves past it and the batch leaves the
// stream. So events arrive at least once and in order, also across a
// dispatcher's death, and none is lost while the stream keeps it
// (Config.MaxAge).
//
//	pub := callback.NewPublisher(nc, "router", log, reg)
//	pub.Publish(app, callback.Event{Type: callback.GroupJoin, ...})
//	d := callback.NewDispatcher(cfg, js, store, log, reg)
//	err := d.Run(ctx)
//
// Concurrency: a Publisher is safe for concurrent use. A Dispatcher runs
// one goroutine per app it delivers for, none per event.
package callback
