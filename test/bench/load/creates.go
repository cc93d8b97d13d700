package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/webhook"
)

// webhookConfigName is the configuration fitgate registers in part 2.
const webhookConfigName = "fitgate-load-bench"

// arm is what sits in the API server's admission path during a round.
type arm int

const (
	armWithout arm = iota // no webhook
	armNoop               // the no-op webhook: the floor for any webhook
	armFitgate            // fitgate serve
)

func (a arm) String() string {
	switch a {
	case armNoop:
		return "no-op webhook (Fail)"
	case armFitgate:
		return "with fitgate (Fail)"
	}
	return "without a webhook"
}

// slug names the arm in namespaces and profile files.
func (a arm) slug() string {
	switch a {
	case armNoop:
		return "noop"
	case armFitgate:
		return "with"
	}
	return "without"
}

// roundResult is one round of pod creates through the API server.
type roundResult struct {
	index      int
	arm        arm
	namespace  string
	n, errors  int
	errSamples map[string]int
	warnings   int
	warnSample string
	elapsed    time.Duration
	rate       float64
	p50, p99   time.Duration
	cpu        string
	// The webhook's own count over the round: fitgate's Pod decisions and
	// webhook HTTP requests, or the no-op webhook's calls (httpCount).
	decisions, httpCount float64
	// From the API server's /metrics over the round: mean server-side
	// latency of POST pods, and of its calls to the webhook (both
	// webhooks are named validate.fitgate.dev).
	apiCreateMean, webhookMean time.Duration
	webhookCalls               float64
}

// createsSpec says how to run part 2.
type createsSpec struct {
	n, conc, rounds int
	fitgate         fitgateOptions // register is set by runCreates
	probeNamespace  string
	// noop adds rounds with the no-op webhook registered instead.
	noop bool
	// profileDir, if set, receives the API server's CPU profile over the
	// first seconds of every round, as <namespace>-apiserver.pprof, and
	// fitgate's over those of each round with fitgate, as <namespace>.pprof.
	profileDir string
}

// warningCounter is a rest.WarningHandler that counts warnings.
type warningCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	sample string
}

func (w *warningCounter) HandleWarningHeader(_ int, _ string, text string) {
	w.n.Add(1)
	w.mu.Lock()
	w.sample = text
	w.mu.Unlock()
}

func (w *warningCounter) take() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, s := int(w.n.Swap(0)), w.sample
	w.sample = ""
	return n, s
}

