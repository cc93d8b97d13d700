package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fitgate/fitgate/feasibility"
)

// fakeSource is a SnapshotSource over a fixed snapshot.
type fakeSource struct {
	snap       *feasibility.Snapshot
	namespaces map[string]map[string]string
	unsynced   bool
	delay      time.Duration
	panics     bool
	calls      atomic.Int32
	mu         sync.Mutex
	judged     []*feasibility.Workload
}

func (f *fakeSource) Check(w *feasibility.Workload, opts *feasibility.Options) (*feasibility.Report, bool) {
	if f.unsynced {
		return nil, false
	}
	f.calls.Add(1)
	f.mu.Lock()
	f.judged = append(f.judged, w)
	f.mu.Unlock()
	if f.panics {
		panic("engine bug")
	}
	time.Sleep(f.delay)
	return feasibility.Check(f.snap, w, opts), true
}

func (f *fakeSource) NamespaceLabels(name string) (map[string]string, bool) {
	l, ok := f.namespaces[name]
	return l, ok
}

// fakeLive is a LiveChecker over a set of existing objects.
type fakeLive struct {
	exists     map[string]bool // kind/namespace/name
	namespaces map[string]map[string]string
	err        error
	lookups    atomic.Int32
}

func (l *fakeLive) Exists(_ context.Context, kind feasibility.Kind, namespace, name string) (bool, error) {
	l.lookups.Add(1)
	if l.err != nil {
		return false, l.err
	}
	return l.exists[string(kind)+"/"+namespace+"/"+name], nil
}

func (l *fakeLive) NamespaceLabels(_ context.Context, name string) (map[string]string, bool, error) {
	l.lookups.Add(1)
	if l.err != nil {
		return nil, false, l.err
	}
	labels, ok := l.namespaces[name]
	return labels, ok, nil
}

// Namespaces of the fixture, by mode label.
const (
	nsDefault = "apps" // no label
	nsOff     = "quiet"
	nsWarn    = "lenient"
	nsEnforce = "guarded"
	nsStrict  = "locked"
	nsBadMode = "typo"
)

// fixture: two nodes with 4 cpu each; the "busy" node has 3 cpu in use.
func newFixture(t *testing.T) (*Handler, *fakeSource, *fakeLive) {
	t.Helper()
	labels := map[string]map[string]string{
		nsDefault: nil,
		nsOff:     {ModeLabel: "off"},
		nsWarn:    {ModeLabel: "warn"},
		nsEnforce: {ModeLabel: "enforce"},
		nsStrict:  {ModeLabel: "strict"},
		nsBadMode: {ModeLabel: "enforcing"},
	}
	var objs []runtime.Object
	for _, n := range []string{"node-a", "node-b"} {
		objs = append(objs, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"kubernetes.io/hostname": n}},
			Status: v1.NodeStatus{Allocatable: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110")}}})
	}
	for ns, l := range labels {
		objs = append(objs,
			&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: l}},
			&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	// 3 of node-a's 4 cpu and 3 of node-b's are in use: 2 cpu fits nowhere
	// now, but would on an empty node (transient).
	for _, n := range []string{"node-a", "node-b"} {
		objs = append(objs, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "hog-" + n},
			Spec: v1.PodSpec{NodeName: n, Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}}}}},
			Status: v1.PodStatus{Phase: v1.PodRunning}})
	}
	snap, err := feasibility.NewSnapshotFrom(objs...)
	if err != nil {
		t.Fatal(err)
	}
	snap.MarkKnown(feasibility.AllKinds...)
	src := &fakeSource{snap: snap, namespaces: labels}
	live := &fakeLive{exists: map[string]bool{}, namespaces: maps.Clone(labels)}
	h := &Handler{Source: src, Live: live, Policy: DefaultPolicy("fitgate"), Budget: 2 * time.Second, Metrics: NewMetrics()}
	return h, src, live
}

func podSpec(cpu string) v1.PodSpec {
	return v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
		Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}}
}

func pod(ns, name, cpu string) *v1.Pod {
	return &v1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: podSpec(cpu)}
}

func deployment(ns, name, cpu string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: podSpec(cpu)}}}
}

func raw(t *testing.T, obj runtime.Object) runtime.RawExtension {
	t.Helper()
	if obj == nil {
		return runtime.RawExtension{}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: data}
}

