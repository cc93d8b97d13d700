package feasibility

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Builders for the Check tests, prefixed tk.

func tkNode(name, alloc string, mutate ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{Allocatable: tbList(alloc)}}
	if _, ok := n.Status.Allocatable[v1.ResourcePods]; !ok {
		n.Status.Allocatable[v1.ResourcePods] = tbList("pods=110")[v1.ResourcePods]
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func tkBound(name, node, requests string, labels map[string]string) *v1.Pod {
	p := tbPod(tbC("c", requests, ""))
	p.Name, p.Spec.NodeName, p.Labels = name, node, labels
	return p
}

func tkDeployment(replicas int32, requests string, mutate ...func(*v1.PodSpec)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: tbMeta("api"), Spec: appsv1.DeploymentSpec{
		Replicas: &replicas,
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
			Spec: v1.PodSpec{Containers: []v1.Container{tbC("c", requests, "")}}},
	}}
	for _, m := range mutate {
		m(&d.Spec.Template.Spec)
	}
	return d
}

func tkCheck(t *testing.T, opts *Options, workload runtime.Object, cluster ...runtime.Object) *Report {
	t.Helper()
	s := tbSnap(t, nil, cluster...)
	w, err := WorkloadFromObject(workload)
	if err != nil {
		t.Fatal(err)
	}
	return Check(s, w, opts)
}

func TestCheckReplicas(t *testing.T) {
	two := "cpu=2,memory=4Gi"
	tests := []struct {
		name        string
		cluster     []runtime.Object
		workload    runtime.Object
		opts        *Options
		wantVerdict Verdict
		wantFit     int32
		wantSummary string
	}{
		{
			name:        "every replica fits",
			cluster:     []runtime.Object{tkNode("a", two), tkNode("b", two)},
			workload:    tkDeployment(4, "cpu=1"),
			wantVerdict: Fits, wantFit: 4,
		},
		{
			name:        "each placement consumes capacity",
			cluster:     []runtime.Object{tkNode("a", two), tkNode("b", two)},
			workload:    tkDeployment(5, "cpu=1"),
			wantVerdict: Transient, wantFit: 4,
			wantSummary: "only 4 of 5 replicas fit now: 0/2 nodes are available: 2 Insufficient cpu.",
		},
		{
			name:        "bound pods consume capacity",
			cluster:     []runtime.Object{tkNode("a", two), tkBound("x", "a", "cpu=1500m", nil)},
			workload:    tkDeployment(1, "cpu=501m"),
			wantVerdict: Transient, wantFit: 0,
			wantSummary: "0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name:        "zero replicas fit trivially",
			cluster:     []runtime.Object{tkNode("a", two)},
			workload:    tkDeployment(0, "cpu=64"),
			wantVerdict: Fits, wantFit: 0,
		},
		{
			name:        "larger than every node is permanent",
			cluster:     []runtime.Object{tkNode("a", two), tkNode("b", "cpu=4,memory=8Gi")},
			workload:    tkDeployment(1, "cpu=6"),
			wantVerdict: Permanent, wantFit: 0,
			wantSummary: "0/2 nodes are available: 2 Insufficient cpu.",
		},
		{
			name:        "an autoscaler with an unknown shape makes it transient",
			cluster:     []runtime.Object{tkNode("a", two)},
			workload:    tkDeployment(1, "cpu=6"),
			opts:        &Options{Autoscaler: &AutoscalerOptions{}},
			wantVerdict: Transient, wantFit: 0,
		},
		{
			name:        "an autoscaler whose largest node is too small does not help",
			cluster:     []runtime.Object{tkNode("a", two)},
			workload:    tkDeployment(1, "cpu=6"),
			opts:        &Options{Autoscaler: &AutoscalerOptions{MaxNode: tkNode("template", "cpu=4,memory=16Gi")}},
			wantVerdict: Permanent, wantFit: 0,
		},
		{
			name:        "an autoscaler whose largest node is big enough helps",
			cluster:     []runtime.Object{tkNode("a", two)},
			workload:    tkDeployment(1, "cpu=6"),
			opts:        &Options{Autoscaler: &AutoscalerOptions{MaxNode: tkNode("template", "cpu=16,memory=64Gi")}},
			wantVerdict: Transient, wantFit: 0,
		},
		{
			name:    "host ports allow one replica per node",
			cluster: []runtime.Object{tkNode("a", two), tkNode("b", two)},
			workload: tkDeployment(3, "cpu=100m", func(s *v1.PodSpec) {
				s.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			}),
			wantVerdict: Transient, wantFit: 2,
			wantSummary: "only 2 of 3 replicas fit now: 0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.",
		},
		{
			name:        "no nodes at all is transient, not permanent",
			workload:    tkDeployment(1, "cpu=1"),
			wantVerdict: Transient, wantFit: 0,
			wantSummary: "0/0 nodes are available.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tkCheck(t, tt.opts, tt.workload, tt.cluster...)
			got := []interface{}{r.Verdict, r.ReplicasFit}
			want := []interface{}{tt.wantVerdict, tt.wantFit}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("verdict, replicasFit (-want +got):\n%s\nreasons: %+v", diff, r.Reasons)
			}
			if tt.wantSummary != "" && r.Summary != tt.wantSummary {
				t.Errorf("summary %q, want %q", r.Summary, tt.wantSummary)
			}
		})
	}
}

