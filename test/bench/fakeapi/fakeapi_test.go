package fakeapi_test

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fitgate/fitgate/test/bench/fakeapi"
	"github.com/fitgate/fitgate/test/synth"
)

// podSelector is the selector fitgate's pod informer uses.
const podSelector = "status.phase!=Succeeded,status.phase!=Failed,spec.nodeName!="

func newServer(t *testing.T, c *synth.Cluster) (*fakeapi.Server, *rest.Config) {
	t.Helper()
	srv, err := fakeapi.New(c, fakeapi.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := srv.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

func keys(store toolscache.Store) []string {
	out := store.ListKeys()
	sort.Strings(out)
	return out
}

func want[T metav1.Object](objs []T) []string {
	var out []string
	for _, o := range objs {
		if o.GetNamespace() != "" {
			out = append(out, o.GetNamespace()+"/"+o.GetName())
		} else {
			out = append(out, o.GetName())
		}
	}
	sort.Strings(out)
	return out
}

func sameKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: informer has %d objects %v, want %d %v", what, len(got), got, len(want), want)
	}
}

// TestInformersSync runs typed and metadata-only informers, as fitgate
// does, against a tiny cluster and checks that they sync and see every
// object.
func TestInformersSync(t *testing.T) {
	cluster := synth.Generate(synth.Config{Seed: 1, Nodes: 3, Pods: 10})
	if len(cluster.Pods) != 10 || len(cluster.Nodes) != 3 {
		t.Fatalf("generator gave %d nodes, %d pods", len(cluster.Nodes), len(cluster.Pods))
	}
	srv, cfg := newServer(t, cluster)
	client := kubernetes.NewForConfigOrDie(cfg)
	meta := metadata.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.InformerFor(&v1.Pod{}, func(cs kubernetes.Interface, resync time.Duration) toolscache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(cs, metav1.NamespaceAll, resync, toolscache.Indexers{},
			func(o *metav1.ListOptions) { o.FieldSelector = podSelector })
	})
	core := factory.Core().V1()
	nodes := core.Nodes().Informer()
	namespaces := core.Namespaces().Informer()
	quotas := core.ResourceQuotas().Informer()
	empty := []toolscache.SharedIndexInformer{
		core.PersistentVolumeClaims().Informer(), core.PersistentVolumes().Informer(),
		factory.Storage().V1().StorageClasses().Informer(), factory.Storage().V1().CSINodes().Informer(),
		core.LimitRanges().Informer(), factory.Scheduling().V1().PriorityClasses().Informer(),
		factory.Node().V1().RuntimeClasses().Informer(), core.ServiceAccounts().Informer(),
	}
	metaFactory := metadatainformer.NewSharedInformerFactory(meta, 0)
	secrets := metaFactory.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Informer()
	configMaps := metaFactory.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Informer()
	metaPods := metaFactory.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Informer()

	factory.Start(ctx.Done())
	metaFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer metaFactory.Shutdown()
	defer cancel() // stop the informers before Shutdown waits for them
	all := []toolscache.SharedIndexInformer{pods, nodes, namespaces, quotas, secrets, configMaps, metaPods}
	all = append(all, empty...)
	var synced []toolscache.InformerSynced
	for _, inf := range all {
		synced = append(synced, inf.HasSynced)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatalf("informers did not sync; unserved requests: %v", srv.Unserved())
	}

	sameKeys(t, "pods", keys(pods.GetStore()), want(cluster.Pods))
	sameKeys(t, "nodes", keys(nodes.GetStore()), want(cluster.Nodes))
	sameKeys(t, "namespaces", keys(namespaces.GetStore()), want(cluster.Namespaces))
	sameKeys(t, "resourcequotas", keys(quotas.GetStore()), want(cluster.Quotas))
	sameKeys(t, "metadata-only pods", keys(metaPods.GetStore()), want(cluster.Pods))
	for _, inf := range append(empty, secrets, configMaps) {
		if n := len(inf.GetStore().ListKeys()); n != 0 {
			t.Errorf("an empty kind has %d objects", n)
		}
	}
	// Objects arrive whole, with what an apiserver sets.
	for _, o := range pods.GetStore().List() {
		p := o.(*v1.Pod)
		if p.UID == "" || p.ResourceVersion == "" || p.CreationTimestamp.IsZero() || p.Spec.NodeName == "" ||
			len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Resources.Requests.Cpu().IsZero() && p.Spec.Containers[0].Resources.Requests.Memory().IsZero() {
			t.Errorf("pod %s/%s arrived incomplete: %+v", p.Namespace, p.Name, p)
		}
	}
	for _, o := range metaPods.GetStore().List() {
		if m := o.(*metav1.PartialObjectMetadata); m.UID == "" || len(m.Labels) == 0 {
			t.Errorf("metadata of pod %s/%s arrived incomplete: %+v", m.Namespace, m.Name, m)
		}
	}
	// The cluster is left as it was.
	if p := cluster.Pods[0]; p.UID != "" || p.ResourceVersion != "" || p.Kind != "" {
		t.Errorf("the server modified the cluster's pod: %+v", p.ObjectMeta)
	}

	reqs := srv.Requests()
	if clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		if reqs["watchlist pods"] == 0 || reqs["watchlist secrets"] == 0 || reqs["list pods"] != 0 {
			t.Errorf("informers did not sync by watch-list: requests %v", reqs)
		}
	}
	if u := srv.Unserved(); len(u) > 0 {
		t.Errorf("unserved requests: %v", u)
	}

	// Padded bookmarks reach the open pod watches and change nothing.
	n, err := srv.SendBookmarks(ctx, "pods", 5, 4096)
	if err != nil || n != 2 { // the typed and the metadata pod informers
		t.Errorf("SendBookmarks reached %d watches (err %v), want 2", n, err)
	}
	if _, err := srv.SendBookmarks(ctx, "gadgets", 1, 1); err == nil {
		t.Error("SendBookmarks to an unknown resource: no error")
	}
	time.Sleep(100 * time.Millisecond)
	sameKeys(t, "pods after bookmarks", keys(pods.GetStore()), want(cluster.Pods))
}

