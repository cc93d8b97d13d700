package feasibility

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// This file mirrors the volume filters: VolumeRestrictions (ReadWriteOncePod),
// VolumeBinding (missing and unbound claims, PV node affinity,
// WaitForFirstConsumer provisioning topology), and VolumeZone. It leaves out
// NodeVolumeLimits' per-driver attach counts for volumes the engine cannot
// attribute to a CSI driver, and storage-capacity tracking.

const (
	annDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"
	noProvisioner          = "kubernetes.io/no-provisioner"
)

// volumeNeeds is what a pod's claims require, resolved once per check.
type volumeNeeds struct {
	// prefilter is set when the whole pod fails before any node is looked
	// at, as the scheduler's PreFilter does.
	prefilter *prefilterFailure
	// boundPVs are the PVs the pod's bound claims use.
	boundPVs []*v1.PersistentVolume
	// delayed are unbound WaitForFirstConsumer claims, with their class.
	delayed []delayedClaim
	// rwop are ReadWriteOncePod claims: one pod at a time may use each.
	rwop []string
	// rwopInUse is true when another pod already uses one of them.
	rwopInUse bool
}

type delayedClaim struct {
	claim *v1.PersistentVolumeClaim
	class *storagev1.StorageClass
}

// prefilterFailure fails the pod on every node at once.
type prefilterFailure struct {
	code       Code
	message    string // the scheduler's words
	resolvable bool
	field      string
}

func newVolumeNeeds(s *Snapshot, pod *v1.Pod) *volumeNeeds {
	vn := &volumeNeeds{}
	for _, vol := range pod.Spec.Volumes {
		var claimName string
		switch {
		case vol.PersistentVolumeClaim != nil:
			claimName = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			// The ephemeral volume controller creates this claim when the
			// pod is created; until then the scheduler waits, so only the
			// class it will ask for can be judged.
			if t := vol.Ephemeral.VolumeClaimTemplate; t != nil {
				vn.addNewClaim(s, t.Spec, pod.Namespace, pod.Name+"-"+vol.Name)
			}
			continue
		default:
			continue
		}
		if !s.Knows(KindPVC) {
			continue
		}
		pvc, ok := s.pvcs[key(pod.Namespace, claimName)]
		if !ok {
			vn.fail(CodePVCNotFound, fmt.Sprintf("persistentvolumeclaim %q not found", claimName), false)
			continue
		}
		if pvc.DeletionTimestamp != nil {
			vn.fail(CodePVCNotFound, fmt.Sprintf("persistentvolumeclaim %q is being deleted", claimName), false)
			continue
		}
		for _, m := range pvc.Spec.AccessModes {
			if m == v1.ReadWriteOncePod {
				vn.rwop = append(vn.rwop, claimName)
				if s.claimUsers[key(pod.Namespace, claimName)] > 0 {
					vn.rwopInUse = true
				}
			}
		}
		vn.addClaim(s, pvc)
	}
	return vn
}

func (vn *volumeNeeds) fail(code Code, msg string, resolvable bool) {
	if vn.prefilter == nil {
		vn.prefilter = &prefilterFailure{code: code, message: msg, resolvable: resolvable}
	}
}

func (vn *volumeNeeds) addClaim(s *Snapshot, pvc *v1.PersistentVolumeClaim) {
	if pvc.Spec.VolumeName != "" {
		if !s.Knows(KindPV) {
			return
		}
		pv, ok := s.pvs[pvc.Spec.VolumeName]
		if !ok {
			vn.fail(CodePVNotFound, "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)", false)
			return
		}
		vn.boundPVs = append(vn.boundPVs, pv)
		return
	}
	class, delayed := s.claimClass(pvc)
	if delayed {
		vn.delayed = append(vn.delayed, delayedClaim{claim: pvc, class: class})
		return
	}
	// An unbound claim with Immediate binding waits for the PV controller.
	// With a class that exists, a provisioner usually binds it in seconds:
	// transient. With a class that does not exist nothing ever will.
	resolvable := class != nil || !s.Knows(KindStorageClass)
	vn.fail(CodePVCUnbound, "pod has unbound immediate PersistentVolumeClaims", resolvable)
}

