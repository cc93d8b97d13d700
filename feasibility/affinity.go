package feasibility

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// This file mirrors the InterPodAffinity filter's term matching. A term
// matches a pod when the pod's namespace is among the term's namespaces (its
// own by default, or those a namespaceSelector picks) and its labels match
// the term's selector, with matchLabelKeys and mismatchLabelKeys merged into
// the selector as the apiserver does when it admits a pod.

type affinityTerm struct {
	topologyKey string
	selector    labels.Selector
	namespaces  map[string]struct{}
	// nsSelector is nil when the term names namespaces only.
	nsSelector labels.Selector
}

// compileTerms turns a pod's required (anti-)affinity terms into matchers.
// Invalid selectors compile to "matches nothing": the apiserver would
// reject such a pod, and matching nothing never causes a false denial for
// anti-affinity, while for affinity the pod is flagged by validation anyway.
func compileTerms(ns string, podLabels map[string]string, terms []v1.PodAffinityTerm) []affinityTerm {
	out := make([]affinityTerm, 0, len(terms))
	for i := range terms {
		t := &terms[i]
		at := affinityTerm{topologyKey: t.TopologyKey, selector: termSelector(t, podLabels)}
		if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
			at.namespaces = map[string]struct{}{ns: {}}
		} else {
			at.namespaces = make(map[string]struct{}, len(t.Namespaces))
			for _, n := range t.Namespaces {
				at.namespaces[n] = struct{}{}
			}
		}
		if t.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
			if err != nil {
				sel = labels.Nothing()
			}
			at.nsSelector = sel
		}
		out = append(out, at)
	}
	return out
}

func termSelector(t *v1.PodAffinityTerm, podLabels map[string]string) labels.Selector {
	if t.LabelSelector == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil {
		return labels.Nothing()
	}
	return mergeLabelKeys(sel, t.MatchLabelKeys, t.MismatchLabelKeys, podLabels)
}

