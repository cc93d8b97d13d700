package e2e

// End-to-end tests of `fitgate check` and `fitgate snapshot` against the
// real control plane shared by this package: the check against the live
// cluster, the same check against what `fitgate snapshot` wrote, and the
// built binary run as a kubectl plugin.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/preflight"
	"github.com/fitgate/fitgate/test/controlplane"
)

// checkCLIChart is what `helm template` might print: a ConfigMap the chart
// brings, four workloads, and a custom resource fitgate skips. Pods select
// this test's node pool, so nodes other tests create never change a
// verdict. NS and POOL are replaced.
const checkCLIChart = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {fitgate.dev/check-cli-pool: POOL}
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: 500m}}
        envFrom: [{secretRef: {name: db}}, {configMapRef: {name: settings}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: workers}
spec:
  replicas: 3
  selector: {matchLabels: {app: workers}}
  template:
    metadata: {labels: {app: workers}}
    spec:
      nodeSelector: {fitgate.dev/check-cli-pool: POOL}
      containers:
      - {name: app, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "1"}}}
---
apiVersion: v1
kind: Pod
metadata: {name: too-big}
spec:
  nodeSelector: {fitgate.dev/check-cli-pool: POOL}
  containers:
  - {name: app, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "64"}}}
---
apiVersion: v1
kind: Pod
metadata: {name: lost}
spec:
  nodeSelector: {fitgate.dev/check-cli-pool: POOL}
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    resources: {requests: {cpu: 100m}}
    envFrom: [{secretRef: {name: nowhere}}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: foo}
`

// checkCLIWant is each workload's verdict, replicas that fit, and reason
// codes: the nodes have 2 cpu each, and a running pod holds 1.5 of n-a's.
var checkCLIWant = map[string]string{
	"Deployment/web":     "fits 2/2 []",
	"Deployment/workers": "transient 2/3 [InsufficientCPU]",
	"Pod/too-big":        "permanent 0/1 [InsufficientCPU]",
	"Pod/lost":           "permanent 1/1 [SecretNotFound]",
}

const checkCLISecretValue = "hunter2-check-cli"

func TestCheckCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := cp.TestNamespace(t, "check-cli")
	pool := map[string]string{"fitgate.dev/check-cli-pool": ns}
	for _, n := range []string{"a", "b"} {
		name := ns + "-" + n
		if _, err := cp.CreateNode(ctx, controlplane.NodeSpec{Name: name, CPU: "2", Memory: "4Gi", Labels: pool}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client().CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	core := cp.Client().CoreV1()
	// A Secret whose value, and kubectl's last-applied copy of it, must
	// never reach a snapshot.
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"password":"` + checkCLISecretValue + `"}}`}},
		StringData: map[string]string{"password": checkCLISecretValue},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod bound to n-a (no kubelet runs it; bound is what counts).
	if _, err := core.Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy"},
		Spec: corev1.PodSpec{NodeName: ns + "-a", Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chart := filepath.Join(dir, "chart.yaml")
	if err := os.WriteFile(chart, []byte(strings.ReplaceAll(checkCLIChart, "POOL", ns)), 0o644); err != nil {
		t.Fatal(err)
	}
	kc := cp.KubeconfigPath()

	live, stderr, code := runPreflight(preflight.Env.Check, "-f", chart, "--kubeconfig", kc, "-n", ns, "-o", "json")
	if code != preflight.ExitNotFit {
		t.Fatalf("live check: exit %d, want 1\n%s\n%s", code, live, stderr)
	}
	if !strings.Contains(stderr, "skipped: example.com/v1 Widget foo") {
		t.Errorf("the Widget was not reported as skipped:\n%s", stderr)
	}
	liveResults := checkCLIResults(t, live, ns)
	for k, want := range checkCLIWant {
		if liveResults[k] != want {
			t.Errorf("live %s: %q, want %q", k, liveResults[k], want)
		}
	}

	t.Run("snapshot then check --state agrees", func(t *testing.T) {
		state := filepath.Join(dir, "state.yaml")
		if _, stderr, code := runPreflight(preflight.Env.Snapshot, "--kubeconfig", kc, "-o", state); code != 0 {
			t.Fatalf("snapshot: exit %d\n%s", code, stderr)
		}
		data, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(checkCLISecretValue)) || bytes.Contains(data, []byte("aHVudGVyMi1jaGVjay1jbGk")) {
			t.Error("the snapshot holds the Secret's value")
		}
		if !bytes.Contains(data, []byte("name: db\n  namespace: "+ns+"\n")) {
			t.Error("the snapshot lacks the Secret's name")
		}
		offline, stderr, code := runPreflight(preflight.Env.Check, "-f", chart, "--state", state, "-n", ns, "-o", "json")
		if code != preflight.ExitNotFit {
			t.Fatalf("check --state: exit %d, want 1\n%s", code, stderr)
		}
		got := checkCLIResults(t, offline, ns)
		for k, want := range liveResults {
			if got[k] != want {
				t.Errorf("check --state %s: %q, live %q", k, got[k], want)
			}
		}
	})

	t.Run("kubectl plugin", func(t *testing.T) {
		bin := filepath.Join(dir, "plugins")
		build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", filepath.Join(bin, "kubectl-fitgate"), "github.com/fitgate/fitgate/cmd/fitgate")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building kubectl-fitgate: %v\n%s", err, out)
		}
		kubectlBin := checkCLIKubectl(t)
		cmd := exec.CommandContext(ctx, kubectlBin, "fitgate", "check", "-f", "-", "-n", ns, "--fail-on", "permanent")
		cmd.Stdin = strings.NewReader(strings.ReplaceAll(checkCLIChart, "POOL", ns))
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != preflight.ExitNotFit {
			t.Fatalf("kubectl fitgate check: %v, want exit 1\n%s\n%s", err, stdout.String(), stderr.String())
		}
		out := stdout.String()
		t.Logf("kubectl fitgate check:\n%s", out)
		for _, want := range []string{
			fmt.Sprintf(`pod "too-big" in namespace %q (stdin, document 3): permanent`, ns),
			`pod "too-big" cannot run: 0/`,
			fmt.Sprintf(`deployment "workers" in namespace %q (stdin, document 2): transient, 2 of 3 replicas fit`, ns),
			`: secret "nowhere" not found`,
			"4 workloads judged: 1 fit, 1 transient, 2 permanent",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl fitgate check output lacks %q:\n%s", want, out)
			}
		}
	})
}

// runPreflight runs a preflight command in-process.
func runPreflight(cmd func(preflight.Env, []string) int, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	env := preflight.DefaultEnv()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &stdout, &stderr
	code := cmd(env, args)
	return stdout.String(), stderr.String(), code
}

// checkCLIResults reads -o json output as "verdict fit/replicas [codes]"
// by Kind/name, checking every result is in namespace ns.
func checkCLIResults(t *testing.T, out, ns string) map[string]string {
	t.Helper()
	var o preflight.Output
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range o.Results {
		if r.Namespace != ns {
			t.Errorf("%s/%s judged in namespace %q, want %q", r.Kind, r.Name, r.Namespace, ns)
		}
		var codes []string
		for _, x := range r.Reasons {
			codes = append(codes, string(x.Code))
		}
		got[r.Kind+"/"+r.Name] = fmt.Sprintf("%s %d/%d %v", r.Verdict, r.ReplicasFit, r.Replicas, codes)
	}
	return got
}

func checkCLIKubectl(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FITGATE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, "kubectl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubectl not found at %s: run `make tools`: %v", p, err)
	}
	return p
}
