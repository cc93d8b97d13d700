package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// tcSpread adds a DoNotSchedule constraint over app=web, changed by mutate.
func tcSpread(key string, maxSkew int32, mutate ...func(*v1.TopologySpreadConstraint)) func(*v1.Pod) {
	return func(p *v1.Pod) {
		c := v1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key,
			WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: tcSel("app", "web")}
		for _, m := range mutate {
			m(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

// TestSpreadFilter mirrors PodTopologySpread's Filter node by node:
// existing + self - global minimum must not exceed maxSkew.
func TestSpreadFilter(t *testing.T) {
	web := func(name, node string) *v1.Pod { return tcPodOn(tbNS, name, node, "app", "web") }
	honor, ignore := v1.NodeInclusionPolicyHonor, v1.NodeInclusionPolicyIgnore
	terminating := func(p *v1.Pod) *v1.Pod {
		p.DeletionTimestamp = &metav1.Time{}
		return p
	}
	tests := []struct {
		name    string
		pod     *v1.Pod
		cluster []runtime.Object
		want    map[string]Code
	}{
		{"skew equal to maxSkew passes, one over fails",
			tcWeb(tcSpread(tcZoneKey, 2)),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), tcInZone("c1", "c"),
				web("w0", "a1"), web("w1", "a1"), web("w2", "b1")},
			map[string]Code{"a1": CodeTopologySpread, "b1": "", "c1": ""}},
		{"node without the topology key is unresolvable, and not a domain",
			tcWeb(tcSpread(tcZoneKey, 1)),
			[]runtime.Object{tcInZone("a1", "a"), tcNode("bare"), web("w0", "bare"), web("w1", "bare")},
			map[string]Code{"a1": "", "bare": CodeTopologyLabelMissing}},
		{"fewer domains than minDomains makes the minimum 0",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.MinDomains = tbPtr(int32(3)) })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), web("w0", "a1"), web("w1", "b1")},
			map[string]Code{"a1": CodeTopologySpread, "b1": CodeTopologySpread}},
		{"minDomains met uses the real minimum",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.MinDomains = tbPtr(int32(2)) })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), web("w0", "a1"), web("w1", "b1")},
			map[string]Code{"a1": "", "b1": ""}},
		{"nodeAffinityPolicy Honor drops domains the pod cannot use",
			tcWeb(tcSpread(tcZoneKey, 1), taSelector("disk", "ssd")),
			[]runtime.Object{tcInZone("a1", "a", "disk", "ssd"), tcInZone("b1", "b"), web("w0", "a1")},
			map[string]Code{"a1": "", "b1": CodeNodeAffinityMismatch}},
		{"nodeAffinityPolicy Ignore keeps them",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &ignore }), taSelector("disk", "ssd")),
			[]runtime.Object{tcInZone("a1", "a", "disk", "ssd"), tcInZone("b1", "b"), web("w0", "a1")},
			map[string]Code{"a1": CodeTopologySpread, "b1": CodeNodeAffinityMismatch}},
		{"nodeTaintsPolicy Ignore (default) counts a tainted node as a domain",
			tcWeb(tcSpread(v1.LabelHostname, 1)),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcTainted(tcNode("n3"), "dedicated"), web("w0", "n1"), web("w1", "n2")},
			map[string]Code{"n1": CodeTopologySpread, "n2": CodeTopologySpread, "n3": CodeUntoleratedTaint}},
		{"nodeTaintsPolicy Honor leaves it out",
			tcWeb(tcSpread(v1.LabelHostname, 1, func(c *v1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &honor })),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcTainted(tcNode("n3"), "dedicated"), web("w0", "n1"), web("w1", "n2")},
			map[string]Code{"n1": "", "n2": "", "n3": CodeUntoleratedTaint}},
		{"pods of other namespaces and terminating pods do not count",
			tcWeb(tcSpread(tcZoneKey, 1)),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"),
				tcPodOn("other", "w0", "a1", "app", "web"), tcPodOn("other", "w1", "a1", "app", "web"),
				terminating(web("w2", "a1"))},
			map[string]Code{"a1": "", "b1": ""}},
		{"a selector the pod does not match still bounds the skew",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.LabelSelector = tcSel("app", "db") })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"),
				tcPodOn(tbNS, "d0", "a1", "app", "db"), tcPodOn(tbNS, "d1", "a1", "app", "db")},
			map[string]Code{"a1": CodeTopologySpread, "b1": ""}},
		{"an empty selector counts nothing",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.LabelSelector = &metav1.LabelSelector{} })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), web("w0", "a1"), web("w1", "a1")},
			map[string]Code{"a1": "", "b1": ""}},
		{"matchLabelKeys leaves out pods of another revision",
			tcWeb(func(p *v1.Pod) { p.Labels["rev"] = "new" },
				tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.MatchLabelKeys = []string{"rev"} })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"),
				tcPodOn(tbNS, "w0", "a1", "app", "web", "rev", "old"), tcPodOn(tbNS, "w1", "a1", "app", "web", "rev", "old")},
			map[string]Code{"a1": "", "b1": ""}},
		{"ScheduleAnyway never filters",
			tcWeb(tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.WhenUnsatisfiable = v1.ScheduleAnyway })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), web("w0", "a1"), web("w1", "a1")},
			map[string]Code{"a1": "", "b1": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tcFilterEach(t, tt.pod, tt.cluster...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("failure per node (-want +got):\n%s", diff)
			}
		})
	}
}

