package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func tcClass(name, provisioner string, mode storagev1.VolumeBindingMode, zones ...string) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
	if len(zones) > 0 {
		sc.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{
			{Key: tcZoneKey, Values: zones}}}}
	}
	return sc
}

// tcClaim is claim "data" of class (nil: no class), asking for size.
func tcClaim(class *string, size string, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	if len(modes) == 0 {
		modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	return &v1.PersistentVolumeClaim{ObjectMeta: tbMeta("data"), Spec: v1.PersistentVolumeClaimSpec{
		StorageClassName: class, AccessModes: modes,
		Resources: v1.VolumeResourceRequirements{Requests: tbList("storage=" + size)}}}
}

// tcBoundClaim is claim "data" bound to a PV of the same name's volume.
func tcBoundClaim(pv *v1.PersistentVolume) *v1.PersistentVolumeClaim {
	c := tcClaim(tbPtr(pv.Spec.StorageClassName), "1Gi", pv.Spec.AccessModes...)
	c.Spec.VolumeName = pv.Name
	c.Status.Phase = v1.ClaimBound
	return c
}

// tcPV is a PV of class and size, pinned to hostnames when any are given.
func tcPV(name, class, size string, hosts ...string) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}, Spec: v1.PersistentVolumeSpec{
		Capacity: tbList("storage=" + size), AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
		StorageClassName:       class,
		PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/mnt/" + name}}},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable}}
	if len(hosts) > 0 {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{
			{MatchExpressions: []v1.NodeSelectorRequirement{taExpr(v1.LabelHostname, v1.NodeSelectorOpIn, hosts...)}}}}}
	}
	return pv
}

func tcClaimed(pv *v1.PersistentVolume) *v1.PersistentVolume {
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: tbNS, Name: "data"}
	pv.Status.Phase = v1.VolumeBound
	return pv
}

func tcZoned(pv *v1.PersistentVolume, key, zones string) *v1.PersistentVolume {
	pv.Labels[key] = zones
	return pv
}

func tcMounts(claim string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "data",
			VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	}
}

func tcEphemeral(class *string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{
			Ephemeral: &v1.EphemeralVolumeSource{VolumeClaimTemplate: &v1.PersistentVolumeClaimTemplate{
				Spec: tcClaim(class, "1Gi").Spec}}}})
	}
}

