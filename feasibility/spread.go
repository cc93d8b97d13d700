package feasibility

import (
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file mirrors the PodTopologySpread filter for DoNotSchedule
// constraints. ScheduleAnyway constraints and the scheduler's default
// (soft) constraints only score, so they never make a pod unschedulable.
//
// For each constraint, matching pods are counted per topology domain over
// the eligible nodes: those that carry every constraint's topology key and
// pass the node inclusion policies (nodeAffinityPolicy defaults to Honor,
// nodeTaintsPolicy to Ignore). A node fails when placing the pod there would
// make its domain's count exceed the global minimum by more than maxSkew.

type spreadConstraint struct {
	maxSkew       int32
	topologyKey   string
	selector      labels.Selector
	minDomains    int32
	honorAffinity bool
	honorTaints   bool
	selfMatch     bool
}

func compileSpread(pod *v1.Pod) []spreadConstraint {
	var out []spreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != v1.DoNotSchedule {
			continue
		}
		sel := labels.Nothing()
		if c.LabelSelector != nil {
			if s, err := metav1.LabelSelectorAsSelector(c.LabelSelector); err == nil {
				sel = mergeLabelKeys(s, c.MatchLabelKeys, nil, pod.Labels)
			}
		}
		sc := spreadConstraint{
			maxSkew:       c.MaxSkew,
			topologyKey:   c.TopologyKey,
			selector:      sel,
			minDomains:    1,
			honorAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor,
			honorTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor,
			selfMatch:     sel.Matches(labels.Set(pod.Labels)),
		}
		if c.MinDomains != nil {
			sc.minDomains = *c.MinDomains
		}
		out = append(out, sc)
	}
	return out
}

// spreadState holds, per constraint, matching pods per domain.
type spreadState struct {
	counts []map[string]int
	// mins holds each constraint's global minimum once worked out (the
	// filter asks it of every node); placing a replica clears it.
	mins []int
}

func (c *candidate) newSpreadState(s *Snapshot) *spreadState {
	if len(c.spread) == 0 {
		return nil
	}
	st := &spreadState{counts: make([]map[string]int, len(c.spread))}
	for i := range st.counts {
		st.counts[i] = map[string]int{}
	}
	// Matching pods, in the candidate's namespace only, as the scheduler
	// counts them. The scheduler counts no pods for an empty selector.
	ms := make([]matchCounts, len(c.spread))
	for i := range c.spread {
		if sc := &c.spread[i]; !sc.selector.Empty() {
			ms[i] = s.podIndex.countMatching(c.ns, sc.selector, false)
		}
	}
	// Domains: every topology value among eligible nodes, even with no
	// matching pod (they set the global minimum). With one constraint and
	// no inclusion policy narrowing the nodes, the node label index has
	// them; otherwise scan the nodes. Counts the index keeps per node are
	// added up over each domain's eligible nodes.
	if len(c.spread) == 1 && !c.spreadNarrowsNodes(&c.spread[0]) {
		for v, slots := range s.nodeLabelValues[c.spread[0].topologyKey] {
			n := 0
			if ms[0].counting() {
				n = ms[0].sum(slots)
			}
			st.counts[0][v] = n
		}
	} else {
		for _, ni := range s.sortedNodes() {
			if c.spreadEligible(ni.node) {
				for i := range c.spread {
					if c.spreadIncludes(&c.spread[i], ni.node) {
						n := 0
						if ms[i].counting() {
							n = ms[i].at(ni.slot)
						}
						st.counts[i][ni.node.Labels[c.spread[i].topologyKey]] += n
					}
				}
			}
		}
	}
	// Pods the index walked are counted one node at a time.
	for i := range c.spread {
		sc := &c.spread[i]
		if ms[i].counting() {
			continue
		}
		for slot, n := range ms[i].adjust {
			ni := s.slots[slot]
			if ni == nil || ni.node == nil || !c.spreadEligible(ni.node) || !c.spreadIncludes(sc, ni.node) {
				continue
			}
			st.counts[i][ni.node.Labels[sc.topologyKey]] += int(n)
		}
	}
	return st
}

// spreadEligible reports whether n carries every constraint's topology key.
func (c *candidate) spreadEligible(n *v1.Node) bool { return hasAllSpreadKeys(n.Labels, c.spread) }

// spreadNarrowsNodes reports whether sc's inclusion policies can leave out
// a node that has the topology key.
func (c *candidate) spreadNarrowsNodes(sc *spreadConstraint) bool {
	if sc.honorTaints {
		return true
	}
	if !sc.honorAffinity {
		return false
	}
	a := c.pod.Spec.Affinity
	return len(c.pod.Spec.NodeSelector) > 0 ||
		a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

func hasAllSpreadKeys(nodeLabels map[string]string, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := nodeLabels[cs[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// spreadIncludes applies a constraint's node inclusion policies.
func (c *candidate) spreadIncludes(sc *spreadConstraint, n *v1.Node) bool {
	if sc.honorAffinity {
		if ok, _ := c.nodeAffinity.Match(n); !ok {
			return false
		}
	}
	if sc.honorTaints && c.untoleratedTaint(n) != nil {
		return false
	}
	return true
}

// minMatch is constraint i's global minimum, worked out once.
func (st *spreadState) minMatch(i int, minDomains int32) int {
	if st.mins == nil {
		st.mins = make([]int, len(st.counts))
		for j := range st.mins {
			st.mins[j] = -1
		}
	}
	if st.mins[i] < 0 {
		st.mins[i] = st.computeMin(i, minDomains)
	}
	return st.mins[i]
}

func (st *spreadState) computeMin(i int, minDomains int32) int {
	if int32(len(st.counts[i])) < minDomains {
		return 0
	}
	m := math.MaxInt
	for _, v := range st.counts[i] {
		if v < m {
			m = v
		}
	}
	if m == math.MaxInt {
		return 0
	}
	return m
}

func (st *spreadState) filter(c *candidate, n *v1.Node) *nodeFailure {
	if st == nil {
		return nil
	}
	for i := range c.spread {
		sc := &c.spread[i]
		v, ok := n.Labels[sc.topologyKey]
		if !ok {
			return failSpreadMissingLabel
		}
		self := 0
		if sc.selfMatch {
			self = 1
		}
		if skew := st.counts[i][v] + self - st.minMatch(i, sc.minDomains); skew > int(sc.maxSkew) {
			return failSpread
		}
	}
	return nil
}

// place records a simulated replica on n.
func (st *spreadState) place(c *candidate, n *v1.Node) {
	if st == nil || !hasAllSpreadKeys(n.Labels, c.spread) {
		return
	}
	st.mins = nil
	for i := range c.spread {
		sc := &c.spread[i]
		if sc.selfMatch && !sc.selector.Empty() && c.spreadIncludes(sc, n) {
			st.counts[i][n.Labels[sc.topologyKey]]++
		}
	}
}