func newRequest(t *testing.T, op admissionv1.Operation, obj, old runtime.Object) admission.Request {
	t.Helper()
	gvk := obj.GetObjectKind().GroupVersionKind()
	m := obj.(metav1.Object)
	plural := strings.ToLower(gvk.Kind) + "s"
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("uid-1"),
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: plural},
		Namespace: m.GetNamespace(), Name: m.GetName(), Operation: op,
		Object: raw(t, obj), OldObject: raw(t, old),
	}}
}

func create(t *testing.T, obj runtime.Object) admission.Request {
	return newRequest(t, admissionv1.Create, obj, nil)
}

func handle(t *testing.T, h *Handler, req admission.Request) admission.Response {
	t.Helper()
	resp := h.Handle(context.Background(), req)
	for _, w := range resp.Warnings {
		if n := len([]rune(w)); n > maxWarningLen {
			t.Errorf("warning of %d characters: %s", n, w)
		}
	}
	if len(resp.Warnings) > DefaultMaxWarnings+1 {
		t.Errorf("%d warnings: %q", len(resp.Warnings), resp.Warnings)
	}
	return resp
}

func message(resp admission.Response) string {
	if resp.Result == nil {
		return ""
	}
	return resp.Result.Message
}

func wantAllowed(t *testing.T, resp admission.Response, wantWarnings bool) {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("denied: %d %s (warnings %q)", resp.Result.Code, message(resp), resp.Warnings)
	}
	if (len(resp.Warnings) > 0) != wantWarnings {
		t.Fatalf("warnings = %q, want warnings: %v", resp.Warnings, wantWarnings)
	}
}

func wantDenied(t *testing.T, resp admission.Response, contains string) {
	t.Helper()
	if resp.Allowed {
		t.Fatalf("allowed (warnings %q), want denied", resp.Warnings)
	}
	if resp.Result == nil || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("result = %+v, want 403", resp.Result)
	}
	if !strings.Contains(message(resp), contains) {
		t.Fatalf("denial %q does not contain %q", message(resp), contains)
	}
}

func TestHandlerModes(t *testing.T) {
	// "8" cpu is more than any node has: permanent. "2" fits no node now
	// but an empty one: transient. "500m" fits.
	for _, tc := range []struct {
		ns, cpu  string
		workload bool
		allowed  bool
		warned   bool
		contains string
	}{
		{nsDefault, "8", true, true, true, "Insufficient cpu"},
		{nsDefault, "8", false, false, false, `pod "p" cannot run: 0/2 nodes are available: 2 Insufficient cpu (requests 8 cpu`},
		{nsDefault, "2", false, true, true, `pod "p" cannot run now: 0/2 nodes are available: 2 Insufficient cpu`},
		{nsDefault, "500m", false, true, false, ""},
		{nsOff, "8", false, true, false, ""},
		{nsOff, "8", true, true, false, ""},
		{nsWarn, "8", false, true, true, `pod "p" cannot run: 0/2 nodes are available: 2 Insufficient cpu`},
		{nsWarn, "2", true, true, true, `deployment "d" cannot run now`},
		{nsEnforce, "8", true, false, false, `deployment "d" cannot run: 0/2 nodes are available: 2 Insufficient cpu`},
		{nsEnforce, "2", true, true, true, `deployment "d" cannot run now`},
		{nsEnforce, "500m", true, true, false, ""},
		{nsStrict, "2", true, false, false, `deployment "d" cannot run now: 0/2 nodes are available`},
		{nsStrict, "2", false, false, false, `pod "p" cannot run now`},
		{nsStrict, "500m", false, true, false, ""},
		{"kube-system", "8", false, true, false, ""},
		{"fitgate", "8", false, true, false, ""},
	} {
		name := tc.ns + "/pod/" + tc.cpu
		if tc.workload {
			name = tc.ns + "/deployment/" + tc.cpu
		}
		t.Run(name, func(t *testing.T) {
			h, src, _ := newFixture(t)
			var obj runtime.Object = pod(tc.ns, "p", tc.cpu)
			if tc.workload {
				obj = deployment(tc.ns, "d", tc.cpu, 2)
			}
			resp := handle(t, h, create(t, obj))
			if !tc.allowed {
				wantDenied(t, resp, tc.contains)
				return
			}
			wantAllowed(t, resp, tc.warned)
			if tc.contains != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.contains) {
				t.Fatalf("warnings %q do not contain %q", resp.Warnings, tc.contains)
			}
			off := tc.ns == nsOff || tc.ns == "kube-system" || tc.ns == "fitgate"
			if calls := src.calls.Load(); off != (calls == 0) {
				t.Fatalf("engine called %d times in namespace %s", calls, tc.ns)
			}
		})
	}
}

