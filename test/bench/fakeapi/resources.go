package fakeapi

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fitgate/fitgate/test/synth"
)

// creationTime is the creationTimestamp of objects that have none.
var creationTime = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

// resource is one kind the fake serves, with its objects.
type resource struct {
	gv         schema.GroupVersion
	plural     string
	singular   string
	kind       string
	namespaced bool
	// fields are the field labels a real apiserver accepts in field
	// selectors for this kind besides metadata.name (and
	// metadata.namespace for namespaced kinds), with their values.
	fields map[string]func(runtime.Object) string

	objs []runtime.Object
	// metas[i] is objs[i]'s metadata, read-only.
	metas []*metav1.ObjectMeta
	// objs[i] is served with resourceVersion firstRV+i.
	firstRV int64
	// ordinal makes uids unique across resources.
	ordinal int
	// byKey maps namespace/name to the index in objs.
	byKey map[string]int
}

func (r *resource) gvk() schema.GroupVersionKind { return r.gv.WithKind(r.kind) }

// path is the resource's key in Server.byPath: group/version/plural, with
// an empty group for the core API.
func (r *resource) path() string { return r.gv.Group + "/" + r.gv.Version + "/" + r.plural }

// kinds lists every kind served, in the order resource versions are
// assigned. The first four are filled from the cluster.
func kinds() []*resource {
	core := schema.GroupVersion{Version: "v1"}
	storage := schema.GroupVersion{Group: "storage.k8s.io", Version: "v1"}
	pod := func(o runtime.Object) *v1.Pod { return o.(*v1.Pod) }
	return []*resource{
		{gv: core, plural: "namespaces", singular: "namespace", kind: "Namespace",
			fields: map[string]func(runtime.Object) string{
				"status.phase": func(o runtime.Object) string { return string(o.(*v1.Namespace).Status.Phase) },
			}},
		{gv: core, plural: "nodes", singular: "node", kind: "Node",
			fields: map[string]func(runtime.Object) string{
				"spec.unschedulable": func(o runtime.Object) string { return strconv.FormatBool(o.(*v1.Node).Spec.Unschedulable) },
			}},
		{gv: core, plural: "resourcequotas", singular: "resourcequota", kind: "ResourceQuota", namespaced: true},
		{gv: core, plural: "pods", singular: "pod", kind: "Pod", namespaced: true,
			fields: map[string]func(runtime.Object) string{
				"spec.nodeName":            func(o runtime.Object) string { return pod(o).Spec.NodeName },
				"spec.restartPolicy":       func(o runtime.Object) string { return string(pod(o).Spec.RestartPolicy) },
				"spec.schedulerName":       func(o runtime.Object) string { return pod(o).Spec.SchedulerName },
				"spec.serviceAccountName":  func(o runtime.Object) string { return pod(o).Spec.ServiceAccountName },
				"spec.hostNetwork":         func(o runtime.Object) string { return strconv.FormatBool(pod(o).Spec.HostNetwork) },
				"status.phase":             func(o runtime.Object) string { return string(pod(o).Status.Phase) },
				"status.podIP":             func(o runtime.Object) string { return pod(o).Status.PodIP },
				"status.nominatedNodeName": func(o runtime.Object) string { return pod(o).Status.NominatedNodeName },
			}},
		{gv: core, plural: "persistentvolumeclaims", singular: "persistentvolumeclaim", kind: "PersistentVolumeClaim", namespaced: true},
		{gv: core, plural: "persistentvolumes", singular: "persistentvolume", kind: "PersistentVolume"},
		{gv: storage, plural: "storageclasses", singular: "storageclass", kind: "StorageClass"},
		{gv: storage, plural: "csinodes", singular: "csinode", kind: "CSINode"},
		{gv: core, plural: "limitranges", singular: "limitrange", kind: "LimitRange", namespaced: true},
		{gv: schema.GroupVersion{Group: "scheduling.k8s.io", Version: "v1"}, plural: "priorityclasses", singular: "priorityclass", kind: "PriorityClass"},
		{gv: schema.GroupVersion{Group: "node.k8s.io", Version: "v1"}, plural: "runtimeclasses", singular: "runtimeclass", kind: "RuntimeClass"},
		{gv: core, plural: "serviceaccounts", singular: "serviceaccount", kind: "ServiceAccount", namespaced: true},
		{gv: core, plural: "secrets", singular: "secret", kind: "Secret", namespaced: true,
			fields: map[string]func(runtime.Object) string{
				"type": func(o runtime.Object) string { return string(o.(*v1.Secret).Type) },
			}},
		{gv: core, plural: "configmaps", singular: "configmap", kind: "ConfigMap", namespaced: true},
	}
}

