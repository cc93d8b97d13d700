package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestFilterNode runs the node filters the scheduler runs before
// NodeResourcesFit (NodeName, NodeUnschedulable, TaintToleration,
// NodeAffinity) on one node, and checks the first failure: its reason,
// and whether anything makes the node unresolvable.
func TestFilterNode(t *testing.T) {
	const alloc = "cpu=2,memory=4Gi"
	noSchedule := taTaint("dedicated", "db", v1.TaintEffectNoSchedule)
	noExecute := taTaint("dedicated", "db", v1.TaintEffectNoExecute)
	tests := []struct {
		name         string
		node         *v1.Node
		pod          *v1.Pod
		wantReasons  []string // nil: the pod fits
		unresolvable bool
	}{
		{"plain node", taNode("n1", alloc), taPod("p", nil), nil, false},
		{"cordoned", taNode("n1", alloc, taCordoned), taPod("p", nil),
			[]string{reasonUnschedulable}, true},
		{"cordon tolerated by key", taNode("n1", alloc, taCordoned),
			taPod("p", nil, taTolerate(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule})),
			nil, false},
		{"cordon not tolerated by a NoExecute toleration", taNode("n1", alloc, taCordoned),
			taPod("p", nil, taTolerate(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute})),
			[]string{reasonUnschedulable}, true},
		{"cordon tolerated by an empty-key Exists", taNode("n1", alloc, taCordoned),
			taPod("p", nil, taTolerate(v1.Toleration{Operator: v1.TolerationOpExists})), nil, false},
		{"NoSchedule untolerated", taNode("n1", alloc, taTaints(noSchedule)), taPod("p", nil),
			[]string{reasonTaints}, true},
		{"NoExecute untolerated", taNode("n1", alloc, taTaints(noExecute)), taPod("p", nil),
			[]string{reasonTaints}, true},
		{"PreferNoSchedule only scores", taNode("n1", alloc, taTaints(taTaint("spot", "", v1.TaintEffectPreferNoSchedule))),
			taPod("p", nil), nil, false},
		{"Equal toleration", taNode("n1", alloc, taTaints(noSchedule)),
			taPod("p", nil, taTolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db", Effect: v1.TaintEffectNoSchedule})),
			nil, false},
		{"Equal toleration, other value", taNode("n1", alloc, taTaints(noSchedule)),
			taPod("p", nil, taTolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "cache", Effect: v1.TaintEffectNoSchedule})),
			[]string{reasonTaints}, true},
		{"toleration without effect covers both effects", taNode("n1", alloc, taTaints(noSchedule, noExecute)),
			taPod("p", nil, taTolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db"})),
			nil, false},
		{"NoSchedule toleration does not cover NoExecute", taNode("n1", alloc, taTaints(noExecute)),
			taPod("p", nil, taTolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule})),
			[]string{reasonTaints}, true},
		{"unreachable NoExecute tolerated by admission's default", taNode("n1", alloc, taTaints(taTaint(v1.TaintNodeUnreachable, "", v1.TaintEffectNoExecute))),
			taPod("p", nil), nil, false},
		{"not-ready NoSchedule has no default toleration", taNode("n1", alloc, taTaints(taTaint(v1.TaintNodeNotReady, "", v1.TaintEffectNoSchedule))),
			taPod("p", nil), []string{reasonTaints}, true},
		{"nodeSelector matches", taNode("n1", alloc, taLabels("disktype", "ssd")), taPod("p", nil, taSelector("disktype", "ssd")), nil, false},
		{"nodeSelector does not match", taNode("n1", alloc, taLabels("disktype", "hdd")), taPod("p", nil, taSelector("disktype", "ssd")),
			[]string{reasonNodeAffinity}, true},
		{"Gt matches a larger integer", taNode("n1", alloc, taLabels("cores", "8")),
			taPod("p", nil, taRequire(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("cores", v1.NodeSelectorOpGt, "4")}})),
			nil, false},
		{"Lt is strict", taNode("n1", alloc, taLabels("cores", "8")),
			taPod("p", nil, taRequire(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("cores", v1.NodeSelectorOpLt, "8")}})),
			[]string{reasonNodeAffinity}, true},
		{"DoesNotExist", taNode("n1", alloc, taLabels("spot", "true")),
			taPod("p", nil, taRequire(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("spot", v1.NodeSelectorOpDoesNotExist)}})),
			[]string{reasonNodeAffinity}, true},
		{"terms are ORed", taNode("n1", alloc, taLabels("zone", "c")),
			taPod("p", nil, taRequire(
				v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("disktype", v1.NodeSelectorOpIn, "ssd")}},
				v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("zone", v1.NodeSelectorOpIn, "b", "c")}})),
			nil, false},
		{"nodeSelector and affinity are ANDed", taNode("n1", alloc, taLabels("disktype", "ssd", "zone", "a")),
			taPod("p", nil, taSelector("disktype", "ssd"),
				taRequire(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{taExpr("zone", v1.NodeSelectorOpIn, "b")}})),
			[]string{reasonNodeAffinity}, true},
		{"name pin on another node", taNode("n1", alloc), taPod("p", nil, taRequire(taNamePin("n2"))),
			[]string{reasonNodeAffinityPrefilter}, true},
		{"name pin on this node", taNode("n1", alloc), taPod("p", nil, taRequire(taNamePin("n1"))), nil, false},
		// The scheduler's order: NodeName, NodeUnschedulable, TaintToleration,
		// NodeAffinity. The first failure is the one reported.
		{"cordon is reported before taints and selector", taNode("n1", alloc, taCordoned, taTaints(noSchedule)),
			taPod("p", nil, taSelector("disktype", "ssd")), []string{reasonUnschedulable}, true},
		{"taint is reported before selector", taNode("n1", alloc, taTaints(noSchedule)),
			taPod("p", nil, taSelector("disktype", "ssd")), []string{reasonTaints}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, unresolvable := taFilter(t, tt.pod, tt.node.Name, tt.node)
			var got []string
			if f != nil {
				got = f.reasons()
			}
			if diff := cmp.Diff(tt.wantReasons, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if unresolvable != tt.unresolvable {
				t.Errorf("unresolvable = %v, want %v", unresolvable, tt.unresolvable)
			}
		})
	}
}

