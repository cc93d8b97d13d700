package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// The shapes controller-runtime expects: manager.Runnable,
// manager.LeaderElectionRunnable and healthz.Checker.
var (
	_ interface{ Start(context.Context) error } = (*Rotator)(nil)
	_ interface{ NeedLeaderElection() bool }    = (*Rotator)(nil)
	_ func(*http.Request) error                 = (*Rotator)(nil).ReadyCheck
)

var conflict = apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, testSecret, errors.New("injected"))

// newTestRotator matches testConfig(), so material from Reconcile with
// testConfig() is what this rotator would issue.
func newTestRotator(t *testing.T, c kubernetes.Interface, clk *fakeClock) *Rotator {
	return &Rotator{
		Client:            c,
		Namespace:         testNamespace,
		SecretName:        testSecret,
		ServiceName:       testService,
		WebhookConfigName: testWebhooks,
		CertDir:           filepath.Join(t.TempDir(), "certs"),
		Validity:          3 * time.Hour,
		CAValidity:        10 * time.Hour,
		Now:               clk.Now,
		Log:               testr.NewWithOptions(t, testr.Options{Verbosity: 1}),
	}
}

func mustSync(t *testing.T, r *Rotator) {
	t.Helper()
	if err := r.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// consistent checks the invariant a successful Sync establishes: the Secret
// is settled at now (Reconcile has nothing to do) and its bundle trusts its
// serving pair, CertDir holds that pair with tight modes, and every webhook
// trusts the CA bundle. The serving pair may be inside its rotation window,
// while its CA is being replaced; NeedsRotation would flag that.
func consistent(c kubernetes.Interface, r *Rotator, now time.Time) (Material, error) {
	ctx := context.Background()
	sec, err := c.CoreV1().Secrets(testNamespace).Get(ctx, testSecret, metav1.GetOptions{})
	if err != nil {
		return Material{}, err
	}
	m := MaterialFromSecret(sec)
	cas, err := ParseCertificatesPEM(m.CABundle)
	if err != nil {
		return m, fmt.Errorf("Secret's CA bundle: %w", err)
	}
	if _, _, why := checkServing(cas, m.Cert, m.Key, ServiceDNSNames(testService, testNamespace), nil, now); why != "" {
		return m, fmt.Errorf("Secret's serving pair: %s", why)
	}
	if p, err := Reconcile(m, r.cfg, now); err != nil || p.Action != ActionNone {
		return m, fmt.Errorf("Secret not settled: %v (%s), %v", p.Action, p.Reason, err)
	}
	for name, want := range map[string][]byte{"tls.crt": m.Cert, "tls.key": m.Key} {
		path := filepath.Join(r.CertDir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			return m, err
		}
		if !bytes.Equal(got, want) {
			return m, fmt.Errorf("%s differs from the Secret", name)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			return m, fmt.Errorf("%s has mode %v", name, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(r.CertDir); fi.Mode().Perm() != 0o700 {
		return m, fmt.Errorf("cert dir has mode %v", fi.Mode().Perm())
	}
	vwc, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, testWebhooks, metav1.GetOptions{})
	if err != nil {
		return m, err
	}
	for _, w := range vwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, m.CABundle) {
			return m, fmt.Errorf("webhook %s has a stale caBundle", w.Name)
		}
	}
	return m, nil
}

func assertConsistent(t *testing.T, c kubernetes.Interface, r *Rotator, now time.Time) Material {
	t.Helper()
	m, err := consistent(c, r, now)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSyncBootstrap(t *testing.T) {
	cs := newFakeClient(webhookConfig())
	r := newTestRotator(t, cs, newFakeClock(t0))
	if r.IsReady() || r.ReadyCheck(nil) == nil {
		t.Fatal("ready before the first Sync")
	}
	mustSync(t, r)

	m := assertConsistent(t, cs, r, t0)
	sec := getSecret(t, cs)
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q", sec.Type)
	}
	if len(m.CAKey) == 0 {
		t.Error("ca.key not stored")
	}
	if err := verifyServing(t, m.Cert, m.CABundle, "fitgate.fitgate-system.svc", t0); err != nil {
		t.Errorf("API server would reject the certificate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.CertDir, "ca.key")); !os.IsNotExist(err) {
		t.Error("the CA key must not be written to disk")
	}
	if !r.IsReady() || r.ReadyCheck(nil) != nil {
		t.Error("not ready after a successful Sync")
	}
	select {
	case <-r.Ready():
	default:
		t.Error("Ready() not closed")
	}
}

func TestSyncIsIdempotent(t *testing.T) {
	cs := newFakeClient(webhookConfig())
	clk := newFakeClock(t0)
	r := newTestRotator(t, cs, clk)
	mustSync(t, r)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, n := range []string{"tls.crt", "tls.key"} {
		if err := os.Chtimes(filepath.Join(r.CertDir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	cs.ClearActions()

	clk.Set(t0.Add(time.Hour))
	mustSync(t, r)

	for _, verb := range []string{"create", "update"} {
		for _, res := range []string{"secrets", "validatingwebhookconfigurations"} {
			if n := countActions(cs, verb, res); n != 0 {
				t.Errorf("%d %s %s, want none", n, verb, res)
			}
		}
	}
	for _, n := range []string{"tls.crt", "tls.key"} {
		if fi, _ := os.Stat(filepath.Join(r.CertDir, n)); !fi.ModTime().Equal(old) {
			t.Errorf("%s rewritten although unchanged", n)
		}
	}
}

func TestSyncAdoptsExistingSecret(t *testing.T) {
	// A Secret someone pre-created (say, an empty Opaque one from a chart)
	// is filled in, keeping its type, which is immutable, and other keys.
	pre := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret, ResourceVersion: "1"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"other": []byte("kept")},
	}
	cs := newFakeClient(webhookConfig(), pre)
	r := newTestRotator(t, cs, newFakeClock(t0))
	mustSync(t, r)
	assertConsistent(t, cs, r, t0)
	sec := getSecret(t, cs)
	if sec.Type != corev1.SecretTypeOpaque || string(sec.Data["other"]) != "kept" {
		t.Errorf("type %q, other %q", sec.Type, sec.Data["other"])
	}
	if n := countActions(cs, "create", "secrets"); n != 0 {
		t.Errorf("%d creates, want 0", n)
	}
}

func TestSyncSecretConflict(t *testing.T) {
	m0 := mustReconcile(t, Material{}, testConfig(), t0).Material
	now := t0.Add(2 * time.Hour) // m0's serving certificate is due
	winner := mustReconcile(t, m0, testConfig(), now).Material

	tests := []struct {
		name string
		// otherReplica, if set, is stored behind the rotator's back when
		// its first Update is rejected.
		otherReplica *Material
		wantUpdates  int
	}{
		// The re-read finds the same stale material, so it tries again.
		{name: "spurious conflict", wantUpdates: 2},
		// The re-read finds a valid Secret, so it adopts it and writes
		// nothing: no fighting.
		{name: "another replica renewed first", otherReplica: &winner, wantUpdates: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFakeClient(webhookConfig(), secretWith(m0))
			failOnce(cs, "update", "secrets", func() {
				if tt.otherReplica == nil {
					return
				}
				s := secretWith(*tt.otherReplica)
				s.ResourceVersion = "500"
				if err := cs.Tracker().Update(secretsGVR, s, testNamespace); err != nil {
					t.Errorf("storing the other replica's Secret: %v", err)
				}
			}, conflict)
			r := newTestRotator(t, cs, newFakeClock(now))
			mustSync(t, r)

			if n := countActions(cs, "update", "secrets"); n != tt.wantUpdates {
				t.Errorf("%d Secret updates, want %d", n, tt.wantUpdates)
			}
			if n := countActions(cs, "get", "secrets"); n != 2 {
				t.Errorf("%d Secret reads, want 2 (a re-read after the conflict)", n)
			}
			m := assertConsistent(t, cs, r, now)
			if tt.otherReplica != nil && !m.Equal(*tt.otherReplica) {
				t.Error("did not adopt the other replica's material")
			}
		})
	}
}

func TestSyncCreateLosesRace(t *testing.T) {
	winner := mustReconcile(t, Material{}, testConfig(), t0).Material
	cs := newFakeClient(webhookConfig())
	failOnce(cs, "create", "secrets", func() {
		if err := cs.Tracker().Create(secretsGVR, secretWith(winner), testNamespace); err != nil {
			t.Errorf("storing the other replica's Secret: %v", err)
		}
	}, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, testSecret))
	r := newTestRotator(t, cs, newFakeClock(t0))
	mustSync(t, r)

	if m := assertConsistent(t, cs, r, t0); !m.Equal(winner) {
		t.Error("did not adopt the winner's material")
	}
	if n := countActions(cs, "update", "secrets"); n != 0 {
		t.Errorf("%d Secret updates after adopting a valid Secret, want 0", n)
	}
}

// TestRotatorsRace has two replicas read the same state, then write at
// once. Exactly one write may succeed, and both must end up serving the
// same material.
func TestRotatorsRace(t *testing.T) {
	m0 := mustReconcile(t, Material{}, testConfig(), t0).Material
	beforeStage := walk(t, testConfig(), 0, 2*time.Hour, 4*time.Hour, 6*time.Hour)
	staged := mustReconcile(t, beforeStage, testConfig(), t0.Add(6*time.Hour+40*time.Minute)).Material
	tests := []struct {
		name        string
		secret      *Material
		now         time.Time
		wantCreates int // attempted, including the loser's
		wantUpdates int
		wantStaged  bool
	}{
		{name: "both bootstrap", now: t0, wantCreates: 2},
		{name: "both renew", secret: &m0, now: t0.Add(2 * time.Hour), wantUpdates: 2},
		{name: "both stage the next CA", secret: &beforeStage, now: t0.Add(6*time.Hour + 40*time.Minute), wantUpdates: 2, wantStaged: true},
		{name: "both promote the staged CA", secret: &staged, now: t0.Add(6*time.Hour + 50*time.Minute), wantUpdates: 2},
		{name: "both rotate an expired CA", secret: &m0, now: t0.Add(10 * time.Hour), wantUpdates: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{webhookConfig()}
			if tt.secret != nil {
				objs = append(objs, secretWith(*tt.secret))
			}
			cs := newFakeClient(objs...)
			client := gatedClient{Interface: cs, gate: newGate(2)}
			clk := newFakeClock(tt.now)
			a, b := newTestRotator(t, client, clk), newTestRotator(t, client, clk)

			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, r := range []*Rotator{a, b} {
				wg.Go(func() { errs[i] = r.Sync(context.Background()) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}

			ma := assertConsistent(t, cs, a, tt.now)
			mb := assertConsistent(t, cs, b, tt.now)
			if !ma.Equal(mb) {
				t.Error("replicas disagree")
			}
			// Exactly one staged CA: the loser adopted the winner's rather
			// than appending its own.
			if got := len(ma.NextCAKey) > 0; got != tt.wantStaged {
				t.Errorf("CA staged = %v, want %v", got, tt.wantStaged)
			}
			if tt.wantStaged {
				if n, want := len(mustCerts(t, ma.CABundle)), len(mustCerts(t, tt.secret.CABundle))+1; n != want {
					t.Errorf("bundle holds %d CAs, want %d", n, want)
				}
				if !bytes.Equal(ma.Cert, tt.secret.Cert) || !bytes.Equal(ma.CAKey, tt.secret.CAKey) {
					t.Error("staging changed the serving pair or the signing CA")
				}
			}
			if tt.secret != nil && len(tt.secret.NextCAKey) > 0 && !bytes.Equal(ma.CAKey, tt.secret.NextCAKey) {
				t.Error("the staged CA was not the one promoted")
			}
			if n := countActions(cs, "create", "secrets"); n != tt.wantCreates {
				t.Errorf("%d Secret creates, want %d", n, tt.wantCreates)
			}
			if n := countActions(cs, "update", "secrets"); n != tt.wantUpdates {
				t.Errorf("%d Secret updates, want %d (one of them rejected)", n, tt.wantUpdates)
			}
		})
	}
}

// TestSyncRotationLifecycle drives one rotator through renewals and a CA
// rotation with a fake clock, checking what it publishes at each step. The
// property that keeps webhook calls working: every certificate it writes
// to disk is trusted by the bundle it had published before, so an API
// server that has not yet seen the latest bundle still accepts it.
func TestSyncRotationLifecycle(t *testing.T) {
	cs := newFakeClient(webhookConfig())
	clk := newFakeClock(t0)
	r := newTestRotator(t, cs, clk)
	host := ServiceDNSNames(testService, testNamespace)[0]

	var prev Material
	var prevPublished []byte
	steps := []struct {
		at          time.Duration
		wantWrite   bool // the Secret changes
		wantNewCA   bool // the signing CA changes
		wantStaged  bool
		bundleCerts int
	}{
		{at: 0, wantWrite: true, wantNewCA: true, bundleCerts: 1},
		{at: time.Hour, bundleCerts: 1},
		{at: 2 * time.Hour, wantWrite: true, bundleCerts: 1},
		{at: 4 * time.Hour, wantWrite: true, bundleCerts: 1},
		{at: 6 * time.Hour, wantWrite: true, bundleCerts: 1},
		{at: 6*time.Hour + 40*time.Minute, wantWrite: true, wantStaged: true, bundleCerts: 2}, // staged
		{at: 6*time.Hour + 45*time.Minute, wantStaged: true, bundleCerts: 2},
		{at: 6*time.Hour + 50*time.Minute, wantWrite: true, wantNewCA: true, bundleCerts: 2}, // promoted
		{at: 8 * time.Hour, bundleCerts: 2},
		{at: 10 * time.Hour, wantWrite: true, bundleCerts: 1}, // old CA expired
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		t.Run("t0+"+s.at.String(), func(t *testing.T) {
			clk.Set(now)
			mustSync(t, r)
			m := assertConsistent(t, cs, r, now)

			if wrote := !m.Equal(prev); wrote != s.wantWrite {
				t.Errorf("Secret changed = %v, want %v", wrote, s.wantWrite)
			}
			if newCA := !bytes.Equal(m.CAKey, prev.CAKey); newCA != s.wantNewCA {
				t.Errorf("CA changed = %v, want %v", newCA, s.wantNewCA)
			}
			if staged := len(m.NextCAKey) > 0; staged != s.wantStaged {
				t.Errorf("CA staged = %v, want %v", staged, s.wantStaged)
			}
			if s.wantStaged && !bytes.Equal(m.Cert, prev.Cert) {
				t.Error("serving certificate changed while a CA is staged")
			}
			published := getWebhookConfig(t, cs).Webhooks[0].ClientConfig.CABundle
			if n := pemBlockCount(published); n != s.bundleCerts {
				t.Errorf("published bundle holds %d CAs, want %d", n, s.bundleCerts)
			}
			if s.wantNewCA && prev.Cert != nil {
				// Replicas still serving the old certificate keep working.
				if err := verifyServing(t, prev.Cert, published, host, now); err != nil {
					t.Errorf("published bundle rejects the previous certificate: %v", err)
				}
			}
			if prevPublished != nil {
				onDisk, err := os.ReadFile(filepath.Join(r.CertDir, "tls.crt"))
				if err != nil {
					t.Fatal(err)
				}
				if err := verifyServing(t, onDisk, prevPublished, host, now); err != nil {
					t.Errorf("the bundle published before this sync rejects the certificate now served: %v", err)
				}
			}
			prev, prevPublished = m, published
		})
	}
}

func TestSyncInjectRetriesOnConflict(t *testing.T) {
	cs := newFakeClient(webhookConfig())
	failOnce(cs, "update", "validatingwebhookconfigurations", nil,
		apierrors.NewConflict(schema.GroupResource{Resource: "validatingwebhookconfigurations"}, testWebhooks, errors.New("injected")))
	r := newTestRotator(t, cs, newFakeClock(t0))
	mustSync(t, r)
	assertConsistent(t, cs, r, t0)
	if n := countActions(cs, "update", "validatingwebhookconfigurations"); n != 2 {
		t.Errorf("%d updates, want 2", n)
	}
}

func TestSyncWaitsForWebhookConfig(t *testing.T) {
	cs := newFakeClient()
	r := newTestRotator(t, cs, newFakeClock(t0))

	err := r.Sync(context.Background())
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Sync = %v, want NotFound", err)
	}
	if r.IsReady() {
		t.Error("ready without a published caBundle")
	}
	if err := r.ReadyCheck(nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("ReadyCheck = %v, want the cause", err)
	}
	if _, err := os.Stat(filepath.Join(r.CertDir, "tls.crt")); !os.IsNotExist(err) {
		t.Error("certificate written before its CA was published")
	}

	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(
		context.Background(), webhookConfig(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	assertConsistent(t, cs, r, t0)
	if !r.IsReady() {
		t.Error("not ready")
	}
}

func TestRotatorRejectsConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Rotator)
		want   string
	}{
		{name: "no client", mutate: func(r *Rotator) { r.Client = nil }, want: "no Client"},
		{name: "no namespace", mutate: func(r *Rotator) { r.Namespace = "" }, want: "no Namespace"},
		{name: "no secret", mutate: func(r *Rotator) { r.SecretName = "" }, want: "no SecretName"},
		{name: "no names", mutate: func(r *Rotator) { r.ServiceName = "" }, want: "no DNS names"},
		{name: "bad fraction", mutate: func(r *Rotator) { r.RotateBefore.Fraction = 2 }, want: "fraction"},
		{name: "window too long", mutate: func(r *Rotator) { r.RotateBefore.Before = 5 * time.Hour }, want: "not shorter than validity"},
		{name: "publish lead too long", mutate: func(r *Rotator) { r.CAPublishLead = 2 * time.Hour }, want: "does not fit twice into the CA rotation window"},
		{name: "negative publish lead", mutate: func(r *Rotator) { r.CAPublishLead = -time.Minute }, want: "publish lead -1m0s is negative"},
		{name: "negative interval", mutate: func(r *Rotator) { r.CheckInterval = -time.Second }, want: "CheckInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRotator(t, newFakeClient(), newFakeClock(t0))
			tt.mutate(r)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := r.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want containing %q", err, tt.want)
			}
			if err := r.Sync(ctx); err == nil {
				t.Error("Sync accepted the configuration")
			}
		})
	}
}

