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

// variedCluster is a 240-node synthetic cluster in which, of every period
// nodes, one is cordoned, one tainted, one allows no pods and one is
// changed by other, for tests that compare a shortcut with the
// node-by-node path.
func variedCluster(t *testing.T, seed uint64, period int, other func(*v1.Node)) (*synth.Cluster, *Snapshot) {
	t.Helper()
	c := synth.Generate(synth.Config{Seed: seed, Nodes: 240, Pods: 6000, Fill: 0.85})
	for i, n := range c.Nodes {
		switch i % period {
		case 3:
			n.Spec.Unschedulable = true
		case 5:
			n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoSchedule})
		case 7:
			n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("0")
		case 9:
			other(n)
		}
	}
	s, err := NewSnapshotFrom(c.Objects()...)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestClassesAgreeWithNodeByNode checks the class shortcut against the
// node-by-node path on random pods over a synthetic cluster with cordoned,
// extra-tainted, full and zero-pod nodes: every report must be identical.
func TestClassesAgreeWithNodeByNode(t *testing.T) {
	c, s := variedCluster(t, 7, 17, func(n *v1.Node) { n.Labels["disk"] = "ssd" })
	// Churn a little, so the class indexes have seen removals too.
	for _, p := range c.Pods[:500] {
		s.DeletePod(p.Namespace, p.Name)
	}
	for _, p := range c.Pods[:250] {
		if err := s.Upsert(p); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var shortcut, notFit int
	for i := range 1500 {
		w := randomClassPod(r, i)
		classesOff = true
		want := Check(s, w, nil)
		classesOff = false
		got := Check(s, w, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pod %d (%+v): by class %+v\nnode by node %+v", i, w.Template.Spec, got, want)
		}
		if want.Verdict != Fits {
			notFit++
		}
		cand := newCandidate(s, preparedPod(s, w))
		if newCheckState(s, cand).byClass() {
			shortcut++
		}
	}
	if shortcut < 1000 || notFit < 300 {
		t.Errorf("only %d checks took the class path and %d did not fit: the test lost its power", shortcut, notFit)
	}
}

func preparedPod(s *Snapshot, w *Workload) *v1.Pod {
	p, _ := preparePod(s, w)
	return p
}

func randomClassPod(r *rand.Rand, i int) *Workload {
	res := v1.ResourceList{}
	if r.IntN(5) > 0 {
		res[v1.ResourceCPU] = *resource.NewMilliQuantity(r.Int64N(40000), resource.DecimalSI)
	}
	if r.IntN(3) > 0 {
		res[v1.ResourceMemory] = *resource.NewQuantity(r.Int64N(140)<<30, resource.BinarySI)
	}
	if r.IntN(6) == 0 {
		res["example.com/gpu"] = *resource.NewQuantity(r.Int64N(6), resource.DecimalSI)
	}
	if r.IntN(8) == 0 {
		res[v1.ResourceEphemeralStorage] = *resource.NewQuantity(r.Int64N(120)<<30, resource.BinarySI)
	}
	spec := v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "x", Resources: v1.ResourceRequirements{Requests: res}}}}
	if r.IntN(3) == 0 {
		spec.Tolerations = append(spec.Tolerations, v1.Toleration{Key: "example.com/gpu", Operator: v1.TolerationOpExists})
	}
	if r.IntN(6) == 0 {
		spec.Tolerations = append(spec.Tolerations, v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists})
	}
	switch r.IntN(8) {
	case 0:
		spec.NodeSelector = map[string]string{"node.kubernetes.io/pool": []string{"general", "compute", "memory", "gpu", "none"}[r.IntN(5)]}
	case 1:
		spec.NodeSelector = map[string]string{"disk": "ssd"}
	case 2:
		spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
				Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{"zone-b"}}}}}}}}
	case 3:
		// Reads the hostname: the shortcut must stand aside.
		spec.NodeSelector = map[string]string{v1.LabelHostname: fmt.Sprintf("node-%05d", r.IntN(240))}
	}
	return &Workload{Kind: "Pod", Namespace: "team-01", Name: fmt.Sprintf("p%d", i), Replicas: 1, SpecPath: "spec",
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": fmt.Sprintf("p%d", i%13)}}, Spec: spec}}
}
