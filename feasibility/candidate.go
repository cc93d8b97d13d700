package feasibility

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// candidate is the pod being judged, with every per-pod fact computed once
// so that the per-node loop only compares.
type candidate struct {
	pod      *v1.Pod
	ns       string
	labels   map[string]string
	requests resources
	ports    []hostPort
	priority int32

	nodeAffinity nodeaffinity.RequiredNodeAffinity
	affinity     []affinityTerm
	antiAffinity []affinityTerm
	spread       []spreadConstraint
	volumes      *volumeNeeds
	// nodeNames, when not nil, are the only nodes NodeAffinity's PreFilter
	// lets through: required terms that each pin metadata.name.
	nodeNames map[string]struct{}
	// kubeletAdmits is set for a pod with spec.nodeName: the scheduler
	// never sees it (the apiserver stores it bound), and the named node's
	// kubelet admits or rejects it. Kubelet admission runs NodeName,
	// NodeAffinity, NodePorts and NodeResourcesFit, and refuses untolerated
	// NoExecute taints; it ignores cordons and NoSchedule taints.
	kubeletAdmits bool
}

func newCandidate(s *Snapshot, pod *v1.Pod) *candidate {
	c := &candidate{
		pod:          pod,
		ns:           pod.Namespace,
		labels:       pod.Labels,
		requests:     podRequests(pod),
		ports:        podHostPorts(&pod.Spec),
		nodeAffinity: nodeaffinity.GetRequiredNodeAffinity(pod),
		spread:       compileSpread(pod),
	}
	if pod.Spec.Priority != nil {
		c.priority = *pod.Spec.Priority
	}
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			c.affinity = compileTerms(pod.Namespace, pod.Labels, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		}
		if a.PodAntiAffinity != nil {
			c.antiAffinity = compileTerms(pod.Namespace, pod.Labels, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		}
	}
	c.volumes = newVolumeNeeds(s, pod)
	c.nodeNames = pinnedNodeNames(pod)
	c.kubeletAdmits = pod.Spec.NodeName != ""
	return c
}

// podRequests is what the scheduler counts a pending pod as requesting,
// computed from its spec: the larger of init containers and containers
// (restartable sidecars included), plus overhead, or pod-level resources
// when set (resourcehelper.PodRequests). A pod of one container with none
// of the rest requests just what that container does, which is read
// directly: PodRequests would build three maps to say the same.
func podRequests(pod *v1.Pod) resources {
	spec := &pod.Spec
	if len(spec.Containers) == 1 && len(spec.InitContainers) == 0 && spec.Overhead == nil && !resourcehelper.IsPodLevelRequestsSet(pod) {
		return resourcesFromList(spec.Containers[0].Resources.Requests)
	}
	return resourcesFromList(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}

// reasonNameTermsConflict is NodeAffinity's PreFilter message when every
// required term pins metadata.name and no name satisfies them.
const reasonNameTermsConflict = "pod affinity terms conflict"

// prefilterFailure fails the pod before any node is looked at, for what
// the candidate itself names.
func (c *candidate) prefilterFailure(s *Snapshot) *prefilterFailure {
	// A spec.nodeName naming a node the cluster does not have: no kubelet
	// will ever run the pod, and the pod garbage collector deletes pods
	// bound to nodes that do not exist.
	if name := c.pod.Spec.NodeName; name != "" && s.Knows(KindNode) {
		if ni, ok := s.nodes[name]; !ok || ni.node == nil {
			return &prefilterFailure{code: CodeNodeNameNotFound, message: fmt.Sprintf("node %q named by spec.nodeName does not exist", name)}
		}
	}
	// Name pins whose intersection is empty (a term ANDing metadata.name
	// In [a] with In [b]) match no node whatever the cluster holds.
	if c.nodeNames != nil && len(c.nodeNames) == 0 && !c.kubeletAdmits {
		return &prefilterFailure{code: CodeNodeAffinityMismatch, message: reasonNameTermsConflict}
	}
	return nil
}

// pinnedNodeNames mirrors NodeAffinity's PreFilter: when every required
// term names nodes through matchFields metadata.name In, only those nodes
// are considered at all.
func pinnedNodeNames(pod *v1.Pod) map[string]struct{} {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil
	}
	union := map[string]struct{}{}
	for _, t := range terms {
		var names map[string]struct{}
		for _, r := range t.MatchFields {
			if r.Key != "metadata.name" || r.Operator != v1.NodeSelectorOpIn {
				continue
			}
			next := map[string]struct{}{}
			for _, v := range r.Values {
				if _, ok := names[v]; names == nil || ok {
					next[v] = struct{}{}
				}
			}
			names = next
		}
		if names == nil {
			return nil // this term has no name pin, so every node is eligible
		}
		for n := range names {
			union[n] = struct{}{}
		}
	}
	return union
}
