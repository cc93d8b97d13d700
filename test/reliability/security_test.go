package reliability

// Security (issue #8): the identity fitgate runs as, what its cache holds
// of Secrets and ConfigMaps, its TLS as served by the real binary, its
// certificate files, and the exempt namespaces that keep it from
// deadlocking the cluster.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/webhook"
)

// TestFitgateRunsWithTheChartsRBAC: the suite's fitgate is the chart's
// ServiceAccount, not admin, and that identity reads cluster state but
// cannot read a Secret or change anything.
func TestFitgateRunsWithTheChartsRBAC(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		verb, group, resource, namespace string
		allowed                          bool
	}{
		{"list", "", "nodes", "", true},
		{"watch", "", "pods", "", true},
		{"get", "", "secrets", "", false},
		{"get", "", "secrets", "default", false},
		{"create", "", "pods", "default", false},
		{"delete", "", "nodes", "", false},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", false},
	} {
		sar, err := cp.Client().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: fitgateUser, Groups: []string{"system:serviceaccounts"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: tc.verb, Group: tc.group, Resource: tc.resource, Namespace: tc.namespace}}},
			metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s may %s %s (namespace %q): %v, want %v", fitgateUser, tc.verb, tc.resource, tc.namespace, sar.Status.Allowed, tc.allowed)
		}
	}
	figure(t, "security: the suite's fitgate ran as %s", identity)
}

// recorder keeps every response body a client receives, and each
// request's URL and Accept header.
type recorder struct {
	mu       sync.Mutex
	bodies   bytes.Buffer
	requests []string
}

func (r *recorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		r.requests = append(r.requests, req.URL.Path+"?"+req.URL.RawQuery+" Accept: "+req.Header.Get("Accept"))
		r.mu.Unlock()
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body = &teeBody{ReadCloser: resp.Body, r: r}
		}
		return resp, err
	})
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Contains(r.bodies.Bytes(), []byte(s))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type teeBody struct {
	io.ReadCloser
	r *recorder
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.r.mu.Lock()
	b.r.bodies.Write(p[:n])
	b.r.mu.Unlock()
	return n, err
}

// TestSecretAndConfigMapCacheHoldsMetadataOnly: a cache (what fitgate
// serve runs) over Secrets and ConfigMaps made both before it starts (the
// LIST) and after (the WATCH).
//
//   - Data written through the API (data, binaryData) never reaches
//     fitgate at all: its requests ask for metadata only.
//   - kubectl apply (client-side) copies the whole object, data included,
//     into the last-applied-configuration annotation, and annotations are
//     metadata: that copy does cross the wire, and the cache's transform
//     drops it (with every other annotation and label) before anything is
//     stored. What the cache holds is names only.
func TestSecretAndConfigMapCacheHoldsMetadataOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := namespace(t, "secrets", "")
	dataValue := "s3cret-" + rand.String(16)     // in data only
	appliedValue := "applied-" + rand.String(16) // in kubectl apply's annotation too
	encoded := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	make := func(phase string) {
		t.Helper()
		manifest := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: applied-%[1]s, namespace: %[2]s, labels: {team: x}}
