package feasibility

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Workload is any object that makes pods, reduced to what the engine needs:
// the pod template and how many pods it wants at once.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	// Template is the pod the workload makes. For a Pod it is the pod itself.
	Template v1.PodTemplateSpec
	// Replicas is how many pods run at once: spec.replicas, a Job's
	// parallelism (capped by completions), 1 for a Pod. Ignored for a
	// DaemonSet, which wants one pod per eligible node.
	Replicas int32
	// VolumeClaimTemplates are a StatefulSet's per-replica claims.
	VolumeClaimTemplates []v1.PersistentVolumeClaim
	// SpecPath is the path of the pod spec within the object, used to name
	// fields in messages ("spec" for a Pod, "spec.template.spec" for most).
	SpecPath string
}

// IsDaemonSet reports whether the workload places one pod per node.
func (w *Workload) IsDaemonSet() bool { return w.Kind == "DaemonSet" }

// WorkloadFromObject extracts the pod template of any supported kind. The
// object must be a typed Go object; see DecodeObject for raw manifests.
func WorkloadFromObject(obj runtime.Object) (*Workload, error) {
	one := int32(1)
	replicas := func(r *int32) int32 {
		if r == nil {
			return one // the API's default for every replicated kind
		}
		return *r
	}
	switch o := obj.(type) {
	case *v1.Pod:
		return &Workload{Kind: "Pod", Namespace: o.Namespace, Name: podName(o.ObjectMeta),
			Template: v1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}, Replicas: 1, SpecPath: "spec"}, nil
	case *appsv1.Deployment:
		return tmpl("Deployment", o.ObjectMeta, o.Spec.Template, replicas(o.Spec.Replicas)), nil
	case *appsv1.ReplicaSet:
		return tmpl("ReplicaSet", o.ObjectMeta, o.Spec.Template, replicas(o.Spec.Replicas)), nil
	case *appsv1.StatefulSet:
		w := tmpl("StatefulSet", o.ObjectMeta, o.Spec.Template, replicas(o.Spec.Replicas))
		w.VolumeClaimTemplates = o.Spec.VolumeClaimTemplates
		return w, nil
	case *appsv1.DaemonSet:
		return tmpl("DaemonSet", o.ObjectMeta, o.Spec.Template, 0), nil
	case *batchv1.Job:
		return tmpl("Job", o.ObjectMeta, o.Spec.Template, jobParallelism(&o.Spec)), nil
	case *batchv1.CronJob:
		w := tmpl("CronJob", o.ObjectMeta, o.Spec.JobTemplate.Spec.Template, jobParallelism(&o.Spec.JobTemplate.Spec))
		w.SpecPath = "spec.jobTemplate.spec.template.spec"
		return w, nil
	case *v1.ReplicationController:
		if o.Spec.Template == nil {
			return nil, fmt.Errorf("replicationcontroller %q has no pod template", o.Name)
		}
		return tmpl("ReplicationController", o.ObjectMeta, *o.Spec.Template, replicas(o.Spec.Replicas)), nil
	}
	return nil, fmt.Errorf("%T is not a workload fitgate understands", obj)
}

// SupportedKinds are the workload kinds WorkloadFromObject accepts.
var SupportedKinds = []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}

func tmpl(kind string, meta metav1.ObjectMeta, t v1.PodTemplateSpec, replicas int32) *Workload {
	return &Workload{Kind: kind, Namespace: meta.Namespace, Name: podName(meta), Template: t,
		Replicas: replicas, SpecPath: "spec.template.spec"}
}

// podName names an object for messages even when only generateName is set.
func podName(m metav1.ObjectMeta) string {
	if m.Name != "" {
		return m.Name
	}
	return m.GenerateName
}

// jobParallelism is how many of a Job's pods run at once: parallelism
// (default 1), no more than completions when that is set.
func jobParallelism(spec *batchv1.JobSpec) int32 {
	p := int32(1)
	if spec.Parallelism != nil {
		p = *spec.Parallelism
	}
	if spec.Completions != nil && *spec.Completions < p {
		p = *spec.Completions
	}
	if spec.Suspend != nil && *spec.Suspend {
		return 0
	}
	return p
}
