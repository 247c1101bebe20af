// Package check tests liveim's deploy artefacts: the Helm chart in
// helm/liveim, the top-level docker-compose.yml with deploy/prometheus.yml
// and deploy/nats.conf, and deploy/Dockerfile. It is its own Go module so that
// its Kubernetes and Compose dependencies stay out of liveim's go.mod.
//
// The tests need nothing but Go: they install Helm (pinned, into
// <repo>/.bin) with `go install`, build the liveim binary, then
//
//   - lint the chart (also --strict) and render it with its default
//     values, with every optional feature on, on the embedded store and
//     without NATS credentials;
//   - decode every rendered object strictly into its k8s.io/api type, so a
//     misspelled field fails, and check what the deployment relies on:
//     probes, the preStop drain, non-root, autoscaling and disruption
//     budgets that select the right pods, topology spread, /metrics
//     scraped on the internal listeners and never through the public
//     gateway Service, each role's NATS password mounted as a file of its
//     own (no other role's), no secret in an argument or a literal
//     variable;
//   - load the Compose file through the Compose specification's schema and
//     check the cluster it describes (3 clustered JetStream servers, Scylla,
//     Jaeger, Prometheus scraping every gateway and router on its internal
//     listener, ports on loopback only, every liveim service's healthcheck
//     `/liveim health` on its own readiness URL, gateways started once the
//     routers are healthy, the demo once both are), and its NATS authentication:
//     deploy/nats.conf against liveim's natsserver.AuthorizationConf (built
//     from the repository with -overlay), its passwords from Compose
//     secrets, each router and gateway with its own user's secret only;
//   - check that every LIVEIM_* variable the chart or the Compose file sets
//     names a real flag of the target it is given to (`liveim gateway -h`,
//     `liveim router -h`), with a value that flag accepts;
//   - check deploy/Dockerfile: stages, non-root user, OCI labels, and that
//     its -ldflags stamp VERSION and COMMIT into what `liveim version`
//     prints (liveim is built with them).
//
// Run it from this directory:
//
//	go test -count=1 ./...
package check
