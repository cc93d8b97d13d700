package feasibility

// Builders for the node filter tests (filters, ports, resources,
// normalize). Prefixed ta so they never clash with other tests' helpers.

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// taNode is a node with allocatable in tbList form; pods default to 110,
// and the hostname label is set as a kubelet would.
func taNode(name, alloc string, mutate ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{Allocatable: tbList(alloc)}}
	if n.Status.Allocatable == nil {
		n.Status.Allocatable = v1.ResourceList{}
	}
	if _, ok := n.Status.Allocatable[v1.ResourcePods]; !ok {
		n.Status.Allocatable[v1.ResourcePods] = tbList("pods=110")[v1.ResourcePods]
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func taTaints(taints ...v1.Taint) func(*v1.Node) {
	return func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, taints...) }
}

func taCordoned(n *v1.Node) { n.Spec.Unschedulable = true }

func taLabels(kv ...string) func(*v1.Node) {
	return func(n *v1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taTaint(key, value string, effect v1.TaintEffect) v1.Taint {
	return v1.Taint{Key: key, Value: value, Effect: effect}
}

// taPod is a pod with the given containers (one request-less container
// when none are given), changed by mutate.
func taPod(name string, containers []v1.Container, mutate ...func(*v1.Pod)) *v1.Pod {
	if len(containers) == 0 {
		containers = []v1.Container{tbC("app", "", "")}
	}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tbNS}, Spec: v1.PodSpec{Containers: containers}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func taOn(node string) func(*v1.Pod) { return func(p *v1.Pod) { p.Spec.NodeName = node } }

func taTolerate(ts ...v1.Toleration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, ts...) }
}

func taSelector(kv ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// taRequire sets one required node affinity term per argument.
func taRequire(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}

func taExpr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
	return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func taNamePin(names ...string) v1.NodeSelectorTerm {
	var t v1.NodeSelectorTerm
	for _, n := range names {
		t.MatchFields = append(t.MatchFields, v1.NodeSelectorRequirement{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{n}})
	}
	return t
}

func taPort(hostIP string, protocol v1.Protocol, port int32) v1.ContainerPort {
	return v1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: hostIP, Protocol: protocol}
}

// taWithPorts gives the pod's first container these ports.
func taWithPorts(ports ...v1.ContainerPort) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, ports...) }
}

func taSidecar(c v1.Container) v1.Container {
	always := v1.ContainerRestartPolicyAlways
	c.RestartPolicy = &always
	return c
}

// taFilter judges pod on the node named node the way Check would: the pod
// goes through admission-time normalization, then every filter runs on
// that node (classifying, so it keeps going past resolvable failures).
// cluster holds the nodes and bound pods.
func taFilter(t *testing.T, pod *v1.Pod, node string, cluster ...runtime.Object) (*nodeFailure, bool) {
	t.Helper()
	s := tbSnap(t, AllKinds, cluster...)
	w, err := WorkloadFromObject(pod)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := preparePod(s, w)
	cs := newCheckState(s, newCandidate(s, p))
	ni := s.nodes[node]
	if ni == nil || ni.node == nil {
		t.Fatalf("no node %q in the test cluster", node)
	}
	return cs.filterNode(ni, modeClassify)
}
