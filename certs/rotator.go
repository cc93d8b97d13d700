package certs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults for the zero values of Rotator's fields.
const (
	DefaultValidity      = 365 * 24 * time.Hour
	DefaultCAValidity    = 5 * 365 * 24 * time.Hour
	DefaultCheckInterval = 5 * time.Minute
)

const (
	// secretAttempts bounds the read-evaluate-write loop. Each retry follows
	// a Conflict or AlreadyExists, after which the re-read material is
	// normally valid; needing more than a few means something is rewriting
	// the Secret constantly, and the outer backoff is the better place to
	// wait.
	secretAttempts = 5
	retryInitial   = time.Second
	retryMax       = time.Minute
)

// Rotator keeps the serving certificate in a Secret valid, mirrors it to
// CertDir and publishes the CA bundle in a ValidatingWebhookConfiguration.
// Fill in the fields and call Run (or add it to a controller-runtime manager,
// which calls Start). Zero-valued optional fields take the defaults noted.
// The fields must not change after the first Sync or Run.
type Rotator struct {
	// Client is required.
	Client kubernetes.Interface
	// Namespace and SecretName name the Secret; required.
	Namespace  string
	SecretName string
	// ServiceName is the webhook's Service, whose ServiceDNSNames the
	// certificate covers. Required unless ExtraDNSNames or IPs are set.
	ServiceName string
	// ExtraDNSNames and IPs are added to the certificate's SANs.
	ExtraDNSNames []string
	IPs           []net.IP
	// WebhookConfigName is the ValidatingWebhookConfiguration whose
	// webhooks get the CA bundle. Empty: no injection.
	WebhookConfigName string
	// CertDir receives CertName and KeyName. Empty: no files are written
	// (e.g. when the pod mounts the Secret instead).
	CertDir string
	// CertName and KeyName default to tls.crt and tls.key, the names
	// controller-runtime's webhook server reads.
	CertName, KeyName string
	// CACommonName defaults to "<ServiceName>.<Namespace>-ca".
	CACommonName string
	// Validity (default DefaultValidity) and CAValidity (default
	// DefaultCAValidity) are the lifetimes of newly issued certificates.
	Validity, CAValidity time.Duration
	// RotateBefore says when certificates are renewed; its zero value
	// renews in the last third of the lifetime.
	RotateBefore RotationPolicy
	// CheckInterval (default DefaultCheckInterval) is how often Run
	// re-checks without being prompted by a watch event.
	CheckInterval time.Duration
	// CAPublishLead is how long a new CA is published in the bundle before
	// it signs serving certificates (see IssueConfig.CAPublishLead).
	// Default: DefaultCAPublishLead for CheckInterval and the rotation
	// window of a CAValidity CA: two check intervals, at least a minute,
	// at most a third of that window.
	CAPublishLead time.Duration
	// Now (default time.Now) is the clock certificates are judged and
	// issued by; tests inject their own.
	Now func() time.Time
	// Log defaults to the logger in Run's or Sync's context.
	Log logr.Logger

	initOnce sync.Once
	initErr  error
	cfg      IssueConfig

	// syncMu serialises Sync, so Run and a caller triggering Sync never
	// interleave file writes.
	syncMu sync.Mutex

	readyOnce sync.Once
	ready     chan struct{}

	errMu   sync.Mutex
	lastErr error
}