func TestHandlerAuditAnnotations(t *testing.T) {
	h, _, _ := newFixture(t)
	resp := handle(t, h, create(t, deployment(nsDefault, "d", "1", 4)))
	want := map[string]string{AuditVerdict: "transient", AuditReasons: "InsufficientCPU", AuditReplicasFit: "2/4", AuditMode: "warn"}
	for k, v := range want {
		if resp.AuditAnnotations[k] != v {
			t.Errorf("audit %s = %q, want %q (all: %v)", k, resp.AuditAnnotations[k], v, resp.AuditAnnotations)
		}
	}
	if !strings.Contains(resp.Warnings[0], `deployment "d": only 2 of 4 replicas fit now: 0/2 nodes are available`) {
		t.Errorf("warnings = %q", resp.Warnings)
	}
	resp = handle(t, h, create(t, pod(nsDefault, "small", "100m")))
	if resp.AuditAnnotations[AuditVerdict] != "fits" || resp.AuditAnnotations[AuditReplicasFit] != "1/1" {
		t.Errorf("a fitting pod's audit annotations = %v", resp.AuditAnnotations)
	}
}

func TestHandlerOwnedPodsAreNeverDenied(t *testing.T) {
	for _, owner := range []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "d-123", UID: "u", Controller: ptr.To(true)},
		{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "u", Controller: ptr.To(true)},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "s", UID: "u", Controller: ptr.To(true)},
		{APIVersion: "v1", Kind: "ReplicationController", Name: "rc", UID: "u", Controller: ptr.To(true)},
	} {
		t.Run(owner.Kind, func(t *testing.T) {
			h, src, _ := newFixture(t)
			p := pod(nsStrict, "d-123-abcde", "8")
			p.OwnerReferences = []metav1.OwnerReference{owner}
			resp := handle(t, h, create(t, p))
			wantAllowed(t, resp, true)
			if src.calls.Load() != 1 {
				t.Fatal("an owned pod must still be checked")
			}
			if resp.AuditAnnotations[AuditVerdict] != "permanent" {
				t.Fatalf("audit = %v", resp.AuditAnnotations)
			}
		})
	}
	t.Run("ReplicaSet of a Deployment", func(t *testing.T) {
		h, _, _ := newFixture(t)
		rs := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "d-123", OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "u", Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(1)), Template: v1.PodTemplateSpec{Spec: podSpec("8")}}}
		wantAllowed(t, handle(t, h, create(t, rs)), true)
	})
	t.Run("pod of a controller fitgate does not judge", func(t *testing.T) {
		h, _, _ := newFixture(t)
		p := pod(nsStrict, "x", "8")
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Runner", Name: "r", UID: "u", Controller: ptr.To(true)}}
		wantDenied(t, handle(t, h, create(t, p)), "Insufficient cpu")
	})
	t.Run("pod of a controller fitgate does not judge gets the workload default", func(t *testing.T) {
		h, _, _ := newFixture(t)
		p := pod(nsDefault, "x", "8")
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Runner", Name: "r", UID: "u", Controller: ptr.To(true)}}
		wantAllowed(t, handle(t, h, create(t, p)), true)
	})
}

func TestHandlerDryRunIsLikeARealRequest(t *testing.T) {
	for _, obj := range []runtime.Object{pod(nsDefault, "p", "8"), deployment(nsDefault, "d", "8", 2), pod(nsDefault, "ok", "1")} {
		h, _, _ := newFixture(t)
		real := handle(t, h, create(t, obj))
		req := create(t, obj)
		req.DryRun = ptr.To(true)
		dry := handle(t, h, req)
		if real.Allowed != dry.Allowed || message(real) != message(dry) || strings.Join(real.Warnings, "|") != strings.Join(dry.Warnings, "|") {
			t.Errorf("dry run differs:\n real %v %q %q\n  dry %v %q %q", real.Allowed, message(real), real.Warnings, dry.Allowed, message(dry), dry.Warnings)
		}
	}
}

