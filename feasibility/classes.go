package feasibility

import (
	"maps"
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"
)

// Node classes. Nodes of one pool look alike to every filter that reads
// only labels, taints and the cordon: a class is a set of nodes with the
// same labels (hostname aside), taints, cordon and allocatable. Static
// filters run once per class, and each class keeps its nodes sorted by
// what they have free of each resource, so "how many nodes lack cpu" is a
// binary search, not a walk over thousands of nodes. That is what makes a
// pod that fits nowhere as cheap to diagnose as one that fits.

// Resource dimensions a class indexes; scalars follow these four.
const (
	dimCPU = iota
	dimMemory
	dimEphemeral
	dimPods
	numFixedDims
)

type nodeClass struct {
	id          int
	key         string
	allocatable resources
	allowedPods int64
	scalars     []v1.ResourceName // sorted; dimension numFixedDims+i
	// byFree holds, per dimension, every member sorted by free amount,
	// then by name.
	byFree [][]freeEntry
}

type freeEntry struct {
	free int64
	ni   *nodeInfo
}

func (e freeEntry) less(free int64, name string) bool {
	return e.free < free || (e.free == free && e.ni.name < name)
}

func (k *nodeClass) size() int { return len(k.byFree[dimCPU]) }

// rep is any member: they all carry the same labels (hostname aside),
// taints and cordon.
func (k *nodeClass) rep() *v1.Node { return k.byFree[dimCPU][0].ni.node }

// free is what ni has left in dimension dim.
func (k *nodeClass) free(ni *nodeInfo, dim int) int64 {
	switch dim {
	case dimCPU:
		return ni.allocatable.MilliCPU - ni.requested.MilliCPU
	case dimMemory:
		return ni.allocatable.Memory - ni.requested.Memory
	case dimEphemeral:
		return ni.allocatable.Ephemeral - ni.requested.Ephemeral
	case dimPods:
		return ni.allowedPods - ni.podCount
	}
	name := k.scalars[dim-numFixedDims]
	return ni.allocatable.Scalar[name] - ni.requested.Scalar[name]
}

func (k *nodeClass) insert(ni *nodeInfo) {
	for dim := range k.byFree {
		f := k.free(ni, dim)
		l := k.byFree[dim]
		i := sort.Search(len(l), func(i int) bool { return !l[i].less(f, ni.name) })
		k.byFree[dim] = slices.Insert(l, i, freeEntry{free: f, ni: ni})
	}
}

// remove takes ni out; it must be called before ni's free amounts change.
func (k *nodeClass) remove(ni *nodeInfo) {
	for dim := range k.byFree {
		f := k.free(ni, dim)
		l := k.byFree[dim]
		i := sort.Search(len(l), func(i int) bool { return !l[i].less(f, ni.name) })
		if i < len(l) && l[i].ni == ni {
			k.byFree[dim] = slices.Delete(l, i, i+1)
		}
	}
}

// failing is how many members have less than want free in dim.
func (k *nodeClass) failing(dim int, want int64) int {
	l := k.byFree[dim]
	return sort.Search(len(l), func(i int) bool { return l[i].free >= want })
}

// classKey identifies a node's class.
func classKey(n *v1.Node, alloc resources, allowedPods int64) string {
	var w keyWriter
	str, num := w.str, w.num
	keys := slices.Sorted(maps.Keys(n.Labels))
	num(int64(len(keys)))
	for _, k := range keys {
		if k == v1.LabelHostname {
			continue
		}
		str(k)
		str(n.Labels[k])
	}
	num(int64(len(n.Spec.Taints)))
	for _, t := range n.Spec.Taints {
		str(t.Key)
		str(t.Value)
		str(string(t.Effect))
	}
	if n.Spec.Unschedulable {
		num(1)
	} else {
		num(0)
	}
	num(alloc.MilliCPU)
	num(alloc.Memory)
	num(alloc.Ephemeral)
	num(allowedPods)
	for _, name := range alloc.scalarNames() {
		str(string(name))
		num(alloc.Scalar[name])
	}
	return string(w)
}