func TestCheckHint(t *testing.T) {
	r := tkCheck(t, nil, tkDeployment(1, "cpu=6"),
		tkNode("a", "cpu=4,memory=8Gi"), tkNode("b", "cpu=8,memory=8Gi"), tkBound("x", "b", "cpu=4500m", nil))
	want := `requests 6 cpu; largest free node has 4 cpu (node "a"); largest node allocatable is 8 cpu`
	if r.Hint != want {
		t.Errorf("hint %q, want %q", r.Hint, want)
	}
	if r.Verdict != Transient {
		t.Errorf("verdict %s, want transient: node b could take it once x is gone", r.Verdict)
	}
}

func TestCheckTaintHint(t *testing.T) {
	tainted := func(n *v1.Node) {
		n.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}
	}
	r := tkCheck(t, nil, tkDeployment(1, "cpu=1"), tkNode("a", "cpu=4,memory=8Gi", tainted))
	if want := "nodes carry taint dedicated=gpu:NoSchedule, which the pod does not tolerate"; r.Hint != want {
		t.Errorf("hint %q, want %q", r.Hint, want)
	}
	if r.Verdict != Permanent {
		t.Errorf("verdict %s, want permanent", r.Verdict)
	}
}

// TestCheckNeverNamesOtherNamespaces: an anti-affinity conflict with a pod
// in another namespace must not reveal that pod's name or namespace.
func TestCheckNeverNamesOtherNamespaces(t *testing.T) {
	secret := tkBound("payroll-db-0", "a", "cpu=100m", map[string]string{"app": "db"})
	secret.Namespace = "finance"
	secret.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			TopologyKey:       v1.LabelHostname,
			LabelSelector:     &metav1.LabelSelector{},
			NamespaceSelector: &metav1.LabelSelector{},
		}},
	}}
	r := tkCheck(t, nil, tkDeployment(1, "cpu=100m"), tkNode("a", "cpu=4,memory=8Gi"), secret)
	if r.Verdict != Transient {
		t.Fatalf("verdict %s, want transient (existing pod's anti-affinity)", r.Verdict)
	}
	all := r.Summary + " " + r.Hint
	for _, x := range r.Reasons {
		all += " " + x.Message
		for _, v := range x.Details {
			all += " " + v
		}
	}
	for _, leak := range []string{"payroll", "finance"} {
		if strings.Contains(all, leak) {
			t.Errorf("report mentions %q from another namespace: %s", leak, all)
		}
	}
	if !strings.Contains(r.Hint, "other namespaces") {
		t.Errorf("hint %q should say the conflict is with pods in other namespaces", r.Hint)
	}
}

