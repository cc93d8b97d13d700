package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/webhook"
)

// noopConfigName is the configuration of the no-op webhook in part 2.
const noopConfigName = "fitgate-load-bench-noop"

// noopWebhook is the cheapest validating webhook there can be: it reads
// the review, copies the request's uid into an "allowed" response and
// decodes nothing else. Registered exactly as fitgate registers itself
// (same rules, namespace selector and match condition, failurePolicy
// Fail, HTTP/1.1 over TLS), it measures what calling any webhook costs
// the API server: the floor under part 2's ratio.
type noopWebhook struct {
	srv   *http.Server
	url   string
	calls atomic.Int64
	bad   atomic.Int64
}

var (
	reviewRequestKey = []byte(`"request":{`)
	reviewUIDKey     = []byte(`"uid":"`)
)

// startNoopWebhook serves the no-op webhook on a free loopback port.
func startNoopWebhook(cp *controlplane.ControlPlane) (*noopWebhook, error) {
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &noopWebhook{url: fmt.Sprintf("https://%s%s", ln.Addr(), webhook.ValidatePath)}
	n.srv = &http.Server{
		Handler:           n,
		ReadHeaderTimeout: 10 * time.Second,
		// fitgate serves HTTP/1.1 only by default; so does its floor.
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go n.srv.ServeTLS(ln, "", "") //nolint:errcheck // ends with Close
	return n, nil
}

func (n *noopWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.calls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		n.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	uid, ok := reviewUID(body)
	if !ok {
		n.bad.Add(1)
		http.Error(w, "no request uid in the review", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	resp := make([]byte, 0, 128)
	resp = append(resp, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"`...)
	resp = append(resp, uid...)
	resp = append(resp, `","allowed":true}}`...)
	w.Write(resp) //nolint:errcheck // the API server sees a failed call
}

// reviewUID finds request.uid without decoding the review: the API server
// writes the request's uid as its first field, and a uid needs no escapes.
func reviewUID(body []byte) ([]byte, bool) {
	i := bytes.Index(body, reviewRequestKey)
	if i < 0 {
		return nil, false
	}
	rest := body[i+len(reviewRequestKey):]
	if !bytes.HasPrefix(rest, reviewUIDKey) {
		return nil, false
	}
	rest = rest[len(reviewUIDKey):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
}

func (n *noopWebhook) close() { n.srv.Close() }

// register applies the no-op webhook's configuration and waits until the
// API server calls it.
func (n *noopWebhook) register(ctx context.Context, cp *controlplane.ControlPlane, client kubernetes.Interface, probeNS string) error {
	cfg, err := webhook.NewWebhookConfiguration(webhook.WebhookConfigOptions{
		Name: noopConfigName, URL: n.url, CABundle: cp.CACertPEM(),
		FailurePolicy: admissionregistrationv1.Fail,
		// What fitgate serve leaves out by default (--exempt-namespaces).
		ExemptNamespaces: []string{"kube-system", "kube-node-lease", "fitgate"},
	})
	if err != nil {
		return err
	}
	if err := webhook.ApplyWebhookConfiguration(ctx, client, cfg); err != nil {
		return err
	}
	return n.waitCalled(ctx, client, probeNS, true)
}

// unregister deletes the configuration and waits until the API server no
// longer calls the webhook.
func (n *noopWebhook) unregister(ctx context.Context, client kubernetes.Interface, probeNS string) error {
	err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, noopConfigName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return n.waitCalled(ctx, client, probeNS, false)
}

// waitCalled makes dry-run creates of a pod until one reaches the webhook
// (called) or one is admitted without reaching it (!called).
func (n *noopWebhook) waitCalled(ctx context.Context, client kubernetes.Interface, ns string, called bool) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		before := n.calls.Load()
		_, err := client.CoreV1().Pods(ns).Create(ctx, appPod(ns, "noop-probe"), dryRun)
		switch reached := n.calls.Load() > before; {
		case err != nil:
			last = err
		case reached == called:
			return nil
		case called:
			last = errors.New("a dry-run create was admitted without calling the no-op webhook")
		default:
			last = errors.New("a dry-run create still called the no-op webhook")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no-op webhook (called=%v) not in effect within 60s: %v", called, last)
}
