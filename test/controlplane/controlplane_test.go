package controlplane

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMissingBinariesFail(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if err == nil {
		t.Fatal("Start succeeded without binaries")
	}
	for _, want := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "make tools"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestLifecycle covers the kubeconfig file, restarting etcd and the
// apiserver, and that the scheduler still binds afterwards.
func TestLifecycle(t *testing.T) {
	cp := StartForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	kubectl := filepath.Join(cp.binDir, "kubectl")
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cp.KubeconfigPath(), "get", "namespace", "default", "-o", "name").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "namespace/default" {
		t.Fatalf("kubectl with %s: %v: %s", cp.KubeconfigPath(), err, out)
	}

	ns := cp.TestNamespace(t, "lifecycle")
	if _, err := cp.CreateNode(ctx, NodeSpec{Name: "lifecycle-node", CPU: "2", Memory: "4Gi"}); err != nil {
		t.Fatal(err)
	}

	for _, restart := range []struct {
		name string
		do   func(context.Context) error
	}{{"etcd", cp.RestartEtcd}, {"kube-apiserver", cp.RestartAPIServer}} {
		begin := time.Now()
		if err := restart.do(ctx); err != nil {
			t.Fatalf("restarting %s: %v", restart.name, err)
		}
		t.Logf("restarted %s in %v", restart.name, time.Since(begin).Round(time.Millisecond))
	}

	// Data survived and the scheduler reconnected.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "after-restart", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
		}}},
	}
	if _, err := cp.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node, err := cp.WaitForPodScheduled(ctx, ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	if node != "lifecycle-node" {
		t.Fatalf("scheduled to %q", node)
	}

	n, err := cp.Client().CoreV1().Nodes().Get(ctx, "lifecycle-node", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, taint := range n.Spec.Taints {
		t.Errorf("unexpected taint %v", taint)
	}
	if got := n.Labels[corev1.LabelHostname]; got != "lifecycle-node" {
		t.Errorf("hostname label = %q", got)
	}
	if q := n.Status.Allocatable[corev1.ResourceCPU]; q.String() != "2" {
		t.Errorf("allocatable cpu = %s", q.String())
	}
}

func TestStartFailureReportsComponentLog(t *testing.T) {
	_, err := Start(context.Background(), Options{APIServerFlags: []string{"--no-such-flag"}})
	if err == nil {
		t.Fatal("Start succeeded with a bogus apiserver flag")
	}
	for _, want := range []string{"kube-apiserver exited during startup", "unknown flag: --no-such-flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
