package parity

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/test/scenarios"
)

// renamer gives each replayed scenario its own namespaces and node names,
// so scenarios never see each other's objects. The mapping is one-to-one,
// so topology (hostname, node-name pins) keeps its meaning.
type renamer struct{ prefix string }

func (r renamer) ns(name string) string {
	if name == "" {
		return ""
	}
	return r.prefix + "-" + name
}

func (r renamer) node(name string) string {
	if name == "" {
		return ""
	}
	return r.prefix + "-" + name
}

// apply renames obj in place.
func (r renamer) apply(obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	switch o := obj.(type) {
	case *v1.Namespace:
		o.Name = r.ns(o.Name)
		delete(o.Labels, v1.LabelMetadataName)
		return
	case *v1.Node:
		o.Name = r.node(o.Name)
		if o.Labels != nil {
			if h, ok := o.Labels[v1.LabelHostname]; ok {
				o.Labels[v1.LabelHostname] = r.node(h)
			}
		}
		return
	case *v1.PersistentVolume:
		if o.Spec.ClaimRef != nil {
			o.Spec.ClaimRef.Namespace = r.ns(o.Spec.ClaimRef.Namespace)
		}
		if o.Spec.NodeAffinity != nil {
			r.nodeSelector(o.Spec.NodeAffinity.Required)
		}
		return
	}
	if !scenarios.IsClusterScoped(obj) {
		m.SetNamespace(r.ns(m.GetNamespace()))
	}
	if spec := podSpecOf(obj); spec != nil {
		r.podSpec(spec)
	}
}

func (r renamer) podSpec(spec *v1.PodSpec) {
	spec.NodeName = r.node(spec.NodeName)
	if h, ok := spec.NodeSelector[v1.LabelHostname]; ok {
		spec.NodeSelector[v1.LabelHostname] = r.node(h)
	}
	a := spec.Affinity
	if a == nil {
		return
	}
	if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		r.nodeSelector(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	terms := func(ts []v1.PodAffinityTerm) {
		for i := range ts {
			for j := range ts[i].Namespaces {
				ts[i].Namespaces[j] = r.ns(ts[i].Namespaces[j])
			}
		}
	}
	if a.PodAffinity != nil {
		terms(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	if a.PodAntiAffinity != nil {
		terms(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
}

// nodeSelector renames node names pinned through matchFields metadata.name
// and through the hostname label.
func (r renamer) nodeSelector(sel *v1.NodeSelector) {
	if sel == nil {
		return
	}
	for i := range sel.NodeSelectorTerms {
		t := &sel.NodeSelectorTerms[i]
		for j := range t.MatchFields {
			if t.MatchFields[j].Key == "metadata.name" {
				for k := range t.MatchFields[j].Values {
					t.MatchFields[j].Values[k] = r.node(t.MatchFields[j].Values[k])
				}
			}
		}
		for j := range t.MatchExpressions {
			if t.MatchExpressions[j].Key == v1.LabelHostname {
				for k := range t.MatchExpressions[j].Values {
					t.MatchExpressions[j].Values[k] = r.node(t.MatchExpressions[j].Values[k])
				}
			}
		}
	}
}

// podSpecOf returns the pod spec inside any workload kind.
func podSpecOf(obj runtime.Object) *v1.PodSpec {
	switch o := obj.(type) {
	case *v1.Pod:
		return &o.Spec
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec
	case *appsv1.ReplicaSet:
		return &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec
	case *batchv1.Job:
		return &o.Spec.Template.Spec
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template.Spec
	case *v1.ReplicationController:
		if o.Spec.Template != nil {
			return &o.Spec.Template.Spec
		}
	}
	return nil
}
