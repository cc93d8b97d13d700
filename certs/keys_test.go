package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	tests := []struct {
		name     string
		cn       string
		validity time.Duration
		wantErr  string
	}{
		{name: "valid", cn: "fitgate-ca", validity: 10 * time.Hour},
		{name: "empty common name", cn: "", validity: time.Hour, wantErr: "common name"},
		{name: "zero validity", cn: "ca", validity: 0, wantErr: "not positive"},
		{name: "negative validity", cn: "ca", validity: -time.Hour, wantErr: "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := NewCA(tt.cn, tt.validity, t0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := mustCert(t, kp.CertPEM)
			if c.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q", c.Subject.CommonName)
			}
			if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
				t.Errorf("basic constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
			}
			if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
				t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
			}
			if !c.NotBefore.Equal(t0.Add(-clockSkew)) || !c.NotAfter.Equal(t0.Add(tt.validity)) {
				t.Errorf("validity [%v, %v]", c.NotBefore, c.NotAfter)
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no SubjectKeyId")
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			pub, ok := c.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
			}
			if _, err := kp.TLSCertificate(); err != nil {
				t.Errorf("key does not match: %v", err)
			}
			if b, _ := pem.Decode(kp.KeyPEM); b == nil || b.Type != "PRIVATE KEY" {
				t.Errorf("key is not PKCS#8 PEM")
			}
		})
	}
}

func TestNewServingCert(t *testing.T) {
	ca := mustCA(t, 10*time.Hour, t0)
	names := ServiceDNSNames("fitgate", "fitgate-system")
	ip := net.ParseIP("10.0.0.7")

	tests := []struct {
		name         string
		ca           *KeyPair
		dnsNames     []string
		ips          []net.IP
		validity     time.Duration
		now          time.Time
		wantNotAfter time.Time
		wantErr      string
	}{
		{name: "service names", ca: ca, dnsNames: names, validity: 3 * time.Hour, now: t0, wantNotAfter: t0.Add(3 * time.Hour)},
		{name: "IP only", ca: ca, ips: []net.IP{ip}, validity: time.Hour, now: t0, wantNotAfter: t0.Add(time.Hour)},
		{name: "capped at CA expiry", ca: ca, dnsNames: names, validity: 24 * time.Hour, now: t0.Add(time.Hour), wantNotAfter: t0.Add(10 * time.Hour)},
		{name: "CA expired", ca: ca, dnsNames: names, validity: time.Hour, now: t0.Add(10 * time.Hour), wantErr: "CA expired"},
		{name: "no names", ca: ca, validity: time.Hour, now: t0, wantErr: "at least one"},
		{name: "no CA", dnsNames: names, validity: time.Hour, now: t0, wantErr: "no CA"},
		{name: "zero validity", ca: ca, dnsNames: names, now: t0, wantErr: "not positive"},
		{name: "CA key mismatch", ca: &KeyPair{CertPEM: ca.CertPEM, KeyPEM: mustCA(t, time.Hour, t0).KeyPEM}, dnsNames: names, validity: time.Hour, now: t0, wantErr: "matches no CA"},
		{name: "signer is not a CA", ca: mustServing(t, ca, names, time.Hour, t0), dnsNames: names, validity: time.Hour, now: t0, wantErr: "not a CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := NewServingCert(tt.ca, tt.dnsNames, tt.ips, tt.validity, tt.now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := mustCert(t, kp.CertPEM)
			if c.IsCA {
				t.Error("serving cert is a CA")
			}
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %v", c.KeyUsage)
			}
			if !slices.Equal(c.DNSNames, tt.dnsNames) && !(len(c.DNSNames) == 0 && len(tt.dnsNames) == 0) {
				t.Errorf("DNSNames = %v, want %v", c.DNSNames, tt.dnsNames)
			}
			if len(tt.ips) > 0 && (len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(ip)) {
				t.Errorf("IPAddresses = %v", c.IPAddresses)
			}
			if !c.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("NotAfter = %v, want %v", c.NotAfter, tt.wantNotAfter)
			}
			if _, err := kp.TLSCertificate(); err != nil {
				t.Errorf("key does not match: %v", err)
			}
			caCert := mustCert(t, ca.CertPEM)
			if !slices.Equal(c.AuthorityKeyId, caCert.SubjectKeyId) {
				t.Error("AuthorityKeyId does not name the CA")
			}
			host := ip.String()
			if len(tt.dnsNames) > 0 {
				host = tt.dnsNames[0]
				if c.Subject.CommonName != host {
					t.Errorf("CN = %q, want %q", c.Subject.CommonName, host)
				}
			}
			if err := verifyServing(t, kp.CertPEM, ca.CertPEM, host, tt.now); err != nil {
				t.Errorf("does not verify against the CA: %v", err)
			}
		})
	}
}

func TestNewServingCertFromBundle(t *testing.T) {
	// A KeyPair whose CertPEM is a bundle signs with the certificate that
	// matches its key, wherever that is in the bundle.
	older := mustCA(t, 10*time.Hour, t0)
	current := mustCA(t, 10*time.Hour, t0)
	ca := &KeyPair{CertPEM: append(append([]byte{}, older.CertPEM...), current.CertPEM...), KeyPEM: current.KeyPEM}
	kp := mustServing(t, ca, []string{"a.example"}, time.Hour, t0)
	if err := mustCert(t, kp.CertPEM).CheckSignatureFrom(mustCert(t, current.CertPEM)); err != nil {
		t.Fatalf("not signed by the CA matching the key: %v", err)
	}
}

func TestParseCertificatesPEM(t *testing.T) {
	a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	tests := []struct {
		name    string
		data    []byte
		want    int
		wantErr string
	}{
		{name: "one", data: a.CertPEM, want: 1},
		{name: "two with whitespace", data: []byte("\n" + string(a.CertPEM) + "\n\n" + string(b.CertPEM) + "\n"), want: 2},
		{name: "empty", data: nil, wantErr: "no PEM certificate"},
		{name: "not PEM", data: []byte("hello"), wantErr: "not PEM"},
		{name: "trailing garbage", data: append(append([]byte{}, a.CertPEM...), "junk"...), wantErr: "not PEM"},
		{name: "key block", data: a.KeyPEM, wantErr: "unexpected PEM block"},
		{name: "corrupt DER", data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), wantErr: "x509"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCertificatesPEM(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("got %d certificates, want %d", len(got), tt.want)
			}
		})
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ed := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustEd25519PKCS8(t)})

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{name: "PKCS#8 ECDSA", data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})},
		{name: "SEC 1 ECDSA", data: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})},
		{name: "PKCS#1 RSA", data: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{name: "Ed25519 refused", data: ed, wantErr: "unsupported"},
		{name: "empty", data: nil, wantErr: "no PEM"},
		{name: "certificate block", data: mustCA(t, time.Hour, t0).CertPEM, wantErr: "unexpected PEM block"},
		{name: "corrupt", data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), wantErr: "parsing PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePrivateKeyPEM(tt.data)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestServiceDNSNames(t *testing.T) {
	got := ServiceDNSNames("fitgate", "fitgate-system")
	want := []string{
		"fitgate.fitgate-system.svc",
		"fitgate.fitgate-system.svc.cluster.local",
		"fitgate.fitgate-system",
		"fitgate",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func mustEd25519PKCS8(t *testing.T) []byte {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