func TestHandlerDecodeErrors(t *testing.T) {
	h, src, _ := newFixture(t)
	for name, req := range map[string]admission.Request{
		"garbage": func() admission.Request {
			r := create(t, pod(nsDefault, "p", "1"))
			r.Object.Raw = []byte("{not json")
			return r
		}(),
		"wrong type in a field": func() admission.Request {
			r := create(t, deployment(nsDefault, "d", "1", 1))
			r.Object.Raw = []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":"many"}}`)
			return r
		}(),
		"kind mismatch": func() admission.Request {
			r := create(t, deployment(nsDefault, "d", "1", 1))
			r.Object = raw(t, pod(nsDefault, "p", "1"))
			return r
		}(),
		"no object": func() admission.Request {
			r := create(t, pod(nsDefault, "p", "1"))
			r.Object.Raw = nil
			return r
		}(),
		"bad old object": func() admission.Request {
			r := newRequest(t, admissionv1.Update, deployment(nsDefault, "d", "1", 2), deployment(nsDefault, "d", "1", 1))
			r.OldObject.Raw = []byte("[]")
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			// The apiserver validated the object already: an object fitgate
			// cannot read is allowed unchecked, never denied, and never a 500.
			resp := handle(t, h, req)
			if !resp.Allowed {
				t.Fatalf("response = denied %+v; want allowed", resp.Result)
			}
			for _, w := range resp.Warnings {
				if len([]rune(w)) > maxWarningLen {
					t.Errorf("warning of %d characters: %s", len([]rune(w)), w)
				}
			}
		})
	}
	if src.calls.Load() != 0 {
		t.Error("the engine ran on an undecodable object")
	}
}

func TestHandlerUnknownKinds(t *testing.T) {
	h, src, _ := newFixture(t)
	svc := &v1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "s"}}
	reqs := map[string]admission.Request{"service": create(t, svc)}
	old := create(t, &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1beta2", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "d"}})
	reqs["other version"] = old
	crd := create(t, pod(nsStrict, "p", "8"))
	crd.Kind = metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Pod"}
	reqs["custom resource named Pod"] = crd
	sub := create(t, pod(nsStrict, "p", "8"))
	sub.SubResource = "ephemeralcontainers"
	reqs["subresource"] = sub
	del := create(t, pod(nsStrict, "p", "8"))
	del.Operation = admissionv1.Delete
	reqs["delete"] = del
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			wantAllowed(t, handle(t, h, req), false)
		})
	}
	if src.calls.Load() != 0 {
		t.Error("the engine ran on a kind it does not judge")
	}
}