// TestFilterNodeKubeletAdmission covers pods with spec.nodeName: the
// scheduler never sees them, and the named node's kubelet admits them with
// its own, shorter list of checks. A cordon or a NoSchedule taint does not
// stop it; a NoExecute taint, the node's affinity, ports and resources do.
func TestFilterNodeKubeletAdmission(t *testing.T) {
	const alloc = "cpu=2,memory=4Gi"
	busy := taPod("busy", []v1.Container{tbC("app", "cpu=1500m", "")}, taOn("n1"), taWithPorts(taPort("", v1.ProtocolTCP, 8080)))
	tests := []struct {
		name         string
		node         *v1.Node
		pod          *v1.Pod
		wantReasons  []string
		unresolvable bool
	}{
		{"cordoned node admits", taNode("n1", alloc, taCordoned), taPod("p", nil, taOn("n1")), nil, false},
		{"NoSchedule taint is ignored", taNode("n1", alloc, taTaints(taTaint("dedicated", "db", v1.TaintEffectNoSchedule))),
			taPod("p", nil, taOn("n1")), nil, false},
		{"NoExecute taint is refused", taNode("n1", alloc, taTaints(taTaint("dedicated", "db", v1.TaintEffectNoExecute))),
			taPod("p", nil, taOn("n1")), []string{reasonTaints}, true},
		{"another node is not the named one", taNode("n2", alloc), taPod("p", nil, taOn("n1")), []string{reasonNodeName}, true},
		{"node affinity still applies", taNode("n1", alloc), taPod("p", nil, taOn("n1"), taSelector("disktype", "ssd")),
			[]string{reasonNodeAffinity}, true},
		{"name pin elsewhere fails affinity, not a prefilter", taNode("n1", alloc), taPod("p", nil, taOn("n1"), taRequire(taNamePin("n2"))),
			[]string{reasonNodeAffinity}, true},
		{"busy cpu is resolvable", taNode("n1", alloc), taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, taOn("n1")),
			[]string{"Insufficient cpu"}, false},
		{"more cpu than the node has", taNode("n1", alloc), taPod("p", []v1.Container{tbC("app", "cpu=3", "")}, taOn("n1")),
			[]string{"Insufficient cpu"}, true},
		{"host port taken", taNode("n1", alloc), taPod("p", nil, taOn("n1"), taWithPorts(taPort("", v1.ProtocolTCP, 8080))),
			[]string{reasonNodePorts}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := []runtime.Object{tt.node}
			if tt.node.Name == "n1" {
				cluster = append(cluster, busy)
			}
			f, unresolvable := taFilter(t, tt.pod, tt.node.Name, cluster...)
			var got []string
			if f != nil {
				got = f.reasons()
			}
			if diff := cmp.Diff(tt.wantReasons, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if unresolvable != tt.unresolvable {
				t.Errorf("unresolvable = %v, want %v", unresolvable, tt.unresolvable)
			}
		})
	}
}

// TestCandidatePrefilterFailure covers what fails a pod before any node is
// looked at: a spec.nodeName naming no node, and node-name pins that
// contradict each other.
func TestCandidatePrefilterFailure(t *testing.T) {
	nodes := []runtime.Object{taNode("n1", "cpu=2"), taNode("n2", "cpu=2")}
	tests := []struct {
		name  string
		pod   *v1.Pod
		known bool
		want  *prefilterFailure
	}{
		{"no pin", taPod("p", nil), true, nil},
		{"nodeName exists", taPod("p", nil, taOn("n1")), true, nil},
		{"nodeName names no node", taPod("p", nil, taOn("n9")), true,
			&prefilterFailure{code: CodeNodeNameNotFound, message: `node "n9" named by spec.nodeName does not exist`}},
		{"nodes not known: no claim", taPod("p", nil, taOn("n9")), false, nil},
		{"one pin", taPod("p", nil, taRequire(taNamePin("n1"))), true, nil},
		{"pin on a missing node is a filter, not a conflict", taPod("p", nil, taRequire(taNamePin("n9"))), true, nil},
		{"two pins ANDed in one term", taPod("p", nil, taRequire(taNamePin("n1", "n2"))), true,
			&prefilterFailure{code: CodeNodeAffinityMismatch, message: reasonNameTermsConflict}},
		{"two terms ORed", taPod("p", nil, taRequire(taNamePin("n1"), taNamePin("n2"))), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSnapshot()
			if tt.known {
				s.MarkKnown(AllKinds...)
				for _, o := range nodes {
					if err := s.Upsert(o); err != nil {
						t.Fatal(err)
					}
				}
			}
			got := newCandidate(s, tt.pod).prefilterFailure(s)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(prefilterFailure{})); diff != "" {
				t.Errorf("prefilterFailure (-want +got):\n%s", diff)
			}
		})
	}
}

// reasons returns every scheduler reason string this failure stands for.
func (f *nodeFailure) reasons() []string {
	out := []string{f.reason}
	for i := range f.more {
		out = append(out, f.more[i].reason)
	}
	return out
}
