package feasibility

import (
	"maps"
	"slices"
	"sort"
	"unique"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// nodeInfo is a node plus the aggregates of the pods bound to it.
type nodeInfo struct {
	name        string
	node        *v1.Node
	allocatable resources
	allowedPods int64

	requested resources
	podCount  int64
	ports     hostPortSet
	// class is the node's class (classes.go); nil while the slot has no node.
	class *nodeClass
	// slot is the slot's number in Snapshot.slots, which per-node counts
	// in the pod index are indexed by.
	slot int32
}

func (s *Snapshot) upsertNode(n *v1.Node) {
	ni := s.nodeSlot(n.Name)
	if ni.node == nil {
		i := sort.Search(len(s.nodeOrder), func(i int) bool { return s.nodeOrder[i].name >= n.Name })
		s.nodeOrder = append(s.nodeOrder, nil)
		copy(s.nodeOrder[i+1:], s.nodeOrder[i:])
		s.nodeOrder[i] = ni
	}
	// Most updates are status heartbeats: the labels stay filed as they are.
	relabel := ni.node == nil || !maps.Equal(ni.node.Labels, n.Labels)
	if ni.node != nil {
		if relabel {
			s.removeNodeLabels(ni)
		}
		s.unclassify(ni)
	}
	ni.node = n
	if relabel {
		s.addNodeLabels(ni)
	}
	ni.allocatable = resourcesFromList(n.Status.Allocatable)
	ni.allowedPods = 0
	if q, ok := n.Status.Allocatable[v1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	}
	s.classify(ni)
}

// addNodeLabels files ni under each of its node's labels, and
// removeNodeLabels takes it out again.
func (s *Snapshot) addNodeLabels(ni *nodeInfo) {
	for k, v := range ni.node.Labels {
		vals := s.nodeLabelValues[k]
		if vals == nil {
			vals = map[string][]int32{}
			s.nodeLabelValues[k] = vals
		}
		vals[v] = append(vals[v], ni.slot)
	}
}

func (s *Snapshot) removeNodeLabels(ni *nodeInfo) {
	for k, v := range ni.node.Labels {
		vals := s.nodeLabelValues[k]
		members := vals[v]
		if i := slices.Index(members, ni.slot); i >= 0 {
			last := len(members) - 1
			members[i] = members[last]
			members = members[:last]
		}
		if len(members) > 0 {
			vals[v] = members
			continue
		}
		delete(vals, v)
		if len(vals) == 0 {
			delete(s.nodeLabelValues, k)
		}
	}
}

// nodeSlot returns the aggregate slot for a node name, creating it empty.
// A slot without a node holds pods bound to a node the snapshot has not
// seen (yet, or any more): they count again if the node appears.
func (s *Snapshot) nodeSlot(name string) *nodeInfo {
	ni, ok := s.nodes[name]
	if !ok {
		ni = &nodeInfo{name: name}
		if n := len(s.freeSlots); n > 0 {
			ni.slot = s.freeSlots[n-1]
			s.freeSlots = s.freeSlots[:n-1]
			s.slots[ni.slot] = ni
		} else {
			ni.slot = int32(len(s.slots))
			s.slots = append(s.slots, ni)
		}
		s.nodes[name] = ni
	}
	return ni
}

// dropSlot forgets a slot that holds neither a node nor pods. Its number
// is reused: every per-node count for it is zero.
func (s *Snapshot) dropSlot(ni *nodeInfo) {
	delete(s.nodes, ni.name)
	s.slots[ni.slot] = nil
	s.freeSlots = append(s.freeSlots, ni.slot)
}

// DeleteNode removes a node. Its pods stay in the snapshot, as in the
// scheduler's cache, and count again if a node of that name comes back.
func (s *Snapshot) DeleteNode(name string) {
	ni, ok := s.nodes[name]
	if !ok || ni.node == nil {
		return
	}
	s.removeNodeLabels(ni)
	s.unclassify(ni)
	ni.node = nil
	if ni.podCount == 0 {
		s.dropSlot(ni)
	}
	i := sort.Search(len(s.nodeOrder), func(i int) bool { return s.nodeOrder[i].name >= name })
	if i < len(s.nodeOrder) && s.nodeOrder[i].name == name {
		s.nodeOrder = append(s.nodeOrder[:i:i], s.nodeOrder[i+1:]...)
	}
}

// podKey identifies a pod in a snapshot.
type podKey struct {
	ns   unique.Handle[string]
	name string
}

// upsertPod records a pod. Only pods bound to a node and not yet terminal
// count, as in the scheduler, whose informer skips Succeeded and Failed pods.
func (s *Snapshot) upsertPod(pi *podInfo) {
	s.deletePod(podKey{pi.ns, pi.name})
	if pi.node == (unique.Handle[string]{}) || pi.terminal {
		return
	}
	s.pods[podKey{pi.ns, pi.name}] = pi
	ni := s.nodeSlot(pi.nodeName())
	s.podIndex.add(pi, ni.slot)
	if len(pi.antiAffinity()) > 0 {
		s.antiIndex.add(pi)
	}
	for _, c := range pi.claims() {
		s.claimUsers[key(pi.namespace(), c)]++
	}
	ni.addPod(pi)
}

// ReplacePods makes the snapshot's pods exactly pods, as after a fresh
// LIST, and calls gone (when not nil) for each pod it drops.
func (s *Snapshot) ReplacePods(pods []*PodSummary, gone func(namespace, name string)) {
	keep := make(map[podKey]struct{}, len(pods))
	for _, p := range pods {
		keep[podKey{p.info.ns, p.info.name}] = struct{}{}
	}
	for k := range s.pods {
		if _, ok := keep[k]; !ok {
			s.deletePod(k)
			if gone != nil {
				gone(k.ns.Value(), k.name)
			}
		}
	}
	for _, p := range pods {
		s.upsertPod(&p.info)
	}
	s.known[KindPod] = true
}

// DeletePod removes a pod and releases what it held on its node.
func (s *Snapshot) DeletePod(namespace, name string) {
	s.deletePod(podKey{unique.Make(namespace), name})
}

func (s *Snapshot) deletePod(k podKey) {
	pi, ok := s.pods[k]
	if !ok {
		return
	}
	delete(s.pods, k)
	node := pi.nodeName()
	ni := s.nodes[node] // the pod's slot: it exists while the pod does
	s.podIndex.remove(pi, ni.slot)
	if len(pi.antiAffinity()) > 0 {
		s.antiIndex.remove(pi)
	}
	for _, c := range pi.claims() {
		ck := key(pi.namespace(), c)
		if s.claimUsers[ck]--; s.claimUsers[ck] <= 0 {
			delete(s.claimUsers, ck)
		}
	}
	ni.removePod(pi)
	if ni.node == nil && ni.podCount == 0 {
		s.dropSlot(ni)
	}
}

func (ni *nodeInfo) addPod(p *podInfo) {
	if ni.class != nil {
		ni.class.remove(ni)
	}
	ni.podCount++
	ni.requested.add(p.shape.requests, 1)
	ni.ports.add(p.ports())
	if ni.class != nil {
		ni.class.insert(ni)
	}
}

func (ni *nodeInfo) removePod(p *podInfo) {
	if ni.class != nil {
		ni.class.remove(ni)
	}
	ni.podCount--
	ni.requested.add(p.shape.requests, -1)
	ni.ports.remove(p.ports())
	if ni.class != nil {
		ni.class.insert(ni)
	}
}

// existingPodRequests computes a bound pod's requests the way the
// scheduler's NodeInfo does: from spec and, for resized pods, status, with
// pod-level resources honoured (PodLevelResources is on by default in v1.37).
func existingPodRequests(p *v1.Pod) resources {
	return resourcesFromList(resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{
		UseStatusResources: true,
	}))
}
