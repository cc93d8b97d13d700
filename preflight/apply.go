package preflight

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

const (
	annDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	noProvisioner          = "kubernetes.io/no-provisioner"
)

// applyManifests adds the manifests' cluster-state objects to st as
// `kubectl apply` would create them: with the namespace defaulted, the
// API server's admission defaults applied, and what controllers do right
// after (a new namespace gets its default ServiceAccount; a claim on an
// Immediate class is provisioned and bound). An object the cluster already
// has is left alone: the cluster's wins. notes are always printed;
// verbose ones only with -v.
func applyManifests(st *State, docs []feasibility.Document, defaultNS string) (notes, verbose []string) {
	type item struct {
		obj  runtime.Object
		kind feasibility.Kind
		doc  feasibility.Document
	}
	var items []item
	for _, d := range docs {
		k, ok := stateKind(d.Object)
		switch {
		case !ok || k == feasibility.KindPod: // workloads, or not state at all
			continue
		case k == feasibility.KindNode || k == feasibility.KindCSINode:
			notes = append(notes, fmt.Sprintf("skipped: %s: the cluster's %s come from the cluster state", describe(d), kindPlural(k)))
			continue
		}
		o := d.Object.DeepCopyObject()
		if !isClusterScoped(o) && objectNamespace(o) == "" {
			setNamespace(o, defaultNS)
		}
		items = append(items, item{obj: normalize(o), kind: k, doc: d})
	}
	// Cluster-scoped objects first: a claim defaults to a StorageClass the
	// same manifests may bring.
	sort.SliceStable(items, func(i, j int) bool { return isClusterScoped(items[i].obj) && !isClusterScoped(items[j].obj) })
	for _, it := range items {
		name := objectName(it.obj)
		if ns := objectNamespace(it.obj); ns != "" {
			name = ns + "/" + name
		}
		what := fmt.Sprintf("%s %s", it.kind, name)
		switch {
		case !st.Knows(it.kind):
			verbose = append(verbose, fmt.Sprintf("not using %s as state: the cluster state has no %s, so references to them are not checked", what, kindPlural(it.kind)))
			continue
		case st.Has(it.kind, objectNamespace(it.obj), objectName(it.obj)):
			verbose = append(verbose, fmt.Sprintf("%s exists in the cluster; using the cluster's", what))
			continue
		}
		if pvc, ok := it.obj.(*v1.PersistentVolumeClaim); ok {
			defaultClass(st, pvc)
			if pv := provision(st, pvc); pv != nil {
				_ = st.Add(pv)
				verbose = append(verbose, fmt.Sprintf("%s will be provisioned at once (Immediate binding); assuming it is bound", what))
			}
		}
		if err := st.Add(it.obj); err != nil {
			notes = append(notes, fmt.Sprintf("not using %s as state: %v", describe(it.doc), err))
			continue
		}
		verbose = append(verbose, fmt.Sprintf("using %s as state (%s)", what, where(it.doc)))
		if n, ok := it.obj.(*v1.Namespace); ok {
			st.addNamespaceImplied(n.Name)
		}
	}
	return notes, verbose
}

// defaultClass gives a claim that names no class the default one, as the
// DefaultStorageClass admission plugin does: with several defaults, the
// newest.
func defaultClass(st *State, pvc *v1.PersistentVolumeClaim) {
	if pvc.Spec.StorageClassName != nil {
		return
	}
	if _, ok := pvc.Annotations[v1.BetaStorageClassAnnotation]; ok {
		return
	}
	var best *storagev1.StorageClass
	for _, o := range st.objects {
		sc, ok := o.(*storagev1.StorageClass)
		if !ok || sc.Annotations[annDefaultStorageClass] != "true" {
			continue
		}
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	if best != nil {
		name := best.Name
		pvc.Spec.StorageClassName = &name
	}
}

// provision returns the volume a dynamic provisioner would create for a
// new claim on an Immediate class, and binds the claim to it. Without
// this the engine would see the claim unbound and call the pod transient,
// when the provisioner binds it seconds after the apply. The volume may be
// placed anywhere the class allows: its node affinity is the class's
// allowed topologies, the most the provisioner could choose from.
func provision(st *State, pvc *v1.PersistentVolumeClaim) *v1.PersistentVolume {
	if pvc.Spec.VolumeName != "" || pvc.Spec.StorageClassName == nil || !st.Knows(feasibility.KindPV) {
		return nil
	}
	i, ok := st.index[ref(feasibility.KindStorageClass, "", *pvc.Spec.StorageClassName)]
	if !ok {
		return nil
	}
	class := st.objects[i].(*storagev1.StorageClass)
	if class.Provisioner == noProvisioner ||
		(class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer) {
		return nil // static volumes only, or bound when the pod is scheduled: the engine judges both
	}
	name := fmt.Sprintf("preflight-%s-%s", pvc.Namespace, pvc.Name)
	if st.Has(feasibility.KindPV, "", name) {
		return nil
	}
	pv := &v1.PersistentVolume{
		TypeMeta:   typeMeta("v1", "PersistentVolume"),
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:         pvc.Spec.Resources.Requests,
			AccessModes:      pvc.Spec.AccessModes,
			StorageClassName: class.Name,
			VolumeMode:       pvc.Spec.VolumeMode,
			ClaimRef: &v1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: pvc.Namespace, Name: pvc.Name},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound},
	}
	if len(class.AllowedTopologies) > 0 {
		sel := &v1.NodeSelector{}
		for _, t := range class.AllowedTopologies {
			var term v1.NodeSelectorTerm
			for _, e := range t.MatchLabelExpressions {
				term.MatchExpressions = append(term.MatchExpressions,
					v1.NodeSelectorRequirement{Key: e.Key, Operator: v1.NodeSelectorOpIn, Values: e.Values})
			}
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, term)
		}
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: sel}
	}
	pvc.Spec.VolumeName = pv.Name
	pvc.Status.Phase = v1.ClaimBound
	return pv
}
