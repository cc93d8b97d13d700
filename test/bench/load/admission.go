package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// reviewKind is one kind of request of a scenario.
type reviewKind struct {
	name string // "pod", "deployment"
	tmpl *bodyTemplate
}

// scenario is a request mix: request i uses kinds[i % len(kinds)].
type scenario struct {
	name  string
	kinds []reviewKind
}

// newScenarios builds the request templates from a Pod and a Deployment as
// the API server passes them to webhooks.
func newScenarios(pod *corev1.Pod, dep *appsv1.Deployment) (pods, mix scenario, err error) {
	podJSON, err := podReviewJSON(pod)
	if err != nil {
		return pods, mix, err
	}
	depJSON, err := deploymentReviewJSON(dep)
	if err != nil {
		return pods, mix, err
	}
	podT, err := newBodyTemplate(podJSON, phUID, phName, phObjUID)
	if err != nil {
		return pods, mix, fmt.Errorf("pod review: %w", err)
	}
	depT, err := newBodyTemplate(depJSON, phUID, phName, phObjUID)
	if err != nil {
		return pods, mix, fmt.Errorf("deployment review: %w", err)
	}
	podK := reviewKind{name: "pod", tmpl: podT}
	depK := reviewKind{name: "deployment", tmpl: depT}
	pods = scenario{name: fmt.Sprintf("CREATE bare Pod (%.1f KiB review)", float64(len(podJSON))/1024), kinds: []reviewKind{podK}}
	mix = scenario{name: fmt.Sprintf("mix 3 Pods : 1 Deployment ×3 (%.1f KiB review)", float64(len(depJSON))/1024),
		kinds: []reviewKind{podK, podK, depK, podK}}
	return pods, mix, nil
}

// apiServerObjects returns the app's Pod and Deployment exactly as the API
// server passes them to validating webhooks, from dry-run creates: with
// defaults, the ServiceAccount plugin's token volume, the
// DefaultTolerationSeconds tolerations and managedFields.
func apiServerObjects(ctx context.Context, client kubernetes.Interface, ns string) (*corev1.Pod, *appsv1.Deployment, error) {
	pod, err := client.CoreV1().Pods(ns).Create(ctx, appPod(ns, "checkout-7d9c6b8f5d-000000"), dryRun)
	if err != nil {
		return nil, nil, fmt.Errorf("dry-run create of the template pod: %w", err)
	}
	dep, err := client.AppsV1().Deployments(ns).Create(ctx, appDeployment(ns, "checkout-000000"), dryRun)
	if err != nil {
		return nil, nil, fmt.Errorf("dry-run create of the template deployment: %w", err)
	}
	return pod, dep, nil
}

// reviewClient POSTs AdmissionReviews to fitgate over HTTPS with
// keep-alive, verifying the serving certificate against the CA.
type reviewClient struct {
	url    string
	client *http.Client
	tr     *http.Transport
	dials  atomic.Int64
}

func newReviewClient(url string, caPEM []byte, conc int) (*reviewClient, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cannot parse the CA certificate")
	}
	rc := &reviewClient{url: url}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rc.tr = &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxConnsPerHost:     conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			rc.dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	rc.client = &http.Client{Transport: rc.tr, Timeout: 10 * time.Second}
	return rc, nil
}

func (rc *reviewClient) close() { rc.tr.CloseIdleConnections() }

// reviewResponse is the part of an AdmissionReview response checked.
type reviewResponse struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   *struct {
		UID      string   `json:"uid"`
		Allowed  bool     `json:"allowed"`
		Warnings []string `json:"warnings"`
		Status   *struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

// send posts body and checks the answer: HTTP 200, an AdmissionReview v1
// with the request's UID, allowed. warning is the first warning, if any.
// Latency is measured until the body has been read.
func (rc *reviewClient) send(ctx context.Context, body []byte, uid string) (took time.Duration, warning string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := rc.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took = time.Since(start)
	if err != nil {
		return took, "", fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return took, "", fmt.Errorf("HTTP %s: %.200s", resp.Status, data)
	}
	var out reviewResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return took, "", fmt.Errorf("not JSON: %v", err)
	}
	switch {
	case out.Kind != "AdmissionReview" || out.APIVersion != "admission.k8s.io/v1" || out.Response == nil:
		return took, "", fmt.Errorf("not an AdmissionReview v1 response: %.200s", data)
	case out.Response.UID != uid:
		return took, "", fmt.Errorf("response UID %q, want %q", out.Response.UID, uid)
	case !out.Response.Allowed:
		msg := ""
		if out.Response.Status != nil {
			msg = out.Response.Status.Message
		}
		return took, "", fmt.Errorf("not allowed: %.200s", msg)
	}
	if len(out.Response.Warnings) > 0 {
		warning = out.Response.Warnings[0]
	}
	return took, warning, nil
}

// levelResult is one scenario at one concurrency.
type levelResult struct {
	scenario             string
	conc                 int
	window               time.Duration
	measured             int // requests started and answered within the window
	sent                 int // all requests, warm-up included
	errors               int
	errSamples           map[string]int
	warned, unchecked    int
	warnSample           string
	p50, p99             time.Duration
	rate                 float64
	dials                int64
	cpu                  string
	decisions, httpCount float64 // fitgate's counters over the whole level
	liveLookups          float64
	handlerMean          time.Duration // fitgate_handler_duration_seconds sum/count over the level
	fitgateCores         float64       // over the window
}

