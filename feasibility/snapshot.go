package feasibility

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Kind names the kinds of object a Snapshot holds.
type Kind string

const (
	KindNode           Kind = "Node"
	KindPod            Kind = "Pod"
	KindNamespace      Kind = "Namespace"
	KindPVC            Kind = "PersistentVolumeClaim"
	KindPV             Kind = "PersistentVolume"
	KindStorageClass   Kind = "StorageClass"
	KindCSINode        Kind = "CSINode"
	KindResourceQuota  Kind = "ResourceQuota"
	KindLimitRange     Kind = "LimitRange"
	KindPriorityClass  Kind = "PriorityClass"
	KindRuntimeClass   Kind = "RuntimeClass"
	KindServiceAccount Kind = "ServiceAccount"
	KindSecret         Kind = "Secret"
	KindConfigMap      Kind = "ConfigMap"
)

// AllKinds lists every kind a Snapshot can hold, in a stable order.
var AllKinds = []Kind{KindNode, KindPod, KindNamespace, KindPVC, KindPV, KindStorageClass,
	KindCSINode, KindResourceQuota, KindLimitRange, KindPriorityClass, KindRuntimeClass,
	KindServiceAccount, KindSecret, KindConfigMap}

// Snapshot is the cluster state the engine judges against. It keeps
// per-node aggregates (requested resources, host ports, pod counts) up to
// date as objects are added and removed, so a check never walks every pod
// to learn what a node has left.
//
// A Snapshot is not safe for concurrent mutation; Check only reads it, so
// many checks may run at once between mutations.
type Snapshot struct {
	nodes     map[string]*nodeInfo
	nodeOrder []*nodeInfo // sorted by name, kept in order as nodes come and go
	// slots holds every node slot by number (nil where freed), freeSlots
	// the freed numbers.
	slots     []*nodeInfo
	freeSlots []int32

	pods map[podKey]*podInfo

	namespaces      map[string]*v1.Namespace
	pvcs            map[string]*v1.PersistentVolumeClaim // by namespace/name
	pvs             map[string]*v1.PersistentVolume
	storageClasses  map[string]*storagev1.StorageClass
	csiNodes        map[string]*storagev1.CSINode
	quotas          map[string][]*v1.ResourceQuota // by namespace
	limitRanges     map[string][]*v1.LimitRange    // by namespace
	priorityClasses map[string]*schedulingv1.PriorityClass
	runtimeClasses  map[string]*nodev1.RuntimeClass
	serviceAccounts map[string]struct{} // namespace/name
	secrets         map[string]struct{} // namespace/name
	configMaps      map[string]struct{} // namespace/name

	// podIndex finds bound pods by namespace and label; antiIndex holds
	// the existing pods' anti-affinity terms every candidate must respect.
	podIndex  podIndex
	antiIndex antiIndex
	// classes group nodes that every static filter treats alike
	// (classes.go); classList indexes them by id, with freed ids reused.
	classes      map[string]*nodeClass
	classList    []*nodeClass
	freeClassIDs []int
	// nodeLabelValues lists nodes per label value: key -> value -> node
	// slots. Topology spread reads its domains from it, and per-node pod
	// counts add up to a domain's over its nodes.
	nodeLabelValues map[string]map[string][]int32

	// rwopClaims counts running pods per ReadWriteOncePod-relevant claim
	// (namespace/claim), for VolumeRestrictions.
	claimUsers map[string]int

	// known records which kinds the snapshot has complete knowledge of.
	// A reference check for a kind the snapshot does not know is skipped:
	// "we were not told" must never read as "it does not exist".
	known map[Kind]bool
}

