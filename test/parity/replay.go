package parity

import (
	"context"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/test/scenarios"
)

// outcome is what the real control plane did with a scenario's workload.
type outcome struct {
	// rejected holds the apiserver's error when it refused the workload.
	rejected error
	// pods is how many pods the workload's controller managed to create.
	pods int
	// bound is how many of them the scheduler bound.
	bound int
	// message is the scheduler's PodScheduled message of an unbound pod.
	message string
}

// replayer creates a scenario's objects on a real control plane.
type replayer struct {
	cp         *controlplane.ControlPlane
	c          client.Client
	sentinelNS string
}

// settle is how long an outcome must hold before it is believed: long
// enough for the scheduler to retry a pod after a late cache event.
const settle = 1500 * time.Millisecond

func (rp *replayer) replay(ctx context.Context, sc *scenarios.Scenario, rn renamer) (*outcome, func(), error) {
	cluster, workload := sc.Objects()
	var nodes []string
	var namespaces []string
	// Cluster-scoped objects outlive their scenario unless deleted: a
	// leftover globalDefault PriorityClass or default StorageClass would
	// change every later scenario.
	var clusterScoped []client.Object
	cleanup := func() {
		bg := context.Background()
		for _, o := range clusterScoped {
			_ = rp.c.Delete(bg, o)
		}
		for _, ns := range namespaces {
			_ = rp.c.Delete(bg, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			// No kubelet will ever confirm these pods are gone: force them.
			_ = rp.c.DeleteAllOf(bg, &v1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0))
		}
		for _, n := range nodes {
			_ = rp.c.Delete(bg, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
	}
	for _, ns := range sc.Namespaces() {
		obj := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		for _, o := range cluster {
			if n, ok := o.(*v1.Namespace); ok && n.Name == ns {
				obj = n.DeepCopy()
			}
		}
		rn.apply(obj)
		if err := rp.c.Create(ctx, obj); err != nil {
			return nil, cleanup, fmt.Errorf("namespace %s: %w", obj.Name, err)
		}
		namespaces = append(namespaces, obj.Name)
		if err := rp.cp.WaitForDefaultServiceAccount(ctx, obj.Name); err != nil {
			return nil, cleanup, err
		}
	}
	// Cluster-scoped objects first, then nodes, then namespaced state, then
	// bound pods: the order in which a real cluster comes to be.
	sort.SliceStable(cluster, func(i, j int) bool { return createOrder(cluster[i]) < createOrder(cluster[j]) })
	for _, o := range cluster {
		if _, ok := o.(*v1.Namespace); ok {
			continue
		}
		rn.apply(o)
		switch obj := o.(type) {
		case *v1.Node:
			if err := createNode(ctx, rp.cp, obj); err != nil {
				return nil, cleanup, err
			}
			nodes = append(nodes, obj.Name)
		default:
			if err := rp.create(ctx, obj); err != nil {
				return nil, cleanup, err
			}
			if co, ok := obj.(client.Object); ok && scenarios.IsClusterScoped(obj) {
				clusterScoped = append(clusterScoped, co)
			}
		}
	}
	if err := rp.barrier(ctx); err != nil {
		return nil, cleanup, err
	}
	rn.apply(workload)
	out, err := rp.run(ctx, workload)
	return out, cleanup, err
}

func createOrder(o runtime.Object) int {
	switch o.(type) {
	case *v1.Node:
		return 1
	case *v1.Pod:
		return 3
	}
	if scenarios.IsClusterScoped(o) {
		return 0
	}
	return 2
}

// create creates a cluster object and waits until the controllers have
// made it usable: quotas computed, claims bound.
func (rp *replayer) create(ctx context.Context, o runtime.Object) error {
	obj, ok := o.(client.Object)
	if !ok {
		return fmt.Errorf("%T is not an object", o)
	}
	status := statusOf(obj)
	if err := rp.c.Create(ctx, obj); err != nil {
		return fmt.Errorf("creating %T %s: %w", o, obj.GetName(), err)
	}
	switch x := obj.(type) {
	case *v1.ResourceQuota:
		// Quota admission refuses pods while a quota's status is unknown.
		return poll(ctx, func() (bool, error) {
			var q v1.ResourceQuota
			if err := rp.c.Get(ctx, client.ObjectKeyFromObject(x), &q); err != nil {
				return false, err
			}
			return len(q.Status.Hard) > 0, nil
		})
	case *v1.PersistentVolumeClaim:
		if x.Spec.VolumeName == "" {
			return nil
		}
		return poll(ctx, func() (bool, error) {
			var c v1.PersistentVolumeClaim
			if err := rp.c.Get(ctx, client.ObjectKeyFromObject(x), &c); err != nil {
				return false, err
			}
			return c.Status.Phase == v1.ClaimBound, nil
		})
	case *v1.Pod:
		if status != nil {
			// A scenario may give a bound pod a phase (Succeeded pods no
			// longer count); only the status subresource sets it.
			x.Status = *status.(*v1.PodStatus)
			return rp.c.Status().Update(ctx, x)
		}
	}
	return nil
}

func statusOf(obj client.Object) interface{} {
	if p, ok := obj.(*v1.Pod); ok && p.Status.Phase != "" {
		st := p.Status
		return &st
	}
	return nil
}

// barrier waits until the scheduler has seen every pod created so far: a
// pod it can never place, created last, gets its Unschedulable condition
// only after the scheduler's pod informer delivered everything before it.
func (rp *replayer) barrier(ctx context.Context) error {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "barrier-", Namespace: rp.sentinelNS},
		Spec: v1.PodSpec{
			NodeSelector: map[string]string{"fitgate.dev/never": "true"},
			Containers:   []v1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if err := rp.c.Create(ctx, p); err != nil {
		return fmt.Errorf("barrier pod: %w", err)
	}
	defer rp.c.Delete(context.Background(), p, client.GracePeriodSeconds(0))
	return poll(ctx, func() (bool, error) {
		var got v1.Pod
		if err := rp.c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return false, err
		}
		return scheduledCondition(&got) != nil, nil
	})
}

func scheduledCondition(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// run creates the workload and waits for the control plane to settle.
func (rp *replayer) run(ctx context.Context, w runtime.Object) (*outcome, error) {
	obj := w.(client.Object)
	if err := rp.c.Create(ctx, obj); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			return &outcome{rejected: err}, nil
		}
		return nil, fmt.Errorf("creating workload: %w", err)
	}
	if p, ok := w.(*v1.Pod); ok && len(p.Spec.SchedulingGates) > 0 {
		if err := rp.ungate(ctx, p); err != nil {
			return nil, err
		}
	}
	ns := obj.GetNamespace()
	owned := func(p *v1.Pod) bool {
		if _, isPod := w.(*v1.Pod); isPod {
			return p.Name == obj.GetName()
		}
		return len(p.OwnerReferences) > 0
	}
	var out outcome
	var last string
	stableSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var pods v1.PodList
		if err := rp.c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		cur := outcome{}
		decided := true
		for i := range pods.Items {
			p := &pods.Items[i]
			if !owned(p) {
				continue
			}
			cur.pods++
			if p.Spec.NodeName != "" {
				cur.bound++
				continue
			}
			cond := scheduledCondition(p)
			if cond == nil && rp.awaitsProvisioner(ctx, p) {
				cur.bound++
				continue
			}
			if cond == nil {
				decided = false
				continue
			}
			cur.message = cond.Message
		}
		state := fmt.Sprintf("%d/%d/%v", cur.pods, cur.bound, decided)
		if state != last {
			last, stableSince = state, time.Now()
		}
		out = cur
		wait := settle
		if !decided || out.pods == 0 {
			wait = 4 * settle // controllers and the scheduler still have work
		}
		if time.Since(stableSince) >= wait {
			return &out, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &out, nil
}

// ungate checks that a pod with scheduling gates is held back (PodScheduled
// False with reason SchedulingGated, not bound), then removes its gates, so
// that the outcome compared is the one fitgate judges: the pod once ungated.
func (rp *replayer) ungate(ctx context.Context, p *v1.Pod) error {
	err := poll(ctx, func() (bool, error) {
		var got v1.Pod
		if err := rp.c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return false, err
		}
		if got.Spec.NodeName != "" {
			return false, fmt.Errorf("gated pod %s was bound to %s", p.Name, got.Spec.NodeName)
		}
		cond := scheduledCondition(&got)
		return cond != nil && cond.Reason == v1.PodReasonSchedulingGated, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the gated pod to be held: %w", err)
	}
	// Held for a while longer: a gate that did not hold would bind by now.
	time.Sleep(settle)
	var got v1.Pod
	if err := rp.c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
		return err
	}
	if got.Spec.NodeName != "" {
		return fmt.Errorf("gated pod %s was bound to %s", p.Name, got.Spec.NodeName)
	}
	got.Spec.SchedulingGates = nil
	return rp.c.Update(ctx, &got)
}

// awaitsProvisioner reports whether the scheduler has placed p and is only
// waiting, in VolumeBinding's PreBind, for a WaitForFirstConsumer claim to
// be provisioned on the chosen node: the test control plane runs no
// provisioner, so such a pod would never be bound there, while on a real
// cluster it is bound as soon as the volume exists.
func (rp *replayer) awaitsProvisioner(ctx context.Context, p *v1.Pod) bool {
	node := p.Status.NominatedNodeName
	if node == "" {
		return false
	}
	for _, vol := range p.Spec.Volumes {
		name := ""
		switch {
		case vol.PersistentVolumeClaim != nil:
			name = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			name = p.Name + "-" + vol.Name
		default:
			continue
		}
		var pvc v1.PersistentVolumeClaim
		if err := rp.c.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, &pvc); err != nil {
			continue
		}
		if pvc.Status.Phase != v1.ClaimBound && pvc.Annotations["volume.kubernetes.io/selected-node"] == node {
			return true
		}
	}
	return false
}

func poll(ctx context.Context, cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond()
	})
}
