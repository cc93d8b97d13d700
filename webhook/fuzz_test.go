package webhook

// Fuzz targets for the AdmissionReview handler (issue #8, Bad input).
//
//	go test -run '^$' -fuzz '^FuzzHandlerBody$' -fuzztime 10m ./webhook/
//	go test -run '^$' -fuzz '^FuzzHandlerObject$' -fuzztime 10m ./webhook/
//
// FuzzHandlerBody mutates whole HTTP bodies, so it mostly exercises the
// envelope; FuzzHandlerObject keeps a well-formed review and mutates the
// object (and old object) inside it, so it reaches decoding, policy, the
// engine and the wording of messages. Both assert the handler's contract:
// an AdmissionReview always comes back, never a 5xx, never past the hang
// limit, warnings short, and a refusal always says why.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// checkAnswer asserts the contract every answer keeps.
func checkAnswer(t *testing.T, got served, uid types.UID) {
	t.Helper()
	resp := got.review.Response
	switch got.status {
	case http.StatusOK, http.StatusBadRequest, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("HTTP %d", got.status)
	}
	if resp.Result != nil && resp.Result.Code >= 500 {
		t.Fatalf("code %d: %s", resp.Result.Code, resp.Result.Message)
	}
	if !resp.Allowed {
		if resp.Result == nil || resp.Result.Message == "" {
			t.Fatalf("refused without a message: %+v", resp.Result)
		}
		if c := resp.Result.Code; c != http.StatusForbidden && (c < 400 || c >= 500) {
			t.Fatalf("refused with code %d", c)
		}
	}
	if got.status == http.StatusOK && uid != "" && resp.UID != uid {
		t.Fatalf("response UID %q for request %q", resp.UID, uid)
	}
	if len(resp.Warnings) > DefaultMaxWarnings+2 {
		t.Fatalf("%d warnings", len(resp.Warnings))
	}
	for _, w := range resp.Warnings {
		if n := len([]rune(w)); n > maxWarningLen {
			t.Fatalf("warning of %d characters: %s", n, w)
		}
	}
}

func mustJSON(f testing.TB, v any) []byte {
	f.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// seedObjects are objects of every judged kind, with the fields the engine
// reads most: requests, selectors, affinity, spread, ports, volumes.
func seedObjects() []runtime.Object {
	withEverything := func(ns string) *v1.Pod {
		p := pod(ns, "p", "1")
		s := &p.Spec
		s.NodeSelector = map[string]string{"kubernetes.io/hostname": "node-a"}
		s.Tolerations = []v1.Toleration{{Key: "k", Operator: v1.TolerationOpExists}}
		s.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}}}
		s.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone",
			WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}
		s.Containers[0].Ports = []v1.ContainerPort{{HostPort: 80, ContainerPort: 80}}
		s.ServiceAccountName = "robot"
		s.PriorityClassName = "high"
		withSecretVolume(s, "db")
		s.Volumes = append(s.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
		return p
	}
	tmpl := v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: podSpec("2")}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	return []runtime.Object{
		pod(nsStrict, "p", "8"),
		withEverything(nsEnforce),
		deployment(nsDefault, "d", "2", 3),
		&appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "s"},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2)), Selector: sel, Template: tmpl,
				VolumeClaimTemplates: []v1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}}},
		&appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsWarn, Name: "ds"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}},
		&batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsEnforce, Name: "cj"},
			Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Parallelism: ptr.To(int32(4)), Template: tmpl}}}},
	}
}