// TestVolumeFilters mirrors VolumeRestrictions, VolumeBinding and
// VolumeZone node by node; a PreFilter failure shows under key "".
func TestVolumeFilters(t *testing.T) {
	wffc, immediate := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	local := tcClass("local", noProvisioner, wffc)
	two := []runtime.Object{tcInZone("n1", "a"), tcInZone("n2", "b")}
	with := func(objs ...runtime.Object) []runtime.Object {
		return append(append([]runtime.Object{}, two...), objs...)
	}
	holder := tcPodOn(tbNS, "holder", "n1")
	tcMounts("data")(holder)
	rwop := tcClaimed(tcPV("pv", "", "1Gi"))
	rwop.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}
	tests := []struct {
		name    string
		pod     *v1.Pod
		cluster []runtime.Object
		want    map[string]Code
	}{
		{"missing claim", tcWeb(tcMounts("data")), two,
			map[string]Code{"": CodePVCNotFound}},
		{"claim bound to a missing PV", tcWeb(tcMounts("data")), with(tcBoundClaim(tcPV("gone", "", "1Gi"))),
			map[string]Code{"": CodePVNotFound}},
		{"unbound Immediate claim", tcWeb(tcMounts("data")),
			with(tcClass("fast", "ebs.csi.aws.com", immediate), tcClaim(tbPtr("fast"), "1Gi")),
			map[string]Code{"": CodePVCUnbound}},
		{"claim of a class that does not exist binds Immediate", tcWeb(tcMounts("data")),
			with(tcClaim(tbPtr("ghost"), "1Gi")),
			map[string]Code{"": CodePVCUnbound}},
		{"bound PV pinned to one node", tcWeb(tcMounts("data")),
			with(tcClaimed(tcPV("pv", "", "1Gi", "n2")), tcBoundClaim(tcPV("pv", "", "1Gi", "n2"))),
			map[string]Code{"n1": CodeVolumeNodeAffinity, "n2": ""}},
		{"bound PV in a zone", tcWeb(tcMounts("data")),
			with(tcClaimed(tcZoned(tcPV("pv", "", "1Gi"), tcZoneKey, "b")), tcBoundClaim(tcPV("pv", "", "1Gi"))),
			map[string]Code{"n1": CodeVolumeZoneConflict, "n2": ""}},
		{"bound PV in several zones (a__b)", tcWeb(tcMounts("data")),
			with(tcClaimed(tcZoned(tcPV("pv", "", "1Gi"), tcZoneKey, "a__b")), tcBoundClaim(tcPV("pv", "", "1Gi"))),
			map[string]Code{"n1": "", "n2": ""}},
		{"beta zone label on the PV matches the node's GA label", tcWeb(tcMounts("data")),
			with(tcClaimed(tcZoned(tcPV("pv", "", "1Gi"), v1.LabelFailureDomainBetaZone, "a")), tcBoundClaim(tcPV("pv", "", "1Gi"))),
			map[string]Code{"n1": "", "n2": CodeVolumeZoneConflict}},
		{"a node without zone labels is not restricted", tcWeb(tcMounts("data")),
			[]runtime.Object{tcNode("bare"), tcClaimed(tcZoned(tcPV("pv", "", "1Gi"), tcZoneKey, "c")), tcBoundClaim(tcPV("pv", "", "1Gi"))},
			map[string]Code{"bare": ""}},
		{"WaitForFirstConsumer within allowed topologies", tcWeb(tcMounts("data")),
			with(tcClass("zonal", "ebs.csi.aws.com", wffc, "b"), tcClaim(tbPtr("zonal"), "1Gi")),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": ""}},
		{"WaitForFirstConsumer outside every allowed topology", tcWeb(tcMounts("data")),
			with(tcClass("zonal", "ebs.csi.aws.com", wffc, "c"), tcClaim(tbPtr("zonal"), "1Gi")),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": CodeVolumeBindConflict}},
		{"local PV on one node", tcWeb(tcMounts("data")),
			with(local, tcClaim(tbPtr("local"), "5Gi"), tcPV("pv", "local", "10Gi", "n2")),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": ""}},
		{"local PV too small", tcWeb(tcMounts("data")),
			with(local, tcClaim(tbPtr("local"), "5Gi"), tcPV("pv", "local", "1Gi", "n2")),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": CodeVolumeBindConflict}},
		{"local PV already claimed", tcWeb(tcMounts("data")),
			with(local, tcClaim(tbPtr("local"), "5Gi"), tcClaimed(tcPV("pv", "local", "10Gi", "n2"))),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": CodeVolumeBindConflict}},
		{"local PV without the access mode", tcWeb(tcMounts("data")),
			with(local, tcClaim(tbPtr("local"), "5Gi", v1.ReadWriteMany), tcPV("pv", "local", "10Gi", "n2")),
			map[string]Code{"n1": CodeVolumeBindConflict, "n2": CodeVolumeBindConflict}},
		{"ReadWriteOncePod claim in use", tcWeb(tcMounts("data")),
			with(rwop, tcBoundClaim(rwop), holder),
			map[string]Code{"n1": CodeReadWriteOncePodInUse, "n2": CodeReadWriteOncePodInUse}},
		{"ReadWriteOncePod claim free", tcWeb(tcMounts("data")),
			with(rwop, tcBoundClaim(rwop)),
			map[string]Code{"n1": "", "n2": ""}},
		{"ephemeral volume of a class that does not exist", tcWeb(tcEphemeral(tbPtr("ghost"))), two,
			map[string]Code{"": CodePVCUnbound}},
		{"ephemeral volume of a class that does not exist, but a PV of that class", tcWeb(tcEphemeral(tbPtr("ghost"))),
			with(tcPV("pv", "ghost", "1Gi")),
			map[string]Code{"n1": "", "n2": ""}},
		{"ephemeral volume of an Immediate class is provisioned first", tcWeb(tcEphemeral(tbPtr("fast"))),
			with(tcClass("fast", "ebs.csi.aws.com", immediate)),
			map[string]Code{"n1": "", "n2": ""}},
		{"ephemeral volume of a zonal WaitForFirstConsumer class", tcWeb(tcEphemeral(tbPtr("zonal"))),
			with(tcClass("zonal", "ebs.csi.aws.com", wffc, "a")),
			map[string]Code{"n1": "", "n2": CodeVolumeBindConflict}},
		{"ephemeral volume without a class takes the default class", tcWeb(tcEphemeral(nil)),
			with(func() runtime.Object {
				sc := tcClass("zonal", "ebs.csi.aws.com", wffc, "a")
				sc.Annotations = map[string]string{annDefaultStorageClass: "true"}
				return sc
			}()),
			map[string]Code{"n1": "", "n2": CodeVolumeBindConflict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tcFilterEach(t, tt.pod, tt.cluster...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("failure per node (-want +got):\n%s", diff)
			}
		})
	}
}

func tcStatefulSet(class *string) *appsv1.StatefulSet {
	p := tcWeb()
	return &appsv1.StatefulSet{ObjectMeta: tbMeta("db"), Spec: appsv1.StatefulSetSpec{
		Replicas: tbPtr(int32(2)), Selector: tcSel("app", "web"),
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
		VolumeClaimTemplates: []v1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: tcClaim(class, "1Gi").Spec}}}}
}

// TestVolumeReplicas: how volumes bound the replicas that fit, and the
// verdict.
func TestVolumeReplicas(t *testing.T) {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	rwop := tcClaimed(tcPV("pv", "", "1Gi"))
	rwop.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}
	existingClaim := tcClaim(tbPtr("ghost"), "1Gi")
	existingClaim.Name = "data-db-0"
	tests := []struct {
		name     string
		workload runtime.Object
		cluster  []runtime.Object
		fit      int32
		verdict  Verdict
		codes    []Code
	}{
		{"two replicas share a ReadWriteOncePod claim",
			tcWebDeployment(2, "100m", tcMounts("data")),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), rwop, tcBoundClaim(rwop)}, 1, Transient,
			[]Code{CodeReadWriteOncePodInUse}},
		{"StatefulSet claims of a class that does not exist never bind",
			tcStatefulSet(tbPtr("ghost")), []runtime.Object{tcNode("n1")}, 0, Permanent,
			[]Code{CodeStorageClassNotFound, CodePVCUnbound}},
		{"StatefulSet claims of a WaitForFirstConsumer class are provisioned where the pods go",
			tcStatefulSet(tbPtr("zonal")), []runtime.Object{tcInZone("n1", "a"), tcClass("zonal", "ebs.csi.aws.com", wffc, "a")}, 2, Fits, nil},
		{"StatefulSet claims outside the class's topologies",
			tcStatefulSet(tbPtr("zonal")), []runtime.Object{tcInZone("n1", "a"), tcClass("zonal", "ebs.csi.aws.com", wffc, "b")}, 0, Permanent,
			[]Code{CodeVolumeBindConflict}},
		{"StatefulSet whose claims exist already is not judged by its templates",
			tcStatefulSet(tbPtr("ghost")), []runtime.Object{tcNode("n1"), existingClaim}, 2, Fits, nil},
		{"a missing PVC fits no replica",
			tcWebDeployment(3, "100m", tcMounts("data")), []runtime.Object{tcNode("n1")}, 0, Permanent,
			[]Code{CodePVCNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tcCheck(t, tt.workload, tt.cluster...)
			if r.ReplicasFit != tt.fit || r.Verdict != tt.verdict {
				t.Errorf("fit %d, verdict %s; want %d, %s (%s %+v)", r.ReplicasFit, r.Verdict, tt.fit, tt.verdict, r.Summary, r.Reasons)
			}
			for _, code := range tt.codes {
				found := false
				for _, x := range r.Reasons {
					found = found || x.Code == code
				}
				if !found {
					t.Errorf("no %s among %+v", code, r.Reasons)
				}
			}
		})
	}
}