func TestHandlerOversizedObjects(t *testing.T) {
	h, src, _ := newFixture(t)
	big := pod(nsStrict, "big", "100m")
	big.Annotations = map[string]string{"blob": strings.Repeat("x", 1536<<10)} // 1.5 MiB, etcd's limit
	resp := handle(t, h, create(t, big))
	wantAllowed(t, resp, false)
	if src.calls.Load() != 1 {
		t.Fatal("a 1.5 MiB object must still be judged")
	}
	huge := pod(nsStrict, "huge", "8")
	huge.Annotations = map[string]string{"blob": strings.Repeat("x", 3<<20)}
	resp = handle(t, h, create(t, huge))
	wantAllowed(t, resp, true)
	if !strings.Contains(resp.Warnings[0], "not checked") {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	if src.calls.Load() != 1 {
		t.Fatal("an object over MaxObjectBytes was judged")
	}
}

func TestHandlerUpdates(t *testing.T) {
	type tc struct {
		name     string
		old, new runtime.Object
		judged   bool
		replicas int32 // replicas judged
		allowed  bool
		warned   bool
		contains string
	}
	d := func(cpu string, replicas int32, mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
		x := deployment(nsStrict, "d", cpu, replicas)
		for _, m := range mutate {
			m(x)
		}
		return x
	}
	relabel := func(x *appsv1.Deployment) { x.Labels = map[string]string{"tier": "web"} }
	status := func(x *appsv1.Deployment) { x.Status.ReadyReplicas = 2 }
	defaultedOrder := func(x *appsv1.Deployment) {
		// Semantically equal quantities written differently.
		x.Spec.Template.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = resource.MustParse("1000m")
	}
	ds := func(cpu string) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "agent"},
			Spec:       appsv1.DaemonSetSpec{Template: v1.PodTemplateSpec{Spec: podSpec(cpu)}}}
	}
	job := func(parallelism int32, suspend bool) *batchv1.Job {
		return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "j"},
			Spec: batchv1.JobSpec{Parallelism: &parallelism, Suspend: &suspend,
				Template: v1.PodTemplateSpec{Spec: podSpec("1")}}}
	}
	for _, c := range []tc{
		{name: "no change", old: d("1", 2), new: d("1", 2)},
		{name: "metadata only", old: d("1", 2), new: d("1", 2, relabel)},
		{name: "status only", old: d("1", 2), new: d("1", 2, status)},
		{name: "semantically equal template", old: d("1", 2), new: d("1", 2, defaultedOrder)},
		{name: "scale down", old: d("1", 4), new: d("1", 2)},
		{name: "scale up that fits: only the new replicas", old: d("1", 2), new: d("1", 4), judged: true, replicas: 2, allowed: true},
		{name: "scale up past capacity", old: d("1", 2), new: d("1", 5), judged: true, replicas: 3, allowed: false,
			contains: `deployment "d": only 2 of 3 new replicas fit now`},
		{name: "new template judges every replica", old: d("1", 2), new: d("500m", 2), judged: true, replicas: 2, allowed: true},
		{name: "new template that cannot run", old: d("1", 2), new: d("8", 2), judged: true, replicas: 2, allowed: false,
			contains: `deployment "d" cannot run: 0/2 nodes are available: 2 Insufficient cpu`},
		// Old pods hold resources until the rollout replaces them:
		// capacity findings of a template change only warn, even in strict.
		{name: "new template short of capacity only warns", old: d("1", 2), new: d("2", 2), judged: true, replicas: 2, allowed: true, warned: true},
		{name: "daemonset unchanged", old: ds("1"), new: ds("1")},
		{name: "daemonset new template", old: ds("1"), new: ds("8"), judged: true, allowed: false, contains: "Insufficient cpu"},
		{name: "job resumed", old: job(2, true), new: job(2, false), judged: true, replicas: 2, allowed: true},
		{name: "job suspended", old: job(2, false), new: job(2, true)},
		{name: "pod update is never judged", old: pod(nsStrict, "p", "1"), new: pod(nsStrict, "p", "8")},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, src, _ := newFixture(t)
			resp := handle(t, h, newRequest(t, admissionv1.Update, c.new, c.old))
			if !c.judged {
				wantAllowed(t, resp, false)
				if src.calls.Load() != 0 {
					t.Fatal("an update that does not matter was judged")
				}
				if resp.AuditAnnotations != nil {
					t.Fatalf("audit annotations on an unjudged update: %v", resp.AuditAnnotations)
				}
				return
			}
			if src.calls.Load() != 1 {
				t.Fatal("the update was not judged")
			}
			if w := src.judged[0]; !w.IsDaemonSet() && w.Replicas != c.replicas {
				t.Fatalf("judged %d replicas, want %d", w.Replicas, c.replicas)
			}
			if !c.allowed {
				wantDenied(t, resp, c.contains)
				return
			}
			wantAllowed(t, resp, c.warned)
		})
	}
}

