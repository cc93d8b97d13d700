package feasibility

import (
	"sort"

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
	pods      []*podInfo
	ports     hostPortSet
}

// podInfo is what the engine keeps of an existing pod: only what filters
// read. Keeping it small is what lets the cache hold 150,000 pods.
type podInfo struct {
	namespace string
	name      string
	nodeName  string
	labels    map[string]string
	requests  resources
	ports     []hostPort
	priority  int32
	// terminating pods still hold resources but no longer count for
	// topology spread, as in the scheduler.
	terminating bool
	// antiAffinity holds this pod's required anti-affinity terms, which
	// other pods must respect (the symmetric half of InterPodAffinity).
	antiAffinity []affinityTerm
	// claims are the PVC names (in the pod's namespace) the pod mounts.
	claims []string
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
	}
	s.countNodeLabels(n.Labels, 1)
	ni.node = n
	ni.allocatable = resourcesFromList(n.Status.Allocatable)
	ni.allowedPods = 0
	if q, ok := n.Status.Allocatable[v1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	}
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
	ni.node = nil
	if len(ni.pods) == 0 {
		delete(s.nodes, name)
	}
	i := sort.Search(len(s.nodeOrder), func(i int) bool { return s.nodeOrder[i].name >= name })
	if i < len(s.nodeOrder) && s.nodeOrder[i].name == name {
		s.nodeOrder = append(s.nodeOrder[:i:i], s.nodeOrder[i+1:]...)
	}
}

// upsertPod records a pod. Only pods bound to a node and not yet terminal
// count, as in the scheduler, whose informer skips Succeeded and Failed pods.
func (s *Snapshot) upsertPod(p *v1.Pod) {
	k := key(p.Namespace, p.Name)
	s.DeletePod(p.Namespace, p.Name)
	if p.Spec.NodeName == "" || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
		return
	}
	pi := newPodInfo(p)
	s.pods[k] = pi
	s.podIndex.add(pi)
	if len(pi.antiAffinity) > 0 {
		s.antiIndex.add(pi)
	}
	for _, c := range pi.claims {
		s.claimUsers[key(pi.namespace, c)]++
	}
	s.nodeSlot(pi.nodeName).addPod(pi)
}

// DeletePod removes a pod and releases what it held on its node.
func (s *Snapshot) DeletePod(namespace, name string) {
	k := key(namespace, name)
	pi, ok := s.pods[k]
	if !ok {
		return
	}
	delete(s.pods, k)
	s.podIndex.remove(pi)
	if len(pi.antiAffinity) > 0 {
		s.antiIndex.remove(pi)
	}
	for _, c := range pi.claims {
		ck := key(pi.namespace, c)
		if s.claimUsers[ck]--; s.claimUsers[ck] <= 0 {
			delete(s.claimUsers, ck)
		}
	}
	if ni, ok := s.nodes[pi.nodeName]; ok {
		ni.removePod(pi)
		if ni.node == nil && len(ni.pods) == 0 {
			delete(s.nodes, pi.nodeName)
		}
	}
}

func (ni *nodeInfo) addPod(p *podInfo) {
	ni.pods = append(ni.pods, p)
	ni.requested.add(p.requests, 1)
	ni.ports.add(p.ports)
}

func (ni *nodeInfo) removePod(p *podInfo) {
	for i, x := range ni.pods {
		if x == p {
			last := len(ni.pods) - 1
			ni.pods[i] = ni.pods[last]
			ni.pods[last] = nil
			ni.pods = ni.pods[:last]
			ni.requested.add(p.requests, -1)
			ni.ports.remove(p.ports)
			return
		}
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

func newPodInfo(p *v1.Pod) *podInfo {
	p = withAPIDefaults(p) // a no-op for pods read from the API
	pi := &podInfo{
		namespace: p.Namespace,
		name:      p.Name,
		nodeName:  p.Spec.NodeName,
		labels:    p.Labels,
		requests:  existingPodRequests(p),
		ports:     podHostPorts(&p.Spec),

		terminating: p.DeletionTimestamp != nil,
	}
	if p.Spec.Priority != nil {
		pi.priority = *p.Spec.Priority
	}
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		pi.antiAffinity = compileTerms(p.Namespace, p.Labels, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			pi.claims = append(pi.claims, v.PersistentVolumeClaim.ClaimName)
		} else if v.Ephemeral != nil {
			pi.claims = append(pi.claims, p.Name+"-"+v.Name)
		}
	}
	return pi
}
