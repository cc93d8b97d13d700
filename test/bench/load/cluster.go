package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/test/synth"
)

// parallel runs fn(ctx, i) for i in [0, n) on conc goroutines and returns
// the first error, after which no new calls start.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// The parent context ended (Ctrl-C, timeout) before every call ran.
		if next.Load() < int64(n) {
			return ctx.Err()
		}
	}
	return first
}

// clusterInfo describes what was loaded.
type clusterInfo struct {
	nodes, pods, namespaces int
	took                    time.Duration
}

// loadCluster creates the synthetic cluster's namespaces, nodes (Ready,
// untainted by not-ready, as test/controlplane makes them) and bound pods
// (spec.nodeName set: no scheduler involved). ResourceQuotas are left out:
// without the quota controller their status would stay empty and quota
// admission would refuse every pod in those namespaces.
func loadCluster(ctx context.Context, cp *controlplane.ControlPlane, client kubernetes.Interface, seed uint64, nodes, pods int, logf func(string, ...any)) (clusterInfo, error) {
	start := time.Now()
	c := synth.Generate(synth.Config{Seed: seed, Nodes: nodes, Pods: pods})
	for _, ns := range c.Namespaces {
		if err := prepareNamespace(ctx, client, ns.Name, ns.Labels); err != nil {
			return clusterInfo{}, err
		}
	}
	err := parallel(ctx, len(c.Nodes), 32, func(ctx context.Context, i int) error {
		_, err := cp.CreateNode(ctx, nodeSpec(c.Nodes[i]))
		return err
	})
	if err != nil {
		return clusterInfo{}, fmt.Errorf("creating nodes: %w", err)
	}
	logf("created %d nodes in %v", len(c.Nodes), time.Since(start).Round(100*time.Millisecond))
	step := time.Now()
	err = parallel(ctx, len(c.Pods), 32, func(ctx context.Context, i int) error {
		p := c.Pods[i].DeepCopy()
		p.Status = corev1.PodStatus{}
		_, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	})
	if err != nil {
		return clusterInfo{}, err
	}
	logf("created %d bound pods in %v", len(c.Pods), time.Since(step).Round(100*time.Millisecond))
	return clusterInfo{nodes: len(c.Nodes), pods: len(c.Pods), namespaces: len(c.Namespaces), took: time.Since(start)}, nil
}

// nodeSpec turns a synthetic node into what CreateNode makes.
func nodeSpec(n *corev1.Node) controlplane.NodeSpec {
	alloc := n.Status.Allocatable
	spec := controlplane.NodeSpec{
		Name: n.Name, Labels: n.Labels, Taints: n.Spec.Taints,
		CPU: alloc.Cpu().String(), Memory: alloc.Memory().String(),
		Pods: int(alloc.Pods().Value()), EphemeralStorage: alloc.StorageEphemeral().String(),
	}
	for name, q := range alloc {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage:
		default:
			if spec.Extended == nil {
				spec.Extended = map[string]string{}
			}
			spec.Extended[string(name)] = q.String()
		}
	}
	return spec
}

// prepareNamespace creates a namespace with what the controller manager
// would add (the default ServiceAccount, the kube-root-ca.crt ConfigMap)
// and the app's ConfigMap, since the benchmark stops the controller
// manager. Existing objects are fine.
func prepareNamespace(ctx context.Context, client kubernetes.Interface, name string, labels map[string]string) error {
	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s in namespace %s: %w", what, name, err)
		}
		return nil
	}
	core := client.CoreV1()
	_, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err := create("the namespace", err); err != nil {
		return err
	}
	_, err = core.ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAcct}}, metav1.CreateOptions{})
	if err := create("the default ServiceAccount", err); err != nil {
		return err
	}
	_, err = core.ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rootCAConfig},
		Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----\n(benchmark)\n-----END CERTIFICATE-----\n"}}, metav1.CreateOptions{})
	if err := create(rootCAConfig, err); err != nil {
		return err
	}
	_, err = core.ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: appConfigMap},
		Data: map[string]string{"profile": "prod", "config.yaml": "listen: :8080\n"}}, metav1.CreateOptions{})
	return create(appConfigMap, err)
}