// claimClass returns a claim's StorageClass and whether it binds when the
// first consumer is scheduled. A claim naming a class that does not exist
// binds immediately, as in the scheduler.
func (s *Snapshot) claimClass(pvc *v1.PersistentVolumeClaim) (*storagev1.StorageClass, bool) {
	name := ""
	if pvc.Spec.StorageClassName != nil {
		name = *pvc.Spec.StorageClassName
	} else if v, ok := pvc.Annotations[v1.BetaStorageClassAnnotation]; ok {
		name = v
	}
	if name == "" {
		return nil, false
	}
	sc, ok := s.storageClasses[name]
	if !ok {
		return nil, false
	}
	return sc, sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// addNewClaim judges a claim a controller is about to create (a generic
// ephemeral volume's, a StatefulSet replica's) by the class provisioning
// will use: its own, or the default class when it names none. A
// WaitForFirstConsumer class is judged per node; an Immediate class
// provisions the claim before the pod is scheduled; a class that does not
// exist leaves the claim unbound (binding Immediate, as the scheduler
// treats it) unless a PersistentVolume of that class can bind it, so the
// scheduler never gets past PreFilter. A claim with no class at all waits
// for a classless PV; the reference checks report that.
func (vn *volumeNeeds) addNewClaim(s *Snapshot, spec v1.PersistentVolumeClaimSpec, namespace, claimName string) {
	if !s.Knows(KindStorageClass) {
		return
	}
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: claimName}, Spec: spec}
	pvc.Spec.StorageClassName = s.effectiveClassName(spec.StorageClassName)
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return
	}
	class, delayed := s.claimClass(pvc)
	switch {
	case delayed:
		vn.delayed = append(vn.delayed, delayedClaim{claim: pvc, class: class})
	case class == nil && !refStaticPV(s, *pvc.Spec.StorageClassName, namespace, claimName):
		vn.fail(CodePVCUnbound, "pod has unbound immediate PersistentVolumeClaims", false)
	}
}

// addClaimTemplates judges the claims a StatefulSet's controller creates
// from its volumeClaimTemplates, as new claims. Once any replica's claim
// exists the StatefulSet is past creation: each replica then has claims of
// its own, bound wherever they are, which one candidate cannot stand for,
// so they are left alone rather than judged by one replica's.
func (vn *volumeNeeds) addClaimTemplates(s *Snapshot, w *Workload) {
	for i := range w.VolumeClaimTemplates {
		t := &w.VolumeClaimTemplates[i]
		if refClaimsExist(s, w.Namespace, t.Name+"-"+w.Name+"-") {
			continue
		}
		vn.addNewClaim(s, t.Spec, w.Namespace, fmt.Sprintf("%s-%s-0", t.Name, w.Name))
	}
}

// effectiveClassName is the class a new claim gets: its own, or the
// default class when it names none.
func (s *Snapshot) effectiveClassName(name *string) *string {
	if name != nil {
		return name
	}
	if d := s.defaultStorageClass(); d != nil {
		n := d.Name
		return &n
	}
	return nil
}

func (s *Snapshot) defaultStorageClass() *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, sc := range s.storageClasses {
		if sc.Annotations[annDefaultStorageClass] != "true" {
			continue
		}
		// With several defaults the newest wins, as in the admission plugin.
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}

// filter checks the per-node volume plugins in the scheduler's order.
// nodeIndependent reports whether filter passes on every node.
func (vn *volumeNeeds) nodeIndependent() bool {
	return vn == nil || (len(vn.rwop) == 0 && len(vn.boundPVs) == 0 && len(vn.delayed) == 0)
}

