package preflight

import (
	"fmt"
	"io"
	"sort"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// DumpKinds are the kinds the documented kubectl command prints: a state
// file with Nodes knows all of them (see the package documentation).
var DumpKinds = []feasibility.Kind{
	feasibility.KindNode, feasibility.KindPod, feasibility.KindNamespace, feasibility.KindPVC,
	feasibility.KindPV, feasibility.KindStorageClass, feasibility.KindCSINode,
	feasibility.KindResourceQuota, feasibility.KindLimitRange, feasibility.KindPriorityClass,
	feasibility.KindRuntimeClass, feasibility.KindServiceAccount,
}

// StateCommand is the kubectl command whose output is a state file.
const StateCommand = "kubectl get nodes,pods,namespaces,pvc,pv,storageclasses,csinodes,resourcequotas," +
	"limitranges,priorityclasses,runtimeclasses,serviceaccounts -A -o yaml"

// State is the cluster state workloads are judged against: objects of the
// kinds a feasibility.Snapshot holds, and which kinds are complete.
type State struct {
	objects []runtime.Object
	known   map[feasibility.Kind]bool
	index   map[string]int // ref -> position in objects
}

// NewState returns an empty state that knows the given kinds completely.
func NewState(known ...feasibility.Kind) *State {
	st := &State{known: map[feasibility.Kind]bool{}, index: map[string]int{}}
	for _, k := range known {
		st.known[k] = true
	}
	return st
}

// Knows reports whether the state holds every object of kind k.
func (st *State) Knows(k feasibility.Kind) bool { return st.known[k] }

// Has reports whether the state holds the object; namespace is "" for
// cluster-scoped kinds.
func (st *State) Has(k feasibility.Kind, namespace, name string) bool {
	_, ok := st.index[ref(k, namespace, name)]
	return ok
}

// Objects returns the state's objects, in the order they were added.
func (st *State) Objects() []runtime.Object { return st.objects }

// Add adds or replaces an object of a kind the state knows. Adding a kind
// the state does not know would, once in a Snapshot, make the engine treat
// every other object of that kind as missing, so it is refused.
func (st *State) Add(obj runtime.Object) error {
	k, ok := stateKind(obj)
	if !ok {
		return fmt.Errorf("%T is not cluster state", obj)
	}
	if !st.known[k] {
		return fmt.Errorf("the state does not know %s objects", k)
	}
	r := ref(k, objectNamespace(obj), objectName(obj))
	if i, dup := st.index[r]; dup {
		st.objects[i] = obj
		return nil
	}
	st.index[r] = len(st.objects)
	st.objects = append(st.objects, obj)
	return nil
}

// Snapshot builds the engine's snapshot of the state.
func (st *State) Snapshot() (*feasibility.Snapshot, error) {
	s := feasibility.NewSnapshot()
	for k := range st.known {
		s.MarkKnown(k)
	}
	for _, o := range st.objects {
		if err := s.Upsert(o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ReadStateFile reads a state file (Stdin reads stdin). notes are for
// stderr: what the file held that is not cluster state, and nodes no pod
// can use. A file without Nodes is an error: an empty cluster judges
// nothing.
func ReadStateFile(path string, stdin io.Reader) (st *State, notes []string, err error) {
	var docs []feasibility.Document
	if path == Stdin {
		docs, err = feasibility.DecodeState(Stdin, stdin)
	} else {
		docs, err = readFileWith(path, feasibility.DecodeState)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	present := map[feasibility.Kind]bool{}
	ignored := map[string]int{}
	var objs []runtime.Object
	for _, d := range docs {
		k, ok := stateKind(d.Object)
		if !ok {
			ignored[docKind(d)]++
			continue
		}
		present[k] = true
		objs = append(objs, d.Object)
	}
	if !present[feasibility.KindNode] {
		return nil, nil, fmt.Errorf("state file %s has no Nodes: an empty cluster can judge nothing; "+
			"write it with `fitgate snapshot` or `%s`", path, StateCommand)
	}
	st = NewState(DumpKinds...)
	for _, k := range []feasibility.Kind{feasibility.KindSecret, feasibility.KindConfigMap} {
		st.known[k] = present[k]
	}
	for _, o := range objs {
		if !isClusterScoped(o) && objectNamespace(o) == "" {
			setNamespace(o, metav1.NamespaceDefault)
		}
		if n, ok := o.(*v1.Node); ok {
			if _, has := n.Status.Allocatable[v1.ResourcePods]; !has {
				notes = append(notes, fmt.Sprintf("state: node %s has no allocatable pods, so no pod fits on it; "+
					"write status.allocatable as the kubelet reports it", n.Name))
			}
		}
		if err := st.Add(normalize(o)); err != nil {
			return nil, nil, fmt.Errorf("state: %w", err)
		}
	}
	st.addImplied()
	if len(ignored) > 0 {
		notes = append(notes, fmt.Sprintf("state: ignored what is not cluster state in %s: %s", path, countList(ignored)))
	}
	return st, notes, nil
}

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, v1.NamespaceNodeLease}

// addImplied adds what the control plane makes in every cluster, so that a
// hand-written state file need not list it (a dump already has it).
func (st *State) addImplied() {
	nss := map[string]bool{}
	for _, ns := range systemNamespaces {
		nss[ns] = true
	}
	for _, o := range st.objects {
		if n, ok := o.(*v1.Namespace); ok {
			nss[n.Name] = true
		} else if ns := objectNamespace(o); ns != "" && !isClusterScoped(o) {
			nss[ns] = true
		}
	}
	names := make([]string, 0, len(nss))
	for ns := range nss {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		st.addNamespaceImplied(ns)
	}
	if st.known[feasibility.KindPriorityClass] {
		for name, value := range map[string]int32{"system-cluster-critical": 2000000000, "system-node-critical": 2000001000} {
			if !st.Has(feasibility.KindPriorityClass, "", name) {
				_ = st.Add(&schedulingv1.PriorityClass{TypeMeta: typeMeta("scheduling.k8s.io/v1", "PriorityClass"),
					ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value})
			}
		}
	}
}

// addNamespaceImplied adds a namespace, if missing, and what the
// controller manager creates in each: the "default" ServiceAccount and the
// kube-root-ca.crt ConfigMap (whose controllers recreate them if deleted).
func (st *State) addNamespaceImplied(ns string) {
	if st.known[feasibility.KindNamespace] && !st.Has(feasibility.KindNamespace, "", ns) {
		_ = st.Add(normalize(&v1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	if st.known[feasibility.KindServiceAccount] && !st.Has(feasibility.KindServiceAccount, ns, "default") {
		_ = st.Add(&v1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"),
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	if st.known[feasibility.KindConfigMap] && !st.Has(feasibility.KindConfigMap, ns, "kube-root-ca.crt") {
		_ = st.Add(&metav1.PartialObjectMetadata{TypeMeta: typeMeta("v1", "ConfigMap"),
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-root-ca.crt"}})
	}
}

// normalize applies what the API server does to every object of a kind on
// create that the checks read: a Namespace's kubernetes.io/metadata.name
// label, which namespace selectors match.
func normalize(o runtime.Object) runtime.Object {
	if n, ok := o.(*v1.Namespace); ok && n.Labels[v1.LabelMetadataName] != n.Name {
		labels := map[string]string{}
		for k, v := range n.Labels {
			labels[k] = v
		}
		labels[v1.LabelMetadataName] = n.Name
		n.Labels = labels
	}
	return o
}
