package feasibility

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// podIndex finds bound pods by namespace and label. Pods of one shape (a
// workload's replicas) form one group, so a selector is matched once per
// group rather than once per pod. Within a namespace, postings list the
// groups that carry a label value, or a label key, or all of them; a
// posting that holds many pods also counts them per node (matchcount.go).
// A group does not point back at its postings, which would cost a slice
// per group: they are looked up from its labels when a pod comes or goes.
type podIndex struct {
	byNS map[string]*nsPods
	// nodes resolves a pod's node slot when a posting starts counting.
	nodes map[string]*nodeInfo
}

type nsPods struct {
	groups  map[*podShape]*labelGroup
	all     *posting
	byLabel map[string]*posting // "key=value"
	byKey   map[string]*posting // key
}

type labelGroup struct {
	labels labelList
	pods   []*podInfo
}

// posting is a set of groups, with how many pods they hold and, once that
// is enough to make walking them slow, how many run on each node.
type posting struct {
	groups []*labelGroup
	pods   int
	// counts is nil while the posting is small.
	counts *nodeCounts
}

// nodeCounts counts a posting's pods by node slot, and, the same way,
// those of them that are terminating, which topology spread leaves out
// (nil when none are).
type nodeCounts struct {
	perNode     []int32
	terminating map[int32]int32
}

func newPodIndex(nodes map[string]*nodeInfo) podIndex {
	return podIndex{byNS: map[string]*nsPods{}, nodes: nodes}
}

// countingThreshold is how many pods a posting holds before it counts
// them per node: a vector of one int32 per node slot then costs at most a
// few bytes per pod, and reading it beats walking the pods. Below half of
// it the posting stops counting. Tests lower minCountedPods.
func (ix *podIndex) countingThreshold() int {
	return max(minCountedPods, len(ix.nodes)/8)
}

var minCountedPods = 64

func (ix *podIndex) add(p *podInfo, slot int32) {
	ns := p.namespace()
	np := ix.byNS[ns]
	if np == nil {
		np = &nsPods{groups: map[*podShape]*labelGroup{}, all: &posting{},
			byLabel: map[string]*posting{}, byKey: map[string]*posting{}}
		ix.byNS[ns] = np
	}
	g := np.groups[p.shape]
	if g == nil {
		g = &labelGroup{labels: p.shape.labels}
		np.groups[p.shape] = g
		np.all.groups = append(np.all.groups, g)
		var buf [64]byte
		for _, l := range g.labels {
			ps := postingFor(np.byLabel, append(append(append(buf[:0], l.key...), '='), l.value...))
			ps.groups = append(ps.groups, g)
			ps = postingFor(np.byKey, append(buf[:0], l.key...))
			ps.groups = append(ps.groups, g)
		}
	}
	g.pods = append(g.pods, p)
	threshold := ix.countingThreshold()
	np.eachPosting(g, func(ps *posting) {
		ps.pods++
		switch {
		case ps.counts != nil:
			ps.counts.add(slot, p.terminating, 1)
		case ps.pods >= threshold:
			ix.startCounting(ps)
		}
	})
}

// eachPosting calls fn for each posting that lists g: all, then for each
// label its "key=value" and its key.
func (np *nsPods) eachPosting(g *labelGroup, fn func(*posting)) {
	fn(np.all)
	var buf [64]byte
	for _, l := range g.labels {
		fn(np.byLabel[string(append(append(append(buf[:0], l.key...), '='), l.value...))])
		fn(np.byKey[l.key])
	}
}

// postingFor returns m's posting for k, making it if need be. Looking k
// up as a converted byte slice does not allocate a string.
func postingFor(m map[string]*posting, k []byte) *posting {
	if ps := m[string(k)]; ps != nil {
		return ps
	}
	ps := &posting{}
	m[string(k)] = ps
	return ps
}

// add counts delta more pods on slot.
func (nc *nodeCounts) add(slot int32, terminating bool, delta int32) {
	if int(slot) >= len(nc.perNode) {
		nc.perNode = append(nc.perNode, make([]int32, int(slot)+1-len(nc.perNode))...)
	}
	nc.perNode[slot] += delta
	if !terminating {
		return
	}
	if nc.terminating == nil {
		nc.terminating = map[int32]int32{}
	}
	if nc.terminating[slot] += delta; nc.terminating[slot] == 0 {
		delete(nc.terminating, slot)
	}
	if len(nc.terminating) == 0 {
		nc.terminating = nil
	}
}

