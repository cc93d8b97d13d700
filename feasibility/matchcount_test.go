package feasibility

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestIndexMatchesEveryPod checks the pod index against matching every pod
// of the snapshot by its selector, through random pod and node updates:
// the pods forEachMatching visits, and the per-node counts countMatching
// gives, whether they come from walking groups or from the postings'
// per-node counts less the groups a selector leaves out.
func TestIndexMatchesEveryPod(t *testing.T) {
	defer func(old int) { minCountedPods = old }(minCountedPods)
	minCountedPods = 3 // most postings count per node
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			s := NewSnapshot()
			nodes := make([]*v1.Node, 12)
			for i := range nodes {
				nodes[i] = mcNode(r, i)
				if err := s.Upsert(nodes[i]); err != nil {
					t.Fatal(err)
				}
			}
			var names []string
			for step := 0; step < 1200; step++ {
				switch x := r.IntN(100); {
				case x < 55 || len(names) == 0:
					p := mcPod(r, fmt.Sprint("p", r.IntN(400)), nodes)
					if err := s.Upsert(p); err != nil {
						t.Fatal(err)
					}
					names = append(names, p.Namespace+"/"+p.Name)
				case x < 85:
					ns, name, _ := strings.Cut(names[r.IntN(len(names))], "/")
					s.DeletePod(ns, name)
				case x < 92:
					s.DeleteNode(nodes[r.IntN(len(nodes))].Name)
				default:
					i := r.IntN(len(nodes))
					nodes[i] = mcNode(r, i) // new labels, or the same
					if err := s.Upsert(nodes[i]); err != nil {
						t.Fatal(err)
					}
				}
				if step%40 == 39 {
					mcCheckNodes(t, s)
					for k := 0; k < 30; k++ {
						mcCompare(t, s, mcNamespaces[r.IntN(len(mcNamespaces))], mcSelector(r))
					}
				}
			}
		})
	}
}

var mcNamespaces = []string{"a", "b", "c"}

func mcNode(r *rand.Rand, i int) *v1.Node {
	l := map[string]string{v1.LabelHostname: fmt.Sprint("n", i)}
	if r.IntN(5) > 0 {
		l[v1.LabelTopologyZone] = fmt.Sprint("z", r.IntN(3))
	}
	if r.IntN(6) == 0 {
		l[v1.LabelHostname] = "shared" // two nodes can share a hostname label
	}
	alloc := v1.ResourceList{v1.ResourcePods: resource.MustParse("40"), v1.ResourceCPU: resource.MustParse("4")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("n", i), Labels: l},
		Status: v1.NodeStatus{Allocatable: alloc}}
}

func mcPod(r *rand.Rand, name string, nodes []*v1.Node) *v1.Pod {
	l := map[string]string{"app": fmt.Sprint("app", r.IntN(6))}
	if r.IntN(3) > 0 {
		l["tier"] = []string{"web", "db", "cache"}[r.IntN(3)]
	}
	if r.IntN(4) == 0 {
		l["track"] = "canary"
	}
	node := "ghost"
	if r.IntN(15) > 0 {
		node = nodes[r.IntN(len(nodes))].Name
	}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: mcNamespaces[r.IntN(len(mcNamespaces))], Labels: l},
		Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c"}}}}
	if r.IntN(8) == 0 {
		now := metav1.NewTime(time.Unix(1, 0))
		p.DeletionTimestamp = &now
	}
	if r.IntN(30) == 0 {
		p.Status.Phase = v1.PodSucceeded
	}
	return p
}

// mcSelector is one to three random requirements, or everything.
func mcSelector(r *rand.Rand) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(mcLabelSelector(r))
	if err != nil {
		panic(err)
	}
	return sel
}

func mcLabelSelector(r *rand.Rand) *metav1.LabelSelector {
	ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
		metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
	values := func(key string) []string {
		all := map[string][]string{"app": {"app0", "app1", "app2", "app3", "app4", "app5", "app9"},
			"tier": {"web", "db", "cache"}, "track": {"canary", "stable"}}[key]
		out := []string{all[r.IntN(len(all))]}
		for r.IntN(2) == 0 {
			out = append(out, all[r.IntN(len(all))]) // repeats too
		}
		return out
	}
	var ls metav1.LabelSelector
	for n := r.IntN(4); n > 0; n-- {
		key := []string{"app", "tier", "track"}[r.IntN(3)]
		op := ops[r.IntN(len(ops))]
		if r.IntN(4) == 0 {
			if ls.MatchLabels == nil {
				ls.MatchLabels = map[string]string{}
			}
			ls.MatchLabels[key] = values(key)[0]
			continue
		}
		req := metav1.LabelSelectorRequirement{Key: key, Operator: op}
		if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
			req.Values = values(key)
		}
		ls.MatchExpressions = append(ls.MatchExpressions, req)
	}
	return &ls
}

