package preflight

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// stateKind is the snapshot kind of obj, if it is cluster state.
func stateKind(obj runtime.Object) (feasibility.Kind, bool) {
	switch o := obj.(type) {
	case *v1.Node:
		return feasibility.KindNode, true
	case *v1.Pod:
		return feasibility.KindPod, true
	case *v1.Namespace:
		return feasibility.KindNamespace, true
	case *v1.PersistentVolumeClaim:
		return feasibility.KindPVC, true
	case *v1.PersistentVolume:
		return feasibility.KindPV, true
	case *storagev1.StorageClass:
		return feasibility.KindStorageClass, true
	case *storagev1.CSINode:
		return feasibility.KindCSINode, true
	case *v1.ResourceQuota:
		return feasibility.KindResourceQuota, true
	case *v1.LimitRange:
		return feasibility.KindLimitRange, true
	case *schedulingv1.PriorityClass:
		return feasibility.KindPriorityClass, true
	case *nodev1.RuntimeClass:
		return feasibility.KindRuntimeClass, true
	case *v1.ServiceAccount:
		return feasibility.KindServiceAccount, true
	case *v1.Secret:
		return feasibility.KindSecret, true
	case *v1.ConfigMap:
		return feasibility.KindConfigMap, true
	case *metav1.PartialObjectMetadata:
		switch o.Kind {
		case string(feasibility.KindSecret), string(feasibility.KindConfigMap):
			return feasibility.Kind(o.Kind), true
		}
	}
	return "", false
}

func isClusterScoped(obj runtime.Object) bool {
	switch obj.(type) {
	case *v1.Node, *v1.Namespace, *v1.PersistentVolume, *storagev1.StorageClass, *storagev1.CSINode,
		*schedulingv1.PriorityClass, *nodev1.RuntimeClass:
		return true
	}
	return false
}

func ref(k feasibility.Kind, namespace, name string) string {
	return string(k) + "/" + namespace + "/" + name
}

func objectName(o runtime.Object) string {
	if m, err := meta.Accessor(o); err == nil {
		if m.GetName() == "" {
			return m.GetGenerateName()
		}
		return m.GetName()
	}
	return ""
}

func objectNamespace(o runtime.Object) string {
	if m, err := meta.Accessor(o); err == nil {
		return m.GetNamespace()
	}
	return ""
}

func setNamespace(o runtime.Object, ns string) {
	if m, err := meta.Accessor(o); err == nil {
		m.SetNamespace(ns)
	}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// docKind names a document's kind for counts: "Deployment", or
// "Widget (example.com/v1)" for a kind fitgate does not know.
func docKind(d feasibility.Document) string {
	if d.Unknown != nil {
		return fmt.Sprintf("%s (%s)", d.Unknown.GetKind(), d.Unknown.GetAPIVersion())
	}
	if d.Object != nil {
		if k := d.Object.GetObjectKind().GroupVersionKind().Kind; k != "" {
			return k
		}
		return strings.TrimPrefix(fmt.Sprintf("%T", d.Object), "*")
	}
	return "empty document"
}

// countList renders counts as "2 Deployment, 1 Service", sorted by name.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// kindPlural is a kind's plural for messages: "Secrets", "StorageClasses".
func kindPlural(k feasibility.Kind) string {
	if strings.HasSuffix(string(k), "s") {
		return string(k) + "es"
	}
	return string(k) + "s"
}
