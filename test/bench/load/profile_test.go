package main

// BenchmarkAdmission profiles fitgate's admission path in-process, without
// a control plane (the load program's -profile flag profiles the real
// `fitgate serve`). It builds what `fitgate serve`
// builds from the webhook package's exported API (a Handler over a locked
// feasibility snapshot of the same synthetic cluster, served by
// webhook.NewServer over TLS on loopback) and runs only with -bench:
//
//	go test ./test/bench/load -run '^$' -bench Admission -benchtime 5s -cpuprofile /tmp/cpu.out
//	go tool pprof -top /tmp/cpu.out
//
// Sub-benchmarks: engine (feasibility.Check under the snapshot's read
// lock, what the cache's Check does), handler (Handler.Handle: decoding
// plus the engine plus the decision) and https (the whole server: TLS,
// HTTP, the envelope check, controller-runtime's admission.Webhook and
// the handler, driven by the same client as the load program, so the
// client shows in the profile too: look at the fitgate/webhook,
// controller-runtime and crypto/tls server frames).
//
// Unlike the real cache, the snapshot holds the objects unstripped.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/synth"
	"github.com/fitgate/fitgate/webhook"
)

const profileNS = "load-bench"

// snapshotSource is a webhook.SnapshotSource over a fixed, fully known
// snapshot, as the cache is once synced.
type snapshotSource struct {
	snap   *webhook.LockedSnapshot
	labels map[string]map[string]string
}

func (s *snapshotSource) Check(w *feasibility.Workload, opts *feasibility.Options) (*feasibility.Report, bool) {
	return s.snap.Check(w, opts), true
}

func (s *snapshotSource) NamespaceLabels(name string) (map[string]string, bool) {
	l, ok := s.labels[name]
	return l, ok
}

// profileSetup is the cluster of the load program's defaults, with what
// prepareNamespace adds to every namespace.
func profileSetup(b *testing.B) (*webhook.Handler, scenario, scenario) {
	b.Helper()
	c := synth.Generate(synth.Config{Seed: 1, Nodes: 500, Pods: 3000})
	var objs []k8sruntime.Object
	labels := map[string]map[string]string{}
	nsNames := []string{profileNS}
	for _, ns := range c.Namespaces {
		nsNames = append(nsNames, ns.Name)
	}
	for _, name := range nsNames {
		l := map[string]string{corev1.LabelMetadataName: name}
		labels[name] = l
		objs = append(objs,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: serviceAcct}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: rootCAConfig}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: appConfigMap}})
	}
	for _, n := range c.Nodes {
		objs = append(objs, n)
	}
	for _, p := range c.Pods {
		objs = append(objs, p)
	}
	snap, err := feasibility.NewSnapshotFrom(objs...)
	if err != nil {
		b.Fatal(err)
	}
	snap.MarkKnown(feasibility.AllKinds...)
	h := &webhook.Handler{
		Source:  &snapshotSource{snap: webhook.NewLockedSnapshot(snap), labels: labels},
		Policy:  webhook.DefaultPolicy("fitgate-system"),
		Options: &feasibility.Options{KnownSchedulers: []string{feasibility.DefaultSchedulerName}},
		Budget:  webhook.BudgetFor(webhook.DefaultTimeoutSeconds),
		Metrics: webhook.NewMetrics(),
	}
	pod, err := offlinePod(profileNS)
	if err != nil {
		b.Fatal(err)
	}
	dep, err := offlineDeployment(profileNS)
	if err != nil {
		b.Fatal(err)
	}
	pods, mix, err := newScenarios(pod, dep)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s; %s", pods.name, mix.name)
	// What fitgate serve logs with: JSON at level warn.
	crlog.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return h, pods, mix
}

func BenchmarkAdmission(b *testing.B) {
	h, pods, mix := profileSetup(b)
	podKind := pods.kinds[0]
	decodeReq := func(b *testing.B, body []byte) admission.Request {
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &ar); err != nil {
			b.Fatal(err)
		}
		return admission.Request{AdmissionRequest: *ar.Request}
	}

	b.Run("engine", func(b *testing.B) {
		req := decodeReq(b, podKind.tmpl.render(nil, "uid", "checkout-1", "obj-uid"))
		var pod corev1.Pod
		if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
			b.Fatal(err)
		}
		w, err := feasibility.WorkloadFromObject(&pod)
		if err != nil {
			b.Fatal(err)
		}
		w.Namespace = profileNS
		src := h.Source
		b.ReportAllocs()
		for b.Loop() {
			rep, _ := src.Check(w, h.Options)
			if rep.Verdict != feasibility.Fits {
				b.Fatalf("verdict %s: %+v", rep.Verdict, rep.Reasons)
			}
		}
	})

	b.Run("handler", func(b *testing.B) {
		req := decodeReq(b, podKind.tmpl.render(nil, "uid", "checkout-1", "obj-uid"))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp := h.Handle(ctx, req)
			if !resp.Allowed || len(resp.Warnings) > 0 {
				b.Fatalf("not allowed cleanly: %+v", resp)
			}
		}
	})

	for _, sc := range []struct {
		name string
		sc   scenario
	}{{"https-pods", pods}, {"https-mix", mix}} {
		b.Run(sc.name, func(b *testing.B) {
			url, caPEM := startInProcessServer(b, h)
			const conc = 4
			rc, err := newReviewClient(url, caPEM, conc)
			if err != nil {
				b.Fatal(err)
			}
			defer rc.close()
			var seq atomic.Int64
			b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0))) // conc client goroutines
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var buf []byte
				for pb.Next() {
					n := seq.Add(1)
					kind := sc.sc.kinds[int(n)%len(sc.sc.kinds)]
					uid := fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", n)
					buf = kind.tmpl.render(buf, uid, fmt.Sprintf("checkout-7d9c6b8f5d-%06d", n), fmt.Sprintf("obj-%d", n))
					if _, warning, err := rc.send(context.Background(), buf, uid); err != nil || warning != "" {
						b.Errorf("%v %s", err, warning)
						return
					}
				}
			})
		})
	}
}

// startInProcessServer serves h with webhook.NewServer over TLS on a free
// loopback port and returns its URL and CA.
func startInProcessServer(b *testing.B, h *webhook.Handler) (string, []byte) {
	b.Helper()
	caPEM, certPEM, keyPEM, err := selfSignedPair()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	srv := webhook.NewServer(webhook.ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir,
		CertPollInterval: 10 * time.Millisecond}, h, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("server: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		b.Fatalf("server exited: %v", err)
	case <-time.After(10 * time.Second):
		b.Fatal("server not ready within 10s")
	}
	return fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.ValidatePath), caPEM
}

// selfSignedPair makes a throwaway CA and a serving certificate for
// 127.0.0.1 signed by it (ECDSA P-256, as fitgate's own).
func selfSignedPair() (caPEM, certPEM, keyPEM []byte, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "load-bench-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
