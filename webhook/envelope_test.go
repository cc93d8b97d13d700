package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	if sink := l.GetSink().(*lazyValuesSink); sink.sink != nil || len(lines) != 0 {
		t.Fatalf("values built or a line written without logging: %q", lines)
	}
	l.WithValues("verdict", "Fits").Info("denied", "mode", "enforce")
	l.Error(errors.New("boom"), "failed")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(lines), lines)
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
