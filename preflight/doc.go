// Package preflight is `fitgate check` and `fitgate snapshot`: it judges the
// workloads in a set of manifests before anything is applied, with the same
// engine (package feasibility) and the same wording as the webhook.
//
// The steps, one file each:
//
//   - manifests.go reads manifests: files, directories (every *.yaml, *.yml
//     and *.json below them, in lexical order), and stdin ("-"), each a
//     multi-document YAML or JSON stream, `kind: List` expanded, with
//     feasibility.DecodeDocuments.
//   - state.go is the cluster state read from a state file; live.go lists
//     it read-only from the cluster and writes it for `fitgate snapshot`;
//     kinds.go maps objects to the snapshot's kinds.
//   - apply.go adds the manifests' own cluster-state objects (a Namespace,
//     a Secret, a claim, a quota, ...) to the state, as `kubectl apply`
//     would create them, so that a chart which brings its own Secret is not
//     told the Secret is missing.
//   - result.go judges each workload, and holds the JSON schema and the
//     exit codes; text.go words the results for people.
//   - check.go and cli.go are the two commands and their flags, run
//     in-process by the tests; cmd/fitgate only registers them.
//
// # Which kinds the state knows
//
// The engine skips a reference check for a kind the snapshot does not
// "know": "we were not told" must never read as "it does not exist". A state
// file knows the kinds it contains; when it contains Nodes it is taken to be
// the output of the documented command
//
//	kubectl get nodes,pods,namespaces,pvc,pv,storageclasses,csinodes,resourcequotas,limitranges,priorityclasses,runtimeclasses,serviceaccounts -A -o yaml
//
// which prints every object of those kinds, so all twelve are known even
// when the file has none of one (no PriorityClass means none exists).
// Secrets and ConfigMaps are optional: they are known only when the file
// has at least one. A state file without Nodes cannot judge anything and is
// an input error. Objects every cluster has because the control plane makes
// them (the default, kube-system, kube-public and kube-node-lease
// namespaces, each namespace's "default" ServiceAccount and, when
// ConfigMaps are known, its kube-root-ca.crt, and the two system
// PriorityClasses) are implied, so a hand-written state file need not list
// them. Live state knows every kind it could list; a kind it was not allowed
// to list is unknown, with a warning.
//
// # What is judged, and what is not
//
// Each workload is judged alone against the cluster plus the manifests'
// state objects: workloads in the same manifests do not consume each
// other's capacity or quota, so several that each fit may not all fit
// together. (The engine does not say which node each replica went to, so
// placing them for the next workload would mean guessing.) Manifest
// objects never replace a cluster object of the same name: the cluster's
// wins, as it would for a create. Objects that are neither workloads nor
// cluster state (Services, Ingresses, custom resources) are skipped with a
// note on stderr.
package preflight
