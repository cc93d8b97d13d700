package webhook

// Bad input through the whole HTTP path (issue #8, Bad input): every body
// gets a clear error or an allow, with a warning when nothing was checked;
// never a 500, never a hang, and always within the handler's budget.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// hangLimit fails a request that takes longer: far above any budget used
// here, far below the API server's 30 s maximum.
const hangLimit = 10 * time.Second

// served is one answer of the webhook's HTTP handler.
type served struct {
	status int
	review admissionv1.AdmissionReview
	took   time.Duration
}

// serveBody POSTs body to what the server mounts at /validate.
func serveBody(t testing.TB, h http.Handler, body []byte, contentType string) served {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
	if contentType != "none" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(hangLimit):
		t.Fatalf("no answer after %v", hangLimit)
	}
	out := served{status: rec.Code, took: time.Since(start)}
	if err := json.Unmarshal(rec.Body.Bytes(), &out.review); err != nil {
		t.Fatalf("answer is not an AdmissionReview (%v): %.300s", err, rec.Body.String())
	}
	if out.review.Response == nil {
		t.Fatalf("AdmissionReview without a response: %.300s", rec.Body.String())
	}
	return out
}

// reviewBody wraps a request (built like the API server's) in a v1
// AdmissionReview.
func reviewBody(t testing.TB, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: &req})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// podRequest is a CREATE of obj (a Pod unless kind says otherwise) in ns.
func podRequest(t testing.TB, ns string, obj runtime.Object) admissionv1.AdmissionRequest {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return admissionv1.AdmissionRequest{UID: "bad-input", Operation: admissionv1.Create,
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns, Name: "p", Object: runtime.RawExtension{Raw: raw}}
}

// manyContainers is a pod with n containers of 100m cpu each.
func manyContainers(n int) *v1.Pod {
	p := pod(nsStrict, "p", "100m")
	p.Spec.Containers = nil
	for i := range n {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: fmt.Sprintf("c%d", i), Image: "i",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}}})
	}
	return p
}

// nestedAffinity is a pod whose node affinity has terms OR-ed selector
// terms of 10 expressions with 10 values each, and as many pod
// (anti-)affinity terms; no node satisfies the node affinity.
func nestedAffinity(terms int) *v1.Pod {
	p := pod(nsStrict, "p", "100m")
	var nodeTerms []v1.NodeSelectorTerm
	var podTerms []v1.PodAffinityTerm
	var weighted []v1.WeightedPodAffinityTerm
	for i := range terms {
		var exprs []v1.NodeSelectorRequirement
		for j := range 10 {
			var values []string
			for k := range 10 {
				values = append(values, fmt.Sprintf("v-%d-%d-%d", i, j, k))
			}
			exprs = append(exprs, v1.NodeSelectorRequirement{Key: fmt.Sprintf("example.com/k%d", j), Operator: v1.NodeSelectorOpIn, Values: values})
		}
		nodeTerms = append(nodeTerms, v1.NodeSelectorTerm{MatchExpressions: exprs})
		term := v1.PodAffinityTerm{TopologyKey: v1.LabelHostname,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", i)}},
			NamespaceSelector: &metav1.LabelSelector{}}
		podTerms = append(podTerms, term)
		weighted = append(weighted, v1.WeightedPodAffinityTerm{Weight: 1, PodAffinityTerm: term})
	}
	p.Spec.Affinity = &v1.Affinity{
		NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: nodeTerms}},
		PodAffinity:  &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: weighted},
		PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: podTerms,
			PreferredDuringSchedulingIgnoredDuringExecution: weighted},
	}
	return p
}