func mcCompare(t *testing.T, s *Snapshot, ns string, sel labels.Selector) {
	t.Helper()
	var want, got []string
	wantAt := map[int32][2]int{} // with terminating, without
	for k, p := range s.pods {
		if p.namespace() != ns || !sel.Matches(p.shape.labels) {
			continue
		}
		want = append(want, k.name)
		slot := s.nodes[p.nodeName()].slot
		c := wantAt[slot]
		c[0]++
		if !p.terminating {
			c[1]++
		}
		wantAt[slot] = c
	}
	s.podIndex.forEachMatching(ns, sel, func(p *podInfo) { got = append(got, p.name) })
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("forEachMatching(%s, %s) = %v, want %v", ns, sel, got, want)
	}
	for i, withTerminating := range []bool{true, false} {
		m := s.podIndex.countMatching(ns, sel, withTerminating)
		for slot, ni := range s.slots {
			if ni == nil {
				continue
			}
			if got, want := m.at(int32(slot)), wantAt[int32(slot)][i]; got != want {
				t.Fatalf("countMatching(%s, %s, %v) on %s = %d, want %d (counting %v)",
					ns, sel, withTerminating, ni.name, got, want, m.counting())
			}
		}
		for key, vals := range s.nodeLabelValues {
			for v, members := range vals {
				want := 0
				for _, slot := range members {
					want += wantAt[slot][i]
				}
				if got := s.domainCount(&m, key, v); got != want {
					t.Fatalf("domainCount(%s=%s) = %d, want %d", key, v, got, want)
				}
			}
		}
	}
}

// mcCheckNodes checks the node slots and the nodes filed by label.
func mcCheckNodes(t *testing.T, s *Snapshot) {
	t.Helper()
	for name, ni := range s.nodes {
		if s.slots[ni.slot] != ni {
			t.Fatalf("node %s: slot %d holds another", name, ni.slot)
		}
	}
	want := map[string]map[string][]string{}
	for _, ni := range s.nodeOrder {
		for k, v := range ni.node.Labels {
			if want[k] == nil {
				want[k] = map[string][]string{}
			}
			want[k][v] = append(want[k][v], ni.name)
		}
	}
	got := map[string]map[string][]string{}
	for k, vals := range s.nodeLabelValues {
		got[k] = map[string][]string{}
		for v, members := range vals {
			for _, slot := range members {
				got[k][v] = append(got[k][v], s.slots[slot].name)
			}
			slices.Sort(got[k][v])
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("nodes by label = %v, want %v", got, want)
	}
}

// TestCountedMatchesAgreeWithWalking builds the same cluster twice, through
// the same updates: once with postings counting pods per node from a
// handful of pods on, once with none counting. Checks of pods whose
// anti-affinity, affinity and spread select those pods must report the
// same in both.
func TestCountedMatchesAgreeWithWalking(t *testing.T) {
	defer func(old int) { minCountedPods = old }(minCountedPods)
	for seed := uint64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		counted, walked := NewSnapshot(), NewSnapshot()
		upsert := func(o runtime.Object) {
			minCountedPods = 3
			if err := counted.Upsert(o); err != nil {
				t.Fatal(err)
			}
			minCountedPods = 1 << 30
			if err := walked.Upsert(o); err != nil {
				t.Fatal(err)
			}
		}
		nodes := make([]*v1.Node, 12)
		for i := range nodes {
			nodes[i] = mcNode(r, i)
			upsert(nodes[i])
		}
		for _, ns := range mcNamespaces {
			upsert(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
				Labels: map[string]string{v1.LabelMetadataName: ns, "tier": ns}}})
		}
		for round := 0; round < 6; round++ {
			for i := 0; i < 60; i++ {
				upsert(mcPod(r, fmt.Sprint("p", r.IntN(300)), nodes))
			}
			for i := 0; i < 15; i++ {
				ns, name := mcNamespaces[r.IntN(3)], fmt.Sprint("p", r.IntN(300))
				minCountedPods = 3
				counted.DeletePod(ns, name)
				minCountedPods = 1 << 30
				walked.DeletePod(ns, name)
			}
			i := r.IntN(len(nodes))
			nodes[i] = mcNode(r, i)
			upsert(nodes[i])
			for k := 0; k < 40; k++ {
				w := mcWorkload(r, k)
				minCountedPods = 3
				got := Check(counted, w, nil)
				want := Check(walked, w, nil)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("seed %d round %d workload %d: counted differs from walked (-walked +counted):\n%s", seed, round, k, diff)
				}
			}
		}
	}
}

func mcWorkload(r *rand.Rand, i int) *Workload {
	ns := mcNamespaces[r.IntN(len(mcNamespaces))]
	term := func() v1.PodAffinityTerm {
		t := v1.PodAffinityTerm{LabelSelector: mcLabelSelector(r),
			TopologyKey: []string{v1.LabelHostname, v1.LabelTopologyZone}[r.IntN(2)]}
		switch r.IntN(4) {
		case 0:
			t.NamespaceSelector = &metav1.LabelSelector{}
		case 1:
			t.Namespaces = []string{"a", "c"}
		}
		return t
	}
	spec := v1.PodSpec{Containers: []v1.Container{{Name: "c"}}, Affinity: &v1.Affinity{}}
	if r.IntN(2) == 0 {
		spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term()}}
	}
	if r.IntN(3) == 0 {
		spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term()}}
	}
	for n := r.IntN(3); n > 0; n-- {
		c := v1.TopologySpreadConstraint{MaxSkew: int32(1 + r.IntN(2)), WhenUnsatisfiable: v1.DoNotSchedule,
			TopologyKey: []string{v1.LabelHostname, v1.LabelTopologyZone}[r.IntN(2)], LabelSelector: mcLabelSelector(r)}
		if r.IntN(3) == 0 {
			c.MinDomains = tbPtr(int32(1 + r.IntN(4)))
		}
		spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, c)
	}
	if r.IntN(4) == 0 {
		spec.NodeSelector = map[string]string{v1.LabelTopologyZone: "z1"}
	}
	labels := map[string]string{"app": fmt.Sprint("app", r.IntN(6))}
	if r.IntN(2) == 0 {
		labels["tier"] = "web"
	}
	replicas := int32(1 + r.IntN(4))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("w", i), Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
	w, err := WorkloadFromObject(d)
	if err != nil {
		panic(err)
	}
	return w
}
