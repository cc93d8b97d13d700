package webhook

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
)

// fakeFreshness answers WaitForNodes with fixed values; onWait runs first
// (to change the snapshot, as informer events would).
type fakeFreshness struct {
	current, waited bool
	err             error
	onWait          func()
	calls           int
}

func (f *fakeFreshness) WaitForNodes(context.Context) (bool, bool, error) {
	f.calls++
	if f.onWait != nil {
		f.onWait()
	}
	return f.current, f.waited, f.err
}

func TestHandlerConfirmsFreshnessBeforeDenying(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fresh      fakeFreshness
		addNode    bool // the cache catches up with a node that fits the pod
		denied     bool
		checks     int32
		warning    string
		freshCalls int
	}{
		{name: "current: judged again, the denial stands", fresh: fakeFreshness{current: true}, denied: true, checks: 2, freshCalls: 1},
		// The node event landed between the first check and the LIST:
		// no wait, but the first check was stale all the same.
		{name: "current without a wait, but the cache moved: allowed", fresh: fakeFreshness{current: true}, addNode: true, checks: 2, freshCalls: 1},
		{name: "caught up, still no room: denied", fresh: fakeFreshness{current: true, waited: true}, denied: true, checks: 2, freshCalls: 1},
		{name: "caught up with a node that fits: allowed", fresh: fakeFreshness{current: true, waited: true}, addNode: true, checks: 2, freshCalls: 1},
		{name: "behind: allowed, unchecked", fresh: fakeFreshness{}, checks: 1, warning: "cache is behind the API server", freshCalls: 1},
		{name: "cannot tell: allowed, unchecked", fresh: fakeFreshness{err: errors.New("connection refused")}, checks: 1,
			warning: "could not confirm the cluster cache is current", freshCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, src, _ := newFixture(t)
			fresh := tc.fresh
			if tc.addNode {
				fresh.onWait = func() {
					if err := src.snap.Upsert(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-big", Labels: map[string]string{"kubernetes.io/hostname": "node-big"}},
						Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("16"), v1.ResourcePods: resource.MustParse("110")}}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			h.Freshness = &fresh
			resp := handle(t, h, create(t, pod(nsEnforce, "p", "8")))
			if resp.Allowed == tc.denied {
				t.Fatalf("allowed %v, want denied %v (%q, %q)", resp.Allowed, tc.denied, message(resp), resp.Warnings)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.warning) {
				t.Fatalf("warnings %q, want %q", resp.Warnings, tc.warning)
			}
			if got := src.calls.Load(); got != tc.checks {
				t.Errorf("%d checks, want %d", got, tc.checks)
			}
			if fresh.calls != tc.freshCalls {
				t.Errorf("%d freshness calls, want %d", fresh.calls, tc.freshCalls)
			}
		})
	}
	t.Run("allowed requests cost no freshness check", func(t *testing.T) {
		h, _, _ := newFixture(t)
		fresh := &fakeFreshness{current: true}
		h.Freshness = fresh
		wantAllowed(t, handle(t, h, create(t, pod(nsEnforce, "p", "2"))), true) // transient: a warning in enforce
		wantAllowed(t, handle(t, h, create(t, pod(nsEnforce, "p", "500m"))), false)
		if fresh.calls != 0 {
			t.Fatalf("%d freshness calls for requests that were not denied", fresh.calls)
		}
	})
}

