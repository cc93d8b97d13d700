package feasibility

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
)

// The scheduler's reason strings, verbatim, so that summaries read like the
// FailedScheduling events users already know.
const (
	reasonNodeName             = "node(s) didn't match the requested node name"
	reasonUnschedulable        = "node(s) were unschedulable"
	reasonTaints               = "node(s) had untolerated taint(s)"
	reasonNodeAffinity         = "node(s) didn't match Pod's node affinity/selector"
	reasonNodePorts            = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods          = "Too many pods"
	reasonRWOPConflict         = "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already in-use by another pod"
	reasonVolumeNodeConflict   = "node(s) didn't match PersistentVolume's node affinity"
	reasonVolumeBindConflict   = "node(s) didn't find available persistent volumes to bind"
	reasonVolumeZoneConflict   = "node(s) had no available volume zone"
	reasonSpreadNotMatch       = "node(s) didn't match pod topology spread constraints"
	reasonSpreadMissingLabel   = reasonSpreadNotMatch + " (missing required label)"
	reasonAffinityNotMatch     = "node(s) didn't match pod affinity rules"
	reasonAntiAffinityNotMatch = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules"
	// reasonNodeAffinityPrefilter is what the scheduler says of nodes left
	// out by NodeAffinity's PreFilter, when matchFields name nodes.
	reasonNodeAffinityPrefilter = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
)

// nodeFailure is why one node cannot take the pod. A resolvable failure
// could go away without changing the workload or the cluster's
// configuration (other pods finishing, preemption); an unresolvable one
// cannot, mirroring the scheduler's Unschedulable vs
// UnschedulableAndUnresolvable.
type nodeFailure struct {
	code       Code
	reason     string
	resolvable bool
	// more holds further reasons from the same plugin: NodeResourcesFit
	// reports every insufficient resource, not just the first.
	more []nodeFailure
	// insufficient carries the numbers behind a resource failure (the
	// port, for a port conflict); its name is empty for other failures.
	insufficient insufficientResource
}

type insufficientResource struct {
	name      v1.ResourceName
	requested int64
	used      int64
	capacity  int64
}

// Failures that carry nothing of the node they happened on are shared: one
// value of each serves every node and every check, which is sound because
// nothing changes a failure once a filter has returned it.
var (
	failNodeAffinityPrefilter = &nodeFailure{code: CodeNodeAffinityMismatch, reason: reasonNodeAffinityPrefilter}
	failNodeName              = &nodeFailure{code: CodeNodeNameMismatch, reason: reasonNodeName}
	failUnschedulable         = &nodeFailure{code: CodeNodeUnschedulable, reason: reasonUnschedulable}
	failTaints                = &nodeFailure{code: CodeUntoleratedTaint, reason: reasonTaints}
	failNodeAffinity          = &nodeFailure{code: CodeNodeAffinityMismatch, reason: reasonNodeAffinity}
	failPodAffinity           = &nodeFailure{code: CodePodAffinity, reason: reasonAffinityNotMatch}
	failPodAntiAffinity       = &nodeFailure{code: CodePodAntiAffinity, reason: reasonAntiAffinityNotMatch, resolvable: true}
	failExistingAntiAffinity  = &nodeFailure{code: CodeExistingPodAntiAffnity, reason: reasonExistingAntiAffinity, resolvable: true}
	failSpreadMissingLabel    = &nodeFailure{code: CodeTopologyLabelMissing, reason: reasonSpreadMissingLabel}
	failSpread                = &nodeFailure{code: CodeTopologySpread, reason: reasonSpreadNotMatch, resolvable: true}
	failRWOPConflict          = &nodeFailure{code: CodeReadWriteOncePodInUse, reason: reasonRWOPConflict, resolvable: true}
	failVolumeNodeAffinity    = &nodeFailure{code: CodeVolumeNodeAffinity, reason: reasonVolumeNodeConflict}
	failVolumeBind            = &nodeFailure{code: CodeVolumeBindConflict, reason: reasonVolumeBindConflict}
	failVolumeZone            = &nodeFailure{code: CodeVolumeZoneConflict, reason: reasonVolumeZoneConflict}
	// failFeasibility stands for a port or resource failure when the caller
	// only asks whether the node fails (modeFeasible): it spares building
	// one with its numbers.
	failFeasibility = &nodeFailure{code: CodeInsufficientResource, reason: "node(s) failed a filter"}
)

// filterMode says how much of a node's failure the caller needs.
type filterMode int

const (
	// modeFeasible: only whether the node fails. The failure returned may
	// be failFeasibility, which names no reason.
	modeFeasible filterMode = iota
	// modeFirst: the first failure, with its numbers, which is what the
	// scheduler's histogram counts.
	modeFirst
	// modeClassify: the first failure, and also whether any filter fails
	// the node unresolvably, so filters keep running past resolvable
	// failures.
	modeClassify
)