func FuzzHandlerBody(f *testing.F) {
	for _, obj := range seedObjects() {
		gvk := obj.GetObjectKind().GroupVersionKind()
		m := obj.(metav1.Object)
		f.Add(mustJSON(f, admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: &admissionv1.AdmissionRequest{
			UID: "u", Operation: admissionv1.Create, Namespace: m.GetNamespace(), Name: m.GetName(),
			Kind:   metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Object: runtime.RawExtension{Raw: mustJSON(f, obj)}}}))
	}
	for _, s := range []string{
		`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"locked","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"8"}}}]}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"UPDATE","namespace":"apps","object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":5}},"oldObject":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1}}}}`,
		`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{}}`,
		`{"kind":"AdmissionReview"}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, _, _ := newFixture(t)
		srv := NewServer(ServerOptions{}, h, nil)
		var env struct {
			Request *struct {
				UID types.UID `json:"uid"`
			} `json:"request"`
		}
		var uid types.UID
		if json.Unmarshal(body, &env) == nil && env.Request != nil {
			uid = env.Request.UID
		}
		checkAnswer(t, serveBody(t, srv.hook, body, "application/json"), uid)
	})
}

// fuzzKinds are the kinds FuzzHandlerObject's request can name: every
// judged kind, and one that is not.
var fuzzKinds = []metav1.GroupVersionKind{
	{Version: "v1", Kind: "Pod"}, {Version: "v1", Kind: "ReplicationController"},
	{Group: "apps", Version: "v1", Kind: "Deployment"}, {Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}, {Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"}, {Group: "batch", Version: "v1", Kind: "CronJob"},
	{Version: "v1", Kind: "Service"},
}

var fuzzNamespaces = []string{nsDefault, nsOff, nsWarn, nsEnforce, nsStrict, nsBadMode, "kube-system", "unknown"}

func FuzzHandlerObject(f *testing.F) {
	for i, obj := range seedObjects() {
		gvk := obj.GetObjectKind().GroupVersionKind()
		kind := 0
		for k, g := range fuzzKinds {
			if g.Kind == gvk.Kind {
				kind = k
			}
		}
		raw := mustJSON(f, obj)
		f.Add(uint8(kind), uint8(i), false, raw, []byte(nil))
		f.Add(uint8(kind), uint8(i+1), true, raw, raw)
	}
	d2 := mustJSON(f, deployment(nsStrict, "d", "1", 2))
	d9 := mustJSON(f, deployment(nsStrict, "d", "1", 9))
	f.Add(uint8(2), uint8(4), true, d9, d2)
	f.Add(uint8(0), uint8(4), false, []byte(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"resources":{"requests":{"cpu":"1e400","memory":"-1"}}}]}}`), []byte(nil))
	f.Fuzz(func(t *testing.T, kind, ns uint8, update bool, obj, old []byte) {
		// The API server only ever sends JSON objects here.
		if !json.Valid(obj) || (len(old) > 0 && !json.Valid(old)) {
			return
		}
		h, _, _ := newFixture(t)
		srv := NewServer(ServerOptions{}, h, nil)
		req := admissionv1.AdmissionRequest{UID: "u", Operation: admissionv1.Create,
			Kind:      fuzzKinds[int(kind)%len(fuzzKinds)],
			Namespace: fuzzNamespaces[int(ns)%len(fuzzNamespaces)], Name: "x",
			Object: runtime.RawExtension{Raw: obj}}
		if update {
			req.Operation = admissionv1.Update
			if len(old) > 0 {
				req.OldObject = runtime.RawExtension{Raw: old}
			}
		}
		body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: &req})
		if err != nil {
			t.Fatal(err)
		}
		got := serveBody(t, srv.hook, body, "application/json")
		checkAnswer(t, got, "u")
		resp := got.review.Response
		// A well-formed review is always answered: allowed, or denied on
		// findings (403), never refused as a bad request.
		if got.status != http.StatusOK || (!resp.Allowed && resp.Result.Code != http.StatusForbidden) {
			t.Fatalf("HTTP %d, code %d: %s", got.status, resp.Result.Code, resp.Result.Message)
		}
		// Exempt and off namespaces, and kinds fitgate does not judge, are
		// never denied.
		if !resp.Allowed && (req.Namespace == nsOff || req.Namespace == "kube-system" || req.Kind.Kind == "Service") {
			t.Fatalf("denied in %s (%s): %s", req.Namespace, req.Kind.Kind, resp.Result.Message)
		}
		// Only the object's own namespace may be named; the fixture's hog
		// pods live in "other". (Unless the input itself says those names.)
		text := strings.Join(resp.Warnings, "\n")
		if resp.Result != nil {
			text += resp.Result.Message
		}
		input := append(append([]byte{}, obj...), old...)
		if bytes.Contains(input, []byte("hog")) || bytes.Contains(input, []byte("other")) {
			return
		}
		if strings.Contains(text, "hog-") || strings.Contains(text, `"other"`) {
			t.Fatalf("answer names a pod of another namespace: %s", text)
		}
	})
}
