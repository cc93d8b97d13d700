package reliability

// Staleness (issue #8, Faults): fitgate's cache trails the API server by
// the informers' latency, and nothing may be denied because of it.
//
//   - A Secret and a Deployment that mounts it, in one kubectl apply, in
//     both orders, 50 times each, in a strict namespace: zero denials.
//     (How: a missing reference is confirmed with a live GET before it
//     counts, and a missing reference only ever warns for workloads.)
//   - A node added just before a pod that only fits on it: the pod is
//     never denied. (How: before any denial fitgate lists the nodes'
//     metadata and waits, up to a second, for its cache to hold each at
//     least at that version, then judges again; a cache still behind
//     allows with a warning. See webhook.Freshness.)

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const applyOrderRounds = 50

func TestApplyOrderNeverDenied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sel := pool(t)
	addNode(ctx, t, "order-"+sel["fitgate.dev/pool"], "64", sel)
	before := liveLookupCounts(t)
	type result struct{ denied, warned, failed int }
	results := map[string]*result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, secretFirst := range []bool{true, false} {
		order := map[bool]string{true: "secret first", false: "deployment first"}[secretFirst]
		ns := namespace(t, "order", "strict")
		res := &result{}
		results[order] = res
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range applyOrderRounds {
				secret := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db-%d, namespace: %s}\nstringData: {password: hunter2}\n", i, ns)
				deployment := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api-%d, namespace: %s}
spec:
  replicas: 1
  selector: {matchLabels: {app: api-%d}}
  template:
    metadata: {labels: {app: api-%d}}
    spec:
      nodeSelector: {fitgate.dev/pool: %q}
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: 10m}}
        volumeMounts: [{name: db, mountPath: /etc/db}]
      volumes: [{name: db, secret: {secretName: db-%d}}]
`, i, ns, i, i, sel["fitgate.dev/pool"], i)
				docs := []string{secret, deployment}
				if !secretFirst {
					docs = []string{deployment, secret}
				}
				file := filepath.Join(dir, fmt.Sprintf("%d.yaml", i))
				if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
					t.Error(err)
					return
				}
				out, err := kubectl(ctx, "apply", "-f", file)
				mu.Lock()
				switch {
				case strings.Contains(out, "denied the request"):
					res.denied++
					t.Errorf("%s, round %d: denied:\n%s", order, i, out)
				case err != nil:
					res.failed++
					t.Errorf("%s, round %d: %v\n%s", order, i, err, out)
				case strings.Contains(out, "not found"):
					res.warned++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	after := liveLookupCounts(t)
	for order, r := range results {
		figure(t, "apply order, %s: %d applies, %d denied, %d failed, %d warned that the secret does not exist (yet)",
			order, applyOrderRounds, r.denied, r.failed, r.warned)
	}
	figure(t, "apply order: live GETs of Secrets during the rounds: %v found (the cache was behind; the finding was dropped), %v missing",
		after[`kind="Secret",result="found"`]-before[`kind="Secret",result="found"`],
		after[`kind="Secret",result="missing"`]-before[`kind="Secret",result="missing"`])
}

const nodeRaceRounds = 50

func TestNodeAddedJustBeforePodNeverDenied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := namespace(t, "node-race", "enforce")
	before := liveLookupCounts(t)
	denied := 0
	var created []string
	for i := range nodeRaceRounds {
		sel := pool(t)
		name := "race-" + sel["fitgate.dev/pool"]
		addNode(ctx, t, name, "4", sel)
		// At once, no pause: the pod only fits on the node just made.
		_, err := cp.Client().CoreV1().Pods(ns).Create(ctx, smallPod(ns, fmt.Sprintf("p-%d", i), "2", sel), metav1.CreateOptions{})
		if err != nil {
			denied++
			t.Errorf("round %d: pod for node %s refused: %v", i, name, err)
			continue
		}
		created = append(created, fmt.Sprintf("p-%d", i))
	}
	after := liveLookupCounts(t)
	delta := func(result string) float64 {
		k := `kind="Node",result="` + result + `"`
		return after[k] - before[k]
	}
	figure(t, "node added just before the pod: %d rounds, %d denied; would-be denials re-judged after a node LIST: %v averted (the cache was behind), %v confirmed, %v still behind (allowed unchecked), %v errors",
		nodeRaceRounds, denied, delta("averted"), delta("confirmed"), delta("behind"), delta("error"))
	// The pods really do fit: the scheduler binds them all.
	for _, name := range created {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := cp.WaitForPodScheduled(wctx, ns, name); err != nil {
			t.Errorf("pod %s: %v", name, err)
		}
		wcancel()
	}
}

// liveLookupCounts reads fitgate_live_lookups_total by its labels.
func liveLookupCounts(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := fg.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, "fitgate_live_lookups_total{"); ok {
			out[strings.TrimSuffix(rest, "}")] = v
		}
	}
	return out
}