// tcWebDeployment is a Deployment of app=web replicas of the given cpu.
func tcWebDeployment(replicas int32, cpu string, mutate ...func(*v1.Pod)) *appsv1.Deployment {
	p := tcWeb(func(p *v1.Pod) { p.Spec.Containers[0] = tbC("c", "cpu="+cpu, "") })
	for _, m := range mutate {
		m(p)
	}
	return &appsv1.Deployment{ObjectMeta: tbMeta("web"), Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: tcSel("app", "web"),
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec}}}
}

// TestSpreadReplicas: replicas are placed one by one, each counting for the
// next, so spread caps how many fit below what capacity allows.
func TestSpreadReplicas(t *testing.T) {
	small := func(n *v1.Node) *v1.Node { n.Status.Allocatable = tbList("cpu=1,memory=8Gi,pods=110"); return n }
	hash := func(p *v1.Pod) { p.Labels["pod-template-hash"] = "old1" }
	old := func(name string) *v1.Pod {
		p := tcPodOn(tbNS, name, "a1", "app", "web")
		hash(p)
		return p
	}
	byHash := func(c *v1.TopologySpreadConstraint) { c.MatchLabelKeys = []string{"pod-template-hash"} }
	tests := []struct {
		name     string
		workload runtime.Object
		cluster  []runtime.Object
		fit      int32
		verdict  Verdict
	}{
		{"three zones, one small: 2+2+1",
			tcWebDeployment(6, "1", tcSpread(tcZoneKey, 1)),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), small(tcInZone("c1", "c"))}, 5, Transient},
		{"hostname spread over a big and a small node",
			tcWebDeployment(4, "1", tcSpread(v1.LabelHostname, 1)),
			[]runtime.Object{tcNode("n1"), small(tcNode("n2"))}, 3, Transient},
		{"minDomains above the domain count: one per zone",
			tcWebDeployment(3, "100m", tcSpread(tcZoneKey, 1, func(c *v1.TopologySpreadConstraint) { c.MinDomains = tbPtr(int32(3)) })),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b")}, 2, Transient},
		{"a new revision does not count the old one's pods (matchLabelKeys pod-template-hash)",
			tcWebDeployment(2, "1", tcSpread(tcZoneKey, 1, byHash)),
			[]runtime.Object{tcInZone("a1", "a"), small(tcInZone("b1", "b")), old("o0"), old("o1"), old("o2")}, 2, Fits},
		{"without matchLabelKeys the old revision's pods count",
			tcWebDeployment(2, "1", tcSpread(tcZoneKey, 1)),
			[]runtime.Object{tcInZone("a1", "a"), small(tcInZone("b1", "b")), old("o0"), old("o1"), old("o2")}, 1, Transient},
		{"a template that already sets pod-template-hash keeps it",
			tcWebDeployment(2, "1", hash, tcSpread(tcZoneKey, 1, byHash)),
			[]runtime.Object{tcInZone("a1", "a"), small(tcInZone("b1", "b")), old("o0"), old("o1"), old("o2")}, 1, Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tcCheck(t, tt.workload, tt.cluster...)
			if r.ReplicasFit != tt.fit || r.Verdict != tt.verdict {
				t.Errorf("fit %d, verdict %s; want %d, %s (%s)", r.ReplicasFit, r.Verdict, tt.fit, tt.verdict, r.Summary)
			}
		})
	}
}

func TestAddControllerLabels(t *testing.T) {
	tests := []struct {
		kind string
		have map[string]string
		want map[string]string
	}{
		{"Pod", map[string]string{"app": "web"}, map[string]string{"app": "web"}},
		{"ReplicaSet", map[string]string{"app": "web"}, map[string]string{"app": "web"}},
		{"Deployment", map[string]string{"app": "web"}, map[string]string{"app": "web", "pod-template-hash": newRevisionLabelValue}},
		{"Deployment", map[string]string{"pod-template-hash": "x"}, map[string]string{"pod-template-hash": "x"}},
		{"StatefulSet", nil, map[string]string{"controller-revision-hash": newRevisionLabelValue}},
		{"DaemonSet", nil, map[string]string{"controller-revision-hash": newRevisionLabelValue}},
		{"Job", nil, map[string]string{"batch.kubernetes.io/controller-uid": newRevisionLabelValue, "controller-uid": newRevisionLabelValue}},
	}
	for _, tt := range tests {
		template := map[string]string{}
		for k, v := range tt.have {
			template[k] = v
		}
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: template}}
		addControllerLabels(tt.kind, p)
		if diff := cmp.Diff(tt.want, p.Labels, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: labels (-want +got):\n%s", tt.kind, diff)
		}
		if diff := cmp.Diff(tt.have, template, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: the template's own labels changed (-want +got):\n%s", tt.kind, diff)
		}
	}
}
