package certs

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestRotationPolicyWindow(t *testing.T) {
	const lifetime = 90 * time.Hour
	tests := []struct {
		name   string
		policy RotationPolicy
		want   time.Duration
	}{
		{name: "zero value is a third", policy: RotationPolicy{}, want: 30 * time.Hour},
		{name: "fraction", policy: RotationPolicy{Fraction: 0.5}, want: 45 * time.Hour},
		{name: "duration", policy: RotationPolicy{Before: 10 * time.Hour}, want: 10 * time.Hour},
		{name: "both, fraction larger", policy: RotationPolicy{Fraction: 0.5, Before: 10 * time.Hour}, want: 45 * time.Hour},
		{name: "both, duration larger", policy: RotationPolicy{Fraction: 0.1, Before: 20 * time.Hour}, want: 20 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Window(lifetime); got != tt.want {
				t.Errorf("Window = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRotationPolicyDue(t *testing.T) {
	c := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(90 * time.Hour)}
	tests := []struct {
		name   string
		policy RotationPolicy
		now    time.Time
		want   bool
	}{
		{name: "fresh", now: t0, want: false},
		{name: "just before the window", now: t0.Add(60*time.Hour - time.Nanosecond), want: false},
		{name: "window opens", now: t0.Add(60 * time.Hour), want: true},
		{name: "expired", now: t0.Add(100 * time.Hour), want: true},
		{name: "duration policy not yet", policy: RotationPolicy{Before: time.Hour}, now: t0.Add(88 * time.Hour), want: false},
		{name: "duration policy due", policy: RotationPolicy{Before: time.Hour}, now: t0.Add(89 * time.Hour), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Due(c, tt.now); got != tt.want {
				t.Errorf("Due = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRotationPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  RotationPolicy
		wantErr bool
	}{
		{name: "zero", policy: RotationPolicy{}},
		{name: "fraction", policy: RotationPolicy{Fraction: 0.9}},
		{name: "fraction one", policy: RotationPolicy{Fraction: 1}, wantErr: true},
		{name: "negative fraction", policy: RotationPolicy{Fraction: -0.1}, wantErr: true},
		{name: "negative duration", policy: RotationPolicy{Before: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestNeedsRotation(t *testing.T) {
	names := ServiceDNSNames("fitgate", "fitgate-system")
	// CA: [t0-5m, t0+10h], due from t0+6h38m20s under the default policy.
	ca := mustCA(t, 10*time.Hour, t0)
	// Serving: [t0-5m, t0+3h], due from t0+1h58m20s.
	sc := mustServing(t, ca, names, 3*time.Hour, t0)
	otherCA := mustCA(t, 10*time.Hour, t0)
	foreign := mustServing(t, otherCA, names, 3*time.Hour, t0)
	// Issued late in the CA's life so that only the CA is due.
	late := mustServing(t, ca, names, 3*time.Hour, t0.Add(6*time.Hour+45*time.Minute))
	clientOnly := signCustom(t, ca, &x509.Certificate{
		NotBefore: t0.Add(-time.Minute), NotAfter: t0.Add(3 * time.Hour),
		DNSNames: names, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	})
	bundle := append(append([]byte{}, otherCA.CertPEM...), ca.CertPEM...)

	tests := []struct {
		name       string
		ca         []byte
		cert, key  []byte
		dnsNames   []string
		now        time.Time
		policy     RotationPolicy
		want       bool
		wantReason string
	}{
		{name: "valid", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, dnsNames: names, now: t0.Add(time.Hour)},
		{name: "valid against a bundle", ca: bundle, cert: sc.CertPEM, key: sc.KeyPEM, dnsNames: names, now: t0.Add(time.Hour)},
		{name: "subset of SANs required", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, dnsNames: names[:1], now: t0},
		{name: "SANs compared case-insensitively", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, dnsNames: []string{"FITGATE.fitgate-system.svc"}, now: t0},
		{name: "CA missing", cert: sc.CertPEM, key: sc.KeyPEM, now: t0, want: true, wantReason: "CA bundle missing"},
		{name: "certificate missing", ca: ca.CertPEM, key: sc.KeyPEM, now: t0, want: true, wantReason: "certificate missing"},
		{name: "key missing", ca: ca.CertPEM, cert: sc.CertPEM, now: t0, want: true, wantReason: "private key missing"},
		{name: "CA unparsable", ca: []byte("junk"), cert: sc.CertPEM, key: sc.KeyPEM, now: t0, want: true, wantReason: "CA bundle unparsable"},
		{name: "certificate unparsable", ca: ca.CertPEM, cert: []byte("junk"), key: sc.KeyPEM, now: t0, want: true, wantReason: "certificate unparsable"},
		{name: "key unparsable", ca: ca.CertPEM, cert: sc.CertPEM, key: []byte("junk"), now: t0, want: true, wantReason: "private key unparsable"},
		{name: "key does not match", ca: ca.CertPEM, cert: sc.CertPEM, key: foreign.KeyPEM, now: t0, want: true, wantReason: "does not match"},
		{name: "signed by another CA", ca: ca.CertPEM, cert: foreign.CertPEM, key: foreign.KeyPEM, now: t0, want: true, wantReason: "not signed by the CA"},
		{name: "SAN missing", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, dnsNames: append(names, "fitgate.example.com"), now: t0, want: true, wantReason: "lacks SANs fitgate.example.com"},
		{name: "not yet valid", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, now: t0.Add(-10 * time.Minute), want: true, wantReason: "certificate not valid before"},
		{name: "expired", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, now: t0.Add(3 * time.Hour), want: true, wantReason: "certificate expired"},
		{name: "in the fraction window", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, now: t0.Add(2 * time.Hour), want: true, wantReason: "certificate expires at 2030-01-01T03:00:00Z, inside"},
		{name: "before the duration window", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, now: t0.Add(2 * time.Hour), policy: RotationPolicy{Before: 30 * time.Minute}},
		{name: "in the duration window", ca: ca.CertPEM, cert: sc.CertPEM, key: sc.KeyPEM, now: t0.Add(2*time.Hour + 30*time.Minute), policy: RotationPolicy{Before: 30 * time.Minute}, want: true, wantReason: "inside its rotation window"},
		{name: "CA in its window", ca: ca.CertPEM, cert: late.CertPEM, key: late.KeyPEM, now: t0.Add(6*time.Hour + 50*time.Minute), want: true, wantReason: "CA expires at 2030-01-01T10:00:00Z, inside"},
		{name: "not for server auth", ca: ca.CertPEM, cert: clientOnly.CertPEM, key: clientOnly.KeyPEM, dnsNames: names, now: t0, want: true, wantReason: "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := NeedsRotation(tt.ca, tt.cert, tt.key, tt.dnsNames, tt.now, tt.policy)
			if got != tt.want {
				t.Fatalf("NeedsRotation = %v (%q), want %v", got, reason, tt.want)
			}
			if !strings.Contains(reason, tt.wantReason) || (!tt.want && reason != "") {
				t.Errorf("reason = %q, want containing %q", reason, tt.wantReason)
			}
		})
	}
}
