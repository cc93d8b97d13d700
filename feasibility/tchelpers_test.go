package feasibility

// Builders shared by the spread, inter-pod affinity and volume tests.
// Prefixed tc so they never clash with other tests' helpers.

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const tcZoneKey = v1.LabelTopologyZone

// tcKnown: the snapshot knows every claim, volume and class, so a missing
// one is really missing; namespaces and service accounts go unjudged.
var tcKnown = []Kind{KindNode, KindPod, KindPVC, KindPV, KindStorageClass}

// tcNode is a 4-cpu node with its hostname label plus the given label
// key/value pairs.
func tcNode(name string, kv ...string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{Allocatable: tbList("cpu=4,memory=8Gi,pods=110")}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

// tcInZone is tcNode in a zone.
func tcInZone(name, zone string, kv ...string) *v1.Node {
	return tcNode(name, append([]string{tcZoneKey, zone}, kv...)...)
}

func tcTainted(n *v1.Node, key string) *v1.Node {
	n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: "x", Effect: v1.TaintEffectNoSchedule})
	return n
}

// tcPodOn is a request-less pod bound to node, in namespace ns, with the
// given label key/value pairs.
func tcPodOn(ns, name, node string, kv ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}},
		Spec: v1.PodSpec{NodeName: node, Containers: []v1.Container{tbC("c", "", "")}}}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Labels[kv[i]] = kv[i+1]
	}
	return p
}

// tcWeb is the pod being judged: app=web in tbNS, changed by mutate.
func tcWeb(mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tbNS, Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{Containers: []v1.Container{tbC("c", "cpu=100m", "")}}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func tcSel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// tcFilterEach runs every filter on every node for the workload, prepared as
// Check prepares it, and returns each node's first failure code ("" when
// the pod fits there), or the PreFilter failure's code under key "".
func tcFilterEach(t *testing.T, workload runtime.Object, cluster ...runtime.Object) map[string]Code {
	t.Helper()
	s := tbSnap(t, tcKnown, cluster...)
	w, err := WorkloadFromObject(workload)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := preparePod(s, w)
	addControllerLabels(w.Kind, p)
	c := newCandidate(s, p)
	c.volumes.addClaimTemplates(s, w)
	cs := newCheckState(s, c)
	if d := cs.prefilter(); d != nil {
		return map[string]Code{"": d.prefilter.code}
	}
	out := map[string]Code{}
	for _, ni := range s.sortedNodes() {
		f, _ := cs.filterNode(ni, modeFirst)
		out[ni.name] = ""
		if f != nil {
			out[ni.name] = f.code
		}
	}
	return out
}

// tcCheck runs Check on a tcKnown snapshot.
func tcCheck(t *testing.T, workload runtime.Object, cluster ...runtime.Object) *Report {
	t.Helper()
	s := tbSnap(t, tcKnown, cluster...)
	w, err := WorkloadFromObject(workload)
	if err != nil {
		t.Fatal(err)
	}
	return Check(s, w, nil)
}
