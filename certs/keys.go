package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// clockSkew backdates NotBefore so that a certificate issued by a replica
// whose clock runs slightly fast is not "not yet valid" to the API server.
const clockSkew = 5 * time.Minute

const (
	pemTypeCertificate = "CERTIFICATE"
	pemTypePrivateKey  = "PRIVATE KEY"
)

// KeyPair is a PEM-encoded certificate and its PKCS#8 private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Certificate parses the first certificate in CertPEM.
func (kp *KeyPair) Certificate() (*x509.Certificate, error) {
	certs, err := ParseCertificatesPEM(kp.CertPEM)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// Signer parses KeyPEM.
func (kp *KeyPair) Signer() (crypto.Signer, error) {
	return ParsePrivateKeyPEM(kp.KeyPEM)
}

// TLSCertificate parses the pair for a tls.Config, checking that the key
// matches the certificate.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
}

// ParseCertificatesPEM parses every block of data, which must all be
// CERTIFICATE blocks, and fails if there are none.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(data)
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("trailing data is not PEM")
		}
		if block.Type != pemTypeCertificate {
			return nil, fmt.Errorf("unexpected PEM block %q, want %s", block.Type, pemTypeCertificate)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
		rest = bytes.TrimSpace(rest)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// ParsePrivateKeyPEM parses a PKCS#8, SEC 1 (EC) or PKCS#1 (RSA) private key,
// so that a Secret written by another tool can still be validated.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemTypePrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q for a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
		return k.(crypto.Signer), nil
	default:
		// Ed25519 and friends would parse, but the API server's webhook
		// client does not accept them as serving keys; refuse early.
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// EncodeCertificatesPEM concatenates certs as PEM, in order.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: pemTypeCertificate, Bytes: c.Raw})
	}
	return buf.Bytes()
}

// publicKeysEqual reports whether a certificate's public key is pub.
func publicKeysEqual(cert *x509.Certificate, pub crypto.PublicKey) bool {
	k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}

// NewCA returns a self-signed CA valid from now (less clockSkew) for
// validity. Its path length is zero: it only ever signs serving certificates.
func NewCA(commonName string, validity time.Duration, now time.Time) (*KeyPair, error) {
	if commonName == "" {
		return nil, errors.New("CA common name is empty")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity %v is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// SubjectKeyId is filled in by x509.CreateCertificate for CAs; the
		// serving certificate's AuthorityKeyId then names this exact CA,
		// which disambiguates old and new CAs that share a subject.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return encodeKeyPair(der, key)
}

// NewServingCert returns a serving certificate for dnsNames and ips signed
// by ca. Its NotAfter is capped at the CA's, because a chain is only as valid
// as its shortest-lived link. ca.CertPEM may be a bundle; the certificate
// matching ca.KeyPEM signs.
func NewServingCert(ca *KeyPair, dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (*KeyPair, error) {
	if ca == nil {
		return nil, errors.New("no CA")
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("serving certificate needs at least one DNS name or IP")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("validity %v is not positive", validity)
	}
	caCert, caKey, err := ca.caSigner()
	if err != nil {
		return nil, err
	}
	if !now.Before(caCert.NotAfter) {
		return nil, fmt.Errorf("CA expired at %s", caCert.NotAfter.Format(time.RFC3339))
	}
	notAfter := now.Add(validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	var cn string
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	} else {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-clockSkew).UTC(),
		NotAfter:              notAfter.UTC(),
		DNSNames:              append([]string(nil), dnsNames...),
		IPAddresses:           append([]net.IP(nil), ips...),
		KeyUsage:              x509.KeyUsageDigitalSignature, // ECDSA: no key encipherment
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	return encodeKeyPair(der, key)
}

// caSigner returns the certificate in kp.CertPEM whose public key matches
// kp.KeyPEM, and that key.
func (kp *KeyPair) caSigner() (*x509.Certificate, crypto.Signer, error) {
	key, err := kp.Signer()
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	certs, err := ParseCertificatesPEM(kp.CertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	for _, c := range certs {
		if publicKeysEqual(c, key.Public()) {
			if !c.IsCA {
				return nil, nil, errors.New("CA certificate is not a CA")
			}
			return c, key, nil
		}
	}
	return nil, nil, errors.New("CA key matches no CA certificate")
}

// ServiceDNSNames are the names a client may use for a Service. The API
// server dials <service>.<namespace>.svc, which is first so it becomes the
// certificate's common name; the others cover in-cluster clients.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
		service + "." + namespace,
		service,
	}
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func encodeKeyPair(der []byte, key *ecdsa.PrivateKey) (*KeyPair, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: keyDER}),
	}, nil
}