// unresolvable reports whether any part of the failure is unresolvable.
func (f *nodeFailure) unresolvable() bool {
	if !f.resolvable {
		return true
	}
	for i := range f.more {
		if !f.more[i].resolvable {
			return true
		}
	}
	return false
}

// placement is what simulated replicas have added to a node during a check.
type placement struct {
	requests resources
	pods     int64
	ports    hostPortSet
}

// checkState is the mutable state of one check: the snapshot is shared and
// read-only, so simulated placements live here.
type checkState struct {
	s        *Snapshot
	c        *candidate
	placed   map[*nodeInfo]*placement
	affinity *affinityState
	spread   *spreadState
	// memo holds per node class what this check has worked out once for
	// all its members (classmemo.go).
	memo classMemo
	// dims are the resources the candidate asks for (classes.go), in
	// dimsBuf unless the pod asks for scalars too.
	dims    []classDim
	dimsBuf [4]classDim
	// statics caches the static filters' verdict per node class, when the
	// candidate's static filters cannot tell a class's nodes apart.
	statics       classStatics
	staticByClass bool
}

func newCheckState(s *Snapshot, c *candidate) *checkState {
	cs := &checkState{s: s, c: c, affinity: c.newAffinityState(s), spread: c.newSpreadState(s),
		staticByClass: !c.kubeletAdmits && !c.nodeAffinityReadsHostOrFields()}
	// Kubelet admission runs no topology filter at all.
	cs.memo.topologyByClass = !classesOff && !c.kubeletAdmits && !cs.readsHostname()
	return cs
}

// staticFailure is the candidate's static filters on ni, from the class
// cache when it applies.
func (cs *checkState) staticFailure(ni *nodeInfo) *nodeFailure {
	if cs.staticByClass && ni.class != nil {
		return cs.staticFor(&cs.statics, ni.class)
	}
	return cs.c.staticFailure(ni.node)
}

// filterNode runs the scheduler's filters on one node in the scheduler's
// order and returns the first failure, or nil when the pod fits. For a pod
// that names its node (c.kubeletAdmits) it runs what kubelet admission
// checks instead: node name, affinity, ports, resources and NoExecute taints. With
// modeClassify, it keeps going past resolvable failures to find an
// unresolvable one, so that a node is only called resolvable when nothing
// permanent blocks it; unresolvable says whether it found one.
func (cs *checkState) filterNode(ni *nodeInfo, mode filterMode) (first *nodeFailure, unresolvable bool) {
	all := mode == modeClassify
	note := func(f *nodeFailure) bool {
		if f == nil {
			return false
		}
		if first == nil {
			first = f
		}
		if f.unresolvable() {
			unresolvable = true
		}
		// Stop at the first failure, or, when classifying, at the first
		// unresolvable one.
		return !all || unresolvable
	}
	c, n := cs.c, ni.node
	if c.nodeNames != nil && !c.kubeletAdmits {
		if _, ok := c.nodeNames[n.Name]; !ok {
			if note(failNodeAffinityPrefilter) {
				return
			}
		}
	}
	if c.pod.Spec.NodeName != "" && c.pod.Spec.NodeName != n.Name {
		if note(failNodeName) {
			return
		}
	}
	if note(cs.staticFailure(ni)) {
		return
	}
	if note(cs.filterPorts(ni, mode)) {
		return
	}
	if note(cs.filterResources(ni, mode)) {
		return
	}
	if note(c.volumes.filter(cs.s, n)) {
		return
	}
	if c.kubeletAdmits {
		// Kubelet admission has no topology spread or inter-pod affinity.
		return
	}
	if note(cs.spreadFailure(ni)) {
		return
	}
	note(cs.affinityFailure(ni))
	return
}

func tolerates(tolerations []v1.Toleration, taint *v1.Taint) bool {
	return corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, taint, false)
}

// untoleratedTaint returns the first NoSchedule or NoExecute taint of n
// that the candidate does not tolerate, as the scheduler's
// FindMatchingUntoleratedTaint does, without its copies. PreferNoSchedule
// only scores. A pod that names its node is judged by kubelet admission,
// which only refuses untolerated NoExecute taints. The taint is the node's
// own, in the snapshot: read it, never change it.
func (c *candidate) untoleratedTaint(n *v1.Node) *v1.Taint {
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect != v1.TaintEffectNoExecute && (t.Effect != v1.TaintEffectNoSchedule || c.kubeletAdmits) {
			continue
		}
		if !tolerates(c.pod.Spec.Tolerations, t) {
			return t
		}
	}
	return nil
}

