package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/test/controlplane"
)

// cp is the one control plane shared by every test in this package.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	var err error
	cp, err = controlplane.Start(context.Background(), controlplane.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e tests need a local control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "local control plane up in %v at %s\n", time.Since(start).Round(time.Millisecond), cp.APIServerURL())
	return m.Run()
}

func TestSchedulerSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := cp.TestNamespace(t, "scheduler-smoke")

	// Node names are cluster-scoped; derive them from the namespace so other
	// tests sharing this control plane never collide with them.
	nodes := map[string]bool{}
	for i, spec := range []controlplane.NodeSpec{
		{Name: ns + "-small", CPU: "2", Memory: "4Gi"},
		{Name: ns + "-large", CPU: "4", Memory: "8Gi"},
	} {
		if _, err := cp.CreateNode(ctx, spec); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		nodes[spec.Name] = true
		t.Cleanup(func() {
			_ = cp.Client().CoreV1().Nodes().Delete(context.Background(), spec.Name, metav1.DeleteOptions{})
		})
	}

	t.Run("fits", func(t *testing.T) {
		createPod(ctx, t, ns, "fits", "1")
		nodeName, err := cp.WaitForPodScheduled(ctx, ns, "fits")
		if err != nil {
			t.Fatal(err)
		}
		if !nodes[nodeName] {
			t.Fatalf("pod bound to %q, want one of this test's nodes %v", nodeName, nodes)
		}
	})

	t.Run("too big", func(t *testing.T) {
		createPod(ctx, t, ns, "too-big", "64")
		msg, err := cp.WaitForPodUnschedulable(ctx, ns, "too-big")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg, "Insufficient cpu") {
			t.Fatalf("PodScheduled message = %q, want it to mention Insufficient cpu", msg)
		}
		t.Logf("scheduler says: %s", msg)
	})
}

func createPod(ctx context.Context, t *testing.T, ns, name, cpu string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse(cpu),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					},
				},
			}},
		},
	}
	if _, err := cp.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
}