// classify puts a node (whose node object, allocatable and pod aggregates
// are current) into its class.
func (s *Snapshot) classify(ni *nodeInfo) {
	key := classKey(ni.node, ni.allocatable, ni.allowedPods)
	k := s.classes[key]
	if k == nil {
		k = &nodeClass{key: key, allocatable: ni.allocatable, allowedPods: ni.allowedPods,
			scalars: ni.allocatable.scalarNames()}
		k.byFree = make([][]freeEntry, numFixedDims+len(k.scalars))
		if n := len(s.freeClassIDs); n > 0 {
			k.id = s.freeClassIDs[n-1]
			s.freeClassIDs = s.freeClassIDs[:n-1]
			s.classList[k.id] = k
		} else {
			k.id = len(s.classList)
			s.classList = append(s.classList, k)
		}
		s.classes[key] = k
	}
	ni.class = k
	k.insert(ni)
}

// unclassify takes a node out of its class, before its node object,
// allocatable or pod aggregates change.
func (s *Snapshot) unclassify(ni *nodeInfo) {
	k := ni.class
	if k == nil {
		return
	}
	k.remove(ni)
	ni.class = nil
	if k.size() == 0 {
		delete(s.classes, k.key)
		s.classList[k.id] = nil
		s.freeClassIDs = append(s.freeClassIDs, k.id)
	}
}

// staticFailure runs the filters that read only a node's labels, taints
// and cordon, in the scheduler's order: NodeUnschedulable, TaintToleration,
// NodeAffinity. All three fail unresolvably.
func (c *candidate) staticFailure(n *v1.Node) *nodeFailure {
	// The kubelet ignores a cordon: only the scheduler honours it.
	if n.Spec.Unschedulable && !c.kubeletAdmits && !tolerates(c.pod.Spec.Tolerations, &v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}) {
		return failUnschedulable
	}
	if c.untoleratedTaint(n) != nil {
		return failTaints
	}
	if ok, _ := c.nodeAffinity.Match(n); !ok {
		return failNodeAffinity
	}
	return nil
}

// byClass reports whether, for this check, a node's verdict depends only
// on its class and its free resources: no host ports, volumes, spread or
// inter-pod affinity in play, no node named, node affinity reading labels
// other than the hostname, and nothing placed yet by the simulation.
func (cs *checkState) byClass() bool {
	c := cs.c
	if c.nodeNames != nil || c.kubeletAdmits || len(c.ports) > 0 || len(c.spread) > 0 ||
		len(c.affinity) > 0 || len(c.antiAffinity) > 0 || len(cs.placed) > 0 || !c.volumes.nodeIndependent() {
		return false
	}
	if cs.affinity != nil && len(cs.affinity.existingAnti) > 0 {
		return false
	}
	return !c.nodeAffinityReadsHostOrFields()
}

// nodeAffinityReadsHostOrFields reports whether the pod's node selector or
// required node affinity tells nodes of one class apart.
func (c *candidate) nodeAffinityReadsHostOrFields() bool {
	if _, ok := c.pod.Spec.NodeSelector[v1.LabelHostname]; ok {
		return true
	}
	a := c.pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(t.MatchFields) > 0 {
			return true
		}
		for _, e := range t.MatchExpressions {
			if e.Key == v1.LabelHostname {
				return true
			}
		}
	}
	return false
}

// classDim is one resource the candidate asks for, as a class sees it.
type classDim struct {
	dim    int // -1: the class's nodes have none of it
	name   v1.ResourceName
	code   Code
	reason string
	want   int64
}

