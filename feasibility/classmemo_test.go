package feasibility

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/test/synth"
)

// TestClassMemoAgreesWithNodeByNode checks what checks work out per node
// class (classmemo.go) against the node-by-node path, on random pods with
// spread, inter-pod affinity, host ports and several replicas over a full
// synthetic cluster with cordoned, tainted, zero-pod and unlabelled nodes:
// every report must be identical, and the search must agree with the
// filters on every node.
func TestClassMemoAgreesWithNodeByNode(t *testing.T) {
	c, s := variedCluster(t, 11, 19, func(n *v1.Node) { delete(n.Labels, v1.LabelTopologyZone) })
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range c.Pods {
		if r.IntN(4) == 0 {
			s.DeletePod(p.Namespace, p.Name) // so that members differ in what they have free
		}
	}
	var settled, byTopology, notFit int
	for i := range 1500 {
		w := randomClassPod(r, i)
		w.Namespace = c.Namespaces[i%len(c.Namespaces)].Name
		addTopology(r, w)
		classesOff = true
		want := Check(s, w, nil)
		classesOff = false
		got := Check(s, w, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pod %d (%+v): with class memo %+v\nnode by node %+v", i, w.Template.Spec, got, want)
		}
		if want.Verdict != Fits {
			notFit++
		}
		cs := newCheckState(s, newCandidate(s, preparedPod(s, w)))
		for _, ni := range s.sortedNodes() {
			feasible, _ := cs.filterNode(ni, modeFeasible)
			first, _ := cs.filterNode(ni, modeClassify)
			if (feasible == nil) != (first == nil) || cs.classRulesOut(ni) && first == nil {
				t.Fatalf("pod %d on %s: modeFeasible %v, classified %v, class rules out %v", i, ni.name, feasible, first, cs.classRulesOut(ni))
			}
		}
		d := &diagnosis{}
		if _, n := cs.settleClasses(d); n > 0 {
			settled++
			if cs.memo.topologyByClass && (d.codeNodes(CodeTopologySpread) > 0 || d.codeNodes(CodePodAntiAffinity) > 0 ||
				d.codeNodes(CodePodAffinity) > 0 || d.codeNodes(CodeTopologyLabelMissing) > 0) {
				byTopology++
			}
		}
	}
	if settled < 500 || byTopology < 100 || notFit < 500 {
		t.Errorf("%d checks settled classes, %d by topology, %d did not fit: the test lost its power", settled, byTopology, notFit)
	}
}

// TestClassFitting checks the count of class members that have what a pod
// asks for free against counting them one by one, for requests that leave
// some members short of one resource, some of several, and some of none.
func TestClassFitting(t *testing.T) {
	c := synth.Generate(synth.Config{Seed: 5, Nodes: 120, Pods: 3000, Fill: 0.8})
	s, err := NewSnapshotFrom(c.Objects()...)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	// The generator fills every node to the same share of cpu: take pods
	// away at random so that members differ in what they have free.
	for _, p := range c.Pods {
		if r.IntN(4) == 0 {
			s.DeletePod(p.Namespace, p.Name)
		}
	}
	var classes []*nodeClass
	for _, k := range s.classList {
		if k != nil {
			classes = append(classes, k)
		}
	}
	several := 0
	for i := range 400 {
		// Ask for just more than some member has free of cpu and of
		// memory, so that a few members are short of one or both.
		k := classes[r.IntN(len(classes))]
		member := func() *nodeInfo { return k.byFree[dimCPU][r.IntN(k.size())].ni }
		cpu, mem := k.free(member(), dimCPU)+1, k.free(member(), dimMemory)+1
		w := &Workload{Kind: "Pod", Namespace: "team-01", Name: fmt.Sprintf("p%d", i), Replicas: 1, SpecPath: "spec",
			Template: v1.PodTemplateSpec{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "x",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					v1.ResourceCPU:    *resource.NewMilliQuantity(max(cpu, 1), resource.DecimalSI),
					v1.ResourceMemory: *resource.NewQuantity(max(mem, 1), resource.BinarySI)}}}}}}}
		cs := newCheckState(s, newCandidate(s, preparedPod(s, w)))
		for _, k := range s.classList {
			if k == nil {
				continue
			}
			want := 0
			for _, e := range k.byFree[dimCPU] {
				f := cs.filterResources(e.ni, modeFirst)
				if f == nil {
					want++
				} else if len(f.more) > 0 {
					several++
				}
			}
			if got := k.fitting(cs.requestDims()); got != want {
				t.Fatalf("pod %d, class %d: %d members fit, counted %d", i, k.id, want, got)
			}
		}
	}
	if several < 100 {
		t.Errorf("only %d members were short of several resources: the test lost its power", several)
	}
}

// addTopology gives a random pod spread constraints and inter-pod
// (anti-)affinity, most by zone (which node classes answer for), some by
// hostname (which they cannot), against its own app, existing apps, or
// nothing that exists; and sometimes a host port or several replicas.
func addTopology(r *rand.Rand, w *Workload) {
	spec := &w.Template.Spec
	if r.IntN(2) == 0 {
		// Small enough to fit many nodes, so that topology decides.
		cpu, mem := []string{"100m", "1500m", "3"}[r.IntN(3)], []string{"256Mi", "6Gi", "12Gi"}[r.IntN(3)]
		spec.Containers[0].Resources.Requests = v1.ResourceList{
			v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}
	}
	key := func() string {
		return []string{v1.LabelTopologyZone, v1.LabelTopologyZone, v1.LabelHostname, "node.kubernetes.io/pool"}[r.IntN(4)]
	}
	sel := func() *metav1.LabelSelector {
		app := []string{"app-0001", "app-0002", fmt.Sprintf("app-%04d", r.IntN(400)), "nothing", w.Template.Labels["app"]}[r.IntN(5)]
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	if spec.Affinity == nil {
		spec.Affinity = &v1.Affinity{}
	}
	if r.IntN(2) == 0 {
		term := v1.PodAffinityTerm{TopologyKey: key(), LabelSelector: sel()}
		if r.IntN(2) == 0 {
			term.NamespaceSelector = &metav1.LabelSelector{}
		}
		spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term}}
	}
	if r.IntN(5) == 0 {
		term := v1.PodAffinityTerm{TopologyKey: key(), LabelSelector: sel(), NamespaceSelector: &metav1.LabelSelector{}}
		spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term}}
	}
	if r.IntN(2) == 0 {
		tsc := v1.TopologySpreadConstraint{MaxSkew: int32(1 + r.IntN(2)), TopologyKey: key(),
			WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel()}
		if r.IntN(3) == 0 {
			md := int32(2 + r.IntN(3))
			tsc.MinDomains = &md
		}
		if r.IntN(3) == 0 {
			honor := v1.NodeInclusionPolicyHonor
			tsc.NodeTaintsPolicy = &honor
		}
		spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{tsc}
	}
	if r.IntN(10) == 0 {
		p := int32(9000 + r.IntN(50))
		spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: p, HostPort: p, Protocol: v1.ProtocolTCP}}
	}
	if r.IntN(4) == 0 {
		w.Replicas = int32(2 + r.IntN(6))
	}
}
