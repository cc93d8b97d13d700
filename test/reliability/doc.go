// Package reliability is fitgate's fault-injection suite (issue #8): a
// control plane of its own (TestMain), so that restarting its API server
// or etcd never disturbs another package's tests, and fitgate run the way
// a cluster runs it: bin/fitgate serve as a separate process, stopped with
// SIGTERM and started again, as a ServiceAccount with the chart's RBAC,
// registered in URL mode on 127.0.0.1 with failurePolicy Ignore.
//
// Each test prints the figures it measures (t.Logf, "figure:" lines);
// docs/reliability.md records them. Every loop is bounded in time.
package reliability
