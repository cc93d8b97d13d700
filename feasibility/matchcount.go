package feasibility

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// This file counts, node by node, the pods of a namespace that a label
// selector matches, for inter-pod anti-affinity and topology spread. A
// selector that matches thousands of pods (a whole team's) would make a
// check walk them all; instead it reads the per-node counts of the
// postings that hold its candidates (podindex.go), and walks only the groups
// among them that the selector's other requirements leave out. The cost
// then follows the number of nodes, not of pods.

// matchCounts is how many matching pods run on each node, by node slot:
// the sum of some postings' per-node counts, less the terminating pods
// among them when those are left out, plus adjust (pods of walked groups,
// less those of excepted ones).
type matchCounts struct {
	counted [][]int32
	minus   []map[int32]int32
	adjust  map[int32]int32
}

// counting reports whether m reads per-node counts. When it does not, it
// is just adjust: the pods it walked, all of them matches.
func (m *matchCounts) counting() bool { return len(m.counted) > 0 }

// sum is how many matching pods run on the nodes in slots. A domain can
// hold thousands of nodes: one counted posting, the usual case, is read
// directly.
func (m *matchCounts) sum(slots []int32) int {
	n := 0
	if len(m.counted) == 1 && len(m.minus) == 0 && len(m.adjust) == 0 {
		c := m.counted[0]
		for _, slot := range slots {
			if int(slot) < len(c) {
				n += int(c[slot])
			}
		}
		return n
	}
	for _, slot := range slots {
		n += m.at(slot)
	}
	return n
}

// at is how many matching pods run on the node in slot.
func (m *matchCounts) at(slot int32) int {
	n := 0
	if len(m.adjust) > 0 {
		n = int(m.adjust[slot])
	}
	for _, c := range m.counted {
		if int(slot) < len(c) {
			n += int(c[slot])
		}
	}
	for _, t := range m.minus {
		n -= int(t[slot])
	}
	return n
}

func (m *matchCounts) addAt(slot, delta int32) {
	if m.adjust == nil {
		m.adjust = map[int32]int32{}
	}
	if m.adjust[slot] += delta; m.adjust[slot] == 0 {
		delete(m.adjust, slot)
	}
}

// merge adds o's pods to m's.
func (m *matchCounts) merge(o *matchCounts) {
	m.counted = append(m.counted, o.counted...)
	m.minus = append(m.minus, o.minus...)
	for slot, n := range o.adjust {
		m.addAt(slot, n)
	}
}

// countMatching counts by node slot the bound pods in ns that sel matches,
// leaving terminating pods out unless withTerminating.
func (ix *podIndex) countMatching(ns string, sel labels.Selector, withTerminating bool) matchCounts {
	var m matchCounts
	np := ix.byNS[ns]
	if np == nil {
		return m
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return m // matches nothing
	}
	base := np.candidates(reqs)
	if base.pods >= ix.countingThreshold() && ix.countExcepting(np, reqs, sel, base, withTerminating, &m) {
		return m
	}
	for _, ps := range base.postings {
		ix.countPosting(ps, sel, withTerminating, &m)
	}
	return m
}

// countPosting adds to m the pods of a candidate posting that sel matches.
// Walking the matching groups costs a map update per pod; when the
// posting counts per node and most of its pods match (a team's label and
// another label most of the team's pods have), its counts less the pods
// of the groups that do not match cost less.
func (ix *podIndex) countPosting(ps *posting, sel labels.Selector, withTerminating bool, m *matchCounts) {
	if ps.counts == nil {
		ix.walk(ps.groups, sel, withTerminating, nil, m)
		return
	}
	var failing []*labelGroup
	unmatched := 0
	for _, g := range ps.groups {
		if !sel.Matches(g.labels) {
			failing = append(failing, g)
			unmatched += len(g.pods)
		}
	}
	if 2*unmatched >= ps.pods {
		ix.walk(ps.groups, sel, withTerminating, nil, m)
		return
	}
	m.counted = append(m.counted, ps.counts.perNode)
	if !withTerminating && ps.counts.terminating != nil {
		m.minus = append(m.minus, ps.counts.terminating)
	}
	for _, g := range failing {
		ix.addGroup(g, -1, withTerminating, m)
	}
}

// walk adds to m the pods of the groups that sel matches, or, with
// except, subtracts those of the groups in except it does not match.
func (ix *podIndex) walk(groups []*labelGroup, sel labels.Selector, withTerminating bool, except func(*labelGroup) bool, m *matchCounts) {
	for _, g := range groups {
		delta := int32(1)
		if except != nil {
			if !except(g) || sel.Matches(g.labels) {
				continue
			}
			delta = -1
		} else if !sel.Matches(g.labels) {
			continue
		}
		ix.addGroup(g, delta, withTerminating, m)
	}
}