// runCreates alternates rounds without a webhook, with the no-op webhook
// (if spec.noop) and with fitgate registered, in ABBA order (without,
// no-op, fitgate, fitgate, no-op, without, ...), so that a drift over the
// run (etcd's history grows until the API server compacts it every 5
// minutes) weighs on every arm alike. Every round uses a fresh namespace
// and deletes its pods afterwards.
func runCreates(ctx context.Context, cp *controlplane.ControlPlane, spec createsSpec, logf func(string, ...any)) (results []roundResult, retErr error) {
	cfg := cp.RESTConfig()
	cfg.QPS, cfg.Burst = 100000, 100000 // client-side throttling must not be what is measured
	warnings := &warningCounter{}
	cfg.WarningHandler = warnings
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	probeCfg := cp.RESTConfig()
	probeWarnings := &controlplane.Warnings{}
	probeCfg.WarningHandler = probeWarnings
	probe, err := kubernetes.NewForConfig(probeCfg)
	if err != nil {
		return nil, err
	}

	arms := []arm{armWithout, armFitgate}
	if spec.noop {
		arms = []arm{armWithout, armNoop, armFitgate}
	}
	var order []arm
	for r := range spec.rounds {
		for j := range arms {
			if r%2 == 1 {
				j = len(arms) - 1 - j
			}
			order = append(order, arms[j])
		}
	}
	var fg *fitgateProc
	var noop *noopWebhook
	noopRegistered := false
	defer func() {
		if fg != nil {
			fg.stop()
		}
		if noop != nil {
			if noopRegistered {
				dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				probe.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(dctx, noopConfigName, metav1.DeleteOptions{}) //nolint:errcheck // best effort on the way out
				cancel()
			}
			noop.close()
		}
	}()
	if spec.noop {
		if noop, err = startNoopWebhook(cp); err != nil {
			return nil, err
		}
	}
	fgOpts := spec.fitgate
	fgOpts.register, fgOpts.webhookCfgName = true, webhookConfigName
	fgOpts.pprof = spec.profileDir != ""
	for i, a := range order {
		// Take away what this round must not have, then add what it must.
		if a != armFitgate && fg != nil {
			logf("part 2: stopping fitgate (it unregisters on exit) ...")
			fg.stop()
			fg = nil
			if err := waitWebhookGone(ctx, probe, spec.probeNamespace); err != nil {
				return results, err
			}
		}
		if a != armNoop && noopRegistered {
			logf("part 2: unregistering the no-op webhook ...")
			if err := noop.unregister(ctx, probe, spec.probeNamespace); err != nil {
				return results, err
			}
			noopRegistered = false
		}
		switch {
		case a == armFitgate && fg == nil:
			logf("part 2: starting fitgate serve --register-url (failurePolicy Fail) ...")
			fgOpts.name = fmt.Sprintf("fitgate-registered-%d", i+1)
			if fg, err = startFitgate(ctx, fgOpts); err != nil {
				return results, err
			}
			if err := waitWebhookActive(ctx, probe, spec.probeNamespace); err != nil {
				return results, fmt.Errorf("%w (fitgate log %s)", err, fg.logPath)
			}
			logf("part 2: fitgate registered and denying a dry-run 100000-cpu pod: it is being called")
		case a == armNoop && !noopRegistered:
			logf("part 2: registering the no-op webhook (failurePolicy Fail) ...")
			if err := noop.register(ctx, cp, probe, spec.probeNamespace); err != nil {
				return results, err
			}
			noopRegistered = true
		}
		ns := fmt.Sprintf("creates-%d-%s", i+1, a.slug())
		if err := prepareNamespace(ctx, client, ns, nil); err != nil {
			return results, err
		}
		if a == armFitgate {
			if err := waitFitsCleanly(ctx, probe, probeWarnings, ns); err != nil {
				return results, err
			}
		}
		warnings.take()
		logf("part 2: round %d/%d %s: %d pod creates, concurrency %d, namespace %s", i+1, len(order), a, spec.n, spec.conc, ns)
		var wh *noopWebhook
		if a == armNoop {
			wh = noop
		}
		res, err := createRound(ctx, cp, client, fg, wh, ns, spec)
		if err != nil {
			return results, err
		}
		res.index, res.arm = i+1, a
		res.warnings, res.warnSample = warnings.take()
		results = append(results, *res)
		logf("part 2: round %d: %.0f creates/s, p50 %s, p99 %s, %d errors", i+1, res.rate, fmtLatency(res.p50), fmtLatency(res.p99), res.errors)
		if fg != nil {
			if exited, err := fg.exited(); exited {
				return results, fmt.Errorf("fitgate exited during round %d: %v (log %s)", i+1, err, fg.logPath)
			}
		}
		if err := deletePods(ctx, client, ns, spec.n, spec.conc); err != nil {
			return results, err
		}
	}
	return results, nil
}

