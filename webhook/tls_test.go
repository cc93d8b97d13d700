package webhook

// TLS posture of the webhook listener (issue #8, Security): TLS 1.2 at
// least (1.3 when configured), no weak cipher suites, and no client
// certificate required, for both RSA and ECDSA serving keys, since a
// cluster's certificate issuer may hand out either.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// writeKeyPair writes a self-signed serving pair for 127.0.0.1 with an RSA
// or an ECDSA key.
func writeKeyPair(t *testing.T, dir string, useRSA bool) {
	t.Helper()
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startTLSServer runs a Server with the given minimum version until the
// test ends and returns its address.
func startTLSServer(t *testing.T, useRSA bool, minVersion uint16) string {
	t.Helper()
	dir := t.TempDir()
	writeKeyPair(t, dir, useRSA)
	port := freePort(t)
	srv := NewServer(ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir, TLSMinVersion: minVersion},
		admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "serving", func() error { _, err := handshake(addr, &tls.Config{}); return err })
	return addr
}

// handshake connects with cfg (InsecureSkipVerify set: the subject is the
// server's settings, not its certificate) and returns the state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	cfg = cfg.Clone()
	cfg.InsecureSkipVerify = true //nolint:gosec // the certificate is not under test
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// weakSuites are the TLS 1.2 suites a scanner flags: everything Go calls
// insecure (RC4, 3DES, RSA key exchange, CBC-SHA256) plus the remaining
// CBC-SHA1 suites, which lack an AEAD (Mozilla's "intermediate" profile
// allows only ECDHE with AES-GCM or ChaCha20-Poly1305).
func weakSuites() []*tls.CipherSuite {
	var weak []*tls.CipherSuite
	weak = append(weak, tls.InsecureCipherSuites()...)
	for _, s := range tls.CipherSuites() {
		if isTLS12(s) && !isAEAD(s.ID) {
			weak = append(weak, s)
		}
	}
	return weak
}

func isTLS12(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v == tls.VersionTLS12 {
			return true
		}
	}
	return false
}

func isAEAD(id uint16) bool {
	switch id {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

func TestTLSVersions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min      uint16 // server's minimum; 0 is the default
		client   uint16 // client's maximum
		accepted bool
	}{
		{"default refuses TLS 1.0", 0, tls.VersionTLS10, false},
		{"default refuses TLS 1.1", 0, tls.VersionTLS11, false},
		{"default accepts TLS 1.2", 0, tls.VersionTLS12, true},
		{"default accepts TLS 1.3", 0, tls.VersionTLS13, true},
		{"1.3 minimum refuses TLS 1.2", tls.VersionTLS13, tls.VersionTLS12, false},
		{"1.3 minimum accepts TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startTLSServer(t, false, tc.min)
			state, err := handshake(addr, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tc.client}) //nolint:gosec // probing old versions
			if accepted := err == nil; accepted != tc.accepted {
				t.Fatalf("TLS %x: accepted %v (%v), want %v", tc.client, accepted, err, tc.accepted)
			}
			if err == nil && state.Version != tc.client {
				t.Fatalf("negotiated %x, want %x", state.Version, tc.client)
			}
		})
	}
}

func TestTLSCipherSuites(t *testing.T) {
	for _, useRSA := range []bool{false, true} {
		keyType := map[bool]string{false: "ECDSA", true: "RSA"}[useRSA]
		t.Run(keyType, func(t *testing.T) {
			addr := startTLSServer(t, useRSA, 0)
			for _, s := range weakSuites() {
				t.Run("refuses "+s.Name, func(t *testing.T) {
					state, err := handshake(addr, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
					if err == nil {
						t.Fatalf("negotiated weak suite %s", tls.CipherSuiteName(state.CipherSuite))
					}
				})
			}
			// Every strong suite for this key type works, so refusing the
			// weak ones is not refusing everything.
			accepted := 0
			for _, s := range tls.CipherSuites() {
				if !isTLS12(s) || !isAEAD(s.ID) {
					continue
				}
				if _, err := handshake(addr, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}}); err == nil {
					accepted++
				}
			}
			if accepted != 3 { // AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305
				t.Errorf("%d strong TLS 1.2 suites accepted with an %s key, want 3", accepted, keyType)
			}
			// The default client (what the API server uses) negotiates an
			// AEAD suite.
			state, err := handshake(addr, &tls.Config{MaxVersion: tls.VersionTLS12})
			if err != nil || !isAEAD(state.CipherSuite) {
				t.Errorf("default TLS 1.2 client: suite %s, err %v", tls.CipherSuiteName(state.CipherSuite), err)
			}
		})
	}
}

func TestTLSClientCertificateNotRequired(t *testing.T) {
	addr := startTLSServer(t, false, 0)
	state, err := handshake(addr, &tls.Config{})
	if err != nil {
		t.Fatalf("handshake without a client certificate: %v", err)
	}
	if len(state.PeerCertificates) == 0 {
		t.Fatal("no server certificate")
	}
	// A client that presents a certificate nobody trusts is not refused
	// either: the API server authenticates to webhooks only if configured
	// to, and fitgate does not ask.
	other := t.TempDir()
	writeKeyPair(t, other, false)
	cert, err := tls.LoadX509KeyPair(filepath.Join(other, "tls.crt"), filepath.Join(other, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(addr, &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		t.Fatalf("handshake with an untrusted client certificate: %v", err)
	}
}

func TestTLSHTTP2OffByDefault(t *testing.T) {
	addr := startTLSServer(t, false, 0)
	state, err := handshake(addr, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if state.NegotiatedProtocol == "h2" {
		t.Fatal("h2 negotiated; HTTP/2 is off unless EnableHTTP2")
	}
}
