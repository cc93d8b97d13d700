package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/fitgate/fitgate/feasibility"
)

// LockedSnapshot guards a feasibility.Snapshot: informer handlers write
// under the write lock, checks read under the read lock.
type LockedSnapshot struct {
	mu sync.RWMutex
	s  *feasibility.Snapshot
}

// NewLockedSnapshot wraps s, which the caller must no longer touch.
func NewLockedSnapshot(s *feasibility.Snapshot) *LockedSnapshot {
	if s == nil {
		s = feasibility.NewSnapshot()
	}
	return &LockedSnapshot{s: s}
}

// Check runs the engine under the read lock.
func (l *LockedSnapshot) Check(w *feasibility.Workload, opts *feasibility.Options) *feasibility.Report {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return feasibility.Check(l.s, w, opts)
}

// Update runs fn under the write lock.
func (l *LockedSnapshot) Update(fn func(s *feasibility.Snapshot)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.s)
}

// Counts reports the snapshot's object counts.
func (l *LockedSnapshot) Counts() map[feasibility.Kind]int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Counts()
}

// CacheOptions tune NewCache.
type CacheOptions struct {
	// ResyncPeriod of the informers; 0 (the default) never resyncs.
	ResyncPeriod time.Duration
	Metrics      *Metrics
	Logger       logr.Logger
	// Observe, if set, is called under the snapshot's write lock after
	// each change applied to it, with the object as the snapshot got it
	// (pods as *feasibility.PodSummary; deleted: it was removed, and a
	// removed pod may be named by metadata only). With View, it lets a test
	// keep an independent copy of exactly what each check saw.
	Observe func(kind feasibility.Kind, obj runtime.Object, deleted bool)
}

// Cache is the cluster state fitgate judges against: one informer per kind
// the engine reads, each stripped to what the checks need, feeding a
// feasibility.Snapshot that keeps per-node aggregates; pods, by far the
// most numerous, come from a reflector that writes their lean summaries
// straight into the snapshot (podstore.go). Secrets and ConfigMaps are
// watched as metadata only, without annotations, so fitgate never holds
// secret data.
type Cache struct {
	snap       *LockedSnapshot
	factory    informers.SharedInformerFactory
	metaClient metadata.Interface
	resync     time.Duration
	namespaces corelisters.NamespaceLister
	sources    []*cacheSource
	metrics    *Metrics
	log        logr.Logger
	observe    func(kind feasibility.Kind, obj runtime.Object, deleted bool)

	started atomic.Bool
	synced  atomic.Bool
	done    chan struct{} // closed when every informer has synced

	// nodes are the resource versions of the nodes the snapshot holds, for
	// WaitForNodes (freshness.go), which shares LISTs through nodeLists.
	nodes     nodeVersions
	nodeLists sharedLists
}

// cacheSource is one kind's feed: a shared informer, or for pods a
// reflector writing into the snapshot (podstore.go).
type cacheSource struct {
	kind     feasibility.Kind
	informer toolscache.SharedIndexInformer
	reg      toolscache.ResourceEventHandlerRegistration
	synced   atomic.Bool

	reflector *toolscache.Reflector
	pods      *podStore
}

// hasSynced reports whether the source has delivered its first full list.
func (s *cacheSource) hasSynced() bool {
	if s.pods != nil {
		return s.pods.synced.Load()
	}
	return s.reg.HasSynced()
}

// PodFieldSelector keeps only bound, non-terminal pods in the cache: the
// only ones that hold resources on a node.
const PodFieldSelector = "status.phase!=Succeeded,status.phase!=Failed,spec.nodeName!="

