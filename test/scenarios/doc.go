// Package scenarios holds fitgate's parity corpus: cluster states, workloads
// and expected verdicts, each checked against the real kube-scheduler and
// apiserver by the end-to-end replay in test/e2e, and against the engine by
// a unit test.
//
// A scenario is one YAML file under testdata/:
//
//	name: cpu-request-equals-free
//	description: a request exactly equal to the free cpu fits
//	truth: scheduler          # who decides: scheduler, admission or none
//	cluster: [ ...objects... ] # Nodes (status included), bound Pods, PVCs, quotas, ...
//	workload: { ...object... } # Pod, Deployment, ...
//	expect:
//	  verdict: fits            # fits | transient | permanent
//	  replicasFit: 1           # optional; defaults to all replicas for fits
//	  codes: [InsufficientCPU] # optional: reason codes that must appear
//	  summary: "0/1 nodes ..." # optional: the exact summary
//
// Objects without a namespace live in the scenario's namespace, "default"
// in the file. truth says what the replay compares with: "scheduler" (the
// pod is bound or reported unschedulable; for replicated kinds, how many
// replicas are bound), "admission" (the apiserver rejects the pod, or a
// ReplicaSet fails to create some), or "none" for findings only a kubelet
// could confirm (a missing Secret), which the replay skips with a reason.
package scenarios