// load fills the resources from the cluster and assigns resource versions.
// It returns the largest resource version, the one lists are served at.
func load(res []*resource, c *synth.Cluster) (int64, error) {
	if c == nil {
		c = &synth.Cluster{}
	}
	add := func(plural string, n int, get func(i int) runtime.Object) error {
		for _, r := range res {
			if r.plural != plural {
				continue
			}
			r.objs = make([]runtime.Object, 0, n)
			for i := 0; i < n; i++ {
				o := get(i)
				if o == nil || reflect.ValueOf(o).IsNil() {
					return fmt.Errorf("cluster %s[%d] is nil", plural, i)
				}
				r.objs = append(r.objs, o)
			}
			return nil
		}
		return fmt.Errorf("no resource %q", plural)
	}
	if err := add("namespaces", len(c.Namespaces), func(i int) runtime.Object { return nilSafe(c.Namespaces[i]) }); err != nil {
		return 0, err
	}
	if err := add("nodes", len(c.Nodes), func(i int) runtime.Object { return nilSafe(c.Nodes[i]) }); err != nil {
		return 0, err
	}
	if err := add("resourcequotas", len(c.Quotas), func(i int) runtime.Object { return nilSafe(c.Quotas[i]) }); err != nil {
		return 0, err
	}
	if err := add("pods", len(c.Pods), func(i int) runtime.Object { return nilSafe(c.Pods[i]) }); err != nil {
		return 0, err
	}
	rv := int64(1) // resource versions start at 2, as if something was written first
	for ordinal, r := range res {
		r.ordinal = ordinal
		r.firstRV = rv + 1
		r.metas = make([]*metav1.ObjectMeta, len(r.objs))
		r.byKey = make(map[string]int, len(r.objs))
		for i, o := range r.objs {
			acc, ok := o.(metav1.ObjectMetaAccessor)
			if !ok {
				return 0, fmt.Errorf("%s[%d]: %T has no object metadata", r.plural, i, o)
			}
			m, ok := acc.GetObjectMeta().(*metav1.ObjectMeta)
			if !ok || m == nil {
				return 0, fmt.Errorf("%s[%d]: %T has no object metadata", r.plural, i, o)
			}
			if m.Name == "" {
				return 0, fmt.Errorf("%s[%d] has no name", r.plural, i)
			}
			if r.namespaced && m.Namespace == "" {
				return 0, fmt.Errorf("%s %q has no namespace", r.singular, m.Name)
			}
			if !r.namespaced && m.Namespace != "" {
				return 0, fmt.Errorf("%s %q is cluster-scoped but has namespace %q", r.singular, m.Name, m.Namespace)
			}
			key := m.Namespace + "/" + m.Name
			if j, dup := r.byKey[key]; dup {
				return 0, fmt.Errorf("%s %s appears twice (at %d and %d)", r.plural, key, j, i)
			}
			r.byKey[key] = i
			r.metas[i] = m
		}
		rv += int64(len(r.objs))
	}
	return rv, nil
}

// nilSafe turns a nil typed pointer into a nil interface, so that load can
// report it.
func nilSafe[T any](p *T) runtime.Object {
	if p == nil {
		return nil
	}
	o, ok := any(p).(runtime.Object)
	if !ok {
		return nil
	}
	return o
}

// meta returns object i's metadata as served: with its resource version,
// and a uid and creation time if it has none.
func (r *resource) meta(i int) metav1.ObjectMeta {
	m := *r.metas[i]
	m.ResourceVersion = strconv.FormatInt(r.firstRV+int64(i), 10)
	if m.UID == "" {
		m.UID = types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", r.ordinal, i))
	}
	if m.CreationTimestamp.IsZero() {
		m.CreationTimestamp = creationTime
	}
	return m
}

// object returns object i as served: a shallow copy with the served
// metadata, and kind and apiVersion when withType (watch events and GET;
// list items go without, as from a real apiserver).
func (r *resource) object(i int, withType bool) runtime.Object {
	v := reflect.ValueOf(r.objs[i]).Elem()
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	obj := c.Interface().(runtime.Object)
	*obj.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta) = r.meta(i)
	if withType {
		obj.GetObjectKind().SetGroupVersionKind(r.gvk())
	} else {
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	return obj
}

// partial returns object i as PartialObjectMetadata.
func (r *resource) partial(i int) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "PartialObjectMetadata"},
		ObjectMeta: r.meta(i),
	}
}

// fieldSet returns object i's selectable fields.
func (r *resource) fieldSet(i int) fields.Set {
	m := r.metas[i]
	set := fields.Set{"metadata.name": m.Name}
	if r.namespaced {
		set["metadata.namespace"] = m.Namespace
	}
	for name, get := range r.fields {
		set[name] = get(r.objs[i])
	}
	return set
}

// supportsField reports whether name is a field label of the kind.
func (r *resource) supportsField(name string) bool {
	switch name {
	case "metadata.name":
		return true
	case "metadata.namespace":
		return r.namespaced
	}
	_, ok := r.fields[name]
	return ok
}
