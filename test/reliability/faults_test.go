package reliability

// API server and etcd restarts while fitgate runs (issue #8, Faults):
// fitgate's watches resume, and its verdicts are right again within 10 s
// of the API server's return.
//
// Right after the restart the cluster changes in both directions:
//
//   - grow: a node joins a pool that had none, so a pod that was denied
//     (no node matches) now fits;
//   - shrink: the only node of another pool leaves it (relabelled), so a
//     pod that fitted is now denied.
//
// Both are probed with server-side dry runs every 100 ms; a verdict is
// "right" only when it is fitgate's (the namespace's typo warning proves
// it) and checked. "Shrink" cannot be satisfied by failing open: it needs
// fitgate's cache to have seen the change, i.e. its watches to have
// resumed.

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// recoveryLimit is the bound.
const recoveryLimit = 10 * time.Second

func TestAPIServerRestart(t *testing.T) {
	testRecovery(t, "kube-apiserver", cp.RestartAPIServer)
}

func TestEtcdRestart(t *testing.T) {
	testRecovery(t, "etcd", cp.RestartEtcd)
}

func testRecovery(t *testing.T, what string, restart func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newProber(t)
	ns := fingerprintedNamespace(t, "recovery")
	grow, shrink := pool(t), pool(t)
	shrinkNode := "shrink-" + shrink["fitgate.dev/pool"]
	addNode(ctx, t, shrinkNode, "4", shrink)
	growPod := smallPod(ns, "grow", "2", grow)
	shrinkPod := smallPod(ns, "shrink", "2", shrink)

	// Before: grow is denied, shrink fits.
	waitFor(ctx, t, p, growPod, "denied before the restart", func(v verdict) bool { return v.denied }, 30*time.Second)
	waitFor(ctx, t, p, shrinkPod, "allowed before the restart", func(v verdict) bool { return !v.denied && v.judged() }, 30*time.Second)

	began := time.Now()
	if err := restart(ctx); err != nil {
		t.Fatalf("restarting %s: %v", what, err)
	}
	back := time.Now()
	figure(t, "%s restart: down and back (API server ready) in %v", what, back.Sub(began).Round(time.Millisecond))

	// Change the cluster at once; the API server may still refuse a few
	// writes while its own caches settle, so retry them.
	must(t, retryWrite(ctx, func() error {
		_, err := cp.CreateNode(ctx, nodeSpec("grow-"+grow["fitgate.dev/pool"], "4", grow))
		if err != nil { // start over: a half-made node would stay tainted
			_ = cp.Client().CoreV1().Nodes().Delete(ctx, "grow-"+grow["fitgate.dev/pool"], metav1.DeleteOptions{})
		}
		return err
	}))
	t.Cleanup(func() {
		_ = cp.Client().CoreV1().Nodes().Delete(context.Background(), "grow-"+grow["fitgate.dev/pool"], metav1.DeleteOptions{})
	})
	must(t, retryWrite(ctx, func() error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := cp.Client().CoreV1().Nodes().Get(ctx, shrinkNode, metav1.GetOptions{})
			if err != nil {
				return err
			}
			delete(n.Labels, "fitgate.dev/pool")
			_, err = cp.Client().CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
	}))
	changed := time.Since(back)

	var wg sync.WaitGroup
	var growTook, shrinkTook time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		growTook = timeUntil(ctx, p, growPod, back, func(v verdict) bool { return !v.denied && v.judged() })
	}()
	go func() {
		defer wg.Done()
		shrinkTook = timeUntil(ctx, p, shrinkPod, back, func(v verdict) bool { return v.denied })
	}()
	wg.Wait()
	figure(t, "%s restart: cluster changed %v after the API server's return; verdicts right again after: grow (node added, pod now fits) %v, shrink (node left the pool, pod now denied) %v",
		what, changed.Round(time.Millisecond), growTook.Round(time.Millisecond), shrinkTook.Round(time.Millisecond))
	for name, took := range map[string]time.Duration{"grow": growTook, "shrink": shrinkTook} {
		if took < 0 || took > recoveryLimit {
			t.Errorf("%s: verdict not right within %v of the API server's return (took %v; -1 means never within the test's wait)",
				name, recoveryLimit, took)
		}
	}
	if exited, err := fg.Exited(); exited {
		t.Fatalf("fitgate exited: %v\n%s", err, fg.LogTail(30))
	}
}

// timeUntil probes every 100 ms until ok, and returns the time since
// since; -1 if ok never held within 30 s.
func timeUntil(ctx context.Context, p *prober, pod *corev1.Pod, since time.Time, ok func(verdict) bool) time.Duration {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ok(p.dryRun(ctx, pod)) {
			return time.Since(since)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

// waitFor probes until ok or fails the test after limit.
func waitFor(ctx context.Context, t *testing.T, p *prober, pod *corev1.Pod, what string, ok func(verdict) bool, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var v verdict
	for time.Now().Before(deadline) {
		if v = p.dryRun(ctx, pod); ok(v) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pod %s: not %s after %v; last verdict: %v", pod.Name, what, limit, v)
}

// retryWrite retries a write for up to 20 s while the API server settles.
func retryWrite(ctx context.Context, write func() error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := write()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