// createRound creates spec.n bare pods from spec.conc goroutines; fg or
// noop is the webhook registered, if any.
func createRound(ctx context.Context, cp *controlplane.ControlPlane, client kubernetes.Interface, fg *fitgateProc, noop *noopWebhook, ns string, spec createsSpec) (*roundResult, error) {
	res := &roundResult{namespace: ns, errSamples: map[string]int{}}
	var dec0, http0 float64
	var noop0, bad0 int64
	if noop != nil {
		noop0, bad0 = noop.calls.Load(), noop.bad.Load()
	}
	fgPID := -1
	if fg != nil {
		var err error
		if dec0, err = fg.metric("fitgate_decisions_total", `kind="Pod"`); err != nil {
			return nil, fmt.Errorf("reading fitgate's metrics: %w", err)
		}
		if http0, err = fg.metric("controller_runtime_webhook_requests_total"); err != nil {
			return nil, fmt.Errorf("reading fitgate's metrics: %w", err)
		}
		fgPID = fg.pid()
	}
	api0, err := scrapeAPIServer(ctx, client)
	if err != nil {
		return nil, err
	}
	pods := client.CoreV1().Pods(ns)
	lat := make([]time.Duration, spec.n)
	errs := make([]error, spec.n)
	// A round lasts 5-10 s; the profiles cover its first seconds.
	const profileWindow = 4 * time.Second
	var profiling sync.WaitGroup
	if spec.profileDir != "" {
		if fg != nil && fg.pprofURL != "" {
			profiling.Go(func() {
				if err := fetchProfile(ctx, fg.pprofURL, profileWindow, filepath.Join(spec.profileDir, ns+".pprof")); err != nil {
					logf("part 2:   no fitgate CPU profile: %v", err)
				}
			})
		}
		profiling.Go(func() {
			if err := fetchAPIServerProfile(ctx, client, profileWindow, filepath.Join(spec.profileDir, ns+"-apiserver.pprof")); err != nil {
				logf("part 2:   no API server CPU profile: %v", err)
			}
		})
	}
	meter := newCPUMeter(fgPID, 0, cp.APIServer().PID(), cp.Etcd().PID())
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(spec.conc, spec.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= spec.n {
					return
				}
				pod := appPod(ns, fmt.Sprintf("checkout-%05d", i))
				t := time.Now()
				_, errs[i] = pods.Create(ctx, pod, metav1.CreateOptions{})
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = meter.String()
	profiling.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	api1, err := scrapeAPIServer(ctx, client)
	if err != nil {
		return nil, err
	}
	res.apiCreateMean, _ = meanDelta(api0, api1, "apiserver_request_duration_seconds", `verb="POST"`, `resource="pods"`, `subresource=""`, `dry_run=""`)
	res.webhookMean, res.webhookCalls = meanDelta(api0, api1, "apiserver_admission_webhook_admission_duration_seconds",
		`name="`+webhook.WebhookName+`"`, `operation="CREATE"`)
	ok := lat[:0]
	for i, err := range errs {
		if err != nil {
			res.errors++
			res.errSamples[firstLine(err.Error())]++
			continue
		}
		ok = append(ok, lat[i])
	}
	res.n = len(ok)
	res.p50, res.p99 = latencySummary(ok)
	res.rate = float64(res.n) / res.elapsed.Seconds()
	if fg != nil {
		dec1, err := fg.metric("fitgate_decisions_total", `kind="Pod"`)
		if err != nil {
			return nil, fmt.Errorf("reading fitgate's metrics: %w", err)
		}
		http1, err := fg.metric("controller_runtime_webhook_requests_total")
		if err != nil {
			return nil, fmt.Errorf("reading fitgate's metrics: %w", err)
		}
		res.decisions, res.httpCount = dec1-dec0, http1-http0
	}
	if noop != nil {
		res.httpCount = float64(noop.calls.Load() - noop0)
		if bad := noop.bad.Load() - bad0; bad > 0 {
			return nil, fmt.Errorf("the no-op webhook found no uid in %d reviews", bad)
		}
	}
	return res, nil
}

// fetchAPIServerProfile writes the API server's CPU profile over the next
// window to path (its --profiling endpoint, on by default).
func fetchAPIServerProfile(ctx context.Context, client kubernetes.Interface, window time.Duration, path string) error {
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", fmt.Sprint(max(1, int(window/time.Second)))).Timeout(window + time.Minute).DoRaw(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// scrapeAPIServer reads the API server's /metrics.
func scrapeAPIServer(ctx context.Context, client kubernetes.Interface) ([]byte, error) {
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	return data, nil
}

// meanDelta is the mean of a histogram's observations between two scrapes
// (from its _sum and _count), and their number.
func meanDelta(before, after []byte, histogram string, labels ...string) (time.Duration, float64) {
	get := func(data []byte, suffix string) float64 {
		v, _ := sumMetric(bytes.NewReader(data), histogram+suffix, labels...)
		return v
	}
	n := get(after, "_count") - get(before, "_count")
	if n <= 0 {
		return 0, 0
	}
	return time.Duration((get(after, "_sum") - get(before, "_sum")) / n * float64(time.Second)), n
}

// deletePods deletes the round's pods at once (grace period 0; none is
// bound, so none waits for a kubelet) and checks that none is left.
func deletePods(ctx context.Context, client kubernetes.Interface, ns string, n, conc int) error {
	pods := client.CoreV1().Pods(ns)
	zero := int64(0)
	err := parallel(ctx, n, conc, func(ctx context.Context, i int) error {
		err := pods.Delete(ctx, fmt.Sprintf("checkout-%05d", i), metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting pod %s/checkout-%05d: %w", ns, i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	left, err := pods.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return err
	}
	if len(left.Items) > 0 {
		return fmt.Errorf("namespace %s still has pods after the cleanup (e.g. %s)", ns, left.Items[0].Name)
	}
	return nil
}

// hugePod requests far more cpu than any node has: bare Pods are enforced
// by default, so fitgate denies it.
func hugePod(ns string) *corev1.Pod {
	p := appPod(ns, "fitgate-probe")
	p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("100000")
	p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("100000")
	return p
}

var dryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// waitWebhookActive waits until fitgate's configuration exists and the API
// server calls it: a dry-run create of a pod that cannot fit is denied by
// validate.fitgate.dev.
func waitWebhookActive(ctx context.Context, client kubernetes.Interface, ns string) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		_, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
		if err == nil {
			_, err = client.CoreV1().Pods(ns).Create(ctx, hugePod(ns), dryRun)
			switch {
			case err == nil:
				err = errors.New("a dry-run create of a 100000-cpu pod was admitted")
			case apierrors.IsForbidden(err) && strings.Contains(err.Error(), webhook.WebhookName):
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("fitgate's webhook was not called within 60s: %v", last)
}

// waitWebhookGone waits until the configuration is deleted and the API
// server no longer calls fitgate: the 100000-cpu dry-run pod is admitted.
func waitWebhookGone(ctx context.Context, client kubernetes.Interface, ns string) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		_, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
		switch {
		case err == nil:
			err = errors.New("the configuration still exists")
		case apierrors.IsNotFound(err):
			if _, err = client.CoreV1().Pods(ns).Create(ctx, hugePod(ns), dryRun); err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("fitgate's webhook was still in the way 60s after it stopped: %v", last)
}

// waitFitsCleanly waits until a dry-run create of the round's pod is
// admitted without a warning: fitgate's cache then knows the fresh
// namespace and its ConfigMaps, so the round measures no live lookups.
func waitFitsCleanly(ctx context.Context, client kubernetes.Interface, w *controlplane.Warnings, ns string) error {
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		w.Take()
		_, err := client.CoreV1().Pods(ns).Create(ctx, appPod(ns, "fitgate-probe"), dryRun)
		warnings := w.Take()
		switch {
		case err != nil:
			last = err.Error()
		case len(warnings) > 0:
			last = "warning: " + strings.Join(warnings, "; ")
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("a dry-run create in %s was not admitted cleanly within 20s: %s", ns, last)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var _ rest.WarningHandler = (*warningCounter)(nil)
