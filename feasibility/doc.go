// Package feasibility decides whether a workload's pods can run on a cluster,
// and says why not in the kube-scheduler's own words.
//
// It is pure: Check takes a Snapshot of cluster state and a Workload and
// returns a Report, with no API calls. The per-node filters mirror the default
// kube-scheduler v1.37 filter plugins (NodeName, NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, the volume
// plugins, PodTopologySpread and InterPodAffinity), in that order. The
// cluster-wide checks cover what the scheduler never sees: ResourceQuota,
// LimitRange, and references to objects that must exist.
//
// A false "does not fit" blocks someone's deploy, so every check errs towards
// "fits" or "transient" when it cannot be sure.
package feasibility