// TestListGetAndErrors covers paging, selectors, GET and the refusals.
func TestListGetAndErrors(t *testing.T) {
	cluster := synth.Generate(synth.Config{Seed: 1, Nodes: 3, Pods: 10})
	srv, cfg := newServer(t, cluster)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var got []string
	opts := metav1.ListOptions{Limit: 3}
	for pages := 0; ; pages++ {
		list, err := client.CoreV1().Pods("").List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		for _, p := range list.Items {
			got = append(got, p.Namespace+"/"+p.Name)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	sort.Strings(got)
	sameKeys(t, "paged pods", got, want(cluster.Pods))

	node := cluster.Nodes[0].Name
	wantOn := 0
	for _, p := range cluster.Pods {
		if p.Spec.NodeName == node {
			wantOn++
		}
	}
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil || len(list.Items) != wantOn {
		t.Errorf("pods on %s: %d (err %v), want %d", node, len(list.Items), err, wantOn)
	}
	ns := cluster.Pods[0].Namespace
	list, err = client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + cluster.Pods[0].Labels["app"]})
	if err != nil || len(list.Items) == 0 {
		t.Errorf("pods of app %s in %s: %d (err %v)", cluster.Pods[0].Labels["app"], ns, len(list.Items), err)
	}
	for _, p := range list.Items {
		if p.Namespace != ns {
			t.Errorf("namespaced list returned pod %s/%s", p.Namespace, p.Name)
		}
	}
	if _, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"}); !apierrors.IsBadRequest(err) {
		t.Errorf("unsupported field selector: err %v, want BadRequest", err)
	}

	p := cluster.Pods[3]
	pod, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil || pod.Name != p.Name || pod.Spec.NodeName != p.Spec.NodeName {
		t.Errorf("get pod %s/%s: %v, %v", p.Namespace, p.Name, pod, err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil || n.Name != node || n.Status.Allocatable.Cpu().IsZero() {
		t.Errorf("get node %s: %v, %v", node, n, err)
	}
	if _, err := client.CoreV1().Pods(p.Namespace).Get(ctx, "no-such-pod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get a missing pod: err %v, want NotFound", err)
	}
	if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsMethodNotSupported(err) {
		t.Errorf("create: err %v, want MethodNotAllowed", err)
	}
	if _, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("list an unserved kind: err %v, want NotFound", err)
	}
	if v, err := client.Discovery().ServerVersion(); err != nil || v.Major != "1" {
		t.Errorf("server version: %v, %v", v, err)
	}
	if u := srv.Unserved(); len(u) != 3 { // create, the bad selector and services
		t.Errorf("unserved requests: %d %v, want 3", len(u), u)
	}
}

// TestBadInput checks that an unusable cluster gives an error, and that a
// nil one is served as empty.
func TestBadInput(t *testing.T) {
	c := synth.Generate(synth.Config{Seed: 1, Nodes: 2, Pods: 2})
	c.Pods = append(c.Pods, nil)
	if _, err := fakeapi.New(c, fakeapi.Options{}); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("nil pod: err %v", err)
	}
	c = synth.Generate(synth.Config{Seed: 1, Nodes: 2, Pods: 2})
	c.Nodes = append(c.Nodes, c.Nodes[0])
	if _, err := fakeapi.New(c, fakeapi.Options{}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate node: err %v", err)
	}
	if _, err := fakeapi.New(nil, fakeapi.Options{Addr: "not an address"}); err == nil {
		t.Error("bad address: no error")
	}
	if err := fakeapi.WriteKubeconfig(filepath.Join(t.TempDir(), "k"), "ftp://x"); err == nil {
		t.Error("bad URL: no error")
	}
	url, stop, err := fakeapi.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: url})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("nodes of an empty cluster: %v, %v", list, err)
	}
	stop()
	stop() // twice is fine
}