// addGroup adds delta to m for each pod of g on its node, leaving
// terminating pods out unless withTerminating.
func (ix *podIndex) addGroup(g *labelGroup, delta int32, withTerminating bool, m *matchCounts) {
	for _, p := range g.pods {
		if withTerminating || !p.terminating {
			m.addAt(ix.nodes[p.nodeName()].slot, delta)
		}
	}
}

// countExcepting counts a large candidate set from its postings' per-node
// counts, then takes out the groups in it that sel does not match. Those
// can only be found cheaply when every other requirement fails just the
// groups of some postings: NotIn fails those with a listed value,
// DoesNotExist those with the key. It reports false, having left m as it
// was, when they cannot, or when walking them would cost more than
// walking the candidates.
func (ix *podIndex) countExcepting(np *nsPods, reqs labels.Requirements, sel labels.Selector, base candidateSet, withTerminating bool, m *matchCounts) bool {
	var except []*posting
	cost := 0
	for i := range reqs {
		r := &reqs[i]
		if base.req >= 0 && implies(&reqs[base.req], r) || np.meetsAll(r) {
			continue // every candidate meets it
		}
		switch r.Operator() {
		case selection.NotIn, selection.NotEquals:
			for _, v := range r.ValuesUnsorted() {
				if ps := np.byLabel[r.Key()+"="+v]; ps != nil {
					except = append(except, ps)
					cost += ps.pods
				}
			}
		case selection.DoesNotExist:
			if ps := np.byKey[r.Key()]; ps != nil {
				except = append(except, ps)
				cost += ps.pods
			}
		default:
			return false
		}
	}
	if cost >= base.pods {
		return false
	}
	var counted []*posting
	for _, ps := range base.postings {
		if ps.counts == nil {
			ix.walk(ps.groups, sel, withTerminating, nil, m)
			continue
		}
		counted = append(counted, ps)
		m.counted = append(m.counted, ps.counts.perNode)
		if !withTerminating && ps.counts.terminating != nil {
			m.minus = append(m.minus, ps.counts.terminating)
		}
	}
	for j, ps := range except {
		// A group in two excepting postings is taken out once, from the
		// first; only groups the counts include are taken out at all.
		ix.walk(ps.groups, sel, withTerminating, func(g *labelGroup) bool {
			return np.listsIn(g, counted) && !np.listsIn(g, except[:j])
		}, m)
	}
	return true
}

// implies reports whether every label set that meets a, an equality, In
// or Exists, meets b too: a matchLabelKeys requirement repeats a selector's
// own, typically.
func implies(a, b *labels.Requirement) bool {
	if a.Key() != b.Key() {
		return false
	}
	listed := func(r *labels.Requirement) bool {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			return true
		}
		return false
	}
	switch {
	case b.Operator() == selection.Exists:
		return listed(a) || a.Operator() == selection.Exists
	case listed(a) && listed(b):
		bv := b.ValuesUnsorted()
		for _, v := range a.ValuesUnsorted() {
			if !slices.Contains(bv, v) {
				return false
			}
		}
		return true
	}
	return false
}

// meetsAll reports whether every pod of the namespace meets r, an
// equality, In or Exists: its values' postings, or its key's, hold them
// all. A team's label on every pod of its namespace, or an app label, is
// typical; such a requirement narrows nothing.
func (np *nsPods) meetsAll(r *labels.Requirement) bool {
	n := 0
	switch r.Operator() {
	case selection.Equals, selection.DoubleEquals, selection.In:
		var seen []*posting
		for _, v := range r.ValuesUnsorted() {
			if ps := np.byLabel[r.Key()+"="+v]; ps != nil && !slices.Contains(seen, ps) {
				seen = append(seen, ps)
				n += ps.pods
			}
		}
	case selection.Exists:
		if ps := np.byKey[r.Key()]; ps != nil {
			n = ps.pods
		}
	default:
		return false
	}
	return n > 0 && n == np.all.pods
}

// listsIn reports whether any of postings lists g.
func (np *nsPods) listsIn(g *labelGroup, postings []*posting) bool {
	found := false
	np.eachPosting(g, func(ps *posting) {
		found = found || slices.Contains(postings, ps)
	})
	return found
}

// domainCount is how many pods m counts on the nodes whose label key has
// value v.
func (s *Snapshot) domainCount(m *matchCounts, key, v string) int {
	return m.sum(s.nodeLabelValues[key][v])
}

// anyOnNodeWithKey reports whether m counts a pod on a node that has the
// label key.
func (s *Snapshot) anyOnNodeWithKey(m *matchCounts, key string) bool {
	for slot, ni := range s.slots {
		if ni == nil || ni.node == nil {
			continue
		}
		if _, ok := ni.node.Labels[key]; ok && m.at(int32(slot)) > 0 {
			return true
		}
	}
	return false
}
