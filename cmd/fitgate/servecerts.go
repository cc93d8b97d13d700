package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/fitgate/fitgate/certs"
	"github.com/fitgate/fitgate/webhook"
)

// rotator returns the certs.Rotator that --cert-secret asks for, or nil
// without --cert-secret. Everything that could make it fail later is
// checked here, so that a bad flag exits at once with status 2 instead of
// leaving a pod that never becomes ready.
func (c serveConfig) rotator(restConfig *rest.Config, log logr.Logger) (*certs.Rotator, error) {
	if c.CertSecret == "" {
		return nil, nil
	}
	if c.CAFile != "" {
		return nil, errors.New("--ca-file and --cert-secret are exclusive")
	}
	var errs []error
	duration := func(flag, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("--%s %q: want a non-negative duration such as 8760h", flag, v))
		}
		return d
	}
	validity := duration("cert-validity", c.CertValidity)
	caValidity := duration("ca-validity", c.CAValidity)
	before := duration("cert-rotate-before", c.CertRotateBefore)
	if c.ServiceName == "" {
		errs = append(errs, errors.New("--service-name is empty"))
	}
	var dnsNames []string
	var ips []net.IP
	for _, san := range c.CertExtraSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, san)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	policy := certs.RotationPolicy{Before: before}
	// Issue once, offline, with these settings: Reconcile refuses material
	// that would be due again at once (a rotation window as long as the
	// validity, a CA shorter-lived than the window), which would otherwise
	// only show as a sync error loop.
	issue := certs.IssueConfig{CACommonName: c.ServiceName + "." + c.Namespace + "-ca",
		DNSNames: append(certs.ServiceDNSNames(c.ServiceName, c.Namespace), dnsNames...), IPs: ips,
		Validity: validity, CAValidity: caValidity, RotateBefore: policy}
	if _, err := certs.Reconcile(certs.Material{}, issue, time.Now()); err != nil {
		return nil, fmt.Errorf("--cert-validity %v, --ca-validity %v, --cert-rotate-before %v: %w", validity, caValidity, before, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	return &certs.Rotator{
		Client: client, Namespace: c.Namespace, SecretName: c.CertSecret,
		ServiceName: c.ServiceName, ExtraDNSNames: dnsNames, IPs: ips,
		WebhookConfigName: c.WebhookConfigName,
		CertDir:           c.CertDir, CertName: c.CertName, KeyName: c.KeyName,
		Validity: validity, CAValidity: caValidity, RotateBefore: policy,
		CheckInterval: checkInterval(validity, policy),
		Log:           log.WithName("cert-rotator"),
	}, nil
}

// checkInterval is how often the rotator re-checks on its own. It reacts to
// changes of the Secret and the configuration at once, but nothing wakes it
// when a certificate enters its rotation window, so it must look at least a
// few times within that window: the default 5 minutes, or a quarter of the
// window when certificates are short-lived (tests).
func checkInterval(validity time.Duration, policy certs.RotationPolicy) time.Duration {
	return max(time.Second, min(certs.DefaultCheckInterval, policy.Window(validity)/4))
}

// runWithRotator runs the webhook and, when rot is set, the rotator beside
// it until ctx ends. They start together rather than after a Bootstrap:
// fitgate's webhook server waits for the certificate files to appear, and
// /readyz fails until the rotator has stored the Secret, injected the CA and
// written the files, so the cache syncs meanwhile.
func runWithRotator(ctx context.Context, cfg webhook.Config, rot *certs.Rotator) error {
	if rot == nil {
		return webhook.Run(ctx, cfg)
	}
	checks := map[string]healthz.Checker{"certificate": rot.ReadyCheck}
	for name, check := range cfg.ReadyChecks {
		checks[name] = check
	}
	cfg.ReadyChecks = checks
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rotErr := make(chan error, 1)
	go func() {
		err := rot.Run(ctx) // nil on cancellation
		if err != nil {
			cancel()
		}
		rotErr <- err
	}()
	err := webhook.Run(ctx, cfg)
	cancel()
	return errors.Join(err, <-rotErr)
}
