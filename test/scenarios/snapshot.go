package scenarios

import (
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// IsClusterScoped reports whether objects of obj's type have no namespace.
func IsClusterScoped(obj runtime.Object) bool {
	switch obj.(type) {
	case *v1.Node, *v1.Namespace, *v1.PersistentVolume, *storagev1.StorageClass, *storagev1.CSINode,
		*schedulingv1.PriorityClass, *nodev1.RuntimeClass:
		return true
	}
	return false
}

// Objects returns the cluster objects and the workload with namespaces
// filled in: namespaced objects that name none live in DefaultNamespace.
func (sc *Scenario) Objects() (cluster []runtime.Object, workload runtime.Object) {
	fill := func(o runtime.Object) runtime.Object {
		o = o.DeepCopyObject()
		if IsClusterScoped(o) {
			return o
		}
		if m, err := meta.Accessor(o); err == nil && m.GetNamespace() == "" {
			m.SetNamespace(DefaultNamespace)
		}
		return o
	}
	for _, o := range sc.Cluster {
		cluster = append(cluster, fill(o))
	}
	return cluster, fill(sc.Workload)
}

// Namespaces lists every namespace the scenario's objects live in.
func (sc *Scenario) Namespaces() []string {
	cluster, w := sc.Objects()
	seen := map[string]bool{}
	var out []string
	add := func(ns string) {
		if ns != "" && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	for _, o := range append(cluster, w) {
		if n, ok := o.(*v1.Namespace); ok {
			add(n.Name)
			continue
		}
		if m, err := meta.Accessor(o); err == nil {
			add(m.GetNamespace())
		}
	}
	return out
}

// Snapshot builds what the engine sees: the scenario's objects plus what a
// real control plane always has (each namespace, its "default"
// ServiceAccount and kube-root-ca.crt ConfigMap, the system
// PriorityClasses), with every kind marked known, since the scenario
// describes the whole cluster.
func (sc *Scenario) Snapshot() (*feasibility.Snapshot, *feasibility.Workload, error) {
	cluster, wobj := sc.Objects()
	s := feasibility.NewSnapshot()
	s.MarkKnown(feasibility.AllKinds...)
	given := map[string]bool{}
	for _, o := range cluster {
		if n, ok := o.(*v1.Namespace); ok {
			given[n.Name] = true
		}
	}
	for _, ns := range sc.Namespaces() {
		if !given[ns] {
			if err := s.Upsert(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
				Labels: map[string]string{v1.LabelMetadataName: ns}}}); err != nil {
				return nil, nil, err
			}
		}
		for _, o := range []runtime.Object{
			&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}},
			&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-root-ca.crt"}},
		} {
			if err := s.Upsert(o); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, o := range cluster {
		if n, ok := o.(*v1.Namespace); ok && n.Labels[v1.LabelMetadataName] == "" {
			n.Labels = withName(n.Labels, n.Name)
		}
		if n, ok := o.(*v1.Node); ok {
			asKubeletWould(n)
		}
		if err := s.Upsert(o); err != nil {
			return nil, nil, err
		}
	}
	w, err := feasibility.WorkloadFromObject(wobj)
	if err != nil {
		return nil, nil, err
	}
	return s, w, nil
}

func withName(l map[string]string, name string) map[string]string {
	out := map[string]string{v1.LabelMetadataName: name}
	for k, v := range l {
		out[k] = v
	}
	return out
}

// asKubeletWould fills in what a kubelet (and the replay's node helper)
// gives every node: hostname, os and arch labels, and 110 pods.
func asKubeletWould(n *v1.Node) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[v1.LabelHostname] = n.Name
	for k, v := range map[string]string{v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64"} {
		if _, ok := n.Labels[k]; !ok {
			n.Labels[k] = v
		}
	}
	if n.Status.Allocatable == nil {
		n.Status.Allocatable = v1.ResourceList{}
	}
	if _, ok := n.Status.Allocatable[v1.ResourcePods]; !ok {
		n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("110")
	}
}
