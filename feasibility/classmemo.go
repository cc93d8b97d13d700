package feasibility

import v1 "k8s.io/api/core/v1"

// What one check works out once per node class instead of once per node,
// for the checks the class shortcut (classes.go) stands aside from: pods
// with spread, inter-pod affinity, ports or volumes. A pod that fits
// nowhere is filtered on every node twice, once looking for a node and
// once for the diagnosis, so at thousands of nodes the per-node cost is
// what a check costs.
//
//   - A class whose members all fail a static filter, or lack in all a
//     resource the pod asks for, fails every member: the search for a
//     node skips them, and the diagnosis counts them as diagnoseByClass
//     does.
//   - The spread and inter-pod affinity filters read a node's labels only
//     through topology keys. When none of those is the hostname, the one
//     label a class's members differ in, their answer is the class's. The
//     search skips a class they fail, and when nothing else tells its
//     members apart (no host ports, no volumes that depend on the node)
//     the diagnosis counts it whole: members short of a resource under
//     it, the others under the first topology failure.

// classMemo holds, by class id, what a check has worked out for a class.
type classMemo struct {
	// fails: 0 not worked out yet, classFailsAll or classMayFit.
	fails []int8
	// topology holds the spread and inter-pod affinity filters' answers,
	// when topologyByClass; placing a replica clears it.
	topology        []classTopology
	topologyByClass bool
}

const (
	classFailsAll int8 = 1 + iota
	classMayFit
)

type classTopology struct {
	done             bool
	spread, affinity *nodeFailure
}

// readsHostname reports whether the candidate's spread or inter-pod
// affinity filters tell nodes apart by the hostname label: through the
// candidate's own terms and constraints, or through existing pods'
// anti-affinity terms that select it.
func (cs *checkState) readsHostname() bool {
	c := cs.c
	for i := range c.spread {
		if c.spread[i].topologyKey == v1.LabelHostname {
			return true
		}
	}
	for _, terms := range [][]affinityTerm{c.affinity, c.antiAffinity} {
		for i := range terms {
			if terms[i].topologyKey == v1.LabelHostname {
				return true
			}
		}
	}
	if cs.affinity != nil {
		for _, k := range cs.affinity.existingKeys {
			if k == v1.LabelHostname {
				return true
			}
		}
	}
	return false
}

// classFails reports whether ni's class decides that ni, like every other
// member, cannot take the pod: a static filter fails the class, or the pod
// asks for more of a resource than a member has in all. False when it may
// fit, or the node has no class.
func (cs *checkState) classFails(ni *nodeInfo) bool {
	k := ni.class
	if k == nil || classesOff {
		return false
	}
	m := &cs.memo
	if m.fails == nil {
		m.fails = make([]int8, len(cs.s.classList))
	}
	if m.fails[k.id] == 0 {
		m.fails[k.id] = classMayFit
		if cs.staticByClass && cs.staticFor(&cs.statics, k) != nil || cs.classShort(k) {
			m.fails[k.id] = classFailsAll
		}
	}
	return m.fails[k.id] == classFailsAll
}

// classRulesOut reports whether ni's class shows that ni cannot take the
// pod now: classFails, or the topology filters fail the whole class.
func (cs *checkState) classRulesOut(ni *nodeInfo) bool {
	if cs.classFails(ni) {
		return true
	}
	t := cs.classTopology(ni)
	return t != nil && (t.spread != nil || t.affinity != nil)
}

// classShort reports whether the pod asks for more of some resource than
// a member of k has allocatable: NodeResourcesFit fails every member, with
// whatever is running.
func (cs *checkState) classShort(k *nodeClass) bool {
	for _, d := range cs.requestDims() {
		if d.forClass(k).unresolvable(k) {
			return true
		}
	}
	return false
}

// spreadFailure is the PodTopologySpread filter on ni.
func (cs *checkState) spreadFailure(ni *nodeInfo) *nodeFailure {
	if t := cs.classTopology(ni); t != nil {
		return t.spread
	}
	return cs.spread.filter(cs.c, ni.node)
}

