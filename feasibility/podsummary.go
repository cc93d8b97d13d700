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

// podInfo is what the engine keeps of an existing pod.
type podInfo struct {
	ns       unique.Handle[string]
	node     unique.Handle[string] // the zero handle when the pod is not bound
	name     string
	labels   *internedLabels
	requests resources
	// extra holds what few pods have; nil for most.
	extra *podExtra
	// terminating pods still hold resources but no longer count for
	// topology spread, as in the scheduler.
	terminating bool
	// terminal pods (Succeeded, Failed) hold nothing; a snapshot skips them.
	terminal bool
}

type podExtra struct {
	ports []hostPort
	// antiAffinity holds the pod's required anti-affinity terms, which
	// other pods must respect (the symmetric half of InterPodAffinity).
	antiAffinity []affinityTerm
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

func (p *podInfo) labelMap() map[string]string { return p.labels.m }

func (p *podInfo) ports() []hostPort {
	if p.extra == nil {
		return nil
	}
	return p.extra.ports
}

func (p *podInfo) antiAffinity() []affinityTerm {
	if p.extra == nil {
		return nil
	}
	return p.extra.antiAffinity
}

func (p *podInfo) claims() []string {
	if p.extra == nil {
		return nil
	}
	return p.extra.claims
}

func makePodInfo(p *v1.Pod) podInfo {
	p = withAPIDefaults(p) // a no-op for pods read from the API
	pi := podInfo{
		ns:          unique.Make(p.Namespace),
		name:        p.Name,
		labels:      internLabels(p.Labels),
		requests:    existingPodRequests(p),
		terminating: p.DeletionTimestamp != nil,
		terminal:    p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed,
	}
	if p.Spec.NodeName != "" {
		pi.node = unique.Make(p.Spec.NodeName)
	}
	var extra podExtra
	extra.ports = podHostPorts(&p.Spec)
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		extra.antiAffinity = compileTerms(p.Namespace, p.Labels, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			extra.claims = append(extra.claims, v.PersistentVolumeClaim.ClaimName)
		} else if v.Ephemeral != nil {
			extra.claims = append(extra.claims, p.Name+"-"+v.Name)
		}
	}
	if len(extra.ports) > 0 || len(extra.antiAffinity) > 0 || len(extra.claims) > 0 {
		pi.extra = &extra
	}
	return pi
}

// internedLabels is a label map shared by every pod that carries exactly
// these labels. It is never modified.
type internedLabels struct{ m map[string]string }

var noLabels = &internedLabels{}

// labelPool interns label maps. Entries are weak: a map no pod refers to
// any more is collected, and its entry removed.
var labelPool = struct {
	sync.Mutex
	m map[string]weak.Pointer[internedLabels]
}{m: map[string]weak.Pointer[internedLabels]{}}

func internLabels(l map[string]string) *internedLabels {
	if len(l) == 0 {
		return noLabels
	}
	key := labelKey(l)
	labelPool.Lock()
	defer labelPool.Unlock()
	if wp, ok := labelPool.m[key]; ok {
		if il := wp.Value(); il != nil {
			return il
		}
	}
	il := &internedLabels{m: maps.Clone(l)}
	labelPool.m[key] = weak.Make(il)
	runtime.AddCleanup(il, forgetLabels, key)
	return il
}

func forgetLabels(key string) {
	labelPool.Lock()
	defer labelPool.Unlock()
	if wp, ok := labelPool.m[key]; ok && wp.Value() == nil {
		delete(labelPool.m, key)
	}
}

// labelKey encodes a label map canonically: sorted, each key and value
// preceded by its length, so no content can make two maps collide.
func labelKey(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	var b []byte
	for _, k := range keys {
		v := l[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b)
}
