package feasibility

import (
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
}

func newCandidate(s *Snapshot, pod *v1.Pod) *candidate {
	c := &candidate{
		pod:    pod,
		ns:     pod.Namespace,
		labels: pod.Labels,
		// The scheduler computes a pending pod's requests from its spec:
		// the larger of init containers and containers (restartable
		// sidecars included), plus overhead, or pod-level resources when set.
		requests:     resourcesFromList(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})),
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
	return c
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