func TestCacheWaitForNodes(t *testing.T) {
	node := func(name, rv string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
			ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	live := metadatafake.NewSimpleMetadataClient(scheme, node("a", "10"), node("b", "20"))
	c := &Cache{metaClient: live}
	held := func(rvs map[string]string) {
		c.nodes = nodeVersions{}
		for name, rv := range rvs {
			c.nodes.set(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}, false)
		}
	}
	for _, tc := range []struct {
		name    string
		held    map[string]string
		current bool
	}{
		{"same versions", map[string]string{"a": "10", "b": "20"}, true},
		{"newer versions and an extra node", map[string]string{"a": "11", "b": "25", "gone": "3"}, true},
		{"a node missing", map[string]string{"a": "10"}, false},
		{"an older version", map[string]string{"a": "10", "b": "19"}, false},
		{"versions that do not parse", map[string]string{"a": "x", "b": "20"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held(tc.held)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			current, waited, err := c.WaitForNodes(ctx)
			if err != nil || current != tc.current || waited == tc.current {
				t.Fatalf("current %v, waited %v, err %v; want current %v", current, waited, err, tc.current)
			}
		})
	}
	t.Run("catches up while waiting", func(t *testing.T) {
		held(map[string]string{"a": "10"})
		go func() {
			time.Sleep(30 * time.Millisecond)
			c.nodes.set(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", ResourceVersion: "20"}}, false)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		current, waited, err := c.WaitForNodes(ctx)
		if err != nil || !current || !waited {
			t.Fatalf("current %v, waited %v, err %v", current, waited, err)
		}
	})
	t.Run("deletions", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			deletedAt string
			current   bool
		}{
			// The LIST saw b at 20; the cache then saw it deleted at 25.
			{"deleted after the LIST's version: current", "25", true},
			// The cache saw an older b deleted at 15; the API server has
			// a b (made again) at 20 that the cache has not seen.
			{"deleted before the LIST's version: behind", "15", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				held(map[string]string{"a": "10", "b": "12"})
				c.nodes.set(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", ResourceVersion: tc.deletedAt}}, true)
				if got := c.nodes.atLeast(map[string]string{"a": "10", "b": "20"}); got != tc.current {
					t.Fatalf("current %v, want %v", got, tc.current)
				}
			})
		}
		held(map[string]string{"b": "12"})
		c.nodes.set(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", ResourceVersion: "25"}}, true)
		c.nodes.set(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", ResourceVersion: "30"}}, false)
		if len(c.nodes.gone) != 0 || c.nodes.rv["b"] != "30" {
			t.Fatalf("a node made again keeps its tombstone: %v, %v", c.nodes.gone, c.nodes.rv)
		}
	})
}

// TestSharedListsCoalesceWithoutStaleReads checks that callers arriving
// while a LIST runs share the next one (not the running one, which may
// predate what they judged), and that only one LIST runs at a time.
func TestSharedListsCoalesceWithoutStaleReads(t *testing.T) {
	var f sharedLists
	var mu sync.Mutex
	calls, running, maxRunning := 0, 0, 0
	release := make(chan struct{})
	list := func() (map[string]string, error) {
		mu.Lock()
		calls++
		n := calls
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return map[string]string{"call": strconv.Itoa(n)}, nil
	}
	ctx := context.Background()
	first := make(chan map[string]string, 1)
	go func() { w, _ := f.await(ctx, list); first <- w }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls == 1 })
	// Ten callers arrive while the first LIST runs: they must all get the
	// second LIST, and there must be exactly one.
	later := make(chan map[string]string, 10)
	for range 10 {
		go func() { w, _ := f.await(ctx, list); later <- w }()
	}
	waitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.next != nil
	})
	time.Sleep(20 * time.Millisecond) // let the ten join
	close(release)
	if w := <-first; w["call"] != "1" {
		t.Errorf("first caller got LIST %s, want 1", w["call"])
	}
	for range 10 {
		if w := <-later; w["call"] != "2" {
			t.Errorf("a caller that arrived during LIST 1 got LIST %s, want 2", w["call"])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || maxRunning != 1 {
		t.Errorf("%d LISTs, at most %d at once; want 2 and 1", calls, maxRunning)
	}
	// A caller whose context ends stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	block := make(chan struct{})
	defer close(block)
	if _, err := f.await(cctx, func() (map[string]string, error) { <-block; return nil, nil }); err == nil {
		t.Error("a cancelled caller got a result")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