func (ix *podIndex) startCounting(ps *posting) {
	ps.counts = &nodeCounts{perNode: make([]int32, 0, len(ix.nodes))}
	for _, g := range ps.groups {
		for _, p := range g.pods {
			ps.counts.add(ix.nodes[p.nodeName()].slot, p.terminating, 1)
		}
	}
}

func (ix *podIndex) remove(p *podInfo, slot int32) {
	ns := p.namespace()
	np := ix.byNS[ns]
	if np == nil {
		return
	}
	g := np.groups[p.shape]
	if g == nil {
		return
	}
	i := slices.Index(g.pods, p)
	if i < 0 {
		return
	}
	last := len(g.pods) - 1
	g.pods[i] = g.pods[last]
	g.pods[last] = nil
	g.pods = g.pods[:last]
	threshold := ix.countingThreshold()
	np.eachPosting(g, func(ps *posting) {
		ps.pods--
		if ps.counts == nil {
			return
		}
		ps.counts.add(slot, p.terminating, -1)
		if ps.pods < threshold/2 {
			ps.counts = nil
		}
	})
	if len(g.pods) > 0 {
		if cap(g.pods) > 64 && len(g.pods) < cap(g.pods)/4 {
			g.pods = slices.Clip(append([]*podInfo(nil), g.pods...))
		}
		return
	}
	delete(np.groups, p.shape)
	g.leave(np.all)
	for _, l := range g.labels {
		kv := l.key + "=" + l.value
		if g.leave(np.byLabel[kv]) {
			delete(np.byLabel, kv)
		}
		if g.leave(np.byKey[l.key]) {
			delete(np.byKey, l.key)
		}
	}
	if len(np.groups) == 0 {
		delete(ix.byNS, ns)
	}
}

// leave takes g out of ps and reports whether ps is left empty. It looks
// from the end: groups that come and go are mostly recent ones.
func (g *labelGroup) leave(ps *posting) bool {
	for i := len(ps.groups) - 1; i >= 0; i-- {
		if ps.groups[i] == g {
			last := len(ps.groups) - 1
			ps.groups[i] = ps.groups[last]
			ps.groups[last] = nil
			ps.groups = ps.groups[:last]
			break
		}
	}
	return len(ps.groups) == 0
}

// forEachMatching calls fn for every bound pod in ns whose labels sel
// matches. It walks the fewest groups a requirement of sel narrows the
// namespace to (candidates) and matches each.
func (ix *podIndex) forEachMatching(ns string, sel labels.Selector, fn func(*podInfo)) {
	np := ix.byNS[ns]
	if np == nil {
		return
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return // matches nothing
	}
	base := np.candidates(reqs)
	for _, ps := range base.postings {
		for _, g := range ps.groups {
			if sel.Matches(g.labels) {
				for _, p := range g.pods {
					fn(p)
				}
			}
		}
	}
}

// candidateSet is a union of disjoint postings that holds every group a
// selector can match, and the requirement that narrowed to it (-1: none,
// the whole namespace).
type candidateSet struct {
	postings []*posting
	pods     int
	req      int
}

// candidates returns the smallest candidate set a requirement gives: the
// postings of an equality's or In's values, or of an Exists' key. NotIn,
// DoesNotExist, Gt and Lt match groups without the label too, so they
// narrow nothing; with none of the others, every group is a candidate.
func (np *nsPods) candidates(reqs labels.Requirements) candidateSet {
	best := candidateSet{postings: []*posting{np.all}, pods: np.all.pods, req: -1}
	var buf [64]byte
	for i := range reqs {
		r := &reqs[i]
		var set candidateSet
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			for _, v := range r.ValuesUnsorted() {
				kv := append(append(append(buf[:0], r.Key()...), '='), v...)
				// Values may repeat; the postings of distinct ones are disjoint.
				if ps := np.byLabel[string(kv)]; ps != nil && !slices.Contains(set.postings, ps) {
					set.postings = append(set.postings, ps)
					set.pods += ps.pods
				}
			}
		case selection.Exists:
			if ps := np.byKey[r.Key()]; ps != nil {
				set.postings = append(set.postings, ps)
				set.pods = ps.pods
			}
		default:
			continue
		}
		if set.pods < best.pods || best.req < 0 {
			set.req = i
			best = set
		}
	}
	return best
}

// namespaces lists the namespaces that have bound pods.
func (ix *podIndex) namespaces() []string {
	out := make([]string, 0, len(ix.byNS))
	for ns := range ix.byNS {
		out = append(out, ns)
	}
	return out
}