stringData: {password: %[3]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: applied-%[1]s, namespace: %[2]s}
data: {setting: %[3]s}
`, phase, ns, appliedValue)
		file := filepath.Join(t.TempDir(), "objs.yaml")
		must(t, os.WriteFile(file, []byte(manifest), 0o600))
		if out, err := kubectl(ctx, "apply", "-f", file); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		_, err := cp.Client().CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "created-" + phase},
			Data: map[string][]byte{"token": []byte(dataValue)}}, metav1.CreateOptions{})
		must(t, err)
		_, err = cp.Client().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "created-" + phase},
			Data: map[string]string{"k": dataValue}, BinaryData: map[string][]byte{"b": []byte(dataValue)}}, metav1.CreateOptions{})
		must(t, err)
	}
	make("before")

	rec := &recorder{}
	cfg := cp.RESTConfig()
	cfg.Wrap(rec.wrap)
	client, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	meta, err := metadata.NewForConfig(cfg)
	must(t, err)
	var mu sync.Mutex
	held := map[string]runtime.Object{}
	cache := webhook.NewCache(client, meta, webhook.CacheOptions{Observe: func(kind feasibility.Kind, obj runtime.Object, deleted bool) {
		if kind != feasibility.KindSecret && kind != feasibility.KindConfigMap {
			return
		}
		o := obj.(metav1.Object)
		mu.Lock()
		defer mu.Unlock()
		held[string(kind)+"/"+o.GetNamespace()+"/"+o.GetName()] = obj.DeepCopyObject()
	}})
	cacheCtx, stop := context.WithCancel(ctx)
	defer stop()
	must(t, cache.Start(cacheCtx))
	if !cache.WaitForSync(ctx) {
		t.Fatal("cache not synced")
	}
	make("after")
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := 0
		for k := range held { // not kube-root-ca.crt, which every namespace gets
			if strings.Contains(k, "/"+ns+"/applied-") || strings.Contains(k, "/"+ns+"/created-") {
				n++
			}
		}
		mu.Unlock()
		if n == 8 { // 2 phases × (applied Secret and ConfigMap, created Secret and ConfigMap)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache holds %d of this test's 8 objects", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, leak := range []string{dataValue, encoded(dataValue)} {
		if rec.contains(leak) {
			t.Errorf("fitgate's clients received %q, Secret or ConfigMap data", leak)
		}
	}
	rec.mu.Lock()
	for _, r := range rec.requests {
		if (strings.Contains(r, "/secrets") || strings.Contains(r, "/configmaps")) && !strings.Contains(r, "as=PartialObjectMetadata") {
			t.Errorf("a request for more than metadata: %s", r)
		}
	}
	requests := len(rec.requests)
	rec.mu.Unlock()
	annotationOnWire := rec.contains(appliedValue) || rec.contains(encoded(appliedValue))
	mu.Lock()
	defer mu.Unlock()
	for k, obj := range held {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			t.Errorf("%s held as %T, not metadata", k, obj)
			continue
		}
		if m.Annotations != nil || m.Labels != nil || m.ManagedFields != nil || m.OwnerReferences != nil {
			t.Errorf("%s holds more than its name: %+v", k, m.ObjectMeta)
		}
		if dump := fmt.Sprintf("%+v", m); strings.Contains(dump, appliedValue) || strings.Contains(dump, dataValue) {
			t.Errorf("%s holds data: %s", k, dump)
		}
	}
	figure(t, "security: %d Secrets and ConfigMaps cached, names only; data written through the API appeared in none of the %d responses fitgate's clients received; kubectl apply's last-applied annotation reached the client: %v (dropped before caching)",
		len(held), requests, annotationOnWire)
}

// TestServedTLS probes the real binary's listener: TLS 1.2 at least, no
// CBC or RSA-key-exchange suite, no client certificate asked for.
func TestServedTLS(t *testing.T) {
	addr := strings.TrimSuffix(strings.TrimPrefix(fg.URL(), "https://"), "/validate")
	dial := func(cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.InsecureSkipVerify = true //nolint:gosec // the certificate is not under test
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec // probing
		t.Error("TLS 1.1 accepted")
	}
	for _, id := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256} {
		if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}}); err == nil {
			t.Errorf("weak suite %s accepted", tls.CipherSuiteName(id))
		}
	}
	state, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 without a client certificate: %v", err)
	}
	figure(t, "security: the served webhook negotiates %s with a default TLS 1.2 client, refuses TLS 1.1 and CBC suites, asks no client certificate",
		tls.CipherSuiteName(state.CipherSuite))
}

// TestSelfSignedCertificateFilesArePrivate: fitgate serve --register-url
// without --ca-file generates a CA, a serving certificate and its key;
// none of them, nor their directory, is readable by anyone but fitgate's
// user.
func TestSelfSignedCertificateFilesArePrivate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "fresh", "certs")
	name := "fitgate-selfsigned-" + strings.ToLower(rand.String(5))
	t.Cleanup(func() { _ = webhook.DeleteWebhookConfiguration(context.Background(), cp.Client(), name) })
	bin := fg.bin
	p, err := newFitgateProc(bin, cp.KubeconfigPath(), dir, filepath.Join(t.TempDir(), "fitgate.log"))
	must(t, err)
	// Registered, it would judge requests alongside the suite's fitgate;
	// off by default and exempting everything that matters, briefly.
	p.args = []string{"--register-url", p.URL(), "--webhook-config-name", name, "--unregister-on-exit", "--default-mode", "off", "--default-pod-mode", "off"}
	must(t, p.Start())
	defer func() {
		if _, err := p.Stop(); err != nil {
			t.Errorf("stopping: %v\n%s", err, p.LogTail(20))
		}
	}()
	files := []string{"ca.crt", "tls.crt", "tls.key"}
	for {
		all := true
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				all = false
			}
		}
		if all {
			break
		}
		if exited, err := p.Exited(); exited {
			t.Fatalf("fitgate exited: %v\n%s", err, p.LogTail(20))
		}
		if ctx.Err() != nil {
			t.Fatalf("no certificates in %s", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, p.WaitReady(ctx)) // the files are complete once it serves
	var modes []string
	for _, f := range append([]string{"."}, files...) {
		fi, err := os.Stat(filepath.Join(dir, f))
		must(t, err)
		modes = append(modes, fmt.Sprintf("%s %v", f, fi.Mode()))
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: readable by others", f, fi.Mode())
		}
	}
	figure(t, "security: self-signed certificate files: %s", strings.Join(modes, ", "))
}

// TestExemptNamespacesAvoidDeadlock: kube-system and fitgate's own
// namespace are never judged, so even with failurePolicy Fail and fitgate
// down, the pods that would bring fitgate (or the cluster's own
// components) back are still admitted.
func TestExemptNamespacesAvoidDeadlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client()
	judged := namespace(t, "judged", "")
	addNode(ctx, t, "exempt-"+strings.ToLower(rand.String(6)), "4", nil) // 640 cpu fits on no node: permanent
	huge := func(ns, name string) *corev1.Pod { return smallPod(ns, name, "640", nil) }
	id := strings.ToLower(rand.String(5))
	created := func(ns, name string) {
		t.Cleanup(func() { _ = c.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}

	// Up: the same impossible pod is denied in an ordinary namespace and
	// admitted, without a word, in the exempt ones.
	p := newProber(t)
	if v := p.dryRun(ctx, huge(judged, "huge")); !v.denied {
		t.Fatalf("ordinary namespace: %v, want denied", v)
	}
	for _, ns := range []string{"kube-system", "kube-node-lease", fitgateNamespace} {
		v := p.dryRun(ctx, huge(ns, "huge-"+id))
		if v.denied || v.err != nil || len(v.warnings) > 0 {
			t.Errorf("%s with fitgate up: %v, want allowed without a warning", ns, v)
		}
	}

	// Down, with failurePolicy Fail: ordinary namespaces are blocked (so
	// the configuration really is in force), the exempt ones are not.
	must(t, register(ctx, "Fail"))
	defer func() {
		must(t, register(context.Background(), "Ignore"))
	}()
	if _, err := fg.Stop(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		must(t, fg.Start())
		must(t, fg.WaitReady(ctx))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.CoreV1().Pods(judged).Create(ctx, smallPod(judged, "blocked", "100m", nil), metav1.CreateOptions{})
		if err != nil && strings.Contains(err.Error(), "failed calling webhook") {
			break
		}
		if err == nil {
			created(judged, "blocked")
			_ = c.CoreV1().Pods(judged).Delete(ctx, "blocked", metav1.DeleteOptions{})
		}
		if time.Now().After(deadline) {
			t.Fatalf("with fitgate down and failurePolicy Fail an ordinary pod was not refused: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ns := range []string{"kube-system", fitgateNamespace} {
		name := "fitgate-down-" + id
		if _, err := c.CoreV1().Pods(ns).Create(ctx, smallPod(ns, name, "100m", nil), metav1.CreateOptions{}); err != nil {
			t.Errorf("%s with fitgate down and failurePolicy Fail: %v", ns, err)
			continue
		}
		created(ns, name)
	}
	figure(t, "security: with fitgate down and failurePolicy Fail, pods in kube-system and %s are still admitted; ordinary namespaces are refused", fitgateNamespace)
}