// complete applies defaults and validates, once.
func (r *Rotator) complete() error {
	r.initOnce.Do(func() {
		if r.CertName == "" {
			r.CertName = corev1.TLSCertKey
		}
		if r.KeyName == "" {
			r.KeyName = corev1.TLSPrivateKeyKey
		}
		if r.CACommonName == "" {
			r.CACommonName = r.ServiceName + "." + r.Namespace + "-ca"
		}
		if r.Validity == 0 {
			r.Validity = DefaultValidity
		}
		if r.CAValidity == 0 {
			r.CAValidity = DefaultCAValidity
		}
		if r.CheckInterval == 0 {
			r.CheckInterval = DefaultCheckInterval
		}
		if r.Now == nil {
			r.Now = time.Now
		}
		if r.CAPublishLead == 0 {
			r.CAPublishLead = DefaultCAPublishLead(r.CheckInterval, r.RotateBefore.Window(r.CAValidity+clockSkew))
		}
		var dnsNames []string
		if r.ServiceName != "" {
			dnsNames = ServiceDNSNames(r.ServiceName, r.Namespace)
		}
		r.cfg = IssueConfig{
			CACommonName:  r.CACommonName,
			DNSNames:      append(dnsNames, r.ExtraDNSNames...),
			IPs:           r.IPs,
			Validity:      r.Validity,
			CAValidity:    r.CAValidity,
			RotateBefore:  r.RotateBefore,
			CAPublishLead: r.CAPublishLead,
		}

		var errs []error
		if r.Client == nil {
			errs = append(errs, errors.New("no Client"))
		}
		if r.Namespace == "" {
			errs = append(errs, errors.New("no Namespace"))
		}
		if r.SecretName == "" {
			errs = append(errs, errors.New("no SecretName"))
		}
		if r.CheckInterval < 0 {
			errs = append(errs, fmt.Errorf("CheckInterval %v is negative", r.CheckInterval))
		}
		if err := r.cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			r.initErr = fmt.Errorf("invalid certs.Rotator: %w", err)
		}
	})
	return r.initErr
}

// Start implements controller-runtime's manager.Runnable.
func (r *Rotator) Start(ctx context.Context) error { return r.Run(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica needs the files on its own disk, and the Secret's optimistic
// concurrency already makes replicas agree.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Run syncs now, then again every CheckInterval and whenever the Secret or
// the webhook configuration changes, until ctx is done. Failed syncs are
// logged and retried with exponential backoff. It returns an error only for
// an invalid configuration; on cancellation it returns nil.
func (r *Rotator) Run(ctx context.Context) error {
	if err := r.complete(); err != nil {
		return err
	}
	logger := r.logger(ctx)
	kick := make(chan struct{}, 1)
	r.watchObjects(ctx, kick)

	backoff := r.newBackoff()
	for {
		// An event that arrived during the last sync is already covered by
		// the sync about to start.
		select {
		case <-kick:
		default:
		}
		delay, wake := r.CheckInterval, (<-chan struct{})(kick)
		if err := r.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A failing sync waits out its backoff even if events arrive
			// (a nil channel never fires); the next attempt covers them.
			delay, wake = backoff.Step(), nil
			logger.Error(err, "Certificate sync failed; retrying", "after", delay)
		} else {
			backoff = r.newBackoff()
		}

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-wake:
			timer.Stop()
		}
	}
}

// Bootstrap syncs until the first success, retrying failures with backoff,
// and returns nil then; if ctx ends first it returns the last sync error.
//
// Call it before starting a controller-runtime manager, then add the
// Rotator to the manager for rotation: the manager starts webhook servers
// before other runnables, and the webhook server fails to start when
// tls.crt and tls.key are not on disk yet.
func (r *Rotator) Bootstrap(ctx context.Context) error {
	if err := r.complete(); err != nil {
		return err
	}
	logger := r.logger(ctx)
	backoff := r.newBackoff()
	for {
		err := r.Sync(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("certificates not provisioned: %w", err)
		}
		delay := backoff.Step()
		logger.Error(err, "Certificate bootstrap failed; retrying", "after", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("certificates not provisioned: %w", err)
		case <-timer.C:
		}
	}
}

func (r *Rotator) newBackoff() wait.Backoff {
	return wait.Backoff{
		Duration: retryInitial,
		Factor:   2,
		Jitter:   0.1,
		Steps:    math.MaxInt32,
		Cap:      min(retryMax, max(r.CheckInterval, retryInitial)),
	}
}

// Sync brings the Secret, the webhook configuration and the files up to
// date once, and marks the rotator ready when all three are. The order
// matters for CA rotation: the bundle is published before this replica
// serves a certificate from a CA new to it. (Reconcile already keeps a new
// CA published for CAPublishLead before it signs; the order keeps a
// replica from serving ahead of its own injection should that fail.) It is
// safe to call concurrently with Run, e.g. from a test that wants a check
// now.
func (r *Rotator) Sync(ctx context.Context) error {
	if err := r.complete(); err != nil {
		return err
	}
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	err := r.sync(ctx)
	r.errMu.Lock()
	r.lastErr = err
	r.errMu.Unlock()
	return err
}

