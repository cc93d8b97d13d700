package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/test/controlplane"
)

// cluster is what the soak's requests refer to.
type cluster struct {
	namespaces map[string]string // mode -> namespace
	churnNS    string
}

// setUpCluster makes four 8-cpu nodes and a namespace per mode.
func setUpCluster(ctx context.Context, cp *controlplane.ControlPlane) (*cluster, error) {
	for i := range 4 {
		if _, err := cp.CreateNode(ctx, controlplane.NodeSpec{Name: fmt.Sprintf("soak-%d", i), CPU: "8", Memory: "32Gi",
			Labels: map[string]string{"topology.kubernetes.io/zone": fmt.Sprint("zone-", i%2)}}); err != nil {
			return nil, err
		}
	}
	cl := &cluster{namespaces: map[string]string{}}
	for _, mode := range []string{"", "warn", "enforce", "strict", "churn"} {
		name := "soak-" + mode
		labels := map[string]string{"fitgate.dev/mode": mode}
		if mode == "" {
			name, labels = "soak-default", nil
		}
		if mode == "churn" {
			labels = map[string]string{"fitgate.dev/mode": "off"}
		}
		if _, err := cp.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if err := cp.WaitForDefaultServiceAccount(ctx, name); err != nil {
			return nil, err
		}
		cl.namespaces[mode] = name
	}
	cl.churnNS = cl.namespaces["churn"]
	return cl, nil
}

// churn keeps fitgate's informers busy: a bound pod created and an old one
// deleted every second, a node added and removed every 20 seconds.
func churn(ctx context.Context, cp *controlplane.ControlPlane, cl *cluster) {
	c := cp.Client()
	var pods []string
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Fresh contexts: the load's context ends first, the last steps
		// must still complete to leave nothing half-made.
		op, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		name := fmt.Sprintf("churn-%d", i)
		_, err := c.CoreV1().Pods(cl.churnNS).Create(op, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("soak-%d", i%4), Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}}},
			metav1.CreateOptions{})
		if err == nil {
			pods = append(pods, name)
		}
		if len(pods) > 50 {
			_ = c.CoreV1().Pods(cl.churnNS).Delete(op, pods[0], metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			pods = pods[1:]
		}
		if i%20 == 0 {
			node := fmt.Sprintf("soak-extra-%d", i/20)
			_, _ = cp.CreateNode(op, controlplane.NodeSpec{Name: node, CPU: "4", Memory: "8Gi"})
			if i > 0 {
				_ = c.CoreV1().Nodes().Delete(op, fmt.Sprintf("soak-extra-%d", i/20-1), metav1.DeleteOptions{})
			}
		}
		cancel()
	}
}