// requestDims lists the dimensions the candidate asks for, once per check:
// the pod slot, then cpu, memory, ephemeral storage and scalars, in the
// order NodeResourcesFit reports them. A scalar's dimension differs from
// class to class; forClass resolves it.
func (cs *checkState) requestDims() []classDim {
	if cs.dims != nil {
		return cs.dims
	}
	req := &cs.c.requests
	dims := slices.Grow(cs.dimsBuf[:0], 4+len(req.Scalar))
	dims = append(dims, classDim{dim: dimPods, name: v1.ResourcePods, code: CodeTooManyPods, reason: reasonTooManyPods, want: 1})
	add := func(dim int, name v1.ResourceName, code Code, reason string, want int64) {
		if want > 0 {
			dims = append(dims, classDim{dim: dim, name: name, code: code, reason: reason, want: want})
		}
	}
	add(dimCPU, v1.ResourceCPU, CodeInsufficientCPU, insufficientReason(v1.ResourceCPU), req.MilliCPU)
	add(dimMemory, v1.ResourceMemory, CodeInsufficientMemory, insufficientReason(v1.ResourceMemory), req.Memory)
	add(dimEphemeral, v1.ResourceEphemeralStorage, CodeInsufficientEphemeral, insufficientReason(v1.ResourceEphemeralStorage), req.Ephemeral)
	for _, name := range req.scalarNames() {
		add(dimScalar, name, CodeInsufficientResource, insufficientReason(name), req.Scalar[name])
	}
	cs.dims = dims
	return dims
}

// dimScalar marks a scalar dimension not yet resolved for a class.
const dimScalar = -2

// forClass resolves a scalar dimension for class k: -1 when k's nodes have
// none of the resource.
func (d classDim) forClass(k *nodeClass) classDim {
	if d.dim == dimScalar {
		d.dim = -1
		if i, ok := slices.BinarySearch(k.scalars, d.name); ok {
			d.dim = numFixedDims + i
		}
	}
	return d
}

func (d classDim) failing(k *nodeClass) int {
	if d.dim < 0 {
		return k.size()
	}
	return k.failing(d.dim, d.want)
}

// capacity is what one node of the class has in total of the dimension.
func (d classDim) capacity(k *nodeClass) int64 {
	switch d.dim {
	case -1:
		return 0
	case dimCPU:
		return k.allocatable.MilliCPU
	case dimMemory:
		return k.allocatable.Memory
	case dimEphemeral:
		return k.allocatable.Ephemeral
	case dimPods:
		return k.allowedPods
	}
	return k.allocatable.Scalar[d.name]
}

// unresolvable reports whether no node of the class could ever have
// enough: the request exceeds its whole allocatable, or it takes no pods.
func (d classDim) unresolvable(k *nodeClass) bool {
	if d.dim == dimPods {
		return k.allowedPods <= 0
	}
	return d.want > d.capacity(k)
}

// classStatics evaluates the static filters once per class.
type classStatics struct {
	byID []classStatic
}

type classStatic struct {
	done bool
	fail *nodeFailure
}

func (cs *checkState) staticFor(st *classStatics, k *nodeClass) *nodeFailure {
	if st.byID == nil {
		st.byID = make([]classStatic, len(cs.s.classList))
	}
	if e := &st.byID[k.id]; !e.done {
		e.done = true
		e.fail = cs.c.staticFailure(k.rep())
	}
	return st.byID[k.id].fail
}

// fitByClass returns a node that can take the candidate, or nil. Only for
// checks where byClass holds.
func (cs *checkState) fitByClass() *nodeInfo {
	for _, k := range cs.s.classList {
		if k == nil || cs.staticFor(&cs.statics, k) != nil {
			continue
		}
		var found *nodeInfo
		k.eachFitting(cs.requestDims(), func(ni *nodeInfo) bool {
			found = ni
			return false
		})
		if found != nil {
			return found
		}
	}
	return nil
}

// fitting is how many members of k have what dims want free. It walks
// whichever is shorter: the members that fit, or those short of something,
// each of which it counts under the first dimension it is short of.
func (k *nodeClass) fitting(dims []classDim) int {
	short, most := 0, 0
	for i := range dims {
		f := dims[i].forClass(k).failing(k)
		short += f
		most = max(most, f)
	}
	if short > k.size()-most {
		n := 0
		k.eachFitting(dims, func(*nodeInfo) bool {
			n++
			return true
		})
		return n
	}
	union := 0
	for i := range dims {
		d := dims[i].forClass(k)
		if d.dim < 0 {
			return 0
		}
		for _, e := range k.byFree[d.dim][:d.failing(k)] {
			first := true
			for j := range i {
				if p := dims[j].forClass(k); k.free(e.ni, p.dim) < p.want {
					first = false
					break
				}
			}
			if first {
				union++
			}
		}
	}
	return k.size() - union
}