// mergeLabelKeys adds "key in (value)" for each matchLabelKey and
// "key notin (value)" for each mismatchLabelKey whose key the pod carries.
func mergeLabelKeys(sel labels.Selector, match, mismatch []string, podLabels map[string]string) labels.Selector {
	for _, k := range match {
		if v, ok := podLabels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.In, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, k := range mismatch {
		if v, ok := podLabels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.NotIn, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	return sel
}

// matches reports whether a pod in namespace ns with the given labels is
// selected by the term. nsLabels are the labels of namespace ns.
func (t *affinityTerm) matches(ns string, podLabels labels.Labels, nsLabels labels.Set) bool {
	if _, ok := t.namespaces[ns]; !ok {
		if t.nsSelector == nil || !t.nsSelector.Matches(nsLabels) {
			return false
		}
	}
	return t.selector.Matches(podLabels)
}

// namespaceLabels returns a namespace's labels. A namespace the snapshot has
// not seen still carries kubernetes.io/metadata.name, which the apiserver
// sets on every namespace.
func (s *Snapshot) namespaceLabels(ns string) labels.Set {
	if n, ok := s.namespaces[ns]; ok && n.Labels != nil {
		return n.Labels
	}
	return labels.Set{v1.LabelMetadataName: ns}
}

type topologyPair struct{ key, value string }

// affinityState holds the topology counts the InterPodAffinity filter
// compares against, computed once per check and updated as simulated
// replicas are placed.
type affinityState struct {
	// affinityCounts counts, per topology pair, pods that match every
	// required affinity term of the candidate.
	affinityCounts map[topologyPair]int
	// antiCounts counts pods matched by any of the candidate's required
	// anti-affinity terms.
	antiCounts map[topologyPair]int
	// existingAnti counts existing pods whose own anti-affinity terms match
	// the candidate: the candidate must stay out of their domains.
	existingAnti map[topologyPair]int
	// existingKeys are the topology keys existingAnti counts under, so a
	// node is looked up under those labels rather than all of its own.
	existingKeys []string
	// foreignAnti is true when a pod from another namespace contributes to
	// the anti-affinity conflicts, so messages say so without naming it.
	foreignAnti bool
	// countedAnti and countedAffinity hold the matches of the candidate's
	// terms that the pod index counts per node (affinitycount.go).
	countedAnti     []countedTerm
	countedAffinity *countedTerm
}

func (c *candidate) matchesAllAffinity(ns string, podLabels labels.Labels, nsLabels labels.Set) bool {
	for i := range c.affinity {
		if !c.affinity[i].matches(ns, podLabels, nsLabels) {
			return false
		}
	}
	return len(c.affinity) > 0
}

func (c *candidate) newAffinityState(s *Snapshot) *affinityState {
	// The count maps are made on first use (bump): most checks fill none.
	st := &affinityState{}
	needIncoming := len(c.affinity) > 0 || len(c.antiAffinity) > 0
	if !needIncoming && len(s.antiIndex.groups) == 0 {
		return st
	}
	if len(c.affinity) == 1 {
		st.countAffinity(s, c)
	} else if len(c.affinity) > 0 {
		// A pod counts for affinity only if it matches every term, so the
		// pods any one term selects are the only candidates: those of the
		// term that narrows to the fewest.
		first, fewest := 0, -1
		for i := range c.affinity {
			if n := s.termCandidates(&c.affinity[i]); fewest < 0 || n < fewest {
				first, fewest = i, n
			}
		}
		s.forEachTermPod(&c.affinity[first], func(p *podInfo, nodeLabels map[string]string) {
			if ns := p.namespace(); c.matchesAllAffinity(ns, p.shape.labels, s.namespaceLabels(ns)) {
				for i := range c.affinity {
					if v, ok := nodeLabels[c.affinity[i].topologyKey]; ok {
						bump(&st.affinityCounts, topologyPair{c.affinity[i].topologyKey, v}, 1)
					}
				}
			}
		})
	}
	for i := range c.antiAffinity {
		st.countAnti(s, c, i)
	}
	candNsLabels := s.namespaceLabels(c.ns)
	s.antiIndex.forEachFor(c.ns, c.labels, func(g *antiTermGroup) {
		if !g.term.matches(c.ns, labels.Set(c.labels), candNsLabels) {
			return
		}
		for nodeName, n := range g.onNode {
			ni, ok := s.nodes[nodeName]
			if !ok || ni.node == nil {
				continue
			}
			if v, ok := ni.node.Labels[g.term.topologyKey]; ok {
				st.bumpExisting(topologyPair{g.term.topologyKey, v}, n)
				if g.ownerNS != c.ns {
					st.foreignAnti = true
				}
			}
		}
	})
	return st
}

// bump adds n to (*m)[k], making the map on first use.
func bump(m *map[topologyPair]int, k topologyPair, n int) {
	if *m == nil {
		*m = map[topologyPair]int{}
	}
	(*m)[k] += n
}

// bumpExisting adds n existing anti-affinity matches in domain k.
func (st *affinityState) bumpExisting(k topologyPair, n int) {
	bump(&st.existingAnti, k, n)
	if !slices.Contains(st.existingKeys, k.key) {
		st.existingKeys = append(st.existingKeys, k.key)
	}
}

// forEachTermPod calls fn for every pod bound to a known node that term t
// selects, with that node's labels.
func (s *Snapshot) forEachTermPod(t *affinityTerm, fn func(p *podInfo, nodeLabels map[string]string)) {
	visit := func(p *podInfo) {
		if ni, ok := s.nodes[p.nodeName()]; ok && ni.node != nil {
			fn(p, ni.node.Labels)
		}
	}
	s.forEachTermNamespace(t, func(ns string) {
		s.podIndex.forEachMatching(ns, t.selector, visit)
	})
}

// termCandidates is how many pods forEachTermPod would match term t's
// selector against: the candidates its requirements narrow to, in each
// namespace t selects.
func (s *Snapshot) termCandidates(t *affinityTerm) int {
	reqs, selectable := t.selector.Requirements()
	if !selectable {
		return 0
	}
	n := 0
	s.forEachTermNamespace(t, func(ns string) {
		if np := s.podIndex.byNS[ns]; np != nil {
			n += np.candidates(reqs).pods
		}
	})
	return n
}

// forEachTermNamespace calls fn for each namespace with bound pods that
// term t may select pods in (and for those it lists, with or without).
func (s *Snapshot) forEachTermNamespace(t *affinityTerm, fn func(ns string)) {
	for ns := range t.namespaces {
		fn(ns)
	}
	if t.nsSelector == nil {
		return
	}
	for _, ns := range s.podIndex.namespaces() {
		if _, listed := t.namespaces[ns]; listed {
			continue
		}
		if t.nsSelector.Matches(s.namespaceLabels(ns)) {
			fn(ns)
		}
	}
}

// place records a simulated replica of the candidate on node n.
func (st *affinityState) place(s *Snapshot, c *candidate, n *v1.Node) {
	if len(c.antiAffinity) == 0 && len(c.affinity) == 0 {
		return // a replica without terms matches no term of its own
	}
	nsl := s.namespaceLabels(c.ns)
	if c.matchesAllAffinity(c.ns, labels.Set(c.labels), nsl) {
		for i := range c.affinity {
			if v, ok := n.Labels[c.affinity[i].topologyKey]; ok {
				bump(&st.affinityCounts, topologyPair{c.affinity[i].topologyKey, v}, 1)
			}
		}
	}
	for i := range c.antiAffinity {
		t := &c.antiAffinity[i]
		if t.matches(c.ns, labels.Set(c.labels), nsl) {
			if v, ok := n.Labels[t.topologyKey]; ok {
				bump(&st.antiCounts, topologyPair{t.topologyKey, v}, 1)
				st.bumpExisting(topologyPair{t.topologyKey, v}, 1)
			}
		}
	}
}

// filterInterPodAffinity is the per-node half of the InterPodAffinity
// filter. Affinity failures are unresolvable (no preemption creates a
// matching pod); anti-affinity failures are resolvable.
func (st *affinityState) filter(c *candidate, n *v1.Node, s *Snapshot) *nodeFailure {
	if len(c.affinity) > 0 {
		podsExist := true
		for i := range c.affinity {
			v, ok := n.Labels[c.affinity[i].topologyKey]
			if !ok {
				return failPodAffinity
			}
			if st.affinityCounts[topologyPair{c.affinity[i].topologyKey, v}] <= 0 && st.countedAffinity.domain(s, v) <= 0 {
				podsExist = false
			}
		}
		// The first pod of a group with affinity to itself may go anywhere
		// that has the topology labels, provided nothing else matches yet.
		if !podsExist && !(st.noAffinityMatch(s) && c.matchesAllAffinity(c.ns, labels.Set(c.labels), s.namespaceLabels(c.ns))) {
			return failPodAffinity
		}
	}
	for i := range c.antiAffinity {
		key := c.antiAffinity[i].topologyKey
		if v, ok := n.Labels[key]; ok && (st.antiCounts[topologyPair{key, v}] > 0 || st.antiCount(s, i, v) > 0) {
			return failPodAntiAffinity
		}
	}
	for _, k := range st.existingKeys {
		if v, ok := n.Labels[k]; ok && st.existingAnti[topologyPair{k, v}] > 0 {
			return failExistingAntiAffinity
		}
	}
	return nil
}
