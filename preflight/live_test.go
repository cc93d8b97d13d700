package preflight

import (
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeCluster is a small live cluster: two nodes, a running pod using
// most of n1, namespace shop with its service account, a Secret (with
// data and a last-applied copy of it) and a ConfigMap.
type fakeCluster struct {
	cs *fake.Clientset
	md *metadatafake.FakeMetadataClient
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	node := func(name string) *v1.Node {
		alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"),
			v1.ResourcePods: resource.MustParse("110")}
		return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
			Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc, Images: []v1.ContainerImage{{Names: []string{"big-image"}}}}}
	}
	ns := func(name string) *v1.Namespace {
		return &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelMetadataName: name}}}
	}
	sa := func(ns string) *v1.ServiceAccount {
		return &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	}
	busy := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "busy"},
		Spec: v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{Name: "c", Image: "i",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning}}
	cs := fake.NewClientset(node("n1"), node("n2"), ns("default"), ns("shop"), sa("default"), sa("shop"), busy)
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := func(kind, ns, name string, annotations map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "shop"}, Annotations: annotations}}
	}
	md := metadatafake.NewSimpleMetadataClient(scheme,
		meta("Secret", "shop", "db", map[string]string{lastAppliedAnnotation: `{"data":{"password":"aHVudGVyMg=="}}`}),
		meta("ConfigMap", "shop", "settings", nil))
	return &fakeCluster{cs: cs, md: md}
}

// env connects to the fake cluster, in context namespace ns.
func (c *fakeCluster) env(ns string) Env {
	return Env{Connect: func(kubeconfig, context string) (kubernetes.Interface, metadata.Interface, string, error) {
		return c.cs, c.md, ns, nil
	}}
}

func forbid(f interface {
	PrependReactor(verb, resource string, reaction k8stesting.ReactionFunc)
}, resource string) {
	f.PrependReactor("list", resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("RBAC says no"))
	})
}

const shopApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: "1"}}
        envFrom: [{secretRef: {name: db}}, {configMapRef: {name: settings}}]
`

// TestLiveAndSnapshotAgree: check against the live cluster, and check
// against what snapshot wrote, give the same results; the snapshot holds
// no secret data.
func TestLiveAndSnapshotAgree(t *testing.T) {
	c := newFakeCluster(t)
	live, stderr, code := check(c.env("shop"), shopApp, "-f", "-", "-o", "json")
	if code != 0 {
		t.Fatalf("live check exit %d\n%s\n%s", code, live, stderr)
	}
	if !strings.Contains(live, `"namespace": "shop"`) {
		t.Errorf("the context's namespace was not used:\n%s", live)
	}
	snap, stderr, code := run(c.env("shop"), Env.Snapshot, "")
	if code != 0 {
		t.Fatalf("snapshot exit %d\n%s", code, stderr)
	}
	for _, leak := range []string{"aHVudGVyMg==", "hunter2", "last-applied", "managedFields", "big-image"} {
		if strings.Contains(snap, leak) {
			t.Errorf("snapshot contains %q:\n%s", leak, snap)
		}
	}
	for _, want := range []string{"kind: Secret\nmetadata:\n  labels:\n    app: shop\n  name: db\n  namespace: shop\n", "kind: ConfigMap", "name: busy"} {
		if !strings.Contains(snap, want) {
			t.Errorf("snapshot lacks %q:\n%s", want, snap)
		}
	}
	state := writeFile(t, t.TempDir(), "state.yaml", snap)
	offline, stderr, code := check(Env{}, shopApp, "-f", "-", "--state", state, "-n", "shop", "-o", "json")
	if code != 0 {
		t.Fatalf("check --state exit %d\n%s", code, stderr)
	}
	if offline != live {
		t.Errorf("check --state differs from the live check:\n%s\nlive:\n%s", offline, live)
	}
	// A workload that needs more than what is left: the running pod counts.
	stdout, _, code := check(c.env("shop"), deployment("big", 3, "1"), "-f", "-", "-o", "json")
	if code != 1 || !strings.Contains(stdout, `"replicasFit": 2`) {
		t.Errorf("exit %d, want 1 with 2 of 3 fitting beside the running pod:\n%s", code, stdout)
	}
}

// TestLiveForbidden: a kind that cannot be listed is left unknown with a
// warning (Secrets: the missing-secret check is skipped), except Nodes,
// without which nothing is judged; snapshot refuses to write a state file
// missing a kind the check would take as complete.
func TestLiveForbidden(t *testing.T) {
	missing := strings.Replace(shopApp, "name: db", "name: nowhere", 1)

	c := newFakeCluster(t)
	forbid(c.md, "secrets")
	stdout, stderr, code := check(c.env("shop"), missing, "-f", "-", "-o", "json")
	if code != 0 || strings.Contains(stdout, "SecretNotFound") || !strings.Contains(stderr, "cannot list Secrets, so references to them are not checked") {
		t.Errorf("exit %d, want 0 with a warning and no SecretNotFound\n%s\n%s", code, stdout, stderr)
	}
	snap, stderr, code := run(c.env("shop"), Env.Snapshot, "")
	if code != 0 || strings.Contains(snap, "kind: Secret") || !strings.Contains(stderr, "cannot list Secrets") {
		t.Errorf("snapshot exit %d, want 0 without Secrets and a warning\n%s", code, stderr)
	}

	c = newFakeCluster(t)
	forbid(c.cs, "storageclasses")
	if _, stderr, code := check(c.env("shop"), shopApp, "-f", "-"); code != 0 || !strings.Contains(stderr, "cannot list StorageClasses") {
		t.Errorf("check exit %d, want 0 with a warning\n%s", code, stderr)
	}
	if _, stderr, code := run(c.env("shop"), Env.Snapshot, ""); code != 1 || !strings.Contains(stderr, "listing StorageClasses: ") {
		t.Errorf("snapshot exit %d, want 1\n%s", code, stderr)
	}

	c = newFakeCluster(t)
	forbid(c.cs, "nodes")
	if _, stderr, code := check(c.env("shop"), shopApp, "-f", "-"); code != 2 || !strings.Contains(stderr, "listing Nodes: ") {
		t.Errorf("check exit %d, want 2\n%s", code, stderr)
	}
}

// TestLiveNotServed: a kind the API server does not serve exists nowhere.
func TestLiveNotServed(t *testing.T) {
	c := newFakeCluster(t)
	c.cs.PrependReactor("list", "csinodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: storagev1.GroupName, Resource: "csinodes"}, "")
	})
	st, warnings, err := ListCluster(t.Context(), c.cs, c.md, true)
	if err != nil || len(warnings) > 0 || !st.Knows("CSINode") {
		t.Errorf("err %v, warnings %v, knows CSINode %v; want none, none, true", err, warnings, st.Knows("CSINode"))
	}
}

func TestConnectError(t *testing.T) {
	env := Env{Connect: func(string, string) (kubernetes.Interface, metadata.Interface, string, error) {
		return nil, nil, "", errors.New("no configuration has been provided")
	}}
	_, stderr, code := check(env, pod("p", "1"), "-f", "-")
	if code != 2 || !strings.Contains(stderr, "connecting to the cluster: no configuration") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