func (r *Rotator) sync(ctx context.Context) error {
	logger := r.logger(ctx)
	m, err := r.ensureSecret(ctx, logger)
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", r.Namespace, r.SecretName, err)
	}
	if r.WebhookConfigName != "" {
		wrote, err := r.injectCABundle(ctx, m.CABundle)
		if err != nil {
			return fmt.Errorf("injecting caBundle into ValidatingWebhookConfiguration %s: %w", r.WebhookConfigName, err)
		}
		if wrote {
			logger.Info("Injected CA bundle", "validatingWebhookConfiguration", r.WebhookConfigName)
		}
	}
	if r.CertDir != "" {
		wrote, err := writeServingPair(r.CertDir, r.CertName, r.KeyName, m.Cert, m.Key)
		if err != nil {
			return err
		}
		if wrote {
			logger.Info("Wrote serving certificate", "dir", r.CertDir)
		}
	}
	r.markReady()
	return nil
}

// ensureSecret returns the material every replica agrees on, creating or
// updating the Secret if it needs to. Writes are conditional on what was
// read (Create fails if it exists, Update carries the resourceVersion), so
// when replicas race exactly one write wins; the others re-read, find the
// winner's material valid and adopt it.
func (r *Rotator) ensureSecret(ctx context.Context, logger logr.Logger) (Material, error) {
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	for attempt := 1; ; attempt++ {
		sec, err := secrets.Get(ctx, r.SecretName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return Material{}, err
		}
		found := err == nil
		cur := MaterialFromSecret(sec)
		plan, err := Reconcile(cur, r.cfg, r.Now())
		if err != nil {
			return Material{}, err
		}
		if found && plan.Action == ActionNone {
			return cur, nil
		}

		var written *corev1.Secret
		if !found {
			written, err = secrets.Create(ctx, newSecret(r.Namespace, r.SecretName, plan.Material), metav1.CreateOptions{})
		} else {
			upd := sec.DeepCopy()
			plan.Material.ApplyToSecret(upd)
			written, err = secrets.Update(ctx, upd, metav1.UpdateOptions{})
		}
		switch {
		case err == nil:
			logger.Info("Stored certificate material", "secret", r.SecretName, "created", !found,
				"action", plan.Action.String(), "reason", plan.Reason)
			return MaterialFromSecret(written), nil
		case apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err):
			logger.V(1).Info("Another writer changed the Secret first; re-reading", "secret", r.SecretName, "attempt", attempt)
			if attempt >= secretAttempts {
				return Material{}, fmt.Errorf("still racing after %d attempts: %w", attempt, err)
			}
		default:
			return Material{}, err
		}
	}
}

// Ready is closed after the first successful Sync: the Secret is valid, the
// caBundle is published and the files are on disk.
func (r *Rotator) Ready() <-chan struct{} {
	return r.readyCh()
}

func (r *Rotator) readyCh() chan struct{} {
	r.readyOnce.Do(func() { r.ready = make(chan struct{}) })
	return r.ready
}

// IsReady reports whether Ready is closed.
func (r *Rotator) IsReady() bool {
	select {
	case <-r.Ready():
		return true
	default:
		return false
	}
}

// markReady closes Ready once. Readiness is never withdrawn: a later failure
// (say, the API server being briefly unreachable) leaves valid files on
// disk, and pulling every replica out of service would only make it worse.
func (r *Rotator) markReady() {
	ch := r.readyCh()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// ReadyCheck is a controller-runtime healthz.Checker for the readiness
// endpoint: it fails until the first successful Sync.
func (r *Rotator) ReadyCheck(_ *http.Request) error {
	if r.IsReady() {
		return nil
	}
	r.errMu.Lock()
	err := r.lastErr
	r.errMu.Unlock()
	if err != nil {
		return fmt.Errorf("serving certificate not provisioned yet: %w", err)
	}
	return errors.New("serving certificate not provisioned yet")
}

func (r *Rotator) logger(ctx context.Context) logr.Logger {
	if r.Log.GetSink() != nil {
		return r.Log
	}
	return log.FromContext(ctx).WithName("cert-rotator")
}
