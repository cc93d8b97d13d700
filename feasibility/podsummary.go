package feasibility

import (
	"encoding/binary"
	"maps"
	"runtime"
	"slices"
	"sync"
	"unique"
	"weak"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A cluster holds far more pods than anything else, so how a bound pod is
// kept decides the cache's size and how long garbage collection takes. A
// podInfo is one small allocation: namespace and node are interned handles,
// the labels are a map shared by every pod with the same labels (the
// replicas of one workload), and the rare parts (host ports, anti-affinity,
// claims) hang off a pointer that is nil for most pods.

// PodSummary is the lean form of a bound pod: what the scheduler's filters
// read of an existing pod, and nothing else. A cache can keep PodSummaries
// instead of Pods (it implements runtime.Object and carries its namespace
// and name, which is all an informer's store needs) and hand the same
// values to Snapshot.Upsert, so each pod is held once.
//
// A PodSummary is immutable: it can be shared by any number of snapshots
// and read concurrently.
type PodSummary struct {
	info podInfo
}

// SummarizePod returns the lean form of p. Pods that are not bound, or are
// terminal, are summarized too, but a Snapshot ignores them.
func SummarizePod(p *v1.Pod) *PodSummary {
	return &PodSummary{info: makePodInfo(p)}
}

// Namespace is the pod's namespace.
func (ps *PodSummary) Namespace() string { return ps.info.ns.Value() }

// Name is the pod's name.
func (ps *PodSummary) Name() string { return ps.info.name }

// NodeName is the node the pod is bound to, empty when it is not.
func (ps *PodSummary) NodeName() string { return ps.info.nodeName() }

// GetObjectKind implements runtime.Object: a summary has no kind of its own.
func (ps *PodSummary) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object. A summary is immutable, so the
// copy shares its parts.
func (ps *PodSummary) DeepCopyObject() k8sruntime.Object {
	c := *ps
	return &c
}

// GetObjectMeta lets meta.Accessor, and so informer key functions, read the
// summary's namespace and name.
func (ps *PodSummary) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: ps.Namespace(), Name: ps.info.name}
}

// podInfo is what the engine keeps of an existing pod: its identity, and
// a shape shared with every pod made from the same template.
type podInfo struct {
	ns    unique.Handle[string]
	node  unique.Handle[string] // the zero handle when the pod is not bound
	name  string
	shape *podShape
	// terminating pods still hold resources but no longer count for
	// topology spread, as in the scheduler.
	terminating bool
	// terminal pods (Succeeded, Failed) hold nothing; a snapshot skips them.
	terminal bool
}

// podShape is what the filters read of a pod beyond its identity. The
// replicas of a workload have the same one, so it is interned: one copy
// per distinct shape, however many pods have it.
type podShape struct {
	labels   labelList
	requests resources
	// extra holds what few pods have; nil for most.
	extra *podExtra
}

type podExtra struct {
	ports []hostPort
	// antiAffinity holds the pod's required anti-affinity terms, which
	// other pods must respect (the symmetric half of InterPodAffinity),
	// and antiIDs their identities (antiIndex).
	antiAffinity []affinityTerm
	antiIDs      []string
	// claims are the PVC names (in the pod's namespace) the pod mounts.
	claims []string
}

func (p *podInfo) namespace() string { return p.ns.Value() }

func (p *podInfo) nodeName() string {
	if p.node == (unique.Handle[string]{}) {
		return ""
	}
	return p.node.Value()
}

func (p *podInfo) ports() []hostPort {
	if p.shape.extra == nil {
		return nil
	}
	return p.shape.extra.ports
}

func (p *podInfo) antiAffinity() []affinityTerm {
	if p.shape.extra == nil {
		return nil
	}
	return p.shape.extra.antiAffinity
}

func (p *podInfo) antiIDs() []string {
	if p.shape.extra == nil {
		return nil
	}
	return p.shape.extra.antiIDs
}

func (p *podInfo) claims() []string {
	if p.shape.extra == nil {
		return nil
	}
	return p.shape.extra.claims
}

func makePodInfo(p *v1.Pod) podInfo {
	p = withAPIDefaults(p) // a no-op for pods read from the API
	pi := podInfo{
		ns:          unique.Make(p.Namespace),
		name:        p.Name,
		shape:       makeShape(p),
		terminating: p.DeletionTimestamp != nil,
		terminal:    p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed,
	}
	if p.Spec.NodeName != "" {
		pi.node = unique.Make(p.Spec.NodeName)
	}
	return pi
}

