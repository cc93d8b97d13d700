package parity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/test/scenarios"
)

// shards are independent control planes the corpus is replayed on in
// parallel: a replay mostly waits for the scheduler to settle, and
// scenarios cannot share a control plane, whose nodes every pod sees. rp
// is the first, which the randomized test uses.
var (
	shards []*replayer
	rp     *replayer
)

// shardCount is FITGATE_PARITY_SHARDS, 3 by default.
func shardCount() (int, error) {
	v := os.Getenv("FITGATE_PARITY_SHARDS")
	if v == "" {
		return 3, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 16 {
		return 0, fmt.Errorf("FITGATE_PARITY_SHARDS=%q: want a number from 1 to 16", v)
	}
	return n, nil
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	n, err := shardCount()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	start := time.Now()
	shards = make([]*replayer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shards[i], errs[i] = startShard(i)
		}()
	}
	wg.Wait()
	defer func() {
		for _, sh := range shards {
			if sh != nil {
				_ = sh.cp.Stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the parity replay needs local control planes: %v\n", err)
		return 1
	}
	rp = shards[0]
	fmt.Fprintf(os.Stderr, "%d local control planes up in %v\n", n, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func startShard(i int) (*replayer, error) {
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		return nil, fmt.Errorf("control plane %d: %w", i, err)
	}
	c, err := client.New(cp.RESTConfig(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("control plane %d: client: %w", i, err)
	}
	sh := &replayer{cp: cp, c: c, sentinelNS: "parity-barrier"}
	if err := c.Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sh.sentinelNS}}); err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("control plane %d: %w", i, err)
	}
	if err := cp.WaitForDefaultServiceAccount(ctx, sh.sentinelNS); err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("control plane %d: %w", i, err)
	}
	return sh, nil
}

// TestCorpusAgreesWithRealScheduler replays every scenario whose outcome the
// scheduler or the apiserver decides, and compares with the expectation.
// Scenarios are dealt round-robin to the shards, each replaying its share
// one after another.
func TestCorpusAgreesWithRealScheduler(t *testing.T) {
	all, err := scenarios.Load()
	if err != nil {
		t.Fatal(err)
	}
	var replayed, engineOnly atomic.Int32
	var wg sync.WaitGroup
	for k, sh := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(all); i += len(shards) {
				sc := all[i]
				t.Run(sc.Name, func(t *testing.T) {
					if sc.Truth == scenarios.TruthNone {
						engineOnly.Add(1)
						t.Logf("%s: not replayed: %s", sc.File, sc.Description)
						return
					}
					replayed.Add(1)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					out, cleanup, err := sh.replay(ctx, sc, renamer{prefix: fmt.Sprintf("p%03d", i)})
					defer cleanup()
					if err != nil {
						t.Fatalf("%s: replay: %v", sc.File, err)
					}
					if diff := judge(sc, out); diff != "" {
						t.Errorf("%s: the real control plane disagrees: %s (pods %d, bound %d, rejected: %v, scheduler: %q)",
							sc.File, diff, out.pods, out.bound, out.rejected, out.message)
					}
				})
			}
		}()
	}
	wg.Wait()
	t.Logf("replayed %d scenarios on %d control planes; %d are engine-only", replayed.Load(), len(shards), engineOnly.Load())
}

// judge compares what the control plane did with what the scenario expects.
func judge(sc *scenarios.Scenario, out *outcome) string {
	s, w, err := sc.Snapshot()
	if err != nil {
		return err.Error()
	}
	_ = s
	wantFits := sc.Expect.Verdict == feasibility.Fits
	replicas := w.Replicas
	switch {
	case out.rejected != nil:
		if wantFits {
			return fmt.Sprintf("expected fits, but the apiserver rejected it: %v", out.rejected)
		}
		if want := sc.ExpectedReplicasFit(replicas); want > 0 {
			return fmt.Sprintf("expected %d replicas to fit, but the apiserver rejected it", want)
		}
		return ""
	case w.IsDaemonSet():
		// A DaemonSet's replica count is the number of nodes it targets.
		if wantFits && out.bound != out.pods {
			return fmt.Sprintf("expected fits, but %d of %d daemon pods are bound", out.bound, out.pods)
		}
		if want := sc.Expect.ReplicasFit; want != nil && int32(out.bound) != *want {
			return fmt.Sprintf("expected %d daemon pods bound, got %d", *want, out.bound)
		}
		if !wantFits && out.bound == out.pods && out.pods > 0 {
			return fmt.Sprintf("expected %s, but all %d daemon pods are bound", sc.Expect.Verdict, out.pods)
		}
		return ""
	}
	if wantFits && int32(out.bound) != replicas {
		return fmt.Sprintf("expected fits, but %d of %d replicas are bound", out.bound, replicas)
	}
	if want := sc.ExpectedReplicasFit(replicas); want >= 0 && int32(out.bound) != want {
		return fmt.Sprintf("expected %d replicas to fit, but %d are bound", want, out.bound)
	}
	if !wantFits && int32(out.bound) == replicas && replicas > 0 {
		return fmt.Sprintf("expected %s, but all %d replicas are bound", sc.Expect.Verdict, replicas)
	}
	filterMsg, preemptMsg, _ := strings.Cut(out.message, " preemption: ")
	// When a PreFilter plugin rejects the pod, DynamicResources' PostFilter
	// finds none of its own cycle state and the scheduler (v1.37.2) appends
	// that lookup error, " not found", where a preemption message would go.
	if preemptMsg == "" {
		if m, ok := strings.CutSuffix(filterMsg, ". not found"); ok {
			filterMsg = m + "."
		}
	}
	if sc.Expect.Summary != "" && replicas == 1 && out.bound == 0 && out.message != "" && filterMsg != sc.Expect.Summary {
		return fmt.Sprintf("scheduler said %q, scenario expects %q", filterMsg, sc.Expect.Summary)
	}
	// When the scheduler finds preemption useless on every node, every
	// node failed for an unresolvable reason: the verdict must be permanent.
	if out.bound == 0 && preemptMsg != "" && sc.Expect.Verdict == feasibility.Transient && allNotHelpful(preemptMsg) {
		return fmt.Sprintf("expected transient, but the scheduler says preemption cannot help on any node: %q", preemptMsg)
	}
	return ""
}

// allNotHelpful reports whether the scheduler's preemption message says
// "0/N nodes are available: N Preemption is not helpful for scheduling."
func allNotHelpful(msg string) bool {
	var total, notHelpful int
	if _, err := fmt.Sscanf(msg, "0/%d nodes are available: %d Preemption is not helpful for scheduling.", &total, &notHelpful); err != nil {
		return false
	}
	return total > 0 && total == notHelpful
}