func TestHandlerCacheNotSynced(t *testing.T) {
	h, src, _ := newFixture(t)
	src.unsynced = true
	resp := handle(t, h, create(t, pod(nsStrict, "p", "8")))
	wantAllowed(t, resp, true)
	if !strings.Contains(resp.Warnings[0], "cache is still syncing") || !strings.Contains(resp.Warnings[0], `pod "p" was not checked`) || resp.AuditAnnotations[AuditVerdict] != VerdictUnchecked {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
}

func TestHandlerBudget(t *testing.T) {
	h, src, _ := newFixture(t)
	src.delay = 300 * time.Millisecond
	h.Budget = 50 * time.Millisecond
	start := time.Now()
	resp := handle(t, h, create(t, pod(nsStrict, "p", "8")))
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the handler took %v with a 50ms budget", took)
	}
	wantAllowed(t, resp, true)
	if !strings.Contains(resp.Warnings[0], "did not finish within 50ms") {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
}

func TestHandlerEnginePanicAllows(t *testing.T) {
	h, src, _ := newFixture(t)
	src.panics = true
	resp := handle(t, h, create(t, pod(nsStrict, "p", "8")))
	wantAllowed(t, resp, true)
	if !strings.Contains(resp.Warnings[0], "internal error") {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
}

func TestHandlerInvalidModeLabel(t *testing.T) {
	h, _, _ := newFixture(t)
	// Falls back to the pod default, enforce: still denied, and says why.
	resp := handle(t, h, create(t, pod(nsBadMode, "p", "8")))
	wantDenied(t, resp, "Insufficient cpu")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `fitgate.dev/mode="enforcing" is not off, warn, enforce or strict; using enforce`) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	resp = handle(t, h, create(t, pod(nsBadMode, "ok", "100m")))
	wantAllowed(t, resp, true)
}

func TestHandlerNamespaceMissingFromCache(t *testing.T) {
	h, src, live := newFixture(t)
	delete(src.namespaces, nsStrict) // the informer has not seen it yet
	resp := handle(t, h, create(t, deployment(nsStrict, "d", "2", 1)))
	wantDenied(t, resp, "cannot run now")
	if live.lookups.Load() != 1 {
		t.Fatalf("%d live lookups, want 1", live.lookups.Load())
	}
	// Live lookup failing: the default applies (warn for a Deployment).
	live.err = errors.New("apiserver unavailable")
	resp = handle(t, h, create(t, deployment(nsStrict, "d", "2", 1)))
	wantAllowed(t, resp, true)
}

func withSecretVolume(spec *v1.PodSpec, name string) {
	spec.Volumes = append(spec.Volumes, v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: name}}})
}

func TestHandlerMissingReferences(t *testing.T) {
	secretPod := func(ns string) *v1.Pod {
		p := pod(ns, "p", "100m")
		withSecretVolume(&p.Spec, "db")
		return p
	}
	secretDeploy := func(ns string) *appsv1.Deployment {
		d := deployment(ns, "d", "100m", 1)
		withSecretVolume(&d.Spec.Template.Spec, "db")
		return d
	}
	saPod := func(ns string) *v1.Pod {
		p := pod(ns, "p", "100m")
		p.Spec.ServiceAccountName = "builder"
		return p
	}
	for _, c := range []struct {
		name     string
		obj      runtime.Object
		exists   bool
		liveErr  error
		allowed  bool
		warned   bool
		contains string
	}{
		{name: "stale cache: the secret exists", obj: secretPod(nsStrict), exists: true, allowed: true},
		{name: "deployment, secret missing, strict: only warns", obj: secretDeploy(nsStrict), allowed: true, warned: true,
			contains: `spec.template.spec.volumes[0].secret.secretName: secret "db" not found`},
		{name: "deployment, secret missing, enforce: only warns", obj: secretDeploy(nsEnforce), allowed: true, warned: true},
		{name: "bare pod, secret missing, enforce: the kubelet waits, warn", obj: secretPod(nsEnforce), allowed: true, warned: true,
			contains: `spec.volumes[0].secret.secretName: secret "db" not found`},
		{name: "bare pod, secret missing, strict: denied", obj: secretPod(nsStrict), allowed: false,
			contains: `pod "p" cannot run: spec.volumes[0].secret.secretName: secret "db" not found`},
		{name: "bare pod, secret lookup failed: never denied", obj: secretPod(nsStrict), liveErr: errors.New("timeout"), allowed: true, warned: true},
		{name: "bare pod, service account missing, enforce: denied", obj: saPod(nsEnforce), allowed: false,
			contains: `spec.serviceAccountName: serviceaccount "builder" not found`},
		{name: "bare pod, service account exists after all", obj: saPod(nsEnforce), exists: true, allowed: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _, live := newFixture(t)
			live.err = c.liveErr
			if c.exists {
				live.exists["Secret/"+nsStrict+"/db"] = true
				live.exists["ServiceAccount/"+nsEnforce+"/builder"] = true
			}
			resp := handle(t, h, create(t, c.obj))
			if live.lookups.Load() != 1 {
				t.Errorf("%d live lookups, want 1", live.lookups.Load())
			}
			if !c.allowed {
				wantDenied(t, resp, c.contains)
				return
			}
			wantAllowed(t, resp, c.warned)
			if c.contains != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), c.contains) {
				t.Fatalf("warnings %q do not contain %q", resp.Warnings, c.contains)
			}
			if c.exists && resp.AuditAnnotations[AuditVerdict] != "fits" {
				t.Fatalf("a stale finding was kept: %v", resp.AuditAnnotations)
			}
		})
	}
	t.Run("no live checker: never denied", func(t *testing.T) {
		h, _, _ := newFixture(t)
		h.Live = nil
		wantAllowed(t, handle(t, h, create(t, secretPod(nsStrict))), true)
	})
}