// levelSpec says how to run one level.
type levelSpec struct {
	sc              scenario
	conc            int
	warmup, window  time.Duration
	seqBase         int64 // makes names and UIDs distinct across levels
	apiPID, etcdPID int   // for the CPU columns
}

// runLevel sends the scenario's requests from conc workers, each with its
// own keep-alive connection, for warmup+window, and measures the requests
// that both started and finished within the window.
func runLevel(ctx context.Context, url string, caPEM []byte, fg *fitgateProc, ls levelSpec) (*levelResult, error) {
	rc, err := newReviewClient(url, caPEM, ls.conc)
	if err != nil {
		return nil, err
	}
	defer rc.close()
	res := &levelResult{scenario: ls.sc.name, conc: ls.conc, window: ls.window, errSamples: map[string]int{}}
	dec0, _ := fg.metric("fitgate_decisions_total")
	http0, _ := fg.metric("controller_runtime_webhook_requests_total")
	live0, _ := fg.metric("fitgate_live_lookups_total")
	hsum0, _ := fg.metric("fitgate_handler_duration_seconds_sum")
	hcnt0, _ := fg.metric("fitgate_handler_duration_seconds_count")

	begin := time.Now()
	t0, t1 := begin.Add(ls.warmup), begin.Add(ls.warmup+ls.window)
	meterDone := make(chan struct{})
	go func() { // CPU use over exactly the window
		defer close(meterDone)
		select {
		case <-time.After(time.Until(t0)):
		case <-ctx.Done():
			return
		}
		m := newCPUMeter(fg.pid(), 0, ls.apiPID, ls.etcdPID)
		select {
		case <-time.After(time.Until(t1)):
		case <-ctx.Done():
		}
		res.fitgateCores = m.cores(0)
		res.cpu = m.String()
	}()

	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for range ls.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			local := make([]time.Duration, 0, 4096)
			var sent, errs, warned, unchecked int
			errSamples := map[string]int{}
			warnSample := ""
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(t1) {
					break
				}
				i := seq.Add(1) - 1
				n := ls.seqBase + i
				kind := ls.sc.kinds[int(i)%len(ls.sc.kinds)]
				uid := fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", n)
				name := fmt.Sprintf("checkout-7d9c6b8f5d-%06d", n)
				objUID := fmt.Sprintf("f0e1d2c3-0000-4000-8000-%012d", n)
				buf = kind.tmpl.render(buf, uid, name, objUID)
				took, warning, err := rc.send(ctx, buf, uid)
				sent++
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					errSamples[kind.name+": "+err.Error()]++
					continue
				}
				if warning != "" {
					warned++
					warnSample = kind.name + ": " + warning
					if strings.Contains(warning, "not checked") {
						unchecked++
					}
				}
				if !start.Before(t0) && time.Now().Before(t1) {
					local = append(local, took)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, local...)
			res.sent += sent
			res.errors += errs
			res.warned += warned
			res.unchecked += unchecked
			for k, v := range errSamples {
				res.errSamples[k] += v
			}
			if warnSample != "" {
				res.warnSample = warnSample
			}
		}()
	}
	wg.Wait()
	<-meterDone
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.measured = len(lat)
	res.p50, res.p99 = latencySummary(lat)
	res.rate = float64(res.measured) / ls.window.Seconds()
	res.dials = rc.dials.Load()
	dec1, _ := fg.metric("fitgate_decisions_total")
	http1, _ := fg.metric("controller_runtime_webhook_requests_total")
	live1, _ := fg.metric("fitgate_live_lookups_total")
	res.decisions, res.httpCount, res.liveLookups = dec1-dec0, http1-http0, live1-live0
	hsum1, _ := fg.metric("fitgate_handler_duration_seconds_sum")
	hcnt1, _ := fg.metric("fitgate_handler_duration_seconds_count")
	if hcnt1 > hcnt0 {
		res.handlerMean = time.Duration((hsum1 - hsum0) / (hcnt1 - hcnt0) * float64(time.Second))
	}
	return res, nil
}

// smokeTest sends one review of each kind and fails unless each is
// allowed without any warning: a warning would mean fitgate did extra work
// (a live lookup, a cache still syncing) that the throughput would hide.
func smokeTest(ctx context.Context, url string, caPEM []byte, scs ...scenario) error {
	rc, err := newReviewClient(url, caPEM, 1)
	if err != nil {
		return err
	}
	defer rc.close()
	seen := map[string]bool{}
	for _, sc := range scs {
		for _, k := range sc.kinds {
			if seen[k.name] {
				continue
			}
			seen[k.name] = true
			uid := "5m0ke000-0000-4000-8000-" + k.name
			body := k.tmpl.render(nil, uid, "smoke-"+k.name, "5m0ke-obj-"+k.name)
			_, warning, err := rc.send(ctx, body, uid)
			if err != nil {
				return fmt.Errorf("smoke test, %s: %w", k.name, err)
			}
			if warning != "" {
				return fmt.Errorf("smoke test, %s: allowed with a warning, want none: %s", k.name, warning)
			}
		}
	}
	return nil
}
