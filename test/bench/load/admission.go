package main

import (
	"bufio"
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
	"net/url"
	"os"
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

// reviewClient POSTs AdmissionReviews to fitgate over HTTPS/1.1 with
// keep-alive, verifying the serving certificate against the CA. It speaks
// HTTP itself over one TLS connection per worker rather than through
// net/http's Transport, whose two goroutines per connection and the
// hand-offs between them cost about as much CPU as fitgate's own HTTP
// handling: this program shares the two cores with the server it
// measures, so every cycle it spends is one fitgate does not get.
type reviewClient struct {
	addr, host, path string
	tls              *tls.Config
	idle             chan *clientConn // at most conc connections, each used by one request at a time
	dials            atomic.Int64
}

// clientConn is one keep-alive connection.
type clientConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	resp []byte // the last response body; reused
}

func newReviewClient(rawURL string, caPEM []byte, conc int) (*reviewClient, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cannot parse the CA certificate")
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Port() == "" {
		return nil, fmt.Errorf("%q: want https://host:port/path", rawURL)
	}
	return &reviewClient{
		addr: u.Host, host: u.Host, path: u.RequestURI(),
		tls:  &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, ServerName: u.Hostname()},
		idle: make(chan *clientConn, conc),
	}, nil
}

func (rc *reviewClient) get(ctx context.Context) (*clientConn, error) {
	select {
	case c := <-rc.idle:
		return c, nil
	default:
	}
	rc.dials.Add(1)
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, Config: rc.tls}
	conn, err := d.DialContext(ctx, "tcp", rc.addr)
	if err != nil {
		return nil, err
	}
	return &clientConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 16<<10)}, nil
}

// put keeps a connection for the next request, or closes it if the pool
// is full or it may be out of step with the server.
func (rc *reviewClient) put(c *clientConn, ok bool) {
	if ok {
		select {
		case rc.idle <- c:
			return
		default:
		}
	}
	_ = c.conn.Close()
}

func (rc *reviewClient) close() {
	for {
		select {
		case c := <-rc.idle:
			_ = c.conn.Close()
		default:
			return
		}
	}
}

// post sends one request on c and reads the response's status and body
// into c.resp.
func (rc *reviewClient) post(c *clientConn, body []byte) (int, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c.bw, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n",
		rc.path, rc.host, len(body))
	_, _ = c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", err
	}
	c.resp = c.resp[:0]
	buf := bytes.NewBuffer(c.resp)
	_, err = buf.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	c.resp = buf.Bytes()
	if err != nil {
		return 0, "", fmt.Errorf("reading the response: %w", err)
	}
	if resp.Close {
		return resp.StatusCode, resp.Status, errConnClosing
	}
	return resp.StatusCode, resp.Status, nil
}

// errConnClosing: the server answered but will close the connection.
var errConnClosing = errors.New("connection closing")

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
	c, err := rc.get(ctx)
	if err != nil {
		return 0, "", err
	}
	start := time.Now()
	code, status, err := rc.post(c, body)
	took = time.Since(start)
	defer rc.put(c, err == nil) // after the body is read: it is the connection's buffer
	if err == errConnClosing {
		err = nil
	}
	if err != nil {
		return took, "", err
	}
	data := c.resp
	if code != http.StatusOK {
		return took, "", fmt.Errorf("HTTP %s: %.200s", status, data)
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
	offered              float64 // requests/s on a fixed schedule, or 0 for closed loop
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
	rate            float64 // requests/s offered on a fixed schedule; 0: each worker sends as fast as it is answered
	warmup, window  time.Duration
	seqBase         int64  // makes names and UIDs distinct across levels
	apiPID, etcdPID int    // for the CPU columns
	profilePath     string // if set, fitgate's CPU profile over the window is written here
}

// schedule is when a level's requests are due. Closed loop (rate 0): a
// request is due when its worker is free, until the window ends. Open loop:
// request k is due at begin + k/rate whether or not a worker is free, so a
// request that waits for one counts its wait in its latency (no
// coordinated omission: a stall shows in the percentiles instead of
// pausing the clock).
type schedule struct {
	due <-chan time.Time // open loop only
	end time.Time
}

func newSchedule(ctx context.Context, begin, end time.Time, rate float64) *schedule {
	s := &schedule{end: end}
	if rate <= 0 {
		return s
	}
	due := make(chan time.Time, 1<<16)
	s.due = due
	go func() {
		defer close(due)
		interval := time.Duration(float64(time.Second) / rate)
		next := begin
		for ctx.Err() == nil && next.Before(end) {
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait) // may oversleep: everything due by then goes out at once, on time
			}
			for now := time.Now(); !next.After(now) && next.Before(end); next = next.Add(interval) {
				select {
				case due <- next:
				default: // 65,536 requests behind: the level has long failed; stop offering
					return
				}
			}
		}
	}()
	return s
}

// next returns when the worker's next request is due, or false when the
// level is over.
func (s *schedule) next(ctx context.Context) (time.Time, bool) {
	if s.due == nil {
		now := time.Now()
		return now, ctx.Err() == nil && now.Before(s.end)
	}
	select {
	case t, ok := <-s.due:
		return t, ok && ctx.Err() == nil
	case <-ctx.Done():
		return time.Time{}, false
	}
}

// runLevel sends the scenario's requests from conc workers, each with its
// own keep-alive connection, for warmup+window. Closed loop, it measures
// the requests that both started and finished within the window; open
// loop, every request due within the window, from when it was due.
func runLevel(ctx context.Context, url string, caPEM []byte, fg *fitgateProc, ls levelSpec) (*levelResult, error) {
	rc, err := newReviewClient(url, caPEM, ls.conc)
	if err != nil {
		return nil, err
	}
	defer rc.close()
	res := &levelResult{scenario: ls.sc.name, conc: ls.conc, offered: ls.rate, window: ls.window, errSamples: map[string]int{}}
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
		var profiled chan struct{}
		if ls.profilePath != "" && fg.pprofURL != "" {
			profiled = make(chan struct{})
			go func() {
				defer close(profiled)
				if err := fetchProfile(ctx, fg.pprofURL, ls.window, ls.profilePath); err != nil {
					logf("part 1:   no CPU profile: %v", err)
				}
			}()
		}
		m := newCPUMeter(fg.pid(), 0, ls.apiPID, ls.etcdPID)
		select {
		case <-time.After(time.Until(t1)):
		case <-ctx.Done():
		}
		res.fitgateCores = m.cores(0)
		res.cpu = m.String()
		if profiled != nil {
			<-profiled
		}
	}()

	sched := newSchedule(ctx, begin, t1, ls.rate)
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
			for {
				due, ok := sched.next(ctx)
				if !ok {
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
				if ls.rate > 0 {
					took = time.Since(due)
				}
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
				if !due.Before(t0) && (ls.rate > 0 || time.Now().Before(t1)) {
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

// fetchProfile writes fitgate's CPU profile over the next window to path.
func fetchProfile(ctx context.Context, pprofURL string, window time.Duration, path string) error {
	secs := max(1, int(window.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%sprofile?seconds=%d", pprofURL, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s", req.URL, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
