package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// TestRequestLogger: a request's values are in every line its logger
// writes, first, and cost nothing when no line is written.
func TestRequestLogger(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	req := &admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u-1", Namespace: "apps", Name: "web",
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}}}
	req.UserInfo.Username = "alice"
	l := requestLogger(base, req)
	l.V(1).Info("not written")
	l = l.WithValues() // what controller-runtime's FromContext does
	l.WithValues("verdict", "Fits").WithName("sub").V(1).Info("not written either")
	if sink := l.GetSink().(*lazyValuesSink); sink.sink != nil || len(lines) != 0 {
		t.Fatalf("values built or a line written without logging: %q", lines)
	}
	l.WithValues("verdict", "Fits").Info("denied", "mode", "enforce")
	l.Error(errors.New("boom"), "failed")
	l.WithName("sub").Info("named")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	for _, want := range []string{`"namespace"="apps"`, `"name"="web"`, `"user"="alice"`, `"requestID"="u-1"`} {
		for _, line := range lines {
			if !strings.Contains(line, want) {
				t.Errorf("%s missing from %s", want, line)
			}
		}
	}
	if !strings.Contains(lines[0], `"requestID"="u-1" "verdict"="Fits" "mode"="enforce"`) {
		t.Errorf("the request's values are not first: %s", lines[0])
	}
}

// TestDecodeReview: a review reads as the API machinery reads it, each
// object's Raw is exactly its bytes and a slice of the body, and an object
// of a judged kind is decoded in the same pass when its kind comes first,
// into an object that does not change when the body's buffer is reused.
func TestDecodeReview(t *testing.T) {
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	deployKind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	review := func(req admissionv1.AdmissionRequest) string {
		return string(mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: &req}))
	}
	podJSON := string(mustJSON(t, pod(nsStrict, "p", "1")))
	big := pod(nsStrict, "big", "1")
	big.Annotations = map[string]string{"a": strings.Repeat("x", DefaultMaxObjectBytes)}
	for _, c := range []struct {
		name    string
		body    string
		decoded []bool // Object, OldObject decoded in the same pass
		wantErr string
	}{
		{name: "a pod", body: review(admissionv1.AdmissionRequest{UID: "u", Kind: podKind, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: []byte(podJSON)}, OldObject: runtime.RawExtension{Raw: []byte("null")},
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)}}),
			decoded: []bool{true, false}},
		{name: "a deployment update", body: review(admissionv1.AdmissionRequest{UID: "u", Kind: deployKind, Operation: admissionv1.Update,
			Object:    runtime.RawExtension{Raw: mustJSON(t, deployment(nsStrict, "d", "1", 3))},
			OldObject: runtime.RawExtension{Raw: mustJSON(t, deployment(nsStrict, "d", "1", 2))}}),
			decoded: []bool{true, true}},
		{name: "indented, kind first", body: `{ "apiVersion" : "admission.k8s.io/v1", "kind" : "AdmissionReview", "request" : {
			"uid" : "u", "kind" : {"version": "v1", "kind": "Pod"},
			"object" :
				` + podJSON + ` ,
			"oldObject" : null } }`, decoded: []bool{true, false}},
		{name: "kind after the object", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",` +
			`"object":` + podJSON + `,"kind":{"version":"v1","kind":"Pod"}}}`, decoded: []bool{false, false}},
		{name: "a kind fitgate does not judge", body: review(admissionv1.AdmissionRequest{UID: "u",
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: []byte(`{"kind":"Service","apiVersion":"v1","spec":{"ports":[{"port":80}]}}`)}}),
			decoded: []bool{false, false}},
		{name: "a pod that does not decode", body: review(admissionv1.AdmissionRequest{UID: "u", Kind: podKind, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: []byte(`{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}}`)}}),
			decoded: []bool{false, false}},
		{name: "a pod over the size fitgate checks", body: review(admissionv1.AdmissionRequest{UID: "u", Kind: podKind, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: mustJSON(t, big)}}), decoded: []bool{false, false}},
		{name: "a broken review", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"object":{"spec":}}}`,
			wantErr: "invalid character"},
		{name: "a request of the wrong type", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[]}`,
			wantErr: "array"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			got, err := decodeReview(body)
			var want admissionv1.AdmissionReview
			wantErr := json.Unmarshal(body, &want)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || wantErr == nil {
					t.Fatalf("error %v, API machinery's %v; want one containing %q from both", err, wantErr, c.wantErr)
				}
				return
			}
			if err != nil || wantErr != nil {
				t.Fatalf("error %v, API machinery's %v", err, wantErr)
			}
			var pass, copies []runtime.Object // decoded in the pass, and deep copies of them
			for i, raw := range []*runtime.RawExtension{&got.Request.Object, &got.Request.OldObject} {
				if (raw.Object != nil) != c.decoded[i] {
					t.Errorf("object %d decoded in the pass: %v, want %v", i, raw.Object != nil, c.decoded[i])
				}
				if len(raw.Raw) > 0 && !within(body, raw.Raw) {
					t.Errorf("object %d is not a slice of the body", i)
				}
				if raw.Object != nil {
					again, err := decode(raw.Raw, raw.Object.GetObjectKind().GroupVersionKind())
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(again, raw.Object); diff != "" {
						t.Errorf("object %d decoded in the pass differs from its bytes decoded (-bytes +pass):\n%s", i, diff)
					}
					pass, copies = append(pass, raw.Object), append(copies, raw.Object.DeepCopyObject())
				}
				raw.Object = nil // the rest is compared with the API machinery's reading
			}
			// Compared as bytes: cmp compares slices element by element.
			for i, pair := range [][2]*runtime.RawExtension{{&want.Request.Object, &got.Request.Object},
				{&want.Request.OldObject, &got.Request.OldObject}, {&want.Request.Options, &got.Request.Options}} {
				if !bytes.Equal(pair[0].Raw, pair[1].Raw) {
					t.Errorf("raw %d: %.80q..., want %.80q...", i, pair[1].Raw, pair[0].Raw)
				}
				pair[0].Raw, pair[1].Raw = nil, nil
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("review differs from the API machinery's reading (-want +got):\n%s", diff)
			}
			for i := range body {
				body[i] = 'x'
			}
			for i := range pass {
				if diff := cmp.Diff(copies[i], pass[i]); diff != "" {
					t.Errorf("an object decoded in the pass changed with the body:\n%s", diff)
				}
			}
		})
	}
}

// within reports whether sub is empty or lies within b's bytes.
func within(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start, at := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return len(b) > 0 && at >= start && at-start+uintptr(len(sub)) <= uintptr(len(b))
}
