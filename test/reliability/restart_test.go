package reliability

// fitgate restarted under traffic (issue #8, Faults): kubectl create and
// apply run in a loop for 30 s while fitgate is stopped with SIGTERM
// (graceful shutdown) and started again. No user request fails; with
// failurePolicy Ignore the requests made while it is down are admitted
// unchecked, and they are counted: from the client's side (no fitgate
// warning, or one saying "not checked") and from the API server's own
// fail-open counter.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	trafficDuration = 30 * time.Second
	stopAt          = 8 * time.Second // into the traffic
	downFor         = 5 * time.Second // between exit and start
	trafficWorkers  = 2
)

// request is one kubectl invocation of the loop.
type request struct {
	verb        string
	start, end  time.Time
	ok          bool
	out         string
	fromFitgate bool // the namespace's typo warning came back
	notChecked  bool // fitgate said it did not check
}

func TestFitgateRestartUnderTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := fingerprintedNamespace(t, "traffic")
	sel := pool(t)
	addNode(ctx, t, "traffic-"+sel["fitgate.dev/pool"], "64", sel)
	dir := t.TempDir()
	manifest := func(name string, i int) string {
		meta := fmt.Sprintf("name: %s-%d", name, i)
		if name == "" {
			meta = "generateName: created-"
		}
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  %s
  namespace: %s
spec:
  nodeSelector: {fitgate.dev/pool: %q}
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    resources: {requests: {cpu: 10m}}
`, meta, ns, sel["fitgate.dev/pool"])
	}
	failOpenBefore := failOpenCount(ctx, t)

	var mu sync.Mutex
	var reqs []request
	begin := time.Now()
	end := begin.Add(trafficDuration)
	var wg sync.WaitGroup
	for w := range trafficWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				verb, file := "apply", filepath.Join(dir, fmt.Sprintf("apply-%d-%d.yaml", w, i))
				body := manifest(fmt.Sprintf("applied-%d", w), i)
				if i%2 == 1 {
					verb, file = "create", filepath.Join(dir, fmt.Sprintf("create-%d-%d.yaml", w, i))
					body = manifest("", i)
				}
				if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
					t.Error(err)
					return
				}
				r := request{verb: verb, start: time.Now()}
				out, err := kubectl(ctx, verb, "-f", file)
				r.end, r.ok, r.out = time.Now(), err == nil, out
				r.fromFitgate = strings.Contains(out, "is not off, warn, enforce or strict")
				r.notChecked = strings.Contains(out, "not checked")
				mu.Lock()
				reqs = append(reqs, r)
				mu.Unlock()
			}
		}()
	}

	// Meanwhile: stop fitgate gracefully, leave it down, start it again.
	time.Sleep(stopAt)
	stopping := time.Now()
	took, err := fg.Stop()
	if err != nil {
		t.Errorf("fitgate's graceful shutdown: %v\n%s", err, fg.LogTail(20))
	}
	exited := time.Now()
	time.Sleep(downFor)
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	err = fg.WaitReady(readyCtx)
	readyCancel()
	if err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	wg.Wait()
	failOpen := failOpenCount(ctx, t) - failOpenBefore

	var failed, unchecked, uncheckedByFitgate, duringShutdown int
	for _, r := range reqs {
		switch {
		case !r.ok:
			failed++
			t.Errorf("kubectl %s failed at +%v:\n%s", r.verb, r.start.Sub(begin).Round(time.Millisecond), r.out)
		case !r.fromFitgate:
			unchecked++
		case r.notChecked:
			unchecked++
			uncheckedByFitgate++
		}
		if r.ok && r.fromFitgate && !r.notChecked && r.start.After(stopping) && r.end.Before(exited) {
			duringShutdown++
		}
	}
	figure(t, "fitgate restart under traffic: %d requests in %v (%d workers), %d failed; graceful shutdown took %v (1 s shutdown delay), down %v, ready %v after start",
		len(reqs), trafficDuration, trafficWorkers, failed, took.Round(time.Millisecond), started.Sub(exited).Round(time.Millisecond),
		ready.Sub(started).Round(time.Millisecond))
	figure(t, "fitgate restart under traffic: %d admitted unchecked (%d failed open at the API server, by its fail-open counter: %v; %d allowed by fitgate as not checked); %d judged while shutting down",
		unchecked, unchecked-uncheckedByFitgate, failOpen, uncheckedByFitgate, duringShutdown)
	if failed > 0 {
		t.Errorf("%d user requests failed", failed)
	}
	if unchecked == 0 {
		t.Error("no request was admitted unchecked: the restart did not overlap the traffic")
	}
	if got := float64(unchecked - uncheckedByFitgate); got != failOpen {
		// Other clients (the controller manager) may also have been
		// admitted while fitgate was down; only warn.
		t.Logf("client-side fail-open count %v differs from the API server's %v", got, failOpen)
	}
}

// failOpenCount reads the API server's count of requests admitted because
// fitgate's webhook could not be called (failurePolicy Ignore).
func failOpenCount(ctx context.Context, t *testing.T) float64 {
	t.Helper()
	raw, err := cp.Client().CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the API server's metrics: %v", err)
	}
	m, err := parseMetrics(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "apiserver_admission_webhook_fail_open_count{") && strings.Contains(k, `"validate.fitgate.dev"`) {
			total += v
		}
	}
	return total
}
