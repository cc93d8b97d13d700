package chart

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/test/controlplane"
)

// noCRD are kinds whose CRDs the test apiserver does not have (the
// Prometheus Operator's); they are checked by TestRenderedObjects only.
var noCRD = []string{"ServiceMonitor"}

// TestAgainstAPIServer applies the chart to a real kube-apiserver: first a
// server-side dry run of every variant (the API server validates every
// object, cert-manager's against its CRD schemas), then a real install of
// every variant with fitgate running on the chart's own arguments and RBAC.
func TestAgainstAPIServer(t *testing.T) {
	crds := binary(t, "cert-manager-crds.yaml")
	binary(t, "kubectl")
	binary(t, "fitgate")
	cp := controlplane.StartForTest(t, controlplane.Options{})
	k := &kube{t: t, cp: cp}

	start := time.Now()
	if out, err := k.run(nil, "apply", "--server-side", "-f", crds); err != nil {
		t.Fatalf("installing cert-manager's CRDs: %v\n%s", err, out)
	}
	if out, err := k.run(nil, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds); err != nil {
		t.Fatalf("cert-manager's CRDs not established: %v\n%s", err, out)
	}
	t.Logf("cert-manager CRDs (%s) established in %v", firstLine(crds), time.Since(start).Round(time.Millisecond))

	t.Run("dry-run", func(t *testing.T) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				ns := "dry-" + v.name
				if err := cp.EnsureNamespace(context.Background(), ns); err != nil {
					t.Fatal(err)
				}
				m := render(t, testRelease, ns, v)
				docs, n := applicable(t, m)
				out, err := (&kube{t: t, cp: cp}).run(docs, "apply", "--server-side", "--dry-run=server",
					"--field-manager=helm", "-o", "name", "-f", "-")
				if err != nil {
					t.Fatalf("server-side dry run: %v\n%s", err, out)
				}
				if got := len(strings.Fields(string(out))); got != n {
					t.Fatalf("dry run applied %d objects, want %d:\n%s", got, n, out)
				}
			})
		}
	})

	t.Run("notes", func(t *testing.T) { testNotes(t, cp) })

	if _, err := cp.CreateNode(context.Background(), controlplane.NodeSpec{Name: "chart-node", CPU: "4", Memory: "8Gi"}); err != nil {
		t.Fatal(err)
	}
	t.Run("install", func(t *testing.T) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) { testInstall(t, cp, v) })
		}
	})
}

// applicable returns the manifest's objects the test apiserver can take, as
// one YAML stream, and how many there are.
func applicable(t *testing.T, m manifest) ([]byte, int) {
	t.Helper()
	var buf bytes.Buffer
	n := 0
	for _, o := range m.generic {
		if slices.Contains(noCRD, o.GetKind()) {
			continue
		}
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
		n++
	}
	return buf.Bytes(), n
}

// kube runs bin/kubectl as the control plane's admin.
type kube struct {
	t  *testing.T
	cp *controlplane.ControlPlane
}

func (k *kube) run(stdin []byte, args ...string) ([]byte, error) {
	k.t.Helper()
	cmd := exec.Command(binary(k.t, "kubectl"), append([]string{"--kubeconfig", k.cp.KubeconfigPath()}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}

// firstLine is the header make tools writes: which release the CRDs are
// from.
func firstLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(strings.TrimPrefix(line, "#"))
}