func (vn *volumeNeeds) filter(s *Snapshot, n *v1.Node) *nodeFailure {
	if vn == nil {
		return nil
	}
	if len(vn.rwop) > 0 && vn.rwopInUse {
		return failRWOPConflict
	}
	for _, pv := range vn.boundPVs {
		if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
			if ok, _ := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(n); !ok {
				return failVolumeNodeAffinity
			}
		}
	}
	for _, dc := range vn.delayed {
		if !s.canProvisionOrBind(dc, n) {
			return failVolumeBind
		}
	}
	for _, pv := range vn.boundPVs {
		if !volumeZoneMatches(pv, n) {
			return failVolumeZone
		}
	}
	return nil
}

// canProvisionOrBind reports whether a WaitForFirstConsumer claim could be
// satisfied on n: by an available PV that fits it there, or by dynamic
// provisioning within the class's allowed topologies.
func (s *Snapshot) canProvisionOrBind(dc delayedClaim, n *v1.Node) bool {
	for _, pv := range s.pvs {
		if pvMatchesClaim(pv, dc.claim, n) {
			return true
		}
	}
	if dc.class == nil || dc.class.Provisioner == noProvisioner {
		return false
	}
	if len(dc.class.AllowedTopologies) == 0 {
		return true
	}
	for _, term := range dc.class.AllowedTopologies {
		ok := true
		for _, req := range term.MatchLabelExpressions {
			if !containsString(req.Values, n.Labels[req.Key]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// pvMatchesClaim reports whether an available PV could bind the claim for
// a pod on n: same class, enough capacity, the access modes, and node
// affinity that admits n.
func pvMatchesClaim(pv *v1.PersistentVolume, pvc *v1.PersistentVolumeClaim, n *v1.Node) bool {
	if pv.Spec.ClaimRef != nil || pv.Status.Phase != v1.VolumeAvailable && pv.Status.Phase != "" {
		return false
	}
	className := ""
	if pvc.Spec.StorageClassName != nil {
		className = *pvc.Spec.StorageClassName
	}
	if pv.Spec.StorageClassName != className {
		return false
	}
	want := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	have, ok := pv.Spec.Capacity[v1.ResourceStorage]
	if !ok || have.Cmp(want) < 0 {
		return false
	}
	for _, m := range pvc.Spec.AccessModes {
		if !containsMode(pv.Spec.AccessModes, m) {
			return false
		}
	}
	if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
		if ok, _ := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(n); !ok {
			return false
		}
	}
	return true
}

var zoneLabels = []string{
	v1.LabelTopologyZone, v1.LabelTopologyRegion,
	v1.LabelFailureDomainBetaZone, v1.LabelFailureDomainBetaRegion,
}

// volumeZoneMatches mirrors VolumeZone: a PV labelled with a zone or region
// may only be used from nodes in one of the listed values ("a__b" lists
// several). A node with no zone or region label at all is not restricted
// (single-zone clusters); a beta PV label also matches the node's GA label.
func volumeZoneMatches(pv *v1.PersistentVolume, n *v1.Node) bool {
	constrained := false
	for _, k := range zoneLabels {
		if _, ok := n.Labels[k]; ok {
			constrained = true
			break
		}
	}
	if !constrained {
		return true
	}
	for _, k := range zoneLabels {
		v, ok := pv.Labels[k]
		if !ok {
			continue
		}
		nv, ok := n.Labels[k]
		if !ok {
			nv, ok = n.Labels[gaZoneLabel(k)]
		}
		if !ok || !containsString(splitZones(v), nv) {
			return false
		}
	}
	return true
}

func gaZoneLabel(k string) string {
	switch k {
	case v1.LabelFailureDomainBetaZone:
		return v1.LabelTopologyZone
	case v1.LabelFailureDomainBetaRegion:
		return v1.LabelTopologyRegion
	}
	return k
}

func splitZones(v string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(v); i++ {
		if v[i] == '_' && v[i+1] == '_' {
			out = append(out, v[start:i])
			start = i + 2
			i++
		}
	}
	return append(out, v[start:])
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsMode(list []v1.PersistentVolumeAccessMode, m v1.PersistentVolumeAccessMode) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}