func makeShape(p *v1.Pod) *podShape {
	sh := podShape{labels: newLabelList(p.Labels), requests: existingPodRequests(p)}
	var extra podExtra
	extra.ports = podHostPorts(&p.Spec)
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		extra.antiAffinity = compileTerms(p.Namespace, p.Labels, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		for i := range extra.antiAffinity {
			extra.antiIDs = append(extra.antiIDs, extra.antiAffinity[i].identity(p.Namespace))
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			extra.claims = append(extra.claims, v.PersistentVolumeClaim.ClaimName)
		} else if v.Ephemeral != nil {
			extra.claims = append(extra.claims, p.Name+"-"+v.Name)
		}
	}
	if len(extra.ports) > 0 || len(extra.antiAffinity) > 0 || len(extra.claims) > 0 {
		sh.extra = &extra
	}
	return shapePool.intern(sh.key(p.Labels), func() *podShape { return &sh })
}

// key encodes everything a shape holds. Anti-affinity terms are named by
// their identities, which include the namespace they default to.
func (sh *podShape) key(podLabels map[string]string) string {
	var w keyWriter
	str, num := w.str, w.num
	str(labelKey(podLabels))
	num(sh.requests.MilliCPU)
	num(sh.requests.Memory)
	num(sh.requests.Ephemeral)
	names := sh.requests.scalarNames()
	num(int64(len(names)))
	for _, n := range names {
		str(string(n))
		num(sh.requests.Scalar[n])
	}
	if e := sh.extra; e != nil {
		num(int64(len(e.ports)))
		for _, hp := range e.ports {
			str(hp.ip)
			str(string(hp.protocol))
			num(int64(hp.port))
		}
		num(int64(len(e.antiIDs)))
		for _, id := range e.antiIDs {
			str(id)
		}
		num(int64(len(e.claims)))
		for _, c := range e.claims {
			str(c)
		}
	}
	return string(w)
}

// internPool hands out one shared value per key. Entries are weak: a value
// nothing refers to any more is collected, and its entry removed.
type internPool[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

func (p *internPool[T]) intern(key string, make func() *T) *T {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]weak.Pointer[T]{}
	}
	if wp, ok := p.m[key]; ok {
		if v := wp.Value(); v != nil {
			return v
		}
	}
	v := make()
	p.m[key] = weak.Make(v)
	runtime.AddCleanup(v, p.forget, key)
	return v
}

func (p *internPool[T]) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if wp, ok := p.m[key]; ok && wp.Value() == nil {
		delete(p.m, key)
	}
}

var shapePool internPool[podShape]

// labelList is a pod's labels, sorted by key: a fraction of a map's size,
// and as quick to search for the handful of labels a pod carries. It
// implements labels.Labels, so selectors match it directly.
type labelList []labelPair

type labelPair struct{ key, value string }

func newLabelList(m map[string]string) labelList {
	if len(m) == 0 {
		return nil
	}
	l := make(labelList, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		l = append(l, labelPair{k, m[k]})
	}
	return l
}

// Lookup implements labels.Labels.
func (l labelList) Lookup(key string) (string, bool) {
	for i := range l {
		if l[i].key == key {
			return l[i].value, true
		}
	}
	return "", false
}

// Has implements labels.Labels.
func (l labelList) Has(key string) bool { _, ok := l.Lookup(key); return ok }

// Get implements labels.Labels.
func (l labelList) Get(key string) string { v, _ := l.Lookup(key); return v }

// labelKey encodes a label map canonically: sorted, each key and value
// preceded by its length.
func labelKey(l map[string]string) string {
	var w keyWriter
	for _, k := range slices.Sorted(maps.Keys(l)) {
		w.str(k)
		w.str(l[k])
	}
	return string(w)
}

// keyWriter builds the keys that intern shapes and classes from strings
// and numbers; each string is preceded by its length, so no content can
// make two different inputs write the same key.
type keyWriter []byte

func (w *keyWriter) str(s string) {
	*w = binary.AppendUvarint(*w, uint64(len(s)))
	*w = append(*w, s...)
}

func (w *keyWriter) num(v int64) { *w = binary.AppendVarint(*w, v) }
