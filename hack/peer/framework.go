package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	resourceslicetracker "k8s.io/dynamic-resource-allocation/resourceslice/tracker"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
	schedcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/dynamicresources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodevolumelimits"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/metrics"
	"k8s.io/kubernetes/pkg/scheduler/util/assumecache"
)

// peer is the kube-scheduler framework built in-process the way the cluster
// autoscaler's simulator builds it: the in-tree registry, the default
// profile of the scheduler's default configuration, a fake clientset that
// holds the cluster's objects with an informer factory over it, and a
// snapshot of the nodes and bound pods the informers hold.
type peer struct {
	fw      framework.Framework
	snap    *schedcache.Snapshot
	plugins string
	stop    func()
}

// newPeer builds the framework over objs. The informers are started and
// synced before it returns.
func newPeer(objs []runtime.Object, parallelism int) (*peer, error) {
	ctx, cancel := context.WithCancel(context.Background())
	logger := klog.FromContext(ctx)
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)

	// First the pod and node informers, whose contents become the
	// snapshot. The snapshot must exist before the framework does, because
	// plugins keep the lister they are given at construction.
	pods := factory.Core().V1().Pods()
	nodes := factory.Core().V1().Nodes()
	pods.Informer()
	nodes.Informer()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	podList, err := pods.Lister().List(labels.Everything())
	if err != nil {
		cancel()
		return nil, err
	}
	nodeList, err := nodes.Lister().List(labels.Everything())
	if err != nil {
		cancel()
		return nil, err
	}
	// Only bound, non-terminated pods occupy nodes, as in the scheduler's cache.
	bound := podList[:0:0]
	for _, p := range podList {
		if p.Spec.NodeName != "" && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
			bound = append(bound, p)
		}
	}
	snap := schedcache.NewSnapshot(bound, nodeList)

	// The shared managers the scheduler hands its plugins. DRA is on by
	// default in v1.37, so its plugin expects a manager even though the
	// cluster holds no claims or slices.
	var dra fwk.SharedDRAManager
	if utilfeature.DefaultFeatureGate.Enabled(features.DynamicResourceAllocation) {
		claims := assumecache.NewAssumeCache(logger, factory.Resource().V1().ResourceClaims().Informer(), "ResourceClaim", "", nil)
		opts := resourceslicetracker.Options{
			EnableDeviceTaintRules:   utilfeature.DefaultFeatureGate.Enabled(features.DRADeviceTaintRules),
			EnableConsumableCapacity: utilfeature.DefaultFeatureGate.Enabled(features.DRAConsumableCapacity),
			SliceInformer:            factory.Resource().V1().ResourceSlices(),
			KubeClient:               client,
		}
		if opts.EnableDeviceTaintRules {
			opts.TaintInformer = factory.Resource().V1().DeviceTaintRules()
		}
		tracker, err := resourceslicetracker.StartTracker(ctx, opts)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("resource slice tracker: %w", err)
		}
		dra = dynamicresources.NewDRAManager(ctx, claims, tracker, factory)
	}
	csi := nodevolumelimits.NewCSIManager(factory.Storage().V1().CSINodes().Lister())

	// The framework records into the scheduler's metrics, as in kube-scheduler.
	metrics.Register()

	cfg, err := latest.Default()
	if err != nil {
		cancel()
		return nil, err
	}
	if len(cfg.Profiles) != 1 {
		cancel()
		return nil, fmt.Errorf("default configuration has %d profiles, want 1", len(cfg.Profiles))
	}
	fw, err := frameworkruntime.NewFramework(ctx, plugins.NewInTreeRegistry(), &cfg.Profiles[0],
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithSnapshotSharedLister(snap),
		frameworkruntime.WithSharedDRAManager(dra),
		frameworkruntime.WithSharedCSIManager(csi),
		frameworkruntime.WithParallelism(parallelism),
		frameworkruntime.WithLogger(logger),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building the framework: %w", err)
	}
	// Start the informers the plugins asked for (namespaces, volumes, DRA...).
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("informer for %v did not sync", typ)
		}
	}

	var filters []string
	for _, pl := range fw.ListPlugins().Filter.Enabled {
		filters = append(filters, pl.Name)
	}
	return &peer{fw: fw, snap: snap, plugins: strings.Join(filters, ","), stop: func() {
		cancel()
		factory.Shutdown()
		_ = fw.Close()
		frameworkruntime.WaitForShutdown(fw)
	}}, nil
}

// feasible runs one scheduling cycle's filtering for pod over every node:
// a fresh CycleState, the PreFilter plugins, then the Filter plugins on each
// node the PreFilter result leaves (all of them unless a plugin narrowed
// the set). It does not stop at the first feasible node. When diag is
// non-nil it also counts, per rejecting plugin and reason, the nodes
// rejected; timing runs pass nil.
func (p *peer) feasible(ctx context.Context, pod *v1.Pod, diag map[string]int) (int, error) {
	state := framework.NewCycleState()
	res, st, _ := p.fw.RunPreFilterPlugins(ctx, state, pod)
	if !st.IsSuccess() {
		if !st.IsRejected() {
			return 0, st.AsError()
		}
		if diag != nil {
			diag["PreFilter "+st.Plugin()+": "+strings.Join(st.Reasons(), "; ")]++
		}
		return 0, nil
	}
	all, err := p.snap.NodeInfos().List()
	if err != nil {
		return 0, err
	}
	nodes := all
	if !res.AllNodes() {
		nodes = make([]fwk.NodeInfo, 0, len(res.NodeNames))
		for name := range res.NodeNames {
			ni, err := p.snap.NodeInfos().Get(name)
			if err != nil {
				continue // a plugin named a node the snapshot lacks
			}
			nodes = append(nodes, ni)
		}
		if diag != nil {
			diag["PreFilter narrowed the nodes"] += len(all) - len(nodes)
		}
	}
	n := 0
	for _, ni := range nodes {
		st := p.fw.RunFilterPlugins(ctx, state, pod, ni)
		if st.IsSuccess() {
			n++
			continue
		}
		if !st.IsRejected() {
			return n, st.AsError()
		}
		if diag != nil {
			diag[st.Plugin()+": "+strings.Join(st.Reasons(), "; ")]++
		}
	}
	return n, nil
}

// timed is feasible timed alone.
func (p *peer) timed(ctx context.Context, pod *v1.Pod) (time.Duration, int, error) {
	start := time.Now()
	n, err := p.feasible(ctx, pod, nil)
	return time.Since(start), n, err
}

// explain says why the framework rejected nodes for pod, most common first.
func (p *peer) explain(ctx context.Context, pod *v1.Pod) string {
	diag := map[string]int{}
	n, err := p.feasible(ctx, pod, diag)
	if err != nil {
		return "error: " + err.Error()
	}
	type kv struct {
		k string
		v int
	}
	var list []kv
	for k, v := range diag {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	all, _ := p.snap.NodeInfos().List()
	parts := []string{fmt.Sprintf("%d/%d nodes feasible", n, len(all))}
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%d %s", e.v, e.k))
	}
	return strings.Join(parts, ", ")
}
