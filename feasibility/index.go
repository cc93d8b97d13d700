package feasibility

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// This file keeps the indexes that let a check look only at the pods that
// can matter to it, instead of every pod in the cluster: bound pods by
// namespace and by label, and existing pods' required anti-affinity terms
// grouped by identity with a count per node. All are updated as pods come
// and go, so a check never rebuilds them.

// podIndex finds bound pods by namespace and label.
type podIndex struct {
	byNS    map[string]podSet
	byLabel map[string]map[string]podSet // namespace -> "key=value" -> pods
}

type podSet map[*podInfo]struct{}

func newPodIndex() podIndex {
	return podIndex{byNS: map[string]podSet{}, byLabel: map[string]map[string]podSet{}}
}

func (ix *podIndex) add(p *podInfo) {
	set := ix.byNS[p.namespace]
	if set == nil {
		set = podSet{}
		ix.byNS[p.namespace] = set
	}
	set[p] = struct{}{}
	nl := ix.byLabel[p.namespace]
	if nl == nil {
		nl = map[string]podSet{}
		ix.byLabel[p.namespace] = nl
	}
	for k, v := range p.labels {
		kv := k + "=" + v
		ls := nl[kv]
		if ls == nil {
			ls = podSet{}
			nl[kv] = ls
		}
		ls[p] = struct{}{}
	}
}

func (ix *podIndex) remove(p *podInfo) {
	if set := ix.byNS[p.namespace]; set != nil {
		delete(set, p)
		if len(set) == 0 {
			delete(ix.byNS, p.namespace)
		}
	}
	nl := ix.byLabel[p.namespace]
	for k, v := range p.labels {
		kv := k + "=" + v
		if ls := nl[kv]; ls != nil {
			delete(ls, p)
			if len(ls) == 0 {
				delete(nl, kv)
			}
		}
	}
	if len(nl) == 0 {
		delete(ix.byLabel, p.namespace)
	}
}

// forEachMatching calls fn for every bound pod in ns whose labels sel
// matches. It starts from the smallest set an equality requirement of sel
// narrows the namespace to.
func (ix *podIndex) forEachMatching(ns string, sel labels.Selector, fn func(*podInfo)) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return // matches nothing
	}
	candidates := ix.byNS[ns]
	for _, r := range reqs {
		var value string
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			value, _ = r.Values().PopAny()
		case selection.In:
			if r.Values().Len() != 1 {
				continue
			}
			value, _ = r.Values().PopAny()
		default:
			continue
		}
		set := ix.byLabel[ns][r.Key()+"="+value]
		if len(set) < len(candidates) {
			candidates = set
		}
		if len(candidates) == 0 {
			return
		}
	}
	for p := range candidates {
		if sel.Matches(labels.Set(p.labels)) {
			fn(p)
		}
	}
}

// namespaces lists the namespaces that have bound pods.
func (ix *podIndex) namespaces() []string {
	out := make([]string, 0, len(ix.byNS))
	for ns := range ix.byNS {
		out = append(out, ns)
	}
	return out
}

// antiTermGroup is one distinct required anti-affinity term, shared by the
// pods that carry it (the replicas of one workload, typically), with how
// many of those pods run on each node.
type antiTermGroup struct {
	term    affinityTerm
	ownerNS string
	onNode  map[string]int
}

// antiIndex groups existing pods' anti-affinity terms. Terms that name
// their namespaces are filed under each of them; terms with a
// namespaceSelector can match a pod in any namespace.
type antiIndex struct {
	groups  map[string]*antiTermGroup
	byNS    map[string]map[string]*antiTermGroup
	anyNS   map[string]*antiTermGroup
	termKey map[*podInfo][]string
}

func newAntiIndex() antiIndex {
	return antiIndex{groups: map[string]*antiTermGroup{}, byNS: map[string]map[string]*antiTermGroup{},
		anyNS: map[string]*antiTermGroup{}, termKey: map[*podInfo][]string{}}
}

func (t *affinityTerm) identity(ownerNS string) string {
	ns := make([]string, 0, len(t.namespaces))
	for n := range t.namespaces {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	nsSel := "-"
	if t.nsSelector != nil {
		nsSel = t.nsSelector.String()
	}
	return strings.Join([]string{ownerNS, t.topologyKey, t.selector.String(), strings.Join(ns, ","), nsSel}, "\x00")
}

func (ax *antiIndex) add(p *podInfo) {
	for i := range p.antiAffinity {
		t := &p.antiAffinity[i]
		id := t.identity(p.namespace)
		g := ax.groups[id]
		if g == nil {
			g = &antiTermGroup{term: *t, ownerNS: p.namespace, onNode: map[string]int{}}
			ax.groups[id] = g
			if t.nsSelector != nil {
				ax.anyNS[id] = g
			} else {
				for ns := range t.namespaces {
					if ax.byNS[ns] == nil {
						ax.byNS[ns] = map[string]*antiTermGroup{}
					}
					ax.byNS[ns][id] = g
				}
			}
		}
		g.onNode[p.nodeName]++
		ax.termKey[p] = append(ax.termKey[p], id)
	}
}

func (ax *antiIndex) remove(p *podInfo) {
	for _, id := range ax.termKey[p] {
		g := ax.groups[id]
		if g == nil {
			continue
		}
		if g.onNode[p.nodeName]--; g.onNode[p.nodeName] <= 0 {
			delete(g.onNode, p.nodeName)
		}
		if len(g.onNode) == 0 {
			delete(ax.groups, id)
			delete(ax.anyNS, id)
			for ns := range g.term.namespaces {
				delete(ax.byNS[ns], id)
				if len(ax.byNS[ns]) == 0 {
					delete(ax.byNS, ns)
				}
			}
		}
	}
	delete(ax.termKey, p)
}

// forEachFor calls fn for every term group that could select a pod in ns.
func (ax *antiIndex) forEachFor(ns string, fn func(*antiTermGroup)) {
	for _, g := range ax.byNS[ns] {
		fn(g)
	}
	for _, g := range ax.anyNS {
		fn(g)
	}
}
