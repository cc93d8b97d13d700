package parity

import (
	"context"
	"fmt"
	"os"
	"strings"
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

var rp *replayer

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	cp, err := controlplane.Start(context.Background(), controlplane.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the parity replay needs a local control plane: %v\n", err)
		return 1
	}
	defer cp.Stop()
	fmt.Fprintf(os.Stderr, "local control plane up in %v\n", time.Since(start).Round(time.Millisecond))
	c, err := client.New(cp.RESTConfig(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: client: %v\n", err)
		return 1
	}
	rp = &replayer{cp: cp, c: c, sentinelNS: "parity-barrier"}
	ctx := context.Background()
	if err := c.Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rp.sentinelNS}}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	if err := cp.WaitForDefaultServiceAccount(ctx, rp.sentinelNS); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return m.Run()
}

// TestCorpusAgreesWithRealScheduler replays every scenario whose outcome the
// scheduler or the apiserver decides, and compares with the expectation.
func TestCorpusAgreesWithRealScheduler(t *testing.T) {
	all, err := scenarios.Load()
	if err != nil {
		t.Fatal(err)
	}
	replayed, engineOnly := 0, 0
	for i, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Truth == scenarios.TruthNone {
				engineOnly++
				t.Logf("%s: not replayed: %s", sc.File, sc.Description)
				return
			}
			replayed++
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, cleanup, err := rp.replay(ctx, sc, renamer{prefix: fmt.Sprintf("p%03d", i)})
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
	t.Logf("replayed %d scenarios against the real control plane; %d are engine-only", replayed, engineOnly)
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
