package webhook

import (
	"context"
	"fmt"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/fitgate/fitgate/feasibility"
)

// Pods are most of a cluster's objects, so they do not go through a
// shared informer, which would keep every pod twice more: once in its
// indexer and once, while events are delivered, in its queues. A reflector
// writes them straight into the snapshot through podStore, and the
// snapshot's lean per-pod record (feasibility.PodSummary) is the cache's
// only copy of each pod.

// podStore is the store the pod reflector fills: it keeps nothing itself.
type podStore struct {
	c      *Cache
	synced atomic.Bool
}

var (
	_ toolscache.ReflectorStore    = (*podStore)(nil)
	_ toolscache.TransformingStore = (*podStore)(nil)
)

func newPodReflector(client kubernetes.Interface, store *podStore) *toolscache.Reflector {
	pods := client.CoreV1().Pods(metav1.NamespaceAll)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = PodFieldSelector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = PodFieldSelector
			return pods.Watch(ctx, o)
		},
	}
	// As client-go's informers do, let a client that cannot stream lists
	// (a fake clientset) say so, so the reflector lists instead.
	return toolscache.NewReflectorWithOptions(toolscache.ToListWatcherWithWatchListSemantics(lw, client),
		&v1.Pod{}, store, toolscache.ReflectorOptions{Name: "fitgate pods"})
}

// summarize is the store's transform: the reflector applies it to the pods
// it gathers during a streamed initial list, so even that transient copy
// is lean.
func summarize(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Pod:
		return feasibility.SummarizePod(o), nil
	case *feasibility.PodSummary:
		return o, nil
	}
	return obj, nil
}

// Transformer implements toolscache.TransformingStore.
func (ps *podStore) Transformer() toolscache.TransformFunc { return summarize }

func asSummary(obj any) (*feasibility.PodSummary, error) {
	o, _ := summarize(obj)
	if s, ok := o.(*feasibility.PodSummary); ok {
		return s, nil
	}
	return nil, fmt.Errorf("pod store: unexpected %T", obj)
}

// Add implements toolscache.ReflectorStore.
func (ps *podStore) Add(obj any) error { return ps.upsert(obj) }

// Update implements toolscache.ReflectorStore.
func (ps *podStore) Update(obj any) error { return ps.upsert(obj) }

func (ps *podStore) upsert(obj any) error {
	s, err := asSummary(obj)
	if err != nil {
		return err
	}
	ps.c.snap.Update(func(snap *feasibility.Snapshot) {
		err = snap.Upsert(s)
		if err == nil && ps.c.observe != nil {
			ps.c.observe(feasibility.KindPod, s, false)
		}
	})
	return err
}

// Delete implements toolscache.ReflectorStore.
func (ps *podStore) Delete(obj any) error {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("pod store: %w", err)
	}
	ns, name := m.GetNamespace(), m.GetName()
	ps.c.snap.Update(func(snap *feasibility.Snapshot) {
		snap.DeletePod(ns, name)
		if ps.c.observe != nil {
			ps.c.observe(feasibility.KindPod, deletedPod(ns, name), true)
		}
	})
	return nil
}

// Replace implements toolscache.ReflectorStore: the pods of a fresh list.
func (ps *podStore) Replace(list []any, _ string) error {
	pods := make([]*feasibility.PodSummary, 0, len(list))
	for _, o := range list {
		s, err := asSummary(o)
		if err != nil {
			return err
		}
		pods = append(pods, s)
	}
	ps.c.snap.Update(func(snap *feasibility.Snapshot) {
		var gone func(ns, name string)
		if ps.c.observe != nil {
			gone = func(ns, name string) { ps.c.observe(feasibility.KindPod, deletedPod(ns, name), true) }
		}
		snap.ReplacePods(pods, gone)
		if ps.c.observe != nil {
			for _, s := range pods {
				ps.c.observe(feasibility.KindPod, s, false)
			}
		}
	})
	ps.synced.Store(true)
	return nil
}

// Resync implements toolscache.ReflectorStore; there is nothing to resync.
func (ps *podStore) Resync() error { return nil }

// deletedPod names a pod that is gone, for CacheOptions.Observe.
func deletedPod(ns, name string) runtime.Object {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}
