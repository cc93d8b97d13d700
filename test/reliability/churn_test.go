package reliability

// Cluster churn (issue #8, Faults): nodes are added, cordoned and removed,
// pods bound and deleted, while checks run.
//
//   - No verdict disagrees with the cache state at the time of the check:
//     a cache (webhook.Cache, what fitgate serve runs) is fed by informers
//     against the control plane, and an independent copy of every object
//     it applied is kept under the snapshot's lock (CacheOptions.Observe).
//     Each check runs under the same lock (Cache.View) on the incremental
//     snapshot, and again on a snapshot rebuilt from scratch from the copy;
//     the two reports must agree.
//   - The cache converges with the API server: at the end, the cache's
//     totals per kind, both this one's and the fitgate process's
//     (fitgate_cache_objects), equal a fresh list.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/retry"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/webhook"
)

const churnDuration = 20 * time.Second

// mirror is the independent copy of what the cache applied.
type mirror struct {
	mu   sync.Mutex
	objs map[string]runtime.Object // kind/namespace/name
}

func (m *mirror) observe(kind feasibility.Kind, obj runtime.Object, deleted bool) {
	o, err := meta.Accessor(obj) // pods arrive as *feasibility.PodSummary
	if err != nil {
		panic(fmt.Sprintf("cache observed an object without metadata: %T", obj))
	}
	k := string(kind) + "/" + o.GetNamespace() + "/" + o.GetName()
	m.mu.Lock()
	defer m.mu.Unlock()
	if deleted {
		delete(m.objs, k)
		return
	}
	m.objs[k] = obj.DeepCopyObject()
}

func (m *mirror) snapshot() []runtime.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]runtime.Object, 0, len(m.objs))
	for _, o := range m.objs {
		out = append(out, o.DeepCopyObject())
	}
	return out
}

// summary is what two reports must agree on.
func summary(r *feasibility.Report) string {
	var codes []string
	for _, x := range r.Reasons {
		codes = append(codes, fmt.Sprintf("%s/%s", x.Code, x.Severity))
	}
	slices.Sort(codes)
	return fmt.Sprintf("%s %d/%d [%s] %q", r.Verdict, r.ReplicasFit, r.Replicas, strings.Join(codes, " "), r.Summary)
}

func TestChurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := namespace(t, "churn", "warn") // the churn's own pods are never refused
	sel := pool(t)
	prefix := "churn-" + sel["fitgate.dev/pool"] + "-"

	m := &mirror{objs: map[string]runtime.Object{}}
	meta, err := metadata.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	cache := webhook.NewCache(cp.Client(), meta, webhook.CacheOptions{Observe: m.observe})
	cacheCtx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	if err := cache.Start(cacheCtx); err != nil {
		t.Fatal(err)
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !cache.WaitForSync(syncCtx) {
		t.Fatalf("cache not synced: %v", cache.ReadyCheck(nil))
	}
	for i := range 3 {
		addNode(ctx, t, fmt.Sprintf("%s%d", prefix, i), "4", sel)
	}
	t.Cleanup(func() { deleteNodes(t, prefix) })

	// Meanwhile the fitgate process judges a pod that fits nowhere, ever:
	// every answer must be its denial, never an allow because its cache
	// could not keep up with the churn (see webhook.Freshness).
	probeNS := namespace(t, "churn-probe", "strict")
	never := smallPod(probeNS, "never", "640", sel)
	p := newProber(t)
	var probes, probesDenied atomic.Int64
	var probeProblems []string

	var ops, checks, disagreements atomic.Int64
	var opErrs []string
	var mu sync.Mutex
	end := time.Now().Add(churnDuration)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the churn
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		next := 3
		for time.Now().Before(end) && ctx.Err() == nil {
			if err := churnOnce(ctx, r, ns, sel, prefix, &next); err != nil {
				mu.Lock()
				opErrs = append(opErrs, err.Error())
				mu.Unlock()
			}
			ops.Add(1)
		}
	}()
	wg.Add(1)
	go func() { // the probes
		defer wg.Done()
		for time.Now().Before(end) && ctx.Err() == nil {
			v := p.dryRun(ctx, never)
			probes.Add(1)
			if v.denied {
				probesDenied.Add(1)
			} else {
				mu.Lock()
				probeProblems = append(probeProblems, v.String())
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for w := range 2 { // the checks
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(end) && ctx.Err() == nil {
				wl := randomWorkload(r, ns, sel)
				var incremental *feasibility.Report
				var state []runtime.Object
				cache.View(func(s *feasibility.Snapshot) {
					incremental = feasibility.Check(s, wl, nil)
					state = m.snapshot()
				})
				rebuilt, err := feasibility.NewSnapshotFrom(state...)
				if err != nil {
					t.Error(err)
					return
				}
				rebuilt.MarkKnown(feasibility.AllKinds...)
				fresh := feasibility.Check(rebuilt, wl, nil)
				checks.Add(1)
				if a, b := summary(incremental), summary(fresh); a != b {
					if disagreements.Add(1) <= 5 {
						t.Errorf("check %d of %s: the cache's snapshot says\n  %s\nbut the same state rebuilt says\n  %s", checks.Load(), wl.Name, a, b)
					}
				}
			}
		}()
	}
	wg.Wait()
	figure(t, "churn: %d cluster changes and %d checks in %v; %d verdicts disagreed with the cache state at the time of the check",
		ops.Load(), checks.Load(), churnDuration, disagreements.Load())
	figure(t, "churn: the fitgate process denied %d of %d probes of a pod that fits nowhere", probesDenied.Load(), probes.Load())
	if len(probeProblems) > 0 {
		t.Errorf("%d probes were not denied, e.g. %s", len(probeProblems), probeProblems[0])
	}
	if len(opErrs) > 0 {
		t.Logf("%d churn operations failed (races between the churn's own steps are expected): %s", len(opErrs), strings.Join(opErrs[:min(3, len(opErrs))], "; "))
	}

	// Convergence: both caches against a fresh list.
	start := time.Now()
	var last string
	for {
		want, err := liveCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := cache.Counts()
		proc, err := processCounts()
		if err != nil {
			t.Fatal(err)
		}
		last = compareCounts(want, got, proc)
		if last == "" {
			figure(t, "churn: both caches equal a fresh list %v after the churn stopped: %v", time.Since(start).Round(time.Millisecond), want)
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("caches did not converge with the API server within 15 s: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// churnOnce makes one random change in the pool: add, cordon, uncordon or
// remove a node; bind a pod directly or through the scheduler; delete a
// pod.
func churnOnce(ctx context.Context, r *rand.Rand, ns string, sel map[string]string, prefix string, next *int) error {
	c := cp.Client()
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "fitgate.dev/pool=" + sel["fitgate.dev/pool"]})
	if err != nil {
		return err
	}
	pick := func() string {
		if len(nodes.Items) == 0 {
			return ""
		}
		return nodes.Items[r.IntN(len(nodes.Items))].Name
	}
	switch op := r.IntN(10); {
	case op == 0 && len(nodes.Items) < 6:
		name := fmt.Sprintf("%s%d", prefix, *next)
		*next++
		_, err = cp.CreateNode(ctx, nodeSpec(name, fmt.Sprint(2+r.IntN(6)), sel))
	case op == 1 && len(nodes.Items) > 2:
		err = c.CoreV1().Nodes().Delete(ctx, pick(), metav1.DeleteOptions{})
	case op == 2 || op == 3:
		name := pick()
		if name == "" {
			return nil
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Unschedulable = op == 2
			_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
	case op <= 6: // a pod, bound now (nodeName) or by the scheduler
		p := smallPod(ns, "", fmt.Sprintf("%dm", 100+r.IntN(900)), sel)
		p.GenerateName = "churn-"
		if op == 4 {
			p.Spec.NodeName = pick()
		}
		if r.IntN(3) == 0 {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{HostPort: int32(8000 + r.IntN(3)), ContainerPort: 80}}
		}
		p.Labels = map[string]string{"app": fmt.Sprint("a", r.IntN(3))}
		_, err = c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	default:
		pods, lerr := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if lerr != nil || len(pods.Items) == 0 {
			return lerr
		}
		err = c.CoreV1().Pods(ns).Delete(ctx, pods.Items[r.IntN(len(pods.Items))].Name,
			metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}
	return err
}

// randomWorkload is a pod or Deployment for the pool with random requests,
// host ports and anti-affinity.
func randomWorkload(r *rand.Rand, ns string, sel map[string]string) *feasibility.Workload {
	spec := smallPod(ns, "", fmt.Sprintf("%dm", 100*(1+r.IntN(60))), sel).Spec
	if r.IntN(3) == 0 {
		spec.Containers[0].Ports = []corev1.ContainerPort{{HostPort: int32(8000 + r.IntN(3)), ContainerPort: 80}}
	}
	if r.IntN(3) == 0 {
		spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprint("a", r.IntN(3))}}}}}}
	}
	spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("64Mi")
	var obj runtime.Object
	name := fmt.Sprintf("w%d", r.IntN(1000))
	if r.IntN(2) == 0 {
		obj = &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	} else {
		replicas := int32(1 + r.IntN(12))
		obj = &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec}}}
	}
	w, err := feasibility.WorkloadFromObject(obj)
	if err != nil {
		panic(err)
	}
	w.Namespace = ns
	return w
}