// NewSnapshot returns an empty snapshot that knows nothing.
func NewSnapshot() *Snapshot {
	nodes := map[string]*nodeInfo{}
	return &Snapshot{
		nodes:           nodes,
		pods:            map[podKey]*podInfo{},
		namespaces:      map[string]*v1.Namespace{},
		pvcs:            map[string]*v1.PersistentVolumeClaim{},
		pvs:             map[string]*v1.PersistentVolume{},
		storageClasses:  map[string]*storagev1.StorageClass{},
		csiNodes:        map[string]*storagev1.CSINode{},
		quotas:          map[string][]*v1.ResourceQuota{},
		limitRanges:     map[string][]*v1.LimitRange{},
		priorityClasses: map[string]*schedulingv1.PriorityClass{},
		runtimeClasses:  map[string]*nodev1.RuntimeClass{},
		serviceAccounts: map[string]struct{}{},
		secrets:         map[string]struct{}{},
		configMaps:      map[string]struct{}{},
		claimUsers:      map[string]int{},
		podIndex:        newPodIndex(nodes),
		antiIndex:       newAntiIndex(),
		nodeLabelValues: map[string]map[string][]int32{},
		classes:         map[string]*nodeClass{},
		known:           map[Kind]bool{},
	}
}

// NewSnapshotFrom builds a snapshot from objects, marking every kind seen
// among them as known.
func NewSnapshotFrom(objs ...runtime.Object) (*Snapshot, error) {
	s := NewSnapshot()
	for _, o := range objs {
		if err := s.Upsert(o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// MarkKnown declares that the snapshot holds every object of these kinds,
// so that a reference to one it lacks is a real "not found".
func (s *Snapshot) MarkKnown(kinds ...Kind) {
	for _, k := range kinds {
		s.known[k] = true
	}
}

// Knows reports whether the snapshot has complete knowledge of kind.
func (s *Snapshot) Knows(k Kind) bool { return s.known[k] }

func key(namespace, name string) string { return namespace + "/" + name }

// Upsert adds or replaces an object, and marks its kind known. Pods may be
// given as *v1.Pod or as *PodSummary. Secrets and ConfigMaps may be given as
// *v1.Secret, *v1.ConfigMap or as *metav1.PartialObjectMetadata; only their
// names are kept.
func (s *Snapshot) Upsert(obj runtime.Object) error {
	switch o := obj.(type) {
	case *v1.Node:
		s.upsertNode(o)
		s.known[KindNode] = true
	case *v1.Pod:
		pi := makePodInfo(o)
		s.upsertPod(&pi)
		s.known[KindPod] = true
	case *PodSummary:
		s.upsertPod(&o.info)
		s.known[KindPod] = true
	case *v1.Namespace:
		s.namespaces[o.Name] = o
		s.known[KindNamespace] = true
	case *v1.PersistentVolumeClaim:
		s.pvcs[key(o.Namespace, o.Name)] = o
		s.known[KindPVC] = true
	case *v1.PersistentVolume:
		s.pvs[o.Name] = o
		s.known[KindPV] = true
	case *storagev1.StorageClass:
		s.storageClasses[o.Name] = o
		s.known[KindStorageClass] = true
	case *storagev1.CSINode:
		s.csiNodes[o.Name] = o
		s.known[KindCSINode] = true
	case *v1.ResourceQuota:
		s.quotas[o.Namespace] = replaceNamed(s.quotas[o.Namespace], o)
		s.known[KindResourceQuota] = true
	case *v1.LimitRange:
		s.limitRanges[o.Namespace] = replaceNamed(s.limitRanges[o.Namespace], o)
		s.known[KindLimitRange] = true
	case *schedulingv1.PriorityClass:
		s.priorityClasses[o.Name] = o
		s.known[KindPriorityClass] = true
	case *nodev1.RuntimeClass:
		s.runtimeClasses[o.Name] = o
		s.known[KindRuntimeClass] = true
	case *v1.ServiceAccount:
		s.serviceAccounts[key(o.Namespace, o.Name)] = struct{}{}
		s.known[KindServiceAccount] = true
	case *v1.Secret:
		s.secrets[key(o.Namespace, o.Name)] = struct{}{}
		s.known[KindSecret] = true
	case *v1.ConfigMap:
		s.configMaps[key(o.Namespace, o.Name)] = struct{}{}
		s.known[KindConfigMap] = true
	case *metav1.PartialObjectMetadata:
		switch o.Kind {
		case "Secret":
			s.secrets[key(o.Namespace, o.Name)] = struct{}{}
			s.known[KindSecret] = true
		case "ConfigMap":
			s.configMaps[key(o.Namespace, o.Name)] = struct{}{}
			s.known[KindConfigMap] = true
		default:
			return fmt.Errorf("snapshot: metadata-only objects of kind %q are not used", o.Kind)
		}
	default:
		return fmt.Errorf("snapshot: objects of type %T are not part of cluster state", obj)
	}
	return nil
}

// Delete removes an object; removing one that is not there is not an error.
func (s *Snapshot) Delete(obj runtime.Object) error {
	switch o := obj.(type) {
	case *v1.Node:
		s.DeleteNode(o.Name)
	case *v1.Pod:
		s.DeletePod(o.Namespace, o.Name)
	case *PodSummary:
		s.deletePod(podKey{o.info.ns, o.info.name})
	case *v1.Namespace:
		delete(s.namespaces, o.Name)
	case *v1.PersistentVolumeClaim:
		delete(s.pvcs, key(o.Namespace, o.Name))
	case *v1.PersistentVolume:
		delete(s.pvs, o.Name)
	case *storagev1.StorageClass:
		delete(s.storageClasses, o.Name)
	case *storagev1.CSINode:
		delete(s.csiNodes, o.Name)
	case *v1.ResourceQuota:
		s.quotas[o.Namespace] = removeNamed(s.quotas[o.Namespace], o.Name)
	case *v1.LimitRange:
		s.limitRanges[o.Namespace] = removeNamed(s.limitRanges[o.Namespace], o.Name)
	case *schedulingv1.PriorityClass:
		delete(s.priorityClasses, o.Name)
	case *nodev1.RuntimeClass:
		delete(s.runtimeClasses, o.Name)
	case *v1.ServiceAccount:
		delete(s.serviceAccounts, key(o.Namespace, o.Name))
	case *v1.Secret:
		delete(s.secrets, key(o.Namespace, o.Name))
	case *v1.ConfigMap:
		delete(s.configMaps, key(o.Namespace, o.Name))
	case *metav1.PartialObjectMetadata:
		switch o.Kind {
		case "Secret":
			delete(s.secrets, key(o.Namespace, o.Name))
		case "ConfigMap":
			delete(s.configMaps, key(o.Namespace, o.Name))
		}
	default:
		return fmt.Errorf("snapshot: objects of type %T are not part of cluster state", obj)
	}
	return nil
}

type named interface{ GetName() string }

func replaceNamed[T named](list []T, o T) []T {
	for i, x := range list {
		if x.GetName() == o.GetName() {
			out := append([]T(nil), list...)
			out[i] = o
			return out
		}
	}
	out := append([]T(nil), list...)
	return append(out, o)
}

func removeNamed[T named](list []T, name string) []T {
	out := make([]T, 0, len(list))
	for _, x := range list {
		if x.GetName() != name {
			out = append(out, x)
		}
	}
	return out
}

// Counts reports how many objects of each kind the snapshot holds.
func (s *Snapshot) Counts() map[Kind]int {
	n := 0
	for _, l := range s.quotas {
		n += len(l)
	}
	m := 0
	for _, l := range s.limitRanges {
		m += len(l)
	}
	return map[Kind]int{
		KindNode: len(s.nodeOrder), KindPod: len(s.pods), KindNamespace: len(s.namespaces),
		KindPVC: len(s.pvcs), KindPV: len(s.pvs), KindStorageClass: len(s.storageClasses),
		KindCSINode: len(s.csiNodes), KindResourceQuota: n, KindLimitRange: m,
		KindPriorityClass: len(s.priorityClasses), KindRuntimeClass: len(s.runtimeClasses),
		KindServiceAccount: len(s.serviceAccounts), KindSecret: len(s.secrets), KindConfigMap: len(s.configMaps),
	}
}

// sortedNodes returns the nodes in name order, so verdicts and messages are
// deterministic.
func (s *Snapshot) sortedNodes() []*nodeInfo { return s.nodeOrder }
