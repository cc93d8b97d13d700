package webhook

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/fitgate/fitgate/feasibility"
)

func fullPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-1", Labels: map[string]string{"app": "web"},
			Annotations:   map[string]string{lastAppliedAnnotation: "{...}", "big": "data"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: v1.PodSpec{
			NodeName: "node-a", Priority: ptr.To(int32(100)),
			Affinity: &v1.Affinity{
				NodeAffinity: &v1.NodeAffinity{},
				PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}},
			},
			InitContainers: []v1.Container{{Name: "sidecar", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways), Image: "x",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}}}},
			Containers: []v1.Container{{Name: "app", Image: "nginx", Command: []string{"nginx"}, Env: []v1.EnvVar{{Name: "A", Value: "b"}},
				Ports: []v1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 8080, HostPort: 8080, Protocol: v1.ProtocolTCP}},
				Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")},
					Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}}}},
			Volumes: []v1.Volume{
				{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-1"}}},
				{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
			},
			Tolerations: []v1.Toleration{{Key: "x", Operator: v1.TolerationOpExists}},
		},
		Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.1",
			Conditions:        []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}},
			ContainerStatuses: []v1.ContainerStatus{{Name: "app", Image: "nginx", Ready: true}}},
	}
}

func TestPodsAreCachedAsSummaries(t *testing.T) {
	p := fullPod()
	out, err := (&podStore{}).Transformer()(p)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := out.(*feasibility.PodSummary)
	if !ok {
		t.Fatalf("the pod store would keep a %T, want a *feasibility.PodSummary", out)
	}
	if got.Namespace() != "apps" || got.Name() != "web-1" || got.NodeName() != "node-a" {
		t.Errorf("summary names %s/%s on %q", got.Namespace(), got.Name(), got.NodeName())
	}
	if key, err := toolscache.MetaNamespaceKeyFunc(got); err != nil || key != "apps/web-1" {
		t.Errorf("informer key = %q, %v; want apps/web-1", key, err)
	}
	// What the engine derives from the pod is the same either way, also
	// after the original pod is changed: the summary holds none of it.
	lean, _ := feasibility.NewSnapshotFrom(got)
	p.Labels["app"] = "changed"
	p.Spec.Containers[0].Ports[1].HostPort = 9090
	full, _ := feasibility.NewSnapshotFrom(fullPod())
	ws := []*feasibility.Workload{
		{Kind: "Pod", Namespace: "apps", Name: "ports", Replicas: 1, SpecPath: "spec",
			Template: v1.PodTemplateSpec{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c",
				Ports: []v1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}}}}}},
		{Kind: "Pod", Namespace: "apps", Name: "cpu", Replicas: 1, SpecPath: "spec",
			Template: v1.PodTemplateSpec{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}}}}}}},
		{Kind: "Pod", Namespace: "apps", Name: "anti", Replicas: 1, SpecPath: "spec",
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}},
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/hostname": "node-a"}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourcePods: resource.MustParse("10")}}}
	_ = full.Upsert(node)
	_ = lean.Upsert(node)
	for _, w := range ws {
		a, b := feasibility.Check(full, w, nil), feasibility.Check(lean, w, nil)
		if a.Summary != b.Summary || a.Verdict != b.Verdict {
			t.Errorf("%s: full pod: %s %q; summary: %s %q", w.Name, a.Verdict, a.Summary, b.Verdict, b.Summary)
		}
		if a.Verdict == feasibility.Fits {
			t.Errorf("%s: fits, but the cached pod should block it (sidecar + 1 cpu of 2, host port 8080, anti-affinity)", w.Name)
		}
	}
}

func TestMetadataOnlyDropsAnnotations(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "db",
		Annotations: map[string]string{lastAppliedAnnotation: `{"data":{"password":"c2VjcmV0"}}`}, Labels: map[string]string{"a": "b"}}}
	out, err := metadataOnly("Secret")(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(*metav1.PartialObjectMetadata)
	if m.Kind != "Secret" || m.Name != "db" || m.Namespace != "apps" || m.Annotations != nil || m.Labels != nil {
		t.Errorf("got %+v", m)
	}
}