func TestRotatorDefaults(t *testing.T) {
	r := &Rotator{Client: newFakeClient(), Namespace: testNamespace, SecretName: testSecret, ServiceName: testService}
	if err := r.complete(); err != nil {
		t.Fatal(err)
	}
	if r.CertName != "tls.crt" || r.KeyName != "tls.key" || r.Validity != DefaultValidity ||
		r.CAValidity != DefaultCAValidity || r.CheckInterval != DefaultCheckInterval || r.Now == nil ||
		r.CACommonName != "fitgate.fitgate-system-ca" || r.CAPublishLead != 10*time.Minute || r.cfg.CAPublishLead != r.CAPublishLead {
		t.Errorf("defaults not applied: %+v", r)
	}

	// Short lifetimes (the e2e test's): a third of the CA's window, so
	// that staging, the lead and the handover all fit into it.
	r = &Rotator{Client: newFakeClient(), Namespace: testNamespace, SecretName: testSecret, ServiceName: testService,
		Validity: 40 * time.Second, CAValidity: 90 * time.Second, RotateBefore: RotationPolicy{Before: 20 * time.Second},
		CheckInterval: 5 * time.Second}
	if err := r.complete(); err != nil {
		t.Fatal(err)
	}
	if want := 20 * time.Second / 3; r.CAPublishLead != want {
		t.Errorf("CAPublishLead = %v, want %v", r.CAPublishLead, want)
	}
	if r.NeedLeaderElection() {
		t.Error("every replica needs its own files; must not need leader election")
	}
}

