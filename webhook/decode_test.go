package webhook

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// TestDecodeSkipsOnlyManagedFields decodes every judged kind, as the API
// server sends it (with managedFields), and checks the result equals the
// object without them: nothing else may be lost.
func TestDecodeSkipsOnlyManagedFields(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", Namespace: "apps", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"a": "b"}, UID: "u1", ResourceVersion: "7", Generation: 3,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "o1", Controller: ptr.To(true)}},
			Finalizers:      []string{"f"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}}}}
	}
	spec := v1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}, Containers: []v1.Container{{Name: "c", Image: "i",
		Ports: []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}}}}
	tmpl := v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: spec}
	objs := []runtime.Object{
		&v1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta(), Spec: spec},
		&v1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, ObjectMeta: meta(),
			Spec: v1.ReplicationControllerSpec{Replicas: ptr.To(int32(2)), Template: &tmpl}},
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta(),
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Template: tmpl}},
		&appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: meta(),
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2)), Template: tmpl}},
		&appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: meta(),
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2)), Template: tmpl}},
		&appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: meta(),
			Spec: appsv1.DaemonSetSpec{Template: tmpl}},
		&batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: meta(),
			Spec: batchv1.JobSpec{Parallelism: ptr.To(int32(2)), Template: tmpl}},
		&batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: meta(),
			Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
	}
	if len(objs) != len(judgedKinds) {
		t.Fatalf("%d kinds tested, %d judged", len(objs), len(judgedKinds))
	}
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		if _, ok := leanDecoders[gvk]; !ok {
			t.Errorf("%s: no lean decoder", gvk)
		}
		raw, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(raw, gvk)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		want := o.DeepCopyObject()
		want.(metav1.Object).SetManagedFields(nil)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: decoded object differs (-want +got):\n%s", gvk, diff)
		}
		if _, err := decode(raw, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}); gvk.Kind != "Pod" && err == nil {
			t.Errorf("%s decoded as a Pod without error", gvk)
		}
	}
}