func (cs *checkState) filterPorts(ni *nodeInfo, mode filterMode) *nodeFailure {
	if len(cs.c.ports) == 0 {
		return nil
	}
	p, conflict := ni.ports.conflicts(cs.c.ports)
	if !conflict {
		if pl := cs.placed[ni]; pl != nil {
			p, conflict = pl.ports.conflicts(cs.c.ports)
		}
	}
	if !conflict {
		return nil
	}
	if mode == modeFeasible {
		return failFeasibility
	}
	return &nodeFailure{code: CodeHostPortConflict, reason: reasonNodePorts, resolvable: true,
		insufficient: insufficientResource{name: v1.ResourceName(p.String())}}
}

// filterResources mirrors NodeResourcesFit: the pod count, then cpu,
// memory, ephemeral storage and scalar resources, each against allocatable
// minus what bound pods request. A request larger than the node's whole
// allocatable is unresolvable.
func (cs *checkState) filterResources(ni *nodeInfo, mode filterMode) *nodeFailure {
	req := &cs.c.requests
	used := ni.requested
	pods := ni.podCount
	if pl := cs.placed[ni]; pl != nil {
		used = addResources(used, pl.requests)
		pods += pl.pods
	}
	if mode == modeFeasible {
		if !resourcesFit(req, &used, pods, ni) {
			return failFeasibility
		}
		return nil
	}
	// The failures, their numbers included, share one array: a node that
	// lacks one resource, the usual case, costs one allocation.
	var fails []nodeFailure
	if pods+1 > ni.allowedPods {
		fails = append(fails, nodeFailure{code: CodeTooManyPods, reason: reasonTooManyPods, resolvable: ni.allowedPods > 0,
			insufficient: insufficientResource{name: v1.ResourcePods, requested: 1, used: pods, capacity: ni.allowedPods}})
	}
	alloc := &ni.allocatable
	check := func(name v1.ResourceName, code Code, want, have, cap int64) {
		if want > 0 && want > cap-have {
			fails = append(fails, nodeFailure{code: code, reason: insufficientReason(name), resolvable: want <= cap,
				insufficient: insufficientResource{name: name, requested: want, used: have, capacity: cap}})
		}
	}
	check(v1.ResourceCPU, CodeInsufficientCPU, req.MilliCPU, used.MilliCPU, alloc.MilliCPU)
	check(v1.ResourceMemory, CodeInsufficientMemory, req.Memory, used.Memory, alloc.Memory)
	check(v1.ResourceEphemeralStorage, CodeInsufficientEphemeral, req.Ephemeral, used.Ephemeral, alloc.Ephemeral)
	for _, name := range req.scalarNames() {
		check(name, CodeInsufficientResource, req.Scalar[name], used.Scalar[name], alloc.Scalar[name])
	}
	if len(fails) == 0 {
		return nil
	}
	fails[0].more = fails[1:]
	return &fails[0]
}

// resourcesFit is filterResources' verdict without its failures: whether
// a node with used and pods taken has room for req.
func resourcesFit(req, used *resources, pods int64, ni *nodeInfo) bool {
	if pods+1 > ni.allowedPods {
		return false
	}
	short := func(want, have, cap int64) bool { return want > 0 && want > cap-have }
	alloc := &ni.allocatable
	if short(req.MilliCPU, used.MilliCPU, alloc.MilliCPU) || short(req.Memory, used.Memory, alloc.Memory) ||
		short(req.Ephemeral, used.Ephemeral, alloc.Ephemeral) {
		return false
	}
	for name, want := range req.Scalar {
		if short(want, used.Scalar[name], alloc.Scalar[name]) {
			return false
		}
	}
	return true
}

// insufficientReason is NodeResourcesFit's reason for a resource a node
// has too little of, "Insufficient cpu".
func insufficientReason(name v1.ResourceName) string {
	switch name {
	case v1.ResourceCPU:
		return "Insufficient cpu"
	case v1.ResourceMemory:
		return "Insufficient memory"
	case v1.ResourceEphemeralStorage:
		return "Insufficient ephemeral-storage"
	}
	return "Insufficient " + string(name)
}

func addResources(a, b resources) resources {
	out := a
	out.Scalar = nil
	for k, v := range a.Scalar {
		if out.Scalar == nil {
			out.Scalar = map[v1.ResourceName]int64{}
		}
		out.Scalar[k] = v
	}
	out.add(b, 1)
	return out
}

// place records a simulated replica on ni.
func (cs *checkState) place(ni *nodeInfo) {
	if cs.placed == nil {
		cs.placed = map[*nodeInfo]*placement{}
	}
	pl := cs.placed[ni]
	if pl == nil {
		pl = &placement{}
		cs.placed[ni] = pl
	}
	pl.requests.add(cs.c.requests, 1)
	pl.pods++
	pl.ports.add(cs.c.ports)
	if len(cs.c.volumes.rwop) > 0 {
		cs.c.volumes.rwopInUse = true
	}
	cs.affinity.place(cs.s, cs.c, ni.node)
	cs.spread.place(cs.c, ni.node)
	cs.memo.placed()
}
