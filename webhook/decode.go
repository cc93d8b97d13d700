package webhook

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
)

// Decoding the object is most of what a review costs, and the apiserver
// sends every object with its managedFields, often half of its bytes. The
// checks never read them, so each judged kind is decoded through a wrapper
// whose metadata skips that field (a shallower field of the same JSON name
// wins over the embedded one) instead of building it.

// skipJSON accepts any JSON value and keeps nothing.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

type leanMeta struct {
	metav1.ObjectMeta `json:",inline"`
	ManagedFields     skipJSON `json:"managedFields"`
}

type (
	leanPod struct {
		v1.Pod   `json:",inline"`
		Metadata leanMeta `json:"metadata"`
	}
	leanReplicationController struct {
		v1.ReplicationController `json:",inline"`
		Metadata                 leanMeta `json:"metadata"`
	}
	leanDeployment struct {
		appsv1.Deployment `json:",inline"`
		Metadata          leanMeta `json:"metadata"`
	}
	leanReplicaSet struct {
		appsv1.ReplicaSet `json:",inline"`
		Metadata          leanMeta `json:"metadata"`
	}
	leanStatefulSet struct {
		appsv1.StatefulSet `json:",inline"`
		Metadata           leanMeta `json:"metadata"`
	}
	leanDaemonSet struct {
		appsv1.DaemonSet `json:",inline"`
		Metadata         leanMeta `json:"metadata"`
	}
	leanJob struct {
		batchv1.Job `json:",inline"`
		Metadata    leanMeta `json:"metadata"`
	}
	leanCronJob struct {
		batchv1.CronJob `json:",inline"`
		Metadata        leanMeta `json:"metadata"`
	}
)

func lean[W any](raw []byte, finish func(*W) runtime.Object) (runtime.Object, error) {
	w := new(W)
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, w); err != nil {
		return nil, err
	}
	return finish(w), nil
}

var leanDecoders = map[schema.GroupVersionKind]func([]byte) (runtime.Object, error){
	v1.SchemeGroupVersion.WithKind("Pod"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanPod) runtime.Object { w.Pod.ObjectMeta = w.Metadata.ObjectMeta; return &w.Pod })
	},
	v1.SchemeGroupVersion.WithKind("ReplicationController"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanReplicationController) runtime.Object {
			w.ReplicationController.ObjectMeta = w.Metadata.ObjectMeta
			return &w.ReplicationController
		})
	},
	appsv1.SchemeGroupVersion.WithKind("Deployment"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanDeployment) runtime.Object {
			w.Deployment.ObjectMeta = w.Metadata.ObjectMeta
			return &w.Deployment
		})
	},
	appsv1.SchemeGroupVersion.WithKind("ReplicaSet"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanReplicaSet) runtime.Object {
			w.ReplicaSet.ObjectMeta = w.Metadata.ObjectMeta
			return &w.ReplicaSet
		})
	},
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanStatefulSet) runtime.Object {
			w.StatefulSet.ObjectMeta = w.Metadata.ObjectMeta
			return &w.StatefulSet
		})
	},
	appsv1.SchemeGroupVersion.WithKind("DaemonSet"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanDaemonSet) runtime.Object {
			w.DaemonSet.ObjectMeta = w.Metadata.ObjectMeta
			return &w.DaemonSet
		})
	},
	batchv1.SchemeGroupVersion.WithKind("Job"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanJob) runtime.Object { w.Job.ObjectMeta = w.Metadata.ObjectMeta; return &w.Job })
	},
	batchv1.SchemeGroupVersion.WithKind("CronJob"): func(raw []byte) (runtime.Object, error) {
		return lean(raw, func(w *leanCronJob) runtime.Object { w.CronJob.ObjectMeta = w.Metadata.ObjectMeta; return &w.CronJob })
	},
}

// decode reads a request's object as the kind the request names, in one
// pass, case-sensitively as the API machinery does.
func decode(raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if len(raw) == 0 {
		return nil, errors.New("the request has no object")
	}
	var obj runtime.Object
	var err error
	if dec, ok := leanDecoders[gvk]; ok {
		obj, err = dec(raw)
	} else if obj, err = clientgoscheme.Scheme.New(gvk); err == nil {
		err = sigsjson.UnmarshalCaseSensitivePreserveInts(raw, obj)
	}
	if err != nil {
		return nil, err
	}
	if got := obj.GetObjectKind().GroupVersionKind(); !got.Empty() && got != gvk {
		return nil, fmt.Errorf("the object is a %s, the request is for a %s", kindString(got), kindString(gvk))
	}
	return obj, nil
}