func TestCheckDaemonSet(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: tbMeta("agent"), Spec: appsv1.DaemonSetSpec{
		Template: v1.PodTemplateSpec{Spec: v1.PodSpec{
			NodeSelector: map[string]string{"pool": "web"},
			Containers:   []v1.Container{tbC("c", "cpu=1", "")},
		}},
	}}
	pool := func(p string) func(*v1.Node) { return func(n *v1.Node) { n.Labels["pool"] = p } }
	cordoned := func(n *v1.Node) { n.Spec.Unschedulable = true }
	r := tkCheck(t, nil, ds,
		tkNode("a", "cpu=2,memory=4Gi", pool("web")),
		tkNode("b", "cpu=2,memory=4Gi", pool("web"), cordoned), // daemon pods tolerate cordons
		tkNode("c", "cpu=2,memory=4Gi", pool("web")),
		tkNode("d", "cpu=2,memory=4Gi", pool("db")), // not targeted
		tkBound("full", "c", "cpu=1500m", nil),
	)
	if r.Replicas != 3 || r.ReplicasFit != 2 || r.Verdict != Transient {
		t.Errorf("replicas %d, fit %d, verdict %s; want 3, 2, transient", r.Replicas, r.ReplicasFit, r.Verdict)
	}
	if want := "2/3 target nodes can run the pod: 1 Insufficient cpu."; r.Summary != want {
		t.Errorf("summary %q, want %q", r.Summary, want)
	}
}

func TestCheckGatedJudgedAsUngated(t *testing.T) {
	d := tkDeployment(1, "cpu=1", func(s *v1.PodSpec) {
		s.SchedulingGates = []v1.PodSchedulingGate{{Name: "example.com/quota"}}
	})
	r := tkCheck(t, nil, d, tkNode("a", "cpu=2,memory=4Gi"))
	if !r.Gated || r.Verdict != Fits {
		t.Errorf("gated %v verdict %s; want gated and fits", r.Gated, r.Verdict)
	}
}

func TestCheckDoesNotMutateWorkload(t *testing.T) {
	d := tkDeployment(2, "", func(s *v1.PodSpec) { s.Containers[0].Resources.Limits = tbList("cpu=1") })
	before := d.DeepCopy()
	tkCheck(t, nil, d, tkNode("a", "cpu=2,memory=4Gi"))
	if diff := cmp.Diff(before, d); diff != "" {
		t.Errorf("Check changed the workload (-before +after):\n%s", diff)
	}
}

func TestReplacePods(t *testing.T) {
	s := NewSnapshot()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("2"), v1.ResourcePods: resource.MustParse("10")}}}
	_ = s.Upsert(node)
	pod := func(name, cpu string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}, Spec: v1.PodSpec{NodeName: "n",
			Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}}}
	}
	_ = s.Upsert(pod("old", "1"))
	_ = s.Upsert(pod("kept", "500m"))
	var gone []string
	s.ReplacePods([]*PodSummary{SummarizePod(pod("kept", "1")), SummarizePod(pod("new", "500m"))},
		func(ns, name string) { gone = append(gone, ns+"/"+name) })
	if len(gone) != 1 || gone[0] != "a/old" {
		t.Errorf("dropped %v, want [a/old]", gone)
	}
	if n := s.Counts()[KindPod]; n != 2 {
		t.Errorf("%d pods, want 2", n)
	}
	if got := s.nodes["n"].requested.MilliCPU; got != 1500 {
		t.Errorf("node requests %dm, want 1500m (kept updated to 1, new 500m, old gone)", got)
	}
}

// TestInsufficientExtendedResourcesWordedTheSame: with several extended
// resources short on every node, the finding names the first by name, the
// same on every check.
func TestInsufficientExtendedResourcesWordedTheSame(t *testing.T) {
	node := tkNode("n1", "cpu=8,memory=16Gi,example.com/b=1,example.com/a=1,example.com/c=1")
	pod := tbPod(tbC("c", "cpu=1,example.com/c=2,example.com/b=2,example.com/a=2", "example.com/c=2,example.com/b=2,example.com/a=2"))
	var first string
	for i := range 50 {
		rep := tkCheck(t, nil, pod, node)
		var msgs []string
		for _, r := range rep.Reasons {
			if r.Code == CodeInsufficientResource {
				msgs = append(msgs, r.Message+" "+r.Details["resource"])
			}
		}
		got := strings.Join(msgs, "; ")
		if i == 0 {
			first = got
			if !strings.Contains(got, "Insufficient example.com/a example.com/a") {
				t.Fatalf("the finding does not name example.com/a: %q (all: %+v)", got, rep.Reasons)
			}
		} else if got != first {
			t.Fatalf("check %d worded %q, the first %q", i, got, first)
		}
	}
}