// withQuantity is a pod requesting cpu given verbatim, which may not parse.
func withQuantity(t testing.TB, cpu string) []byte {
	t.Helper()
	raw := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":%q},
		"spec":{"containers":[{"name":"c","image":"i","resources":{"requests":{"cpu":%q}}}]}}`, nsStrict, cpu)
	req := podRequest(t, nsStrict, pod(nsStrict, "p", "1"))
	req.Object.Raw = []byte(raw)
	return reviewBody(t, req)
}

// outcome is what a bad input must come to.
type outcome int

const (
	clientError outcome = iota // 4xx, with a message
	judged                     // checked: allowed or denied on the findings
	unchecked                  // allowed, with a warning that it was not checked
	ignored                    // allowed without a word: not fitgate's kind
)

func TestBadInput(t *testing.T) {
	valid := func(mod func(*admissionv1.AdmissionRequest)) []byte {
		req := podRequest(t, nsStrict, pod(nsStrict, "p", "1"))
		if mod != nil {
			mod(&req)
		}
		return reviewBody(t, req)
	}
	replaceTop := func(from, to string) []byte {
		return bytes.Replace(valid(nil), []byte(from), []byte(to), 1)
	}
	big := pod(nsStrict, "p", "100m")
	big.Annotations = map[string]string{"blob": strings.Repeat("x", 1536<<10)}
	huge := pod(nsStrict, "p", "100m")
	huge.Annotations = map[string]string{"blob": strings.Repeat("x", 3<<20)}
	tooBig := pod(nsStrict, "p", "100m")
	tooBig.Annotations = map[string]string{"a": strings.Repeat("x", 3<<20), "b": strings.Repeat("y", 3<<20), "c": strings.Repeat("z", 1<<20)}

	for _, tc := range []struct {
		name        string
		body        []byte
		contentType string // default application/json
		want        outcome
		status      int    // for clientError
		contains    string // in the message or a warning
	}{
		{name: "malformed JSON", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":`), want: clientError, status: 400, contains: "invalid JSON"},
		{name: "empty body", body: nil, want: clientError, status: 400, contains: "empty"},
		{name: "JSON array", body: []byte(`[1,2]`), want: clientError, status: 400, contains: "JSON array"},
		{name: "JSON null", body: []byte(`null`), want: clientError, status: 400, contains: "want an AdmissionReview"},
		{name: "not JSON", body: []byte("\x00\xff binary"), want: clientError, status: 400, contains: "invalid JSON"},
		{name: "wrong content type", body: valid(nil), contentType: "text/plain", want: clientError, status: 415, contains: "want application/json"},
		{name: "no content type", body: valid(nil), contentType: "none", want: clientError, status: 415, contains: "want application/json"},
		{name: "content type with charset", body: valid(nil), contentType: "application/json; charset=utf-8", want: judged},
		{name: "wrong kind of review", body: replaceTop(`"kind":"AdmissionReview"`, `"kind":"Pod"`), want: clientError, status: 400, contains: `kind "Pod"`},
		{name: "unknown review version", body: replaceTop(`"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"admission.k8s.io/v2"`),
			want: clientError, status: 400, contains: `version "admission.k8s.io/v2" is not supported`},
		{name: "no review version", body: replaceTop(`"apiVersion":"admission.k8s.io/v1",`, ``), want: clientError, status: 400, contains: "not supported"},
		{name: "v1beta1 review", body: replaceTop(`"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"admission.k8s.io/v1beta1"`), want: judged},
		{name: "no request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), want: clientError, status: 400, contains: "no request"},
		{name: "request field of the wrong type", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"bad-input","kind":{"group":{}}}}`),
			want: clientError, status: 400, contains: "not an AdmissionReview"},
		{name: "request is a string", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}`), want: clientError, status: 400, contains: "want an object"},
		{name: "deeply nested JSON", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"x":` +
			strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`), want: clientError, status: 400, contains: "invalid JSON"},
		{name: "body over 7 MiB", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, tooBig) }), want: clientError, status: 413, contains: "over 7.0 MiB"},
		{name: "wrong kind in the request", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, deployment(nsStrict, "d", "1", 1)) }),
			want: unchecked, contains: "could not read this pod"},
		{name: "request kind fitgate does not judge", body: valid(func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
		}), want: ignored},
		{name: "no object", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = runtime.RawExtension{} }), want: unchecked, contains: "not checked"},
		{name: "object is a JSON string", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(`"pod"`) }), want: unchecked, contains: "not checked"},
		{name: "unknown operation", body: valid(func(r *admissionv1.AdmissionRequest) { r.Operation = "EXPLODE" }), want: ignored},
		{name: "1.5 MiB object", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, big) }), want: judged},
		{name: "3 MiB object", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, huge) }), want: unchecked, contains: "3.0 MiB"},
		{name: "300 containers", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, manyContainers(300)) }),
			want: judged, contains: "Insufficient cpu"},
		{name: "invalid quantity", body: withQuantity(t, "banana"), want: unchecked, contains: "spec.containers[0].resources.requests.cpu: not a quantity"},
		{name: "empty quantity", body: withQuantity(t, ""), want: unchecked, contains: "not checked"},
		{name: "overflowing quantity", body: withQuantity(t, "1e400"), want: judged},
		{name: "largest int64 quantity", body: withQuantity(t, "9223372036854775807"), want: judged},
		{name: "negative quantity", body: withQuantity(t, "-4"), want: judged},
		{name: "affinity with 300 nested terms", body: valid(func(r *admissionv1.AdmissionRequest) { r.Object = raw(t, nestedAffinity(300)) }),
			want: judged, contains: "node affinity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := newFixture(t)
			srv := NewServer(ServerOptions{}, h, nil)
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			got := serveBody(t, srv.hook, tc.body, ct)
			resp := got.review.Response
			text := strings.Join(resp.Warnings, "\n")
			code := int32(http.StatusOK)
			if resp.Result != nil {
				text += "\n" + resp.Result.Message
				if resp.Result.Code != 0 {
					code = resp.Result.Code
				}
			}
			t.Logf("HTTP %d in %v; allowed %v, code %d: %.300s", got.status, got.took.Round(time.Millisecond), resp.Allowed, code, text)
			if got.status >= 500 || code >= 500 {
				t.Fatalf("server error: HTTP %d, code %d", got.status, code)
			}
			if got.took > h.Budget+time.Second {
				t.Errorf("took %v with a %v budget", got.took, h.Budget)
			}
			if tc.contains != "" && !strings.Contains(text, tc.contains) {
				t.Errorf("answer does not contain %q", tc.contains)
			}
			for _, w := range resp.Warnings {
				if len([]rune(w)) > maxWarningLen {
					t.Errorf("warning of %d characters", len([]rune(w)))
				}
			}
			switch tc.want {
			case clientError:
				if got.status != tc.status || code != int32(tc.status) || resp.Allowed {
					t.Fatalf("HTTP %d, code %d, allowed %v; want %d and not allowed", got.status, code, resp.Allowed, tc.status)
				}
			case judged:
				if got.status != http.StatusOK || resp.AuditAnnotations[AuditVerdict] == "" || resp.AuditAnnotations[AuditVerdict] == VerdictUnchecked {
					t.Fatalf("HTTP %d, audit %v: want a checked verdict", got.status, resp.AuditAnnotations)
				}
				if !resp.Allowed && (code != http.StatusForbidden || resp.Result.Message == "") {
					t.Fatalf("denied with code %d and message %q", code, resp.Result.Message)
				}
			case unchecked:
				if got.status != http.StatusOK || !resp.Allowed || len(resp.Warnings) == 0 {
					t.Fatalf("HTTP %d, allowed %v, warnings %q: want allowed with a warning", got.status, resp.Allowed, resp.Warnings)
				}
			case ignored:
				if got.status != http.StatusOK || !resp.Allowed || len(resp.Warnings) != 0 {
					t.Fatalf("HTTP %d, allowed %v, warnings %q: want allowed", got.status, resp.Allowed, resp.Warnings)
				}
			}
			// The API server matches answers to requests by UID (a body
			// too large to read is answered without one).
			if bytes.Contains(tc.body, []byte(`"uid":"bad-input"`)) && got.status != http.StatusRequestEntityTooLarge && resp.UID != "bad-input" {
				t.Errorf("response UID %q, want the request's", resp.UID)
			}
		})
	}
}

