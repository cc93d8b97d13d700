package e2e

// TestSelfManagedCertificates runs `fitgate serve` (bin/fitgate, as the
// chart runs it) with self-managed certificates of a very short life against
// the real API server and shows: the CA injected into the webhook
// configuration, the serving certificate and the CA rotated while fitgate
// keeps serving, and not one admission request failing meanwhile.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/fitgate/fitgate/webhook"
)

// Lifetimes: a serving certificate lives 40s and is renewed 20s before it
// expires; the CA lives 90s and enters its rotation window 20s before it
// expires. Then its successor is staged (added to the bundle), and promoted
// (signs) once it has been published for the lead, here about 7s. Within
// about 85s that is three serving renewals and one CA rotation. Both
// lifetimes are backdated 5 minutes for clock skew, which the rotation
// window ignores because it is given as a duration.
const (
	certValidity = 40 * time.Second
	caValidity   = 90 * time.Second
	rotateBefore = 20 * time.Second
	// minPublished is how long the new CA must have been in the injected
	// caBundle before fitgate serves a certificate from it. fitgate's lead
	// (certs.DefaultCAPublishLead) is capped at a third of the CA's 20s
	// window here, 6.7s; less a second because certificate times are whole
	// seconds, and half a second for this test's polling.
	minPublished = 5 * time.Second
)

func TestSelfManagedCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runID := rand.String(6)
	client := cp.Client()

	// fitgate's own namespace holds its Secret.
	fitgateNS := "fitgate-certs-" + runID
	if err := cp.EnsureNamespace(ctx, fitgateNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), fitgateNS, metav1.DeleteOptions{})
	})
	pool := "certs-" + runID
	node := controlplaneNode(pool, map[string]string{"fitgate.dev/pool": pool})
	if _, err := cp.CreateNode(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })

	// The configuration exists before fitgate, without a caBundle, as the
	// chart installs it; failurePolicy Fail, so a request the API server
	// cannot complete over TLS is an error and not silently admitted.
	port := freeLoopbackPort(t)
	vwcName := "fitgate-certs-" + runID
	whc, err := webhook.NewWebhookConfiguration(webhook.WebhookConfigOptions{
		Name: vwcName, URL: fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.ValidatePath),
		FailurePolicy: "Fail", TimeoutSeconds: 10, ExemptNamespaces: webhook.DefaultPolicy(fitgateNS).ExemptNamespaces,
	})
	if err != nil {
		t.Fatal(err)
	}
	sel := whc.Webhooks[0].NamespaceSelector
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: e2eLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{runID}})
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, whc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = webhook.DeleteWebhookConfiguration(context.Background(), client, vwcName) })

	start := time.Now()
	f := startFitgateBinary(t, "serve", "--kubeconfig="+cp.KubeconfigPath(), "--namespace="+fitgateNS,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(port), "--cert-dir="+t.TempDir(),
		"--health-addr="+fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), "--metrics-addr=",
		"--webhook-config-name="+vwcName, "--timeout-seconds=10", "--log-format=text",
		"--cert-secret=fitgate-tls", "--service-name=fitgate", "--cert-extra-sans=127.0.0.1",
		"--cert-validity="+certValidity.String(), "--ca-validity="+caValidity.String(),
		"--cert-rotate-before="+rotateBefore.String())
	f.waitReady(t, time.Minute)
	if _, body := f.readyz(); !strings.Contains(body, "[+]certificate ok") || !strings.Contains(body, "[+]cache ok") {
		t.Fatalf("/readyz:\n%s", body)
	}
	t.Logf("ready in %v", time.Since(start).Round(time.Millisecond))

	// Ready means the CA is injected: the configuration trusts exactly the
	// Secret's bundle, and fitgate serves a certificate it verifies.
	w := &certWatch{t: t, ns: fitgateNS, secret: "fitgate-tls", vwc: vwcName, addr: fmt.Sprintf("127.0.0.1:%d", port), start: start}
	first := w.observe(ctx)
	if first.injected == nil || !bytes.Equal(first.injected, first.bundle) {
		t.Fatalf("caBundle not injected: configuration has %d bytes, Secret %d", len(first.injected), len(first.bundle))
	}
	if err := verifyServed(first.servedDER, first.injected); err != nil {
		t.Fatalf("served certificate: %v", err)
	}
	t.Logf("CA %s injected; serving certificate %s", first.ca, first.serving)

	// Admission requests through the API server, without pause, until the
	// serving certificate has been renewed three times and the CA rotated.
	appNS := namespace(t, runID, "certs", "enforce")
	load := startAdmissionLoad(ctx, t, appNS, pool, 3)
	servings, cas := map[string]bool{first.serving: true}, map[string]bool{first.ca: true}
	served := map[string]bool{first.served: true}
	// When each CA was first seen in the injected caBundle, and in the
	// Secret's bundle without signing yet (staged).
	injectedAt := map[string]time.Time{}
	for _, ca := range first.injectedCAs {
		injectedAt[ca] = first.at
	}
	staged := map[string]bool{}
	servedCAs := map[string]bool{first.servedCA: true}
	var last snapshot
	deadline := time.Now().Add(150 * time.Second)
	for len(servings) < 4 || len(cas) < 2 || !served[last.serving] || !bytes.Equal(last.injected, last.bundle) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d serving certificates, %d CAs, last served %s (Secret %s)",
				time.Since(start).Round(time.Second), len(servings), len(cas), last.served, last.serving)
		}
		time.Sleep(250 * time.Millisecond)
		last = w.observe(ctx)
		for _, ca := range last.injectedCAs {
			if _, ok := injectedAt[ca]; !ok {
				injectedAt[ca] = last.at
				w.logf("configuration: caBundle now trusts CA %s (%d CAs)", ca, len(last.injectedCAs))
			}
		}
		for i, ca := range last.bundleSerials {
			if i > 0 && !cas[ca] && !staged[ca] {
				staged[ca] = true
				w.logf("Secret: CA %s staged; bundle holds %d CAs, CA %s still signs", ca, last.bundleCAs, last.ca)
			}
		}
		if !servings[last.serving] {
			servings[last.serving] = true
			w.logf("Secret: serving certificate %s (CA %s, bundle of %d)", last.serving, last.ca, last.bundleCAs)
		}
		if !cas[last.ca] {
			cas[last.ca] = true
			w.logf("Secret: CA rotated to %s; bundle holds %d CAs", last.ca, last.bundleCAs)
			// The previous CA has not expired yet: replicas still serving
			// its certificate must go on being trusted.
			if last.bundleCAs < 2 {
				t.Errorf("bundle after CA rotation holds %d CAs, want the old one kept until it expires", last.bundleCAs)
			}
			if !staged[last.ca] {
				t.Errorf("CA %s signs without having been staged first", last.ca)
			}
		}
		if !served[last.served] {
			served[last.served] = true
			w.logf("fitgate serves %s (CA %s)", last.served, last.servedCA)
		}
		if !servedCAs[last.servedCA] {
			servedCAs[last.servedCA] = true
			// The point of staging: the API server had the new CA for the
			// lead before it was shown a certificate from it.
			published, ok := injectedAt[last.servedCA]
			switch {
			case last.servedCA == "":
				t.Errorf("fitgate serves %s, which no CA in the configuration's caBundle signed", last.served)
			case !ok:
				t.Errorf("fitgate serves a certificate from CA %s, which the configuration never trusted", last.servedCA)
			case last.at.Sub(published) < minPublished:
				t.Errorf("fitgate serves a certificate from CA %s %v after it was injected, want at least %v",
					last.servedCA, last.at.Sub(published).Round(100*time.Millisecond), minPublished)
			default:
				w.logf("first certificate from CA %s served %v after the CA was injected",
					last.servedCA, last.at.Sub(published).Round(100*time.Millisecond))
			}
		}
	}
	// Keep the load on past the last change, so requests that needed a new
	// connection with the new certificate or the new bundle are counted.
	time.Sleep(5 * time.Second)
	stats := load.stop()
	t.Logf("%d admission requests over %v of rotations: %d denied by fitgate, %d allowed by it unconfirmed, %d failed",
		stats.total, time.Since(start).Round(time.Second), stats.denied, stats.allowed, stats.failed)
	if stats.failed > 0 {
		t.Errorf("%d admission requests failed during rotation, e.g. %s", stats.failed, stats.example)
	}
	if stats.denied+stats.allowed != stats.total || stats.total < 100 || stats.denied < stats.total/2 {
		t.Errorf("%d of %d requests denied and %d allowed by fitgate; want every one answered, at least 100, mostly denials",
			stats.denied, stats.total, stats.allowed)
	}

	if len(servedCAs) < 2 {
		t.Errorf("fitgate served certificates from %d CAs, want the rotated CA's too", len(servedCAs))
	}

	// After the CA rotation the configuration has the Secret's bundle (the
	// old CA was checked to stay in it above, when the rotation was seen:
	// by now it may have expired and been pruned).
	final := w.observe(ctx)
	if !bytes.Equal(final.injected, final.bundle) {
		t.Errorf("configuration's caBundle is not the Secret's after rotation")
	}
	if err := verifyServed(final.servedDER, final.injected); err != nil {
		t.Errorf("served certificate after rotation: %v", err)
	}
	f.stop(t)
}

