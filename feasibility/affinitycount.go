package feasibility

// The candidate's inter-pod (anti-)affinity terms count the pods they
// select per topology domain. The pods the index walks (matchcount.go) are
// counted into the state's maps up front; the matches it counts per node
// (terms that select thousands of pods) are added up over a domain's
// nodes when a node of that domain asks, so a pod that fits on the first
// nodes tried never adds up the rest.

// countedTerm is a term's matches that the index counts per node.
type countedTerm struct {
	term   int // index among the candidate's terms
	key    string
	counts matchCounts
	// domains remembers the counts of domains of many nodes; anyNode
	// whether a node with the topology key has a match (0: not worked
	// out yet, 1: no, 2: yes).
	domains map[string]int
	anyNode int8
}

// domain is how many matches run in the domain with value v; 0 for a nil
// term.
func (ct *countedTerm) domain(s *Snapshot, v string) int {
	if ct == nil {
		return 0
	}
	if len(s.nodeLabelValues[ct.key][v]) <= 4 {
		return s.domainCount(&ct.counts, ct.key, v) // a hostname's, typically
	}
	n, ok := ct.domains[v]
	if !ok {
		n = s.domainCount(&ct.counts, ct.key, v)
		if ct.domains == nil {
			ct.domains = map[string]int{}
		}
		ct.domains[v] = n
	}
	return n
}

// onAnyNode reports whether a match runs on a node with the topology key.
func (ct *countedTerm) onAnyNode(s *Snapshot) bool {
	if ct == nil {
		return false
	}
	if ct.anyNode == 0 {
		ct.anyNode = 1
		if s.anyOnNodeWithKey(&ct.counts, ct.key) {
			ct.anyNode = 2
		}
	}
	return ct.anyNode == 2
}

// countTerm counts the pods term t selects: those the index walks go to
// fn, one node slot at a time, and the rest come back counted per node.
// foreign is called for each namespace other than the candidate's whose
// matches are counted per node.
func (s *Snapshot) countTerm(c *candidate, t *affinityTerm, foreign func(*matchCounts), fn func(ns string, ni *nodeInfo, n int)) (counted matchCounts) {
	s.forEachTermNamespace(t, func(ns string) {
		m := s.podIndex.countMatching(ns, t.selector, true)
		if m.counting() {
			if ns != c.ns && foreign != nil {
				foreign(&m)
			}
			counted.merge(&m)
			return
		}
		for slot, n := range m.adjust {
			if ni := s.slots[slot]; ni != nil && ni.node != nil {
				fn(ns, ni, int(n))
			}
		}
	})
	return counted
}

// countAnti counts the pods the candidate's anti-affinity term i selects.
func (st *affinityState) countAnti(s *Snapshot, c *candidate, i int) {
	t := &c.antiAffinity[i]
	counted := s.countTerm(c, t, func(m *matchCounts) {
		if !st.foreignAnti && s.anyOnNodeWithKey(m, t.topologyKey) {
			st.foreignAnti = true
		}
	}, func(ns string, ni *nodeInfo, n int) {
		if v, ok := ni.node.Labels[t.topologyKey]; ok {
			bump(&st.antiCounts, topologyPair{t.topologyKey, v}, n)
			if ns != c.ns {
				st.foreignAnti = true
			}
		}
	})
	if counted.counting() {
		st.countedAnti = append(st.countedAnti, countedTerm{term: i, key: t.topologyKey, counts: counted})
	}
}

// antiCount is how many pods the candidate's anti-affinity term i selects
// in the domain with value v, among those the index counts per node.
func (st *affinityState) antiCount(s *Snapshot, i int, v string) int {
	for j := range st.countedAnti {
		if st.countedAnti[j].term == i {
			return st.countedAnti[j].domain(s, v)
		}
	}
	return 0
}

// countAffinity counts the pods a candidate's only affinity term selects.
// (With more terms, a pod counts only if it matches all of them, which
// newAffinityState works out pod by pod.)
func (st *affinityState) countAffinity(s *Snapshot, c *candidate) {
	t := &c.affinity[0]
	counted := s.countTerm(c, t, nil, func(_ string, ni *nodeInfo, n int) {
		if v, ok := ni.node.Labels[t.topologyKey]; ok {
			bump(&st.affinityCounts, topologyPair{t.topologyKey, v}, n)
		}
	})
	if counted.counting() {
		st.countedAffinity = &countedTerm{key: t.topologyKey, counts: counted}
	}
}

// noAffinityMatch reports whether no pod the candidate's affinity terms
// select (all of them) runs on a node with their topology keys yet.
func (st *affinityState) noAffinityMatch(s *Snapshot) bool {
	return len(st.affinityCounts) == 0 && !st.countedAffinity.onAnyNode(s)
}
