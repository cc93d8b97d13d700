package feasibility_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// FuzzDecodeDocuments feeds arbitrary bytes to the manifest and state
// loader: it must return documents or an error, never panic or hang.
func FuzzDecodeDocuments(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}]}\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n}\n",
		"---\n# only a comment\n---\n",
		"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"}}",
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
		"kind: Pod\n",
		"apiVersion: v1\nkind: Pod\nspec: {containers: [{resources: {requests: {cpu: banana}}}]}\n",
		": : :\n\t- [",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := feasibility.DecodeDocuments("fuzz", bytes.NewReader(data))
		for _, d := range docs {
			if d.Object == nil && d.Unknown == nil {
				t.Fatalf("document %d has neither an object nor an unknown kind", d.Index)
			}
		}
		_ = err
	})
}

// FuzzCheck builds a random cluster and workload from the fuzzer's seed
// and asserts the engine's invariants: no panic; "fits" means every
// replica fits; a permanent reason is never "fits"; replicasFit never
// exceeds replicas.
func FuzzCheck(f *testing.F) {
	for i := uint64(0); i < 16; i++ {
		f.Add(i, i*7919)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		objs, w := randomCase(r)
		s, err := feasibility.NewSnapshotFrom(objs...)
		if err != nil {
			t.Fatal(err)
		}
		if r.IntN(2) == 0 {
			s.MarkKnown(feasibility.AllKinds...)
		}
		wl, err := feasibility.WorkloadFromObject(w)
		if err != nil {
			t.Fatal(err)
		}
		var opts *feasibility.Options
		if r.IntN(4) == 0 {
			opts = &feasibility.Options{Autoscaler: &feasibility.AutoscalerOptions{}}
		}
		rep := feasibility.Check(s, wl, opts)
		if rep.ReplicasFit > rep.Replicas || rep.ReplicasFit < 0 {
			t.Fatalf("replicasFit %d outside [0, %d]", rep.ReplicasFit, rep.Replicas)
		}
		if rep.Verdict == feasibility.Fits && rep.ReplicasFit != rep.Replicas {
			t.Fatalf("fits with %d of %d replicas", rep.ReplicasFit, rep.Replicas)
		}
		for _, x := range rep.Reasons {
			if x.Severity == feasibility.SeverityPermanent && rep.Verdict != feasibility.Permanent {
				t.Fatalf("verdict %s with permanent reason %s", rep.Verdict, x.Code)
			}
		}
		// Check must not change the snapshot: a second run agrees.
		again := feasibility.Check(s, wl, opts)
		if again.Verdict != rep.Verdict || again.ReplicasFit != rep.ReplicasFit {
			t.Fatalf("second check differs: %s/%d vs %s/%d", again.Verdict, again.ReplicasFit, rep.Verdict, rep.ReplicasFit)
		}
	})
}

func randomCase(r *rand.Rand) ([]runtime.Object, runtime.Object) {
	q := func(max int64, unit string) resource.Quantity {
		return resource.MustParse(fmt.Sprintf("%d%s", r.Int64N(max+1), unit))
	}
	zones := []string{"a", "b", "c"}
	var objs []runtime.Object
	nodes := r.IntN(5)
	for i := 0; i < nodes; i++ {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i), Labels: map[string]string{
			v1.LabelHostname: fmt.Sprintf("n%d", i), "pool": []string{"x", "y"}[r.IntN(2)]}},
			Status: v1.NodeStatus{Allocatable: v1.ResourceList{
				v1.ResourceCPU: q(8000, "m"), v1.ResourceMemory: q(16, "Gi"), v1.ResourcePods: q(5, "")}}}
		if r.IntN(2) == 0 {
			n.Labels[v1.LabelTopologyZone] = zones[r.IntN(3)]
		}
		if r.IntN(4) == 0 {
			n.Spec.Taints = []v1.Taint{{Key: "k", Value: "v", Effect: v1.TaintEffectNoSchedule}}
		}
		n.Spec.Unschedulable = r.IntN(6) == 0
		objs = append(objs, n)
	}
	spec := func() v1.PodSpec {
		c := v1.Container{Name: "c", Image: "i", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: q(3000, "m"), v1.ResourceMemory: q(4, "Gi")}}}
		if r.IntN(4) == 0 {
			c.Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: int32(8000 + r.IntN(2))}}
		}
		s := v1.PodSpec{Containers: []v1.Container{c}}
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": []string{"a", "b"}[r.IntN(2)]}}
		switch r.IntN(6) {
		case 0:
			s.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: v1.LabelHostname, LabelSelector: sel}}}}
		case 1:
			s.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: v1.LabelTopologyZone, LabelSelector: sel}}}}
		case 2:
			s.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: int32(1 + r.IntN(2)), TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel}}
		case 3:
			s.NodeSelector = map[string]string{"pool": "x"}
		case 4:
			s.Tolerations = []v1.Toleration{{Key: "k", Operator: v1.TolerationOpExists}}
		}
		return s
	}
	for i := 0; i < r.IntN(8); i++ {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default",
			Labels: map[string]string{"app": []string{"a", "b"}[r.IntN(2)]}}, Spec: spec()}
		if nodes > 0 {
			p.Spec.NodeName = fmt.Sprintf("n%d", r.IntN(nodes))
		}
		objs = append(objs, p)
	}
	replicas := int32(r.IntN(6))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: v1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}}, Spec: spec()}}}
	return objs, d
}
