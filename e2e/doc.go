// Package e2e holds end-to-end tests: real WebSockets through gateways to
// routers over an in-process nats-server, with the embedded store.
package e2e