// slowSource never answers within any budget; block until released.
type slowSource struct {
	release chan struct{}
}

func (s *slowSource) Check(*feasibility.Workload, *feasibility.Options) (*feasibility.Report, bool) {
	<-s.release
	return nil, false
}

func (s *slowSource) NamespaceLabels(string) (map[string]string, bool) {
	return map[string]string{ModeLabel: string(ModeStrict)}, true
}

// blockingLive answers only when its context ends, like a live GET to an
// API server that has stopped responding.
type blockingLive struct{}

func (blockingLive) Exists(ctx context.Context, _ feasibility.Kind, _, _ string) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func (blockingLive) NamespaceLabels(ctx context.Context, _ string) (map[string]string, bool, error) {
	<-ctx.Done()
	return nil, false, ctx.Err()
}

// TestBudgetBelowTimeout: for every timeoutSeconds the configuration
// allows, the budget leaves the API server time to get the answer, and a
// check or a live lookup that never finishes is answered within it, with
// an allow and a warning.
func TestBudgetBelowTimeout(t *testing.T) {
	for timeout := int32(1); timeout <= 30; timeout++ {
		b := BudgetFor(timeout)
		if limit := time.Duration(timeout) * time.Second; b >= limit || b < limit/2 {
			t.Errorf("BudgetFor(%d) = %v, want within [%v, %v)", timeout, b, limit/2, limit)
		}
	}
	for _, tc := range []struct {
		name    string
		handler func(t *testing.T) (*Handler, func())
		warning string
	}{
		{"engine never finishes", func(t *testing.T) (*Handler, func()) {
			src := &slowSource{release: make(chan struct{})}
			return &Handler{Source: src, Policy: DefaultPolicy("fitgate"), Budget: BudgetFor(1)}, func() { close(src.release) }
		}, "did not finish within 500ms"},
		{"live lookups hang", func(t *testing.T) (*Handler, func()) {
			h, src, _ := newFixture(t)
			delete(src.namespaces, nsStrict) // forces a live namespace lookup
			h.Live = blockingLive{}
			h.Budget = BudgetFor(1)
			return h, func() {}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, cleanup := tc.handler(t)
			defer cleanup()
			srv := NewServer(ServerOptions{}, h, nil)
			p := pod(nsStrict, "p", "8")
			withSecretVolume(&p.Spec, "missing") // a live lookup, if one is made
			got := serveBody(t, srv.hook, reviewBody(t, podRequest(t, nsStrict, p)), "application/json")
			if got.took >= time.Second {
				t.Fatalf("answered in %v: past the API server's 1 s timeout", got.took)
			}
			resp := got.review.Response
			if tc.warning != "" && (!resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.warning)) {
				t.Fatalf("allowed %v, warnings %q: want allowed, warning %q", resp.Allowed, resp.Warnings, tc.warning)
			}
			t.Logf("answered in %v: allowed %v, warnings %q", got.took.Round(time.Millisecond), resp.Allowed, resp.Warnings)
		})
	}
}
