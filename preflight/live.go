package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/pager"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/feasibility"
)

// PodFieldSelector lists only the pods that hold resources on a node:
// bound and not terminal. The engine ignores the others, and leaving them
// out keeps the state of a big cluster small (the webhook's cache does the
// same).
const PodFieldSelector = "status.phase!=Succeeded,status.phase!=Failed,spec.nodeName!="

// lister lists one kind, every namespace, read-only.
type lister struct {
	kind       feasibility.Kind
	apiVersion string
	list       func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error)
}

func listers(cs kubernetes.Interface, md metadata.Interface) []lister {
	core := cs.CoreV1()
	names := func(resource string) func(context.Context, metav1.ListOptions) (runtime.Object, error) {
		// Metadata only: a Secret's data never leaves the API server.
		r := md.Resource(schema.GroupVersionResource{Version: "v1", Resource: resource})
		return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, o) }
	}
	return []lister{
		{feasibility.KindNode, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Nodes().List(ctx, o)
		}},
		{feasibility.KindPod, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = PodFieldSelector
			return core.Pods("").List(ctx, o)
		}},
		{feasibility.KindNamespace, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Namespaces().List(ctx, o)
		}},
		{feasibility.KindPVC, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.PersistentVolumeClaims("").List(ctx, o)
		}},
		{feasibility.KindPV, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.PersistentVolumes().List(ctx, o)
		}},
		{feasibility.KindStorageClass, "storage.k8s.io/v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.StorageV1().StorageClasses().List(ctx, o)
		}},
		{feasibility.KindCSINode, "storage.k8s.io/v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.StorageV1().CSINodes().List(ctx, o)
		}},
		{feasibility.KindResourceQuota, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.ResourceQuotas("").List(ctx, o)
		}},
		{feasibility.KindLimitRange, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.LimitRanges("").List(ctx, o)
		}},
		{feasibility.KindPriorityClass, "scheduling.k8s.io/v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.SchedulingV1().PriorityClasses().List(ctx, o)
		}},
		{feasibility.KindRuntimeClass, "node.k8s.io/v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.NodeV1().RuntimeClasses().List(ctx, o)
		}},
		{feasibility.KindServiceAccount, "v1", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.ServiceAccounts("").List(ctx, o)
		}},
		{feasibility.KindSecret, "v1", names("secrets")},
		{feasibility.KindConfigMap, "v1", names("configmaps")},
	}
}

// optionalKinds may be left unknown when they cannot be listed (someone
// allowed to read workloads is often not allowed to list Secrets); the
// engine then does not check references to them.
var optionalKinds = map[feasibility.Kind]bool{feasibility.KindSecret: true, feasibility.KindConfigMap: true}

// ListCluster lists the cluster state, every kind at once, read-only, in
// pages of 500. A kind the API server does not serve (404) is known to be
// empty. A kind that cannot be listed for another reason (RBAC) is fatal
// for Nodes and Pods, without which nothing can be judged, and for every
// kind but Secrets and ConfigMaps when strict (a state file must be
// complete, since a file with Nodes knows every dump kind); otherwise it
// is left unknown with a warning.
func ListCluster(ctx context.Context, cs kubernetes.Interface, md metadata.Interface, strict bool) (*State, []string, error) {
	ls := listers(cs, md)
	lists := make([][]runtime.Object, len(ls))
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			p := pager.New(pager.SimplePageFunc(func(o metav1.ListOptions) (runtime.Object, error) { return l.list(ctx, o) }))
			list, _, err := p.List(ctx, metav1.ListOptions{})
			if err == nil {
				lists[i], err = meta.ExtractList(list)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	st := NewState()
	var warnings []string
	for i, l := range ls {
		switch err := errs[i]; {
		case err == nil:
		case apierrors.IsNotFound(err):
			lists[i] = nil // not served here: none exist
		case l.kind == feasibility.KindNode || l.kind == feasibility.KindPod || (strict && !optionalKinds[l.kind]):
			return nil, warnings, fmt.Errorf("listing %s: %w", kindPlural(l.kind), err)
		default:
			warnings = append(warnings, fmt.Sprintf("cannot list %s, so references to them are not checked: %v", kindPlural(l.kind), err))
			continue
		}
		st.known[l.kind] = true
		for _, o := range lists[i] {
			if err := st.Add(clean(o, l)); err != nil {
				return nil, warnings, err
			}
		}
	}
	return st, warnings, nil
}

const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// clean sets the type, which list items lack, and drops what the checks
// never read and would only bloat a state file: managed fields, kubectl's
// last-applied copy of the object, a node's image list. A Secret or
// ConfigMap is reduced to its name and labels.
func clean(o runtime.Object, l lister) runtime.Object {
	if pm, ok := o.(*metav1.PartialObjectMetadata); ok {
		return &metav1.PartialObjectMetadata{TypeMeta: typeMeta(l.apiVersion, string(l.kind)),
			ObjectMeta: metav1.ObjectMeta{Name: pm.Name, Namespace: pm.Namespace, Labels: pm.Labels}}
	}
	o = o.DeepCopyObject()
	o.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(l.apiVersion, string(l.kind)))
	if m, err := meta.Accessor(o); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, lastAppliedAnnotation)
			if len(a) == 0 {
				m.SetAnnotations(nil)
			}
		}
	}
	if n, ok := o.(*v1.Node); ok {
		n.Status.Images = nil
	}
	return o
}

// WriteState writes the state as a multi-document YAML stream, one object
// per document, sorted by kind, namespace and name so that two snapshots
// diff well. Not a `kind: List`: a list is one document, and a document is
// capped at 8 MiB when read back, which a list of a few thousand pods
// exceeds.
func WriteState(w io.Writer, st *State) error {
	order := map[feasibility.Kind]int{}
	for i, k := range feasibility.AllKinds {
		order[k] = i
	}
	objs := append([]runtime.Object(nil), st.objects...)
	sort.SliceStable(objs, func(i, j int) bool {
		ki, _ := stateKind(objs[i])
		kj, _ := stateKind(objs[j])
		if ki != kj {
			return order[ki] < order[kj]
		}
		if a, b := objectNamespace(objs[i]), objectNamespace(objs[j]); a != b {
			return a < b
		}
		return objectName(objs[i]) < objectName(objs[j])
	})
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", y); err != nil {
			return err
		}
	}
	return nil
}
