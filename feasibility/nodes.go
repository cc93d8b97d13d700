package feasibility

import (
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
}

func (s *Snapshot) upsertNode(n *v1.Node) {
	ni := s.nodeSlot(n.Name)
	if ni.node == nil {
		i := sort.Search(len(s.nodeOrder), func(i int) bool { return s.nodeOrder[i].name >= n.Name })
		s.nodeOrder = append(s.nodeOrder, nil)
		copy(s.nodeOrder[i+1:], s.nodeOrder[i:])
		s.nodeOrder[i] = ni
	}
	if ni.node != nil {
		s.countNodeLabels(ni.node.Labels, -1)
		s.unclassify(ni)
	}
	s.countNodeLabels(n.Labels, 1)
	ni.node = n
	ni.allocatable = resourcesFromList(n.Status.Allocatable)
	ni.allowedPods = 0
	if q, ok := n.Status.Allocatable[v1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	}
	s.classify(ni)
}

func (s *Snapshot) countNodeLabels(l map[string]string, delta int) {
	for k, v := range l {
		vals := s.nodeLabelValues[k]
		if vals == nil {
			vals = map[string]int{}
			s.nodeLabelValues[k] = vals
		}
		if vals[v] += delta; vals[v] <= 0 {
			delete(vals, v)
			if len(vals) == 0 {
				delete(s.nodeLabelValues, k)
			}
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
		s.nodes[name] = ni
	}
	return ni
}

// DeleteNode removes a node. Its pods stay in the snapshot, as in the
// scheduler's cache, and count again if a node of that name comes back.
func (s *Snapshot) DeleteNode(name string) {
	ni, ok := s.nodes[name]
	if !ok || ni.node == nil {
		return
	}
	s.countNodeLabels(ni.node.Labels, -1)
	s.unclassify(ni)
	ni.node = nil
	if ni.podCount == 0 {
		delete(s.nodes, name)
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
	s.podIndex.add(pi)
	if len(pi.antiAffinity()) > 0 {
		s.antiIndex.add(pi)
	}
	for _, c := range pi.claims() {
		s.claimUsers[key(pi.namespace(), c)]++
	}
	s.nodeSlot(pi.nodeName()).addPod(pi)
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
	s.podIndex.remove(pi)
	if len(pi.antiAffinity()) > 0 {
		s.antiIndex.remove(pi)
	}
	for _, c := range pi.claims() {
		ck := key(pi.namespace(), c)
		if s.claimUsers[ck]--; s.claimUsers[ck] <= 0 {
			delete(s.claimUsers, ck)
		}
	}
	node := pi.nodeName()
	if ni, ok := s.nodes[node]; ok {
		ni.removePod(pi)
		if ni.node == nil && ni.podCount == 0 {
			delete(s.nodes, node)
		}
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