// TestAdmissionRejectionFitsNoReplica: pods admission rejects are never
// created, and pods no scheduler serves are never placed; pods whose secret
// is missing are placed (only the kubelet fails them).
func TestAdmissionRejectionFitsNoReplica(t *testing.T) {
	caps := &v1.LimitRange{ObjectMeta: tbMeta("caps"), Spec: v1.LimitRangeSpec{Limits: []v1.LimitRangeItem{
		{Type: v1.LimitTypeContainer, Max: tbList("cpu=1")}}}}
	tests := []struct {
		name    string
		mutate  func(*v1.Pod)
		cluster []runtime.Object
		fit     int32
	}{
		{"LimitRange max", func(p *v1.Pod) { p.Spec.Containers[0] = tbC("c", "cpu=2", "") }, []runtime.Object{caps}, 0},
		{"unknown scheduler", func(p *v1.Pod) { p.Spec.SchedulerName = "nobody" }, nil, 0},
		{"missing PriorityClass", func(p *v1.Pod) { p.Spec.PriorityClassName = "ghost" }, nil, 0},
		{"missing secret", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "ghost"}}}}
		}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := append([]runtime.Object{tcNode("n1")}, tt.cluster...)
			s := tbSnap(t, []Kind{KindPriorityClass, KindSecret, KindLimitRange}, cluster...)
			w, err := WorkloadFromObject(tcWebDeployment(2, "100m", tt.mutate))
			if err != nil {
				t.Fatal(err)
			}
			r := Check(s, w, nil)
			if r.ReplicasFit != tt.fit || r.Verdict != Permanent {
				t.Errorf("fit %d, verdict %s; want %d, permanent (%+v)", r.ReplicasFit, r.Verdict, tt.fit, r.Reasons)
			}
		})
	}
}
