package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"github.com/fitgate/fitgate/feasibility"
)

// LiveChecker asks the API server directly, for the rare moments the cache
// may be behind: a missing reference about to deny, a namespace the cache
// has not seen yet.
type LiveChecker interface {
	// Exists reports whether the object exists now and is not being
	// deleted. namespace is empty for cluster-scoped kinds.
	Exists(ctx context.Context, kind feasibility.Kind, namespace, name string) (bool, error)
	// NamespaceLabels returns a namespace's labels; found is false when the
	// namespace does not exist.
	NamespaceLabels(ctx context.Context, name string) (labels map[string]string, found bool, err error)
}

// liveResources maps the kinds a reference can name to their resources.
var liveResources = map[feasibility.Kind]schema.GroupVersionResource{
	feasibility.KindSecret:         {Version: "v1", Resource: "secrets"},
	feasibility.KindConfigMap:      {Version: "v1", Resource: "configmaps"},
	feasibility.KindPVC:            {Version: "v1", Resource: "persistentvolumeclaims"},
	feasibility.KindServiceAccount: {Version: "v1", Resource: "serviceaccounts"},
	feasibility.KindNamespace:      {Version: "v1", Resource: "namespaces"},
	feasibility.KindPV:             {Version: "v1", Resource: "persistentvolumes"},
	feasibility.KindStorageClass:   {Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
	feasibility.KindPriorityClass:  {Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"},
	feasibility.KindRuntimeClass:   {Group: "node.k8s.io", Version: "v1", Resource: "runtimeclasses"},
}

// APILiveChecker is a LiveChecker that reads metadata only: it never
// fetches a Secret's data.
type APILiveChecker struct {
	Client metadata.Interface
}

// listOnly are the kinds fitgate may list and watch but not get: RBAC
// cannot grant metadata-only access, and leaving out get keeps a plain
// `kubectl get secret x -o yaml` with fitgate's credentials forbidden.
var listOnly = map[feasibility.Kind]bool{feasibility.KindSecret: true, feasibility.KindConfigMap: true}

// Exists implements LiveChecker with one metadata GET, or for Secrets and
// ConfigMaps one metadata LIST filtered to the name.
func (l *APILiveChecker) Exists(ctx context.Context, kind feasibility.Kind, namespace, name string) (bool, error) {
	gvr, ok := liveResources[kind]
	if !ok {
		return false, fmt.Errorf("live lookups of %s are not supported", kind)
	}
	if listOnly[kind] {
		list, err := l.Client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			return false, err
		}
		for _, item := range list.Items {
			if item.Name == name {
				return item.DeletionTimestamp == nil, nil
			}
		}
		return false, nil
	}
	var obj *metav1.PartialObjectMetadata
	var err error
	if namespace == "" {
		obj, err = l.Client.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
	} else {
		obj, err = l.Client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return obj.DeletionTimestamp == nil, nil
}

// NamespaceLabels implements LiveChecker with one metadata GET.
func (l *APILiveChecker) NamespaceLabels(ctx context.Context, name string) (map[string]string, bool, error) {
	obj, err := l.Client.Resource(liveResources[feasibility.KindNamespace]).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return obj.Labels, true, nil
}
