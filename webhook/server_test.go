package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// writeCert writes a self-signed serving pair for 127.0.0.1 into dir and
// returns its serial number.
func writeCert(t *testing.T, dir string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	// Write to temporary names and rename, as kubelet's atomic writer does,
	// so the watcher never sees half a pair.
	for name, data := range map[string][]byte{
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	} {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return serial
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

func servingSerial(addr string, maxVersion uint16) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion}) //nolint:gosec // test
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func review(t *testing.T, addr string) (*admissionv1.AdmissionReview, error) {
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metaTypeReview,
		Request: &admissionv1.AdmissionRequest{UID: "1", Kind: newRequest(t, admissionv1.Create, pod(nsDefault, "p", "1"), nil).Kind,
			Operation: admissionv1.Create, Object: raw(t, pod(nsDefault, "p", "1"))},
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
	resp, err := client.Post("https://"+addr+ValidatePath, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

func TestServerReadinessTLSReloadAndShutdown(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	var cacheSynced atomic.Bool
	release := make(chan struct{})
	var slowStarted atomic.Bool
	handler := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		if req.Name == "slow" {
			slowStarted.Store(true)
			<-release
		}
		return admission.Allowed("")
	})
	srv := NewServer(ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir,
		HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", PprofAddr: "127.0.0.1:0", ShutdownDelay: 300 * time.Millisecond,
		CertPollInterval: 20 * time.Millisecond, CertWatchInterval: 100 * time.Millisecond}, handler, nil)
	srv.AddReadyCheck("cache", func(*http.Request) error {
		if !cacheSynced.Load() {
			return errors.New("cache not synced")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	eventually(t, "health server up", func() error {
		if srv.HealthAddr() == "" {
			return errors.New("no address yet")
		}
		return nil
	})
	health := "http://" + srv.HealthAddr()
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	if code, body, err := get(health + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz = %d %s %v", code, body, err)
	}
	code, body, err := get(health + "/readyz?verbose")
	if err != nil || code == 200 || !strings.Contains(body, "tls failed") || !strings.Contains(body, "cache failed") {
		t.Fatalf("/readyz before TLS and sync = %d %q %v", code, body, err)
	}

	serial1 := writeCert(t, dir)
	eventually(t, "TLS loaded", func() error {
		_, body, err := get(health + "/readyz?verbose")
		if err != nil || !strings.Contains(body, "[+]tls ok") || !strings.Contains(body, "[+]webhook ok") {
			return fmt.Errorf("%v %s", err, body)
		}
		return nil
	})
	if code, _, _ := get(health + "/readyz"); code == 200 {
		t.Fatal("ready before the cache synced")
	}
	cacheSynced.Store(true)
	eventually(t, "ready", func() error {
		if code, body, err := get(health + "/readyz"); err != nil || code != 200 {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready() not closed")
	}
	if got, err := servingSerial(addr, 0); err != nil || got.Cmp(serial1) != 0 {
		t.Fatalf("serving serial %v (%v), want %v", got, err, serial1)
	}
	if _, err := servingSerial(addr, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	rev, err := review(t, addr)
	if err != nil || rev.Response == nil || !rev.Response.Allowed || rev.Response.UID != "1" {
		t.Fatalf("admission review: %+v %v", rev, err)
	}
	if code, body, err := get("http://" + srv.MetricsAddr() + "/metrics"); err != nil || code != 200 ||
		!strings.Contains(body, `controller_runtime_webhook_requests_total{code="200",webhook="/validate"} 1`) {
		t.Fatalf("/metrics = %d %v\n%s", code, err, body)
	}
	if code, body, err := get("http://" + srv.PprofAddr() + "/debug/pprof/heap?debug=1"); err != nil || code != 200 ||
		!strings.Contains(body, "heap profile") {
		t.Fatalf("/debug/pprof/heap = %d %v\n%.200s", code, err, body)
	}

	// Hot reload.
	serial2 := writeCert(t, dir)
	eventually(t, "certificate reloaded", func() error {
		got, err := servingSerial(addr, 0)
		if err != nil {
			return err
		}
		if got.Cmp(serial2) != 0 {
			return fmt.Errorf("still serving %v", got)
		}
		return nil
	})

	// Graceful shutdown: an in-flight request completes.
	type result struct {
		rev *admissionv1.AdmissionReview
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview,
			Request: &admissionv1.AdmissionRequest{UID: "2", Name: "slow", Operation: admissionv1.Create}})
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test
		resp, err := client.Post("https://"+addr+ValidatePath, "application/json", bytes.NewReader(body))
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&out)
		inflight <- result{&out, err}
	}()
	eventually(t, "slow request started", func() error {
		if !slowStarted.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	cancel()
	eventually(t, "readiness fails while shutting down", func() error {
		if code, _, err := get(health + "/readyz"); err == nil && code == 200 {
			return errors.New("still ready")
		}
		return nil
	})
	time.Sleep(400 * time.Millisecond) // past ShutdownDelay: the listener is closing
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	r := <-inflight
	if r.err != nil || r.rev.Response == nil || !r.rev.Response.Allowed {
		t.Fatalf("in-flight request: %+v %v", r.rev, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after draining")
	}
	done <- nil // for the deferred receive
}

func TestServerTLS13(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	port := freePort(t)
	srv := NewServer(ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir, TLSMinVersion: tls.VersionTLS13},
		admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "serving", func() error { _, err := servingSerial(addr, 0); return err })
	if _, err := servingSerial(addr, tls.VersionTLS12); err == nil {
		t.Error("TLS 1.2 accepted with a 1.3 minimum")
	}
}

func TestParseTLSVersion(t *testing.T) {
	if v, err := ParseTLSVersion("1.3"); err != nil || v != tls.VersionTLS13 {
		t.Error(v, err)
	}
	if v, err := ParseTLSVersion("1.2"); err != nil || v != tls.VersionTLS12 {
		t.Error(v, err)
	}
	if _, err := ParseTLSVersion("1.1"); err == nil {
		t.Error("1.1 accepted")
	}
}
