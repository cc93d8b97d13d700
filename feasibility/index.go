package feasibility

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// This file and podindex.go keep the indexes that let a check look only at
// the pods that can matter to it, instead of every pod in the cluster:
// bound pods by namespace and by label (podindex.go), and existing pods'
// required anti-affinity terms grouped by identity with a count per node
// (here). All are updated as pods come and go, so a check never rebuilds
// them.

// antiTermGroup is one distinct required anti-affinity term, shared by the
// pods that carry it (the replicas of one workload, typically), with how
// many of those pods run on each node.
type antiTermGroup struct {
	term    affinityTerm
	ownerNS string
	onNode  map[string]int
	// requires is a "key=value" every pod the term selects carries.
	requires string
}

// antiIndex groups existing pods' anti-affinity terms. Terms that name
// their namespaces are filed under each of them; terms with a
// namespaceSelector can match a pod in any namespace. Within each, a term
// whose selector requires a label value is filed under it, so a candidate
// only meets the terms that could select it.
type antiIndex struct {
	groups map[string]*antiTermGroup
	byNS   map[string]*antiBucket
	anyNS  *antiBucket
}

func newAntiIndex() antiIndex {
	return antiIndex{groups: map[string]*antiTermGroup{}, byNS: map[string]*antiBucket{},
		anyNS: newAntiBucket()}
}

// antiBucket files term groups by a "key=value" their selector requires,
// or under other when it requires none.
type antiBucket struct {
	byLabel map[string]map[string]*antiTermGroup
	other   map[string]*antiTermGroup
}

func newAntiBucket() *antiBucket {
	return &antiBucket{byLabel: map[string]map[string]*antiTermGroup{}, other: map[string]*antiTermGroup{}}
}

func (b *antiBucket) add(id string, g *antiTermGroup) {
	if g.requires == "" {
		b.other[id] = g
		return
	}
	m := b.byLabel[g.requires]
	if m == nil {
		m = map[string]*antiTermGroup{}
		b.byLabel[g.requires] = m
	}
	m[id] = g
}

func (b *antiBucket) remove(id string, g *antiTermGroup) {
	if g.requires == "" {
		delete(b.other, id)
		return
	}
	if m := b.byLabel[g.requires]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(b.byLabel, g.requires)
		}
	}
}

func (b *antiBucket) empty() bool { return len(b.byLabel) == 0 && len(b.other) == 0 }

// forEach calls fn for every group that could select a pod with podLabels.
func (b *antiBucket) forEach(podLabels map[string]string, fn func(*antiTermGroup)) {
	if b == nil {
		return
	}
	if len(b.byLabel) > 0 {
		// The "key=value" lookups share one buffer: the map index with a
		// converted byte slice does not allocate a string.
		var buf [64]byte
		for k, v := range podLabels {
			kv := append(append(append(buf[:0], k...), '='), v...)
			for _, g := range b.byLabel[string(kv)] {
				fn(g)
			}
		}
	}
	for _, g := range b.other {
		fn(g)
	}
}

// requiredLabel returns "key=value" for the first requirement of sel that
// only a pod with exactly that label can meet, or "".
func requiredLabel(sel labels.Selector) string {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return ""
	}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if r.Values().Len() == 1 {
				v, _ := r.Values().PopAny()
				return r.Key() + "=" + v
			}
		}
	}
	return ""
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
	terms, ids := p.antiAffinity(), p.antiIDs()
	for i := range terms {
		t, id := &terms[i], ids[i]
		g := ax.groups[id]
		if g == nil {
			g = &antiTermGroup{term: *t, ownerNS: p.namespace(), onNode: map[string]int{}, requires: requiredLabel(t.selector)}
			ax.groups[id] = g
			if t.nsSelector != nil {
				ax.anyNS.add(id, g)
			} else {
				for ns := range t.namespaces {
					if ax.byNS[ns] == nil {
						ax.byNS[ns] = newAntiBucket()
					}
					ax.byNS[ns].add(id, g)
				}
			}
		}
		g.onNode[p.nodeName()]++
	}
}

func (ax *antiIndex) remove(p *podInfo) {
	for _, id := range p.antiIDs() {
		g := ax.groups[id]
		if g == nil {
			continue
		}
		node := p.nodeName()
		if g.onNode[node]--; g.onNode[node] <= 0 {
			delete(g.onNode, node)
		}
		if len(g.onNode) == 0 {
			delete(ax.groups, id)
			if g.term.nsSelector != nil {
				ax.anyNS.remove(id, g)
			} else {
				for ns := range g.term.namespaces {
					if b := ax.byNS[ns]; b != nil {
						b.remove(id, g)
						if b.empty() {
							delete(ax.byNS, ns)
						}
					}
				}
			}
		}
	}
}

// forEachFor calls fn for every term group that could select a pod with
// podLabels in ns.
func (ax *antiIndex) forEachFor(ns string, podLabels map[string]string, fn func(*antiTermGroup)) {
	ax.byNS[ns].forEach(podLabels, fn)
	ax.anyNS.forEach(podLabels, fn)
}