func deleteNodes(t *testing.T, prefix string) {
	nodes, err := cp.Client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Log(err)
		return
	}
	for _, n := range nodes.Items {
		if strings.HasPrefix(n.Name, prefix) {
			_ = cp.Client().CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		}
	}
}

// cachedResources are the resources behind each kind the cache holds.
var cachedResources = map[feasibility.Kind]schema.GroupVersionResource{
	feasibility.KindNode: {Version: "v1", Resource: "nodes"}, feasibility.KindPod: {Version: "v1", Resource: "pods"},
	feasibility.KindNamespace: {Version: "v1", Resource: "namespaces"}, feasibility.KindPVC: {Version: "v1", Resource: "persistentvolumeclaims"},
	feasibility.KindPV:            {Version: "v1", Resource: "persistentvolumes"},
	feasibility.KindStorageClass:  {Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
	feasibility.KindCSINode:       {Group: "storage.k8s.io", Version: "v1", Resource: "csinodes"},
	feasibility.KindResourceQuota: {Version: "v1", Resource: "resourcequotas"}, feasibility.KindLimitRange: {Version: "v1", Resource: "limitranges"},
	feasibility.KindPriorityClass:  {Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"},
	feasibility.KindRuntimeClass:   {Group: "node.k8s.io", Version: "v1", Resource: "runtimeclasses"},
	feasibility.KindServiceAccount: {Version: "v1", Resource: "serviceaccounts"},
	feasibility.KindSecret:         {Version: "v1", Resource: "secrets"}, feasibility.KindConfigMap: {Version: "v1", Resource: "configmaps"},
}

// liveCounts lists every kind afresh (pods as the cache selects them).
func liveCounts(ctx context.Context) (map[feasibility.Kind]int, error) {
	meta, err := metadata.NewForConfig(cp.RESTConfig())
	if err != nil {
		return nil, err
	}
	out := map[feasibility.Kind]int{}
	for kind, gvr := range cachedResources {
		opts := metav1.ListOptions{}
		if kind == feasibility.KindPod {
			opts.FieldSelector = webhook.PodFieldSelector
		}
		l, err := meta.Resource(gvr).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvr.Resource, err)
		}
		out[kind] = len(l.Items)
	}
	return out, nil
}

// processCounts reads the fitgate process's fitgate_cache_objects.
func processCounts() (map[feasibility.Kind]int, error) {
	m, err := fg.Metrics()
	if err != nil {
		return nil, err
	}
	out := map[feasibility.Kind]int{}
	for _, kind := range feasibility.AllKinds {
		out[kind] = int(m[fmt.Sprintf("fitgate_cache_objects{kind=%q}", kind)])
	}
	return out, nil
}

// compareCounts is "" when both caches hold what the API server holds.
func compareCounts(want, cache, process map[feasibility.Kind]int) string {
	var diffs []string
	for _, kind := range feasibility.AllKinds {
		if cache[kind] != want[kind] || process[kind] != want[kind] {
			diffs = append(diffs, fmt.Sprintf("%s: API server %d, cache %d, fitgate process %d", kind, want[kind], cache[kind], process[kind]))
		}
	}
	return strings.Join(diffs, "; ")
}
