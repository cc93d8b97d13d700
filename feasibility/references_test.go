package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCheckReferences(t *testing.T) {
	all := []Kind{KindNamespace, KindServiceAccount, KindSecret, KindConfigMap}
	present := []runtime.Object{
		&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tbNS}},
		&v1.ServiceAccount{ObjectMeta: tbMeta("default")},
		&v1.ServiceAccount{ObjectMeta: tbMeta("builder")},
		&v1.Secret{ObjectMeta: tbMeta("ok")},
		&v1.ConfigMap{ObjectMeta: tbMeta("ok")},
		// Same names elsewhere must not count.
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db"}},
	}
	secretVol := func(name string, optional *bool) v1.Volume {
		return v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: name, Optional: optional}}}
	}
	sp := "spec.template.spec"
	tests := []struct {
		name  string
		objs  []runtime.Object
		known []Kind
		edit  func(p *v1.Pod)
		want  []string
	}{
		{"everything present", present, all, func(p *v1.Pod) {
			p.Spec.ServiceAccountName = "builder"
			p.Spec.Volumes = []v1.Volume{secretVol("ok", nil)}
			p.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "ok"}, {Name: ""}}
		}, nil},
		{"missing secret volume", present, all, func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{secretVol("ok", nil), secretVol("db", nil)}
		}, []string{"SecretNotFound permanent " + sp + ".volumes[1].secret.secretName"}},
		{"optional references skipped", present, all, func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{secretVol("db", tbPtr(true)), {Name: "c", VolumeSource: v1.VolumeSource{
				ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Optional: tbPtr(true)}}}}
			p.Spec.Containers[0].EnvFrom = []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "db"}, Optional: tbPtr(true)}}}
		}, nil},
		{"one reason per object, first field", present, all, func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{secretVol("db", nil), secretVol("db", tbPtr(false))}
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "db"}, Key: "k"}}}}
		}, []string{"SecretNotFound permanent " + sp + ".volumes[0].secret.secretName"}},
		{"projected sources", present, all, func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "t"}},
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "db"}, Optional: tbPtr(true)}},
			}}}}}
		}, []string{"ConfigMapNotFound permanent " + sp + ".volumes[0].projected.sources[1].configMap.name"}},
		{"env in init, regular and ephemeral containers", present, all, func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "i", EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "init-cfg"}}}}}}
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "app-cfg"}, Key: "k"}}}}
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "e",
				EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "dbg"}}}}}}}
		}, []string{
			"ConfigMapNotFound permanent " + sp + ".initContainers[0].envFrom[0].configMapRef.name",
			"ConfigMapNotFound permanent " + sp + ".containers[0].env[0].valueFrom.configMapKeyRef.name",
			"SecretNotFound permanent " + sp + ".ephemeralContainers[0].envFrom[0].secretRef.name",
		}},
		{"missing pull secret is only info", present, all, func(p *v1.Pod) {
			p.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "regcred"}}
		}, []string{"SecretNotFound info " + sp + ".imagePullSecrets[0].name"}},
		{"pull secret also mounted is reported where it matters", present, all, func(p *v1.Pod) {
			p.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "regcred"}}
			p.Spec.Volumes = []v1.Volume{secretVol("regcred", nil)}
		}, []string{"SecretNotFound permanent " + sp + ".volumes[0].secret.secretName"}},
		{"unknown kinds are never judged", nil, nil, func(p *v1.Pod) {
			p.Spec.ServiceAccountName = "nobody"
			p.Spec.Volumes = []v1.Volume{secretVol("db", nil), {Name: "c", VolumeSource: v1.VolumeSource{
				ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}}
		}, nil},
		{"named service account missing", present, all, func(p *v1.Pod) { p.Spec.ServiceAccountName = "deployer" },
			[]string{"ServiceAccountNotFound permanent " + sp + ".serviceAccountName"}},
		{"default service account not created yet", present[:1], all, nil,
			[]string{"ServiceAccountNotFound transient " + sp + ".serviceAccountName"}},
		{"mirror pods use no service account", present[:1], all, func(p *v1.Pod) {
			p.Annotations = map[string]string{"kubernetes.io/config.mirror": "x"}
		}, nil},
		{"namespace missing says only that", present[1:], all, func(p *v1.Pod) { p.Spec.ServiceAccountName = "deployer" },
			[]string{"NamespaceNotFound permanent metadata.namespace"}},
		{"unknown scheduler", present, all, func(p *v1.Pod) { p.Spec.SchedulerName = "volcano" },
			[]string{"UnknownScheduler permanent " + sp + ".schedulerName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tbSnap(t, tt.known, tt.objs...)
			w := &Workload{Kind: "Deployment", Namespace: tbNS, Name: "web", SpecPath: sp}
			pod := tbPod(tbC("app", "", ""))
			if tt.edit != nil {
				tt.edit(pod)
			}
			if d := cmp.Diff(tt.want, tbBrief(checkReferences(s, w, pod, nil))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCheckReferencesMessages(t *testing.T) {
	s := tbSnap(t, []Kind{KindSecret, KindServiceAccount}, &v1.ServiceAccount{ObjectMeta: tbMeta("default")})
	pod := tbPod(tbC("app", "", ""))
	pod.Spec.Volumes = []v1.Volume{{Name: "c", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "db-creds"}}}}
	pod.Spec.SchedulerName = "batch"
	w := &Workload{Kind: "Pod", Namespace: tbNS, Name: "p", SpecPath: "spec"}
	if got := checkReferences(s, w, pod, &Options{KnownSchedulers: []string{"default-scheduler", "batch"}}); len(got) != 1 {
		t.Fatalf("got %d reasons, want 1: %v", len(got), got)
	} else if d := cmp.Diff(Reason{Code: CodeSecretNotFound, Severity: SeverityPermanent, Message: `secret "db-creds" not found`,
		Field: "spec.volumes[0].secret.secretName", Details: map[string]string{"kind": "Secret", "name": "db-creds"}}, got[0]); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestCheckReferencesClaimTemplates(t *testing.T) {
	fast := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}}
	def := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "std",
		Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}}}
	betaDef := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "old",
		Annotations: map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}}}
	tmpl := func(class *string) v1.PersistentVolumeClaim {
		return v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: v1.PersistentVolumeClaimSpec{StorageClassName: class}}
	}
	manualPV := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"}, Spec: v1.PersistentVolumeSpec{StorageClassName: "manual"}}
	takenPV := manualPV.DeepCopy()
	takenPV.Spec.ClaimRef = &v1.ObjectReference{Namespace: tbNS, Name: "someone-else"}
	field := "spec.volumeClaimTemplates[0].spec.storageClassName"
	tests := []struct {
		name  string
		objs  []runtime.Object
		known []Kind
		class *string
		want  []string
	}{
		{"class exists", []runtime.Object{fast}, nil, tbPtr("fast"), nil},
		{"class missing", []runtime.Object{fast}, nil, tbPtr("slow"), []string{"StorageClassNotFound permanent " + field}},
		{"class unknown kind", nil, nil, tbPtr("slow"), nil},
		{"no class and a default", []runtime.Object{fast, def}, nil, nil, nil},
		{"no class and a beta default", []runtime.Object{betaDef}, nil, nil, nil},
		{"no class and no default", []runtime.Object{fast}, nil, nil, []string{"NoDefaultStorageClass permanent " + field}},
		{"empty class means static binding", []runtime.Object{fast}, nil, tbPtr(""), nil},
		{"claim for ordinal 0 exists", []runtime.Object{fast, &v1.PersistentVolumeClaim{ObjectMeta: tbMeta("data-db-0")}}, nil, tbPtr("slow"), nil},
		{"claim for another ordinal exists", []runtime.Object{fast, &v1.PersistentVolumeClaim{ObjectMeta: tbMeta("data-db-7")}}, nil, tbPtr("slow"), nil},
		{"similar claim name is not ours", []runtime.Object{fast, &v1.PersistentVolumeClaim{ObjectMeta: tbMeta("data-db-x")}}, nil, tbPtr("slow"),
			[]string{"StorageClassNotFound permanent " + field}},
		{"free PV of a class without object", []runtime.Object{fast, manualPV}, nil, tbPtr("manual"), nil},
		{"PV of that class taken by another claim", []runtime.Object{fast, takenPV}, nil, tbPtr("manual"),
			[]string{"StorageClassNotFound permanent " + field}},
		{"no storage classes at all, but known", nil, []Kind{KindStorageClass}, nil, []string{"NoDefaultStorageClass permanent " + field}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tbSnap(t, tt.known, tt.objs...)
			w := &Workload{Kind: "StatefulSet", Namespace: tbNS, Name: "db", SpecPath: "spec.template.spec",
				VolumeClaimTemplates: []v1.PersistentVolumeClaim{tmpl(tt.class)}}
			pod := tbPod(tbC("app", "", ""))
			if d := cmp.Diff(tt.want, tbBrief(checkReferences(s, w, pod, nil))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
