// Package check tests liveim's deploy artefacts: the Helm chart in
// helm/liveim, deploy/docker-compose.yml with deploy/prometheus.yml, and
// deploy/Dockerfile. It is its own Go module so that its Kubernetes and
// Compose dependencies stay out of liveim's go.mod.
//
// The tests need nothing but Go: they install Helm (pinned, into
// <repo>/.bin) with `go install`, build the liveim binary, then
//
//   - lint the chart (also --strict) and render it with its default
//     values, with every optional feature on, and on the embedded store;
//   - decode every rendered object strictly into its k8s.io/api type, so a
//     misspelled field fails, and check what the deployment relies on:
//     probes, the preStop drain, non-root, autoscaling and disruption
//     budgets that select the right pods, topology spread;
//   - load the Compose file through the Compose specification's schema and
//     check the cluster it describes (3 clustered JetStream servers, Scylla,
//     Jaeger, Prometheus scraping every gateway and router);
//   - check that every LIVEIM_* variable the chart or the Compose file sets
//     names a real flag of the target it is given to (`liveim gateway -h`,
//     `liveim router -h`), with a value that flag accepts.
//
// Run it from this directory:
//
//	go test -count=1 ./...
package check