func TestHandlerMetrics(t *testing.T) {
	h, _, _ := newFixture(t)
	handle(t, h, create(t, pod(nsEnforce, "p", "8")))
	handle(t, h, create(t, pod(nsOff, "p", "8")))
	if got := testutilCount(t, h.Metrics, "Pod", "permanent", "enforce", "denied"); got != 1 {
		t.Errorf("denied decisions = %v, want 1", got)
	}
	if got := testutilCount(t, h.Metrics, "Pod", VerdictUnchecked, "off", "allowed"); got != 1 {
		t.Errorf("off decisions = %v, want 1", got)
	}
}

var metaTypeReview = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}

func TestHandlerStaleCacheVolumesAndNamespaces(t *testing.T) {
	t.Run("statefulset whose class the cache has not seen yet", func(t *testing.T) {
		h, src, live := newFixture(t)
		// The snapshot knows StorageClasses, but not this new one.
		src.snap.MarkKnown(feasibility.KindStorageClass)
		live.exists["StorageClass//fast"] = true
		sts := &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsStrict, Name: "db"},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(1)), Template: v1.PodTemplateSpec{Spec: podSpec("100m")},
				VolumeClaimTemplates: []v1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("fast"), AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
						Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}}}}}}
		rep := feasibility.Check(src.snap, mustWorkload(t, sts), nil)
		if rep.Verdict != feasibility.Permanent {
			t.Fatalf("precondition: the engine should fail it on the stale cache: %+v", rep)
		}
		resp := handle(t, h, create(t, sts))
		wantAllowed(t, resp, false)
		if resp.AuditAnnotations[AuditVerdict] != "fits" {
			t.Fatalf("audit = %v", resp.AuditAnnotations)
		}
	})
	t.Run("pod in a namespace the cache has not seen yet", func(t *testing.T) {
		h, src, live := newFixture(t)
		snap, err := feasibility.NewSnapshotFrom(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}})
		if err != nil {
			t.Fatal(err)
		}
		src.snap = snap
		live.exists["Namespace//brand-new"] = true
		live.namespaces["brand-new"] = nil
		resp := handle(t, h, create(t, pod("brand-new", "p", "100m")))
		wantAllowed(t, resp, true) // no nodes: transient, warned under enforce
		if strings.Contains(strings.Join(resp.Warnings, "\n"), "namespace") {
			t.Fatalf("warnings = %q", resp.Warnings)
		}
		delete(live.exists, "Namespace//brand-new")
		wantDenied(t, handle(t, h, create(t, pod("brand-new", "p", "100m"))), `namespace "brand-new" not found`)
	})
}

func mustWorkload(t *testing.T, obj runtime.Object) *feasibility.Workload {
	t.Helper()
	w, err := feasibility.WorkloadFromObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestRestoreFit(t *testing.T) {
	P, T := feasibility.SeverityPermanent, feasibility.SeverityTransient
	for _, tc := range []struct {
		name    string
		placed  int32
		reasons []feasibility.Reason
		want    int32
	}{
		{"placement fine", 5, nil, 5},
		{"quota admits 2", 5, []feasibility.Reason{{Code: feasibility.CodeQuotaExceeded, Severity: T, Details: map[string]string{"admitted": "2"}}}, 2},
		{"partial placement", 3, nil, 3},
		{"no placement", 0, nil, 0},
		{"still blocked", 5, []feasibility.Reason{{Code: feasibility.CodeRuntimeClassNotFound, Severity: P}}, 0},
	} {
		rep := &feasibility.Report{Replicas: 5, ReplicasFit: 0, Placed: tc.placed, Reasons: tc.reasons}
		restoreFit(rep)
		if rep.ReplicasFit != tc.want {
			t.Errorf("%s: ReplicasFit = %d, want %d", tc.name, rep.ReplicasFit, tc.want)
		}
	}
}
