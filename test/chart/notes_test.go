package chart

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/test/controlplane"
)

// testNotes runs the "Try it" commands NOTES.txt prints against the API
// server, so the instructions a user copies are valid kubectl. (The
// denial they promise needs fitgate reachable through its Service, which a
// cluster without nodes cannot give; the e2e tests show denials.)
func testNotes(t *testing.T, cp *controlplane.ControlPlane) {
	out, err := helm(t, "install", "--dry-run=client", testRelease, chartDir(t), "--namespace", testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	_, notes, ok := strings.Cut(string(out), "NOTES:")
	if !ok {
		t.Fatalf("no NOTES in:\n%s", out)
	}
	_, try, ok := strings.Cut(notes, "Try it")
	try, _, ok2 := strings.Cut(try, "Expect:")
	if !ok || !ok2 || !strings.Contains(notes, "delete validatingwebhookconfiguration") {
		t.Fatalf("NOTES lack the try-it section or the uninstall order:\n%s", notes)
	}
	t.Cleanup(func() {
		_ = cp.Client().CoreV1().Namespaces().Delete(context.Background(), "fitgate-demo", metav1.DeleteOptions{})
	})
	k := &kube{t: t, cp: cp}
	var ran []string
	for _, line := range strings.Split(try, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "kubectl ") {
			continue
		}
		words := shellWords(t, line)[1:]
		out, err := k.run(nil, words...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		ran = append(ran, line)
		if strings.Contains(line, " run ") {
			// The pod it creates asks for the 1000 CPUs no node has.
			out, err := k.run(nil, append(words, "-o", "jsonpath={.spec.containers[0].resources.requests.cpu}")...)
			if err != nil || strings.TrimSpace(string(out)) != "1k" {
				t.Errorf("the try-it pod requests %q cpu (%v), want 1k", out, err)
			}
		}
	}
	if len(ran) != 3 {
		t.Errorf("ran %d try-it commands, want 3: %q", len(ran), ran)
	}
}