// affinityFailure is the InterPodAffinity filter on ni.
func (cs *checkState) affinityFailure(ni *nodeInfo) *nodeFailure {
	if t := cs.classTopology(ni); t != nil {
		return t.affinity
	}
	return cs.affinity.filter(cs.c, ni.node, cs.s)
}

// classTopology returns the topology filters' answers for ni's class, or
// nil when they are not the class's to give.
func (cs *checkState) classTopology(ni *nodeInfo) *classTopology {
	m := &cs.memo
	if !m.topologyByClass || ni.class == nil {
		return nil
	}
	if m.topology == nil {
		m.topology = make([]classTopology, len(cs.s.classList))
	}
	t := &m.topology[ni.class.id]
	if !t.done {
		n := ni.class.rep()
		t.done, t.spread, t.affinity = true, cs.spread.filter(cs.c, n), cs.affinity.filter(cs.c, n, cs.s)
	}
	return t
}

// placed forgets the topology answers: a replica just placed changes the
// counts they came from.
func (m *classMemo) placed() {
	clear(m.topology)
}

// settleClasses counts into d every member of the classes that decide
// their members' diagnosis alone, and returns, by class id, which those
// are (nil for none) and how many members they have. It counts what diagnose would record for each member
// node by node: the first failure, with the resources NodeResourcesFit
// names beside it, and whether some member failed only resolvably.
//   - A static filter fails every member, unresolvably.
//   - With no host port to fail first, a class that has too little in
//     all of a resource fails every member there, unresolvably, with
//     whatever else each member is short of.
//   - With no host port, no volume filter that depends on the node and
//     topology answers that are the class's: members short of a resource
//     fail there, resolvably, and the others at the first topology
//     failure; whether they are resolvable is whether both topology
//     answers are.
//
// A class with a simulated replica on a member is left to diagnose: its
// counts are the snapshot's.
func (cs *checkState) settleClasses(d *diagnosis) (settled []bool, members int) {
	c := cs.c
	if classesOff || !cs.staticByClass || c.nodeNames != nil || c.pod.Spec.NodeName != "" {
		// Node-name filters run before the static ones.
		return nil, 0
	}
	classes := cs.s.classList
	var placed []bool
	for ni := range cs.placed {
		if ni.class != nil {
			if placed == nil {
				placed = make([]bool, len(classes))
			}
			placed[ni.class.id] = true
		}
	}
	for _, k := range classes {
		if k == nil {
			continue
		}
		rep := k.byFree[dimCPU][0].ni
		switch {
		case cs.staticFor(&cs.statics, k) != nil:
			cs.countStatic(d, k, cs.staticFor(&cs.statics, k))
		case len(c.ports) > 0 || placed != nil && placed[k.id]:
			continue
		case cs.classFails(rep):
			cs.countShortages(d, k, true)
		case !c.volumes.nodeIndependent() || !cs.settleByTopology(d, k, rep):
			continue
		}
		if settled == nil {
			settled = make([]bool, len(classes))
		}
		settled[k.id] = true
		members += k.size()
	}
	return settled, members
}

// settleByTopology counts the members of k, a class no static filter
// fails and no resource rules out, when the topology filters' answers are
// the class's and fail it. It reports whether it did.
func (cs *checkState) settleByTopology(d *diagnosis, k *nodeClass, rep *nodeInfo) bool {
	t := cs.classTopology(rep)
	if t == nil {
		return false
	}
	f := t.spread
	if f == nil {
		f = t.affinity
	}
	if f == nil {
		return false // some member may fit: leave it to the filters
	}
	cs.countShortages(d, k, true)
	if fit := k.fitting(cs.requestDims()); fit > 0 {
		d.count(f.code, f.reason, fit)
		if (f.code == CodePodAntiAffinity || f.code == CodeExistingPodAntiAffnity) && cs.affinity.foreignAnti {
			d.foreignAnti = true
		}
	}
	if !(t.spread != nil && t.spread.unresolvable() || t.affinity != nil && t.affinity.unresolvable()) {
		d.resolvable = true
	}
	return true
}
