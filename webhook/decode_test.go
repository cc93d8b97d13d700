package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	sigsjson "sigs.k8s.io/json"

	"github.com/fitgate/fitgate/test/scenarios"
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
		if _, ok := leanKinds[gvk]; !ok {
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

// TestDecodeAgreesWithAPIMachinery decodes every workload of the scenario
// corpus, and objects written to trip a decoder, both with decode and with
// the API machinery's own decoder (sigs.k8s.io/json, case-sensitive), and
// requires the same object, or an error from both.
func TestDecodeAgreesWithAPIMachinery(t *testing.T) {
	reference := func(raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
		obj, err := clientgoscheme.Scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
			return nil, err
		}
		obj.(metav1.Object).SetManagedFields(nil)
		return obj, nil
	}
	type input struct {
		name string
		gvk  schema.GroupVersionKind
		raw  []byte
	}
	var inputs []input
	corpus, err := scenarios.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range corpus {
		raw, err := json.Marshal(sc.Workload)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{sc.Name, sc.Workload.GetObjectKind().GroupVersionKind(), raw})
	}
	for _, o := range seedObjects() {
		inputs = append(inputs, input{"seed " + o.(metav1.Object).GetName(), o.GetObjectKind().GroupVersionKind(), mustJSON(t, o)})
	}
	pod := v1.SchemeGroupVersion.WithKind("Pod")
	deploy := appsv1.SchemeGroupVersion.WithKind("Deployment")
	for _, c := range []struct{ name, raw string }{
		{"names in another case are not fields", `{"kind":"Pod","apiVersion":"v1","Spec":{"nodeName":"n1"},"spec":{"NodeSelector":{"a":"b"}}}`},
		{"a repeated name: the last wins", `{"kind":"Pod","apiVersion":"v1","spec":{"nodeName":"n1","nodeName":"n2"}}`},
		{"a repeated object merges", `{"kind":"Pod","apiVersion":"v1","spec":{"nodeSelector":{"a":"1"}},"spec":{"nodeSelector":{"b":"2"}}}`},
		{"null leaves the field empty", `{"kind":"Pod","apiVersion":"v1","metadata":null,"spec":{"containers":null,"nodeSelector":null}}`},
		{"invalid UTF-8 in a string", "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\xffb\"}}"},
		{"escapes and unicode", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a\u00e9\ud83d\ude00\n","labels":{"k":"\"q\""}}}`},
		{"quantities in every form", `{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":0.5,"memory":"1Gi","x/y":1e3},"limits":{"cpu":"500m"}}}]}}`},
		{"int-or-string", `{"kind":"Deployment","apiVersion":"apps/v1","spec":{"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}}}}`},
		{"unknown fields are dropped", `{"kind":"Pod","apiVersion":"v1","spec":{"future":{"x":[1,2]},"nodeName":"n"}}`},
		{"a fraction for an integer", `{"kind":"Deployment","apiVersion":"apps/v1","spec":{"replicas":1.5}}`},
		{"a string for an integer", `{"kind":"Deployment","apiVersion":"apps/v1","spec":{"replicas":"2"}}`},
		{"an integer out of range", `{"kind":"Deployment","apiVersion":"apps/v1","spec":{"replicas":4294967296}}`},
		{"a bad quantity", `{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}}`},
		{"an array for an object", `{"kind":"Pod","apiVersion":"v1","spec":[]}`},
		{"truncated", `{"kind":"Pod","apiVersion":"v1","spec":{`},
		{"trailing data", `{"kind":"Pod","apiVersion":"v1"} {}`},
		{"not an object", `"pod"`},
	} {
		gvk := pod
		if strings.Contains(c.raw, `"Deployment"`) {
			gvk = deploy
		}
		inputs = append(inputs, input{c.name, gvk, []byte(c.raw)})
	}
	for _, in := range inputs {
		want, wantErr := reference(in.raw, in.gvk)
		got, gotErr := decode(in.raw, in.gvk)
		switch {
		case (wantErr == nil) != (gotErr == nil):
			t.Errorf("%s: API machinery error %v, decode error %v", in.name, wantErr, gotErr)
		case gotErr == nil:
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: decoded objects differ (-API machinery +decode):\n%s", in.name, diff)
			}
		}
	}
	if len(corpus) < 100 {
		t.Errorf("only %d scenarios in the corpus", len(corpus))
	}
}

// TestDecodeProblemWording: a decoding error names the field as kubectl
// explain does and says what is wrong, without Go type names.
func TestDecodeProblemWording(t *testing.T) {
	pod := v1.SchemeGroupVersion.WithKind("Pod")
	deploy := appsv1.SchemeGroupVersion.WithKind("Deployment")
	for _, c := range []struct {
		gvk       schema.GroupVersionKind
		raw, want string
	}{
		{pod, `{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"lots"}}}]}}`,
			"spec.containers[0].resources.requests.cpu: not a quantity such as 500m or 2Gi"},
		{deploy, `{"spec":{"replicas":1.5}}`, "spec.replicas: 1.5 is not an integer"},
		{deploy, `{"spec":{"replicas":"2"}}`, "spec.replicas: a JSON string where an integer is expected"},
		{deploy, `{"spec":{"replicas":4294967296}}`, "spec.replicas: 4294967296 is out of range"},
		{deploy, `{"spec":{"strategy":{"rollingUpdate":{"maxSurge":true}}}}`,
			"spec.strategy.rollingUpdate.maxSurge: a JSON boolean where an integer or a string is expected"},
		{pod, `{"metadata":{"labels":{"a.b/c":5}}}`, `metadata.labels["a.b/c"]: a JSON number where a string is expected`},
		{pod, `{"spec":[]}`, "spec: a JSON array where an object is expected"},
		{pod, `"pod"`, "the object: a JSON string where an object is expected"},
		{pod, `{"spec":{`, "invalid JSON at byte 9: unexpected EOF"},
		{pod, `{} {}`, "invalid JSON at byte 3: invalid character '{' after top-level value"},
		{pod, ``, "the request has no object"},
	} {
		_, err := decode([]byte(c.raw), c.gvk)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s\n got %v\nwant %s", c.raw, err, c.want)
		}
	}
}