// TestRun checks the loop: it becomes ready, reacts to watch events well
// before CheckInterval, and stops cleanly.
func TestRun(t *testing.T) {
	cs := newFakeClient(webhookConfig())
	clk := newFakeClock(t0)
	r := newTestRotator(t, cs, clk)
	r.CheckInterval = time.Hour // only watch events can trigger the repairs below
	r.Log = logr.Discard()      // Run may still log after an early t.Fatal

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	select {
	case <-r.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not ready: %v", r.ReadyCheck(nil))
	}
	assertConsistent(t, cs, r, t0)

	eventually := func(t *testing.T) {
		t.Helper()
		var last error
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			_, last = consistent(cs, r, t0)
			return last == nil, nil
		})
		if err != nil {
			t.Fatalf("not repaired: %v", last)
		}
	}

	t.Run("repairs a corrupted Secret", func(t *testing.T) {
		sec := getSecret(t, cs)
		sec.Data[corev1.TLSPrivateKeyKey] = []byte("junk")
		if _, err := cs.CoreV1().Secrets(testNamespace).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t)
	})
	t.Run("re-injects a reverted caBundle", func(t *testing.T) {
		vwc := getWebhookConfig(t, cs)
		vwc.Webhooks[1].ClientConfig.CABundle = nil
		if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t)
	})
	t.Run("recreates a deleted Secret", func(t *testing.T) {
		if err := cs.CoreV1().Secrets(testNamespace).Delete(ctx, testSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t)
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil on cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}

// TestRunRetriesAfterError: a failing sync (no webhook configuration yet)
// is retried with backoff, not fatal, and readiness follows the recovery.
func TestRunRetriesAfterError(t *testing.T) {
	cs := newFakeClient()
	r := newTestRotator(t, cs, newFakeClock(t0))
	r.Log = logr.Discard()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return r.ReadyCheck(nil) != nil && strings.Contains(r.ReadyCheck(nil).Error(), "not found"), nil
	})
	if err != nil || r.IsReady() {
		t.Fatalf("expected a failing, unready rotator: %v", r.ReadyCheck(nil))
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(
		ctx, webhookConfig(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("not ready after the configuration appeared: %v", r.ReadyCheck(nil))
	}
	assertConsistent(t, cs, r, t0)

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name string
		// createAfter creates the webhook configuration this long after
		// Bootstrap starts; negative: never.
		createAfter time.Duration
		timeout     time.Duration
		wantErr     string
	}{
		{name: "immediate", createAfter: 0, timeout: 30 * time.Second},
		{name: "retries until the configuration appears", createAfter: 100 * time.Millisecond, timeout: 30 * time.Second},
		{name: "gives up with the cause", createAfter: -1, timeout: 300 * time.Millisecond, wantErr: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.createAfter == 0 {
				objs = append(objs, webhookConfig())
			}
			cs := newFakeClient(objs...)
			r := newTestRotator(t, cs, newFakeClock(t0))
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			if tt.createAfter > 0 {
				timer := time.AfterFunc(tt.createAfter, func() {
					_, _ = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(
						context.Background(), webhookConfig(), metav1.CreateOptions{})
				})
				defer timer.Stop()
			}
			err := r.Bootstrap(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Bootstrap = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertConsistent(t, cs, r, t0)
			if !r.IsReady() {
				t.Error("not ready")
			}
		})
	}
}