// NewCache prepares the informers; Start runs them.
func NewCache(client kubernetes.Interface, meta metadata.Interface, opts CacheOptions) *Cache {
	c := &Cache{
		snap:       NewLockedSnapshot(nil),
		metaClient: meta,
		resync:     opts.ResyncPeriod,
		metrics:    opts.Metrics,
		log:        opts.Logger,
		observe:    opts.Observe,
		done:       make(chan struct{}),
	}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	c.factory = informers.NewSharedInformerFactoryWithOptions(client, opts.ResyncPeriod,
		informers.WithTransform(stripObject))
	core := c.factory.Core().V1()
	c.namespaces = core.Namespaces().Lister()
	typed := []struct {
		kind     feasibility.Kind
		informer toolscache.SharedIndexInformer
	}{
		{feasibility.KindNode, core.Nodes().Informer()},
		{feasibility.KindNamespace, core.Namespaces().Informer()},
		{feasibility.KindPVC, core.PersistentVolumeClaims().Informer()},
		{feasibility.KindPV, core.PersistentVolumes().Informer()},
		{feasibility.KindStorageClass, c.factory.Storage().V1().StorageClasses().Informer()},
		{feasibility.KindCSINode, c.factory.Storage().V1().CSINodes().Informer()},
		{feasibility.KindResourceQuota, core.ResourceQuotas().Informer()},
		{feasibility.KindLimitRange, core.LimitRanges().Informer()},
		{feasibility.KindPriorityClass, c.factory.Scheduling().V1().PriorityClasses().Informer()},
		{feasibility.KindRuntimeClass, c.factory.Node().V1().RuntimeClasses().Informer()},
		{feasibility.KindServiceAccount, core.ServiceAccounts().Informer()},
	}
	for _, t := range typed {
		c.sources = append(c.sources, &cacheSource{kind: t.kind, informer: t.informer})
	}
	pods := &podStore{c: c}
	c.sources = append(c.sources, &cacheSource{kind: feasibility.KindPod, pods: pods, reflector: newPodReflector(client, pods)})
	for _, kind := range []feasibility.Kind{feasibility.KindSecret, feasibility.KindConfigMap} {
		gvr := schema.GroupVersionResource{Version: "v1", Resource: strings.ToLower(string(kind)) + "s"}
		inf := metadatainformer.NewFilteredMetadataInformer(meta, gvr, metav1.NamespaceAll, opts.ResyncPeriod,
			toolscache.Indexers{}, nil).Informer()
		_ = inf.SetTransform(metadataOnly(string(kind)))
		c.sources = append(c.sources, &cacheSource{kind: kind, informer: inf})
	}
	for _, s := range c.sources {
		c.metrics.setSynced(s.kind, false)
	}
	return c
}

// Start registers the event handlers and runs the informers until ctx ends.
// It returns at once; Synced, WaitForSync and ReadyCheck tell when the cache
// is complete.
func (c *Cache) Start(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("cache already started")
	}
	for _, s := range c.sources {
		if s.informer == nil {
			continue
		}
		reg, err := s.informer.AddEventHandler(c.handlerFor(s.kind))
		if err != nil {
			return fmt.Errorf("watching %s: %w", s.kind, err)
		}
		s.reg = reg
	}
	c.factory.Start(ctx.Done())
	for _, s := range c.sources {
		switch {
		case s.reflector != nil:
			go s.reflector.RunWithContext(ctx)
		case s.kind == feasibility.KindSecret || s.kind == feasibility.KindConfigMap:
			go s.informer.RunWithContext(ctx)
		}
	}
	var wg sync.WaitGroup
	for _, s := range c.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !toolscache.WaitForCacheSync(ctx.Done(), s.hasSynced) {
				return
			}
			// A kind with no objects at all is complete knowledge too:
			// "no RuntimeClass exists" must read as such.
			c.snap.Update(func(snap *feasibility.Snapshot) { snap.MarkKnown(s.kind) })
			s.synced.Store(true)
			c.metrics.setSynced(s.kind, true)
			c.log.V(1).Info("informer synced", "kind", s.kind)
		}()
	}
	go func() {
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		c.synced.Store(true)
		close(c.done)
		c.log.Info("cluster cache synced", "objects", c.Counts())
	}()
	return nil
}

// Synced reports whether every informer has synced.
func (c *Cache) Synced() bool { return c.synced.Load() }

// WaitForSync blocks until the cache has synced or ctx ends.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// ReadyCheck is a healthz.Checker that fails, naming the kinds still
// loading, until every informer has synced.
func (c *Cache) ReadyCheck(_ *http.Request) error {
	if c.Synced() {
		return nil
	}
	var waiting []string
	for _, s := range c.sources {
		if !s.synced.Load() {
			waiting = append(waiting, string(s.kind))
		}
	}
	sort.Strings(waiting)
	return fmt.Errorf("cluster cache not synced: waiting for %s", strings.Join(waiting, ", "))
}

