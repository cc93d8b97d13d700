package controlplane

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// NodeSpec describes a fake (kubelet-less) Node. Quantities use Kubernetes
// syntax ("2", "500m", "4Gi"); empty CPU/Memory/EphemeralStorage are left out
// of capacity, Pods defaults to 110.
type NodeSpec struct {
	Name             string
	CPU              string
	Memory           string
	Pods             int
	EphemeralStorage string
	// Extended resources, e.g. {"example.com/gpu": "2"}.
	Extended      map[string]string
	Labels        map[string]string
	Taints        []corev1.Taint
	Unschedulable bool
}

// defaultWait bounds the Wait* helpers when ctx has no deadline.
const defaultWait = time.Minute

// CreateNode creates a Node the scheduler treats like a healthy kubelet's:
// capacity = allocatable from spec, Ready=True (set through the status
// subresource, as a kubelet would), and without the
// node.kubernetes.io/not-ready:NoSchedule taint that the TaintNodesByCondition
// admission plugin adds to every new Node. kubernetes.io/hostname, and unless
// given kubernetes.io/os=linux and kubernetes.io/arch=amd64, are set as the
// kubelet would.
func (cp *ControlPlane) CreateNode(ctx context.Context, spec NodeSpec) (*corev1.Node, error) {
	resources, err := spec.resources()
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[corev1.LabelHostname] = spec.Name

	nodes := cp.client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: spec.Taints, Unschedulable: spec.Unschedulable},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating node %s: %w", spec.Name, err)
	}

	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node.Status.Capacity = resources
		node.Status.Allocatable = resources.DeepCopy()
		node.Status.Conditions = []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: spec.Name}}
		updated, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if err == nil {
			node = updated
			return nil
		}
		if apierrors.IsConflict(err) {
			if fresh, getErr := nodes.Get(ctx, spec.Name, metav1.GetOptions{}); getErr == nil {
				node = fresh
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("setting status of node %s: %w", spec.Name, err)
	}

	// Admission added not-ready:NoSchedule on create; with no kubelet and no
	// node-lifecycle controller nothing would ever remove it.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		kept := node.Spec.Taints[:0:0]
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = kept
		updated, err := nodes.Update(ctx, node, metav1.UpdateOptions{})
		if err == nil {
			node = updated
			return nil
		}
		if apierrors.IsConflict(err) {
			if fresh, getErr := nodes.Get(ctx, spec.Name, metav1.GetOptions{}); getErr == nil {
				node = fresh
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("removing the %s taint from node %s: %w", corev1.TaintNodeNotReady, spec.Name, err)
	}
	return node, nil
}

func (s NodeSpec) resources() (corev1.ResourceList, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("NodeSpec: Name is required")
	}
	pods := s.Pods
	if pods == 0 {
		pods = 110
	}
	rl := corev1.ResourceList{}
	add := func(name corev1.ResourceName, q string) error {
		if q == "" {
			return nil
		}
		v, err := resource.ParseQuantity(q)
		if err != nil {
			return fmt.Errorf("node %s: %s %q: %w", s.Name, name, q, err)
		}
		rl[name] = v
		return nil
	}
	for _, r := range []struct {
		name corev1.ResourceName
		q    string
	}{
		{corev1.ResourceCPU, s.CPU},
		{corev1.ResourceMemory, s.Memory},
		{corev1.ResourceEphemeralStorage, s.EphemeralStorage},
		{corev1.ResourcePods, strconv.Itoa(pods)},
	} {
		if err := add(r.name, r.q); err != nil {
			return nil, err
		}
	}
	for name, q := range s.Extended {
		if err := add(corev1.ResourceName(name), q); err != nil {
			return nil, err
		}
	}
	return rl, nil
}

// WaitForPodScheduled waits until the pod is bound (PodScheduled=True and
// spec.nodeName set) and returns the node name. A pod that stays
// Unschedulable keeps being waited for (nodes may appear); the timeout error
// carries the last scheduler message. Without a ctx deadline it waits 1m.
func (cp *ControlPlane) WaitForPodScheduled(ctx context.Context, namespace, name string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var nodeName string
	err := wait(ctx, fmt.Sprintf("pod %s/%s to be scheduled", namespace, name), func(ctx context.Context) error {
		pod, err := cp.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := podScheduledCondition(pod)
		if c != nil && c.Status == corev1.ConditionTrue && pod.Spec.NodeName != "" {
			nodeName = pod.Spec.NodeName
			return nil
		}
		if c == nil {
			return fmt.Errorf("no PodScheduled condition yet")
		}
		return fmt.Errorf("PodScheduled=%s reason=%s: %s", c.Status, c.Reason, c.Message)
	})
	return nodeName, err
}

// WaitForPodUnschedulable waits for PodScheduled=False with reason
// Unschedulable and returns the scheduler's message, e.g.
// "0/2 nodes are available: 2 Insufficient cpu. ...". It fails at once if
// the pod gets bound instead. Without a ctx deadline it waits 1m.
func (cp *ControlPlane) WaitForPodUnschedulable(ctx context.Context, namespace, name string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var message string
	var bound error
	err := wait(ctx, fmt.Sprintf("pod %s/%s to be unschedulable", namespace, name), func(ctx context.Context) error {
		pod, err := cp.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Spec.NodeName != "" {
			bound = fmt.Errorf("pod %s/%s was scheduled to node %s, expected it to be unschedulable", namespace, name, pod.Spec.NodeName)
			return nil
		}
		c := podScheduledCondition(pod)
		if c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			message = c.Message
			return nil
		}
		return fmt.Errorf("PodScheduled condition: %+v", c)
	})
	if bound != nil {
		return "", bound
	}
	return message, err
}

func podScheduledCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// EnsureNamespace creates the namespace if it does not exist.
func (cp *ControlPlane) EnsureNamespace(ctx context.Context, name string) error {
	_, err := cp.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// WaitForDefaultServiceAccount waits until the controller manager has created
// the namespace's "default" ServiceAccount; the ServiceAccount admission
// plugin rejects pods that use it before then. Without a ctx deadline it
// waits 1m.
func (cp *ControlPlane) WaitForDefaultServiceAccount(ctx context.Context, namespace string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return wait(ctx, fmt.Sprintf("ServiceAccount %s/default", namespace), func(ctx context.Context) error {
		_, err := cp.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// TestNamespace creates a uniquely named namespace (prefix + random suffix),
// waits for its default ServiceAccount so pods can be created, and deletes it
// in t.Cleanup.
func (cp *ControlPlane) TestNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	ns, err := cp.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating test namespace: %v", err)
	}
	t.Cleanup(func() {
		err := cp.client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	if err := cp.WaitForDefaultServiceAccount(ctx, ns.Name); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultWait)
}