// snapshot is what the Secret, the configuration and the listener hold at
// one moment.
type snapshot struct {
	at                  time.Time // when the observation started
	serving, ca, served string    // serial numbers
	bundle, injected    []byte
	bundleCAs           int
	bundleSerials       []string // the Secret's bundle, signing CA first
	injectedCAs         []string // the configuration's caBundle
	servedCA            string   // the injected CA that signed what is served
	servedDER           []byte
}

type certWatch struct {
	t               *testing.T
	ns, secret, vwc string
	addr            string
	start           time.Time
}

func (w *certWatch) logf(format string, args ...any) {
	w.t.Helper()
	w.t.Logf("t+%5.1fs "+format, append([]any{time.Since(w.start).Seconds()}, args...)...)
}

func (w *certWatch) observe(ctx context.Context) snapshot {
	w.t.Helper()
	s := snapshot{at: time.Now()}
	sec, err := cp.Client().CoreV1().Secrets(w.ns).Get(ctx, w.secret, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("Secret: %v", err)
	}
	s.bundle = sec.Data["ca.crt"]
	cas := parsePEMCerts(w.t, s.bundle)
	s.bundleCAs = len(cas)
	if len(cas) > 0 {
		s.ca = cas[0].SerialNumber.Text(16)
	}
	for _, c := range cas {
		s.bundleSerials = append(s.bundleSerials, c.SerialNumber.Text(16))
	}
	if c := parsePEMCerts(w.t, sec.Data["tls.crt"]); len(c) > 0 {
		s.serving = c[0].SerialNumber.Text(16)
	}
	vwc, err := cp.Client().AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, w.vwc, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("webhook configuration: %v", err)
	}
	s.injected = vwc.Webhooks[0].ClientConfig.CABundle
	// What the listener presents now; verified separately.
	conn, err := tls.Dial("tcp", w.addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only reads the serial
	if err != nil {
		w.t.Fatalf("TLS to fitgate: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	s.served, s.servedDER = leaf.SerialNumber.Text(16), leaf.Raw
	for _, c := range parsePEMCerts(w.t, s.injected) {
		serial := c.SerialNumber.Text(16)
		s.injectedCAs = append(s.injectedCAs, serial)
		if leaf.CheckSignatureFrom(c) == nil {
			s.servedCA = serial
		}
	}
	return s
}

// verifyServed checks the served certificate as the API server does for a
// URL-mode webhook on 127.0.0.1 with this caBundle.
func verifyServed(der, bundle []byte) error {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return fmt.Errorf("caBundle of %d bytes has no certificate", len(bundle))
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func parsePEMCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// admissionLoad creates a pod no node can take, as a server-side dry run,
// from several goroutines without pause. fitgate must answer every one:
// with its denial, or, when an overloaded machine keeps it from confirming
// its cache within its budget, by allowing with a warning (it never denies
// unsure). Under failurePolicy Fail the API server admits nothing fitgate
// did not answer, so a create that succeeds was answered too. Anything else
// (a TLS or timeout failure) is counted as failed.
type admissionLoad struct {
	cancel                context.CancelFunc
	wg                    sync.WaitGroup
	total, denied, failed atomic.Int64
	allowed               atomic.Int64
	mu                    sync.Mutex
	example               string
}

type loadStats struct {
	total, denied, failed int64
	allowed               int64
	example               string
}

func startAdmissionLoad(ctx context.Context, t *testing.T, ns, pool string, workers int) *admissionLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	l := &admissionLoad{cancel: cancel}
	pods := cp.Client().CoreV1().Pods(ns)
	for i := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("too-big-%d", i), Namespace: ns},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"fitgate.dev/pool": pool},
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("64")}}}}}}
			for ctx.Err() == nil {
				_, err := pods.Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				if ctx.Err() != nil {
					return // cancelled mid-request: not a verdict
				}
				l.total.Add(1)
				switch {
				case apierrors.IsForbidden(err) && strings.Contains(err.Error(), `admission webhook "validate.fitgate.dev" denied the request`):
					l.denied.Add(1)
				case err == nil:
					l.allowed.Add(1)
				default:
					l.failed.Add(1)
					l.mu.Lock()
					if l.example == "" {
						l.example = fmt.Sprintf("%v", err)
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *admissionLoad) stop() loadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadStats{total: l.total.Load(), denied: l.denied.Load(), failed: l.failed.Load(), allowed: l.allowed.Load(), example: l.example}
}

// fitgateProcess is bin/fitgate serve as a child process.
type fitgateProcess struct {
	cmd        *exec.Cmd
	log        *syncBuffer
	done       chan error
	healthAddr string
}

// syncBuffer is a bytes.Buffer safe for the child's writes and our reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fitgateBinary is bin/fitgate from $FITGATE_BIN_DIR (make test) or the
// repository's bin/; `make build` builds it.
func fitgateBinary(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FITGATE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, "fitgate"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fitgate not found at %s: run `make build` (make test does): %v", p, err)
	}
	return p
}

func startFitgateBinary(t *testing.T, args ...string) *fitgateProcess {
	t.Helper()
	f := &fitgateProcess{log: &syncBuffer{}, done: make(chan error, 1)}
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--health-addr="); ok {
			f.healthAddr = v
		}
	}
	f.cmd = exec.Command(fitgateBinary(t), args...)
	f.cmd.Stdout, f.cmd.Stderr = f.log, f.log
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() {
		f.stop(t)
		if t.Failed() {
			t.Logf("fitgate log:\n%s", f.log.String())
		}
	})
	return f
}

func (f *fitgateProcess) readyz() (int, string) {
	resp, err := http.Get("http://" + f.healthAddr + "/readyz?verbose")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (f *fitgateProcess) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := f.readyz()
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fitgate not ready after %v: %d %s", timeout, code, body)
		}
		select {
		case err := <-f.done:
			f.done <- err
			t.Fatalf("fitgate exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *fitgateProcess) stop(t *testing.T) {
	if f.cmd.Process == nil || f.cmd.ProcessState != nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-f.done:
		f.done <- err
		if err != nil {
			t.Errorf("fitgate exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = f.cmd.Process.Kill()
		t.Error("fitgate did not stop on SIGTERM")
	}
}