// Check implements SnapshotSource.
func (c *Cache) Check(w *feasibility.Workload, opts *feasibility.Options) (*feasibility.Report, bool) {
	if !c.Synced() {
		return nil, false
	}
	return c.snap.Check(w, opts), true
}

// NamespaceLabels implements SnapshotSource from the namespace informer.
func (c *Cache) NamespaceLabels(name string) (map[string]string, bool) {
	ns, err := c.namespaces.Get(name)
	if err != nil {
		return nil, false
	}
	return ns.Labels, true
}

// Counts reports how many objects of each kind the cache holds.
func (c *Cache) Counts() map[feasibility.Kind]int { return c.snap.Counts() }

// View runs fn with the snapshot under its read lock: no change is applied
// while fn runs, so fn sees one consistent state (checks may run too).
// fn must not keep s or modify it.
func (c *Cache) View(fn func(s *feasibility.Snapshot)) {
	c.snap.mu.RLock()
	defer c.snap.mu.RUnlock()
	fn(c.snap.s)
}

func (c *Cache) handlerFor(kind feasibility.Kind) toolscache.ResourceEventHandler {
	upsert := func(obj any) {
		o, ok := asObject(kind, obj)
		if !ok {
			return
		}
		var err error
		c.snap.Update(func(s *feasibility.Snapshot) {
			if err = s.Upsert(o); err == nil && c.observe != nil {
				c.observe(kind, o, false)
			}
		})
		if err != nil {
			c.log.Error(err, "cannot cache object", "kind", kind)
			return
		}
		if kind == feasibility.KindNode {
			c.nodes.set(o, false) // after the snapshot has it
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsert(obj) },
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			o, ok := asObject(kind, obj)
			if !ok {
				return
			}
			var err error
			c.snap.Update(func(s *feasibility.Snapshot) {
				if err = s.Delete(o); err == nil && c.observe != nil {
					c.observe(kind, o, true)
				}
			})
			if err != nil {
				c.log.Error(err, "cannot uncache object", "kind", kind)
			}
			if kind == feasibility.KindNode {
				c.nodes.set(o, true)
			}
		},
	}
}

// asObject returns obj as the snapshot wants it; metadata-only objects get
// the kind the snapshot dispatches on.
func asObject(kind feasibility.Kind, obj any) (runtime.Object, bool) {
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		if o.Kind != string(kind) {
			o = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: string(kind)}, ObjectMeta: o.ObjectMeta}
		}
		return o, true
	case runtime.Object:
		return o, true
	}
	return nil, false
}

// Transforms. Each runs once per object as it enters the informer's store,
// so the cache keeps only what the checks read.

const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// stripObject is the transform of every typed informer.
func stripObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Node:
		// What the filters read: labels, taints, the cordon and
		// allocatable; the resource version for freshness. Images,
		// conditions, addresses and capacity are most of a node's bytes.
		return &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion,
				Labels: o.Labels, DeletionTimestamp: o.DeletionTimestamp},
			Spec:   v1.NodeSpec{Taints: o.Spec.Taints, Unschedulable: o.Spec.Unschedulable},
			Status: v1.NodeStatus{Allocatable: o.Status.Allocatable},
		}, nil
	case *v1.Namespace:
		return &v1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion,
				Labels: o.Labels, DeletionTimestamp: o.DeletionTimestamp},
			Status: v1.NamespaceStatus{Phase: o.Status.Phase},
		}, nil
	case *v1.ServiceAccount:
		return &v1.ServiceAccount{ObjectMeta: nameOnly(o.ObjectMeta)}, nil
	case *v1.PersistentVolumeClaim, *v1.PersistentVolume, *storagev1.StorageClass, *storagev1.CSINode,
		*v1.ResourceQuota, *v1.LimitRange, *schedulingv1.PriorityClass, *nodev1.RuntimeClass:
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
			if a := m.GetAnnotations(); a != nil {
				delete(a, lastAppliedAnnotation)
			}
		}
		return obj, nil
	}
	return obj, nil
}

func nameOnly(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp}
}

// metadataOnly keeps a Secret's or ConfigMap's name and nothing else: not
// even annotations, where kubectl's last-applied-configuration would carry
// a Secret's data.
func metadataOnly(kind string) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return obj, nil
		}
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
			ObjectMeta: nameOnly(m.ObjectMeta),
		}, nil
	}
}