func TestCacheFromInformers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: v1.NodeStatus{
		Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourcePods: resource.MustParse("110")},
		Images:      []v1.ContainerImage{{Names: []string{"nginx"}}}}}
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{ModeLabel: "strict"}}}
	sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "default"}}
	client := fake.NewClientset(node, ns, sa, fullPod())

	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	secret := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "db", Annotations: map[string]string{lastAppliedAnnotation: "secret data"}}}
	meta := metadatafake.NewSimpleMetadataClient(scheme, secret)

	metrics := NewMetrics()
	c := NewCache(client, meta, CacheOptions{Metrics: metrics})
	if c.Synced() || c.ReadyCheck(nil) == nil {
		t.Fatal("synced before start")
	}
	w := &feasibility.Workload{Kind: "Pod", Namespace: "apps", Name: "p", Replicas: 1, SpecPath: "spec",
		Template: v1.PodTemplateSpec{Spec: podSpec("2")}}
	if _, synced := c.Check(w, nil); synced {
		t.Fatal("Check says synced before start")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if !c.WaitForSync(wctx) {
		t.Fatalf("not synced: %v", c.ReadyCheck(nil))
	}
	if err := c.ReadyCheck(nil); err != nil {
		t.Fatal(err)
	}
	counts := c.Counts()
	for kind, want := range map[feasibility.Kind]int{feasibility.KindNode: 1, feasibility.KindPod: 1, feasibility.KindNamespace: 1,
		feasibility.KindServiceAccount: 1, feasibility.KindSecret: 1} {
		if counts[kind] != want {
			t.Errorf("%s: %d cached, want %d", kind, counts[kind], want)
		}
	}
	if labels, ok := c.NamespaceLabels("apps"); !ok || labels[ModeLabel] != "strict" {
		t.Errorf("NamespaceLabels = %v, %v", labels, ok)
	}
	// 1 of 4 cpu used by web-1 and its sidecar: 2 cpu fits.
	rep, synced := c.Check(w, nil)
	if !synced || rep.Verdict != feasibility.Fits {
		t.Fatalf("check: synced %v, report %+v", synced, rep)
	}
	// Every kind is known once synced: a RuntimeClass that none of the
	// (zero) RuntimeClasses is, is missing.
	w.Template.Spec.RuntimeClassName = ptr.To("gvisor")
	if rep, _ := c.Check(w, nil); rep.Verdict != feasibility.Permanent {
		t.Errorf("missing RuntimeClass: verdict %s, want permanent", rep.Verdict)
	}
	w.Template.Spec.RuntimeClassName = nil
	for _, s := range c.sources {
		if s.informer == nil {
			if s.kind != feasibility.KindPod {
				t.Errorf("%s has no informer", s.kind)
			}
			continue // pods live only in the snapshot
		}
		for _, obj := range s.informer.GetStore().List() {
			switch o := obj.(type) {
			case *metav1.PartialObjectMetadata:
				if o.Annotations != nil {
					t.Errorf("%s %s kept annotations", s.kind, o.Name)
				}
			case *v1.Pod:
				t.Errorf("pod %s kept in an informer store", o.Name)
			case *v1.Node:
				if o.Status.Images != nil {
					t.Error("node images kept")
				}
			}
		}
	}
	if v := value(t, metrics.CacheSynced.WithLabelValues("Secret")); v != 1 {
		t.Errorf("synced gauge for Secret = %v", v)
	}

	// Deletions reach the snapshot.
	if err := client.CoreV1().Pods("apps").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := meta.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("apps").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Counts()[feasibility.KindPod] != 0 || c.Counts()[feasibility.KindSecret] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deletions not seen: %v", c.Counts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodesAreCachedLean(t *testing.T) {
	full := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "42", Labels: map[string]string{"zone": "a"},
			Annotations: map[string]string{"big": "x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: v1.NodeSpec{Unschedulable: true, PodCIDR: "10.0.0.0/24",
			Taints: []v1.Taint{{Key: "gpu", Effect: v1.TaintEffectNoSchedule}}},
		Status: v1.NodeStatus{
			Capacity:    v1.ResourceList{v1.ResourceCPU: resource.MustParse("4")},
			Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3"), v1.ResourcePods: resource.MustParse("5")},
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
			Images:      []v1.ContainerImage{{Names: []string{"a"}}},
			Addresses:   []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}},
		},
	}
	out, err := stripObject(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*v1.Node)
	if n.Name != "n1" || n.ResourceVersion != "42" || n.Labels["zone"] != "a" || !n.Spec.Unschedulable ||
		len(n.Spec.Taints) != 1 || n.Status.Allocatable.Cpu().String() != "3" {
		t.Errorf("lost what the checks read: %+v", n)
	}
	if n.Annotations != nil || n.ManagedFields != nil || n.Status.Capacity != nil || n.Status.Conditions != nil ||
		n.Status.Images != nil || n.Status.Addresses != nil || n.Spec.PodCIDR != "" {
		t.Errorf("kept what the checks never read: %+v", n)
	}
	for _, tol := range [][]v1.Toleration{nil, {{Key: "gpu", Operator: v1.TolerationOpExists}, {Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists}}} {
		w := &feasibility.Workload{Kind: "Pod", Namespace: "apps", Name: "p", Replicas: 1, SpecPath: "spec",
			Template: v1.PodTemplateSpec{Spec: v1.PodSpec{Tolerations: tol, NodeSelector: map[string]string{"zone": "a"},
				Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}}}}}}}
		a, _ := feasibility.NewSnapshotFrom(full)
		b, _ := feasibility.NewSnapshotFrom(n)
		ra, rb := feasibility.Check(a, w, nil), feasibility.Check(b, w, nil)
		if ra.Verdict != rb.Verdict || ra.Summary != rb.Summary {
			t.Errorf("full node: %s %q; lean node: %s %q", ra.Verdict, ra.Summary, rb.Verdict, rb.Summary)
		}
	}
}