// eachFitting calls fn, until it returns false, for each member of k that
// has what dims want free. It walks the members that pass the most
// selective dimension and tests the others on each.
func (k *nodeClass) eachFitting(dims []classDim, fn func(*nodeInfo) bool) {
	best, bestFail := -1, -1
	for i := range dims {
		f := dims[i].forClass(k).failing(k)
		if f > bestFail {
			best, bestFail = i, f
		}
	}
	if bestFail == k.size() {
		return
	}
	for _, e := range k.byFree[dims[best].forClass(k).dim][bestFail:] {
		fits := true
		for i := range dims {
			if d := dims[i].forClass(k); k.free(e.ni, d.dim) < d.want {
				fits = false
				break
			}
		}
		if fits && !fn(e.ni) {
			return
		}
	}
}

// diagnoseByClass builds the same diagnosis as diagnose, from class
// counts, for a check where byClass holds and no node fits.
func (cs *checkState) diagnoseByClass(numNodes int) *diagnosis {
	d := &diagnosis{numNodes: numNodes}
	for _, k := range cs.s.classList {
		if k == nil {
			continue
		}
		if f := cs.staticFor(&cs.statics, k); f != nil {
			cs.countStatic(d, k, f)
			continue
		}
		if cs.countShortages(d, k, false) {
			d.resolvable = true // no member fits, and none is ruled out for good
		}
	}
	return d
}

// countStatic counts every member of k under f, the static filter that
// fails them all. Static failures are unresolvable.
func (cs *checkState) countStatic(d *diagnosis, k *nodeClass, f *nodeFailure) {
	n := k.size()
	d.count(f.code, f.reason, n)
	if f.code == CodeUntoleratedTaint {
		if t := cs.c.untoleratedTaint(k.rep()); t != nil {
			d.noteTaint(t, n)
		}
	}
}

// countShortages counts k's members under each resource they have too
// little of, as NodeResourcesFit reports them, with the numbers for the
// hint. It reports whether every shortage could go away. Members are
// taken as they are in the snapshot, with no simulated replica on them.
// A member of a class that has none of a scalar the pod asks for has, with
// exact, what its bound pods leave of it (zero, or less when pods on it
// still claim some); without, zero.
func (cs *checkState) countShortages(d *diagnosis, k *nodeClass, exact bool) (resolvable bool) {
	resolvable = true
	for _, dim := range cs.requestDims() {
		dim = dim.forClass(k)
		failing := dim.failing(k)
		if failing == 0 {
			continue
		}
		unresolvable := dim.unresolvable(k)
		if unresolvable {
			resolvable = false
		}
		d.count(dim.code, dim.reason, failing)
		h := d.resourceHint(dim.name, dim.want)
		h.nodes += failing
		if unresolvable {
			h.unresolvable += failing
		}
		switch {
		case dim.dim >= 0:
			// The failing member with the most free, first by name.
			l := k.byFree[dim.dim]
			free := l[failing-1].free
			i := sort.Search(failing, func(i int) bool { return l[i].free >= free })
			h.noteFree(free, l[i].ni.name)
		case exact:
			for _, e := range k.byFree[dimCPU] {
				h.noteFree(-e.ni.requested.Scalar[dim.name], e.ni.name)
			}
		default:
			h.noteFree(0, k.firstByName())
		}
		if c := dim.capacity(k); c > h.maxAlloc {
			h.maxAlloc = c
		}
	}
	return resolvable
}

// firstByName is the class member with the smallest name.
func (k *nodeClass) firstByName() string {
	name := ""
	for _, e := range k.byFree[dimCPU] {
		if name == "" || e.ni.name < name {
			name = e.ni.name
		}
	}
	return name
}
