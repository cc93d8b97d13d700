// Package webhook is fitgate's validating admission webhook: it judges, at
// admission time, whether a Pod or a pod-template workload can be scheduled,
// with the pure engine in package feasibility, and warns or denies according
// to a per-namespace policy modelled on Pod Security Admission.
//
// The package is split by concern, one file each:
//
//   - policy.go resolves a namespace's mode from its fitgate.dev/mode label,
//     the cluster defaults and the exempt namespaces.
//   - handler.go is the controller-runtime admission.Handler: it decodes the
//     request, works out what to judge (CREATE, or an UPDATE that adds
//     replicas or changes the pod template), runs the check within a time
//     budget, confirms missing references with the API server, and decides.
//   - messages.go words denials and warnings.
//   - cache.go keeps the feasibility.Snapshot current from lean informers,
//     and podstore.go from a reflector for pods.
//   - live.go is the one-GET confirmation of a missing reference.
//   - metrics.go holds the Prometheus collectors.
//   - register.go builds (and, for local runs, installs) the
//     ValidatingWebhookConfiguration.
//   - server.go serves /validate over TLS with certificate hot reload, plus
//     /healthz, /readyz and /metrics, and shuts down gracefully.
//   - run.go wires all of it together for `fitgate serve`.
//
// # Modes
//
// A namespace's mode comes from its label fitgate.dev/mode:
//
//	off      nothing is judged
//	warn     every finding is a warning
//	enforce  permanent findings deny, transient findings warn
//	strict   permanent and transient findings deny
//
// Without the label the cluster default applies: warn for workloads and for
// pods made by a controller, enforce for bare Pods. Exempt namespaces
// (kube-system, kube-node-lease and fitgate's own by default) are never
// judged. An unknown label value is treated as if the label were absent and
// adds a warning saying so: a typo never fails closed.
//
// # What is judged
//
// CREATE of Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
// CronJobs and ReplicationControllers. An UPDATE of a replicated kind is
// judged only when it matters:
//
//   - The pod template is unchanged (compared semantically) and replicas
//     grew: only the additional replicas are judged, because the existing
//     ones already hold their resources in the cache.
//   - The pod template changed: every replica of the new template is judged.
//     The old pods still hold resources in the cache until the rolling
//     update replaces them, so capacity findings (transient) may be
//     pessimistic; on such an update they are only ever warnings, while
//     permanent findings follow the namespace mode.
//   - Otherwise (metadata, status, fewer replicas, a DaemonSet whose
//     template did not change) the update is allowed without a word.
//
// An UPDATE of a Pod is never judged: the scheduling-relevant fields of an
// existing pod are immutable (resizes go through the resize subresource,
// which is not intercepted). DELETE and subresources are not judged; in
// particular `kubectl scale` and the HorizontalPodAutoscaler go through the
// scale subresource, which carries no pod template, and are not judged.
//
// Pods and other objects whose controller (ownerReference with
// controller=true) is a kind fitgate judges, e.g. a ReplicaSet's pods or a
// Deployment's ReplicaSets, are checked but never denied: the owner was the
// place to warn.
//
// Dry-run requests are handled exactly like real ones; the handler has no
// side effects.
//
// # No false denials
//
//   - Until every informer has synced, requests are allowed with a warning
//     that says the cache is not ready.
//   - If the check does not finish within its budget (below the webhook's
//     timeoutSeconds), the request is allowed with a warning.
//   - Before a missing reference (Namespace, Secret, ConfigMap,
//     PersistentVolumeClaim, StorageClass, ServiceAccount, PriorityClass,
//     RuntimeClass) counts, it is confirmed with one live GET of its
//     metadata (at most four per request); if the object exists after all,
//     the finding is dropped as a stale cache, together with what the engine
//     derived from it (a claim "unbound" because its class was unknown, no
//     replica fitting because admission would have refused the pods).
//   - A confirmed-missing reference only ever warns for workloads: `kubectl
//     apply -f dir/` sends files in name order and a chart may create the
//     object right after, and the controller and kubelet wait for it. For a
//     bare Pod a missing Secret, ConfigMap, claim or class is transient (the
//     kubelet or the scheduler waits for it), while a missing
//     ServiceAccount, PriorityClass or RuntimeClass keeps the engine's
//     severity: the API server's own admission would refuse the pod anyway.
//   - A reference that could not be confirmed (the GET failed) never denies.
//
// # Audit annotations
//
// Every judged request, allowed or not, carries audit annotations. The API
// server prefixes their keys with the webhook's name, so they appear as
// validate.fitgate.dev/verdict (fits, transient, permanent), .../reasons
// (comma-separated reason codes), .../replicas-fit ("3/5") and .../mode.
package webhook
