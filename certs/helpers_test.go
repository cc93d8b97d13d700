package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is an arbitrary fixed instant; every test clock starts here.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for the rotator's goroutines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

func mustCA(t *testing.T, validity time.Duration, now time.Time) *KeyPair {
	t.Helper()
	ca, err := NewCA("test-ca", validity, now)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func mustServing(t *testing.T, ca *KeyPair, dnsNames []string, validity time.Duration, now time.Time) *KeyPair {
	t.Helper()
	kp, err := NewServingCert(ca, dnsNames, nil, validity, now)
	if err != nil {
		t.Fatalf("NewServingCert: %v", err)
	}
	return kp
}

func mustCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		t.Fatalf("ParseCertificatesPEM: %v", err)
	}
	return certs[0]
}

func mustCerts(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil {
		t.Fatalf("ParseCertificatesPEM: %v", err)
	}
	return certs
}

// verifyServing checks certPEM the way the API server's webhook client
// does: chained to bundle, for serverAuth, under dnsName, at now.
func verifyServing(t *testing.T, certPEM, bundle []byte, dnsName string, now time.Time) error {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		t.Fatalf("bundle holds no certificates")
	}
	_, err := mustCert(t, certPEM).Verify(x509.VerifyOptions{
		Roots:       roots,
		DNSName:     dnsName,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// signCustom signs an arbitrary template with ca, for certificates NewServingCert
// would never produce.
func signCustom(t *testing.T, ca *KeyPair, tmpl *x509.Certificate) *KeyPair {
	t.Helper()
	caCert, caKey, err := ca.caSigner()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(42)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: "custom"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := encodeKeyPair(der, key)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pemBlockCount(data []byte) int {
	return strings.Count(string(data), "-----BEGIN ")
}
