package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// FrontProxyClientName is the CN of the apiserver's aggregation-layer client
// certificate (--requestheader-allowed-names).
const FrontProxyClientName = "front-proxy-client"

// pki holds the throw-away certificate authority and the key material every
// component needs. ECDSA P-256 is used throughout because generating it is
// instant, whereas a handful of RSA keys would cost noticeable startup time;
// every component (and service-account token signing, ES256) accepts it.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte

	// Files passed to the components.
	caCertFile, caKeyFile         string
	servingCert, servingKey       string // 127.0.0.1/localhost; shared by all serving components
	saPublic, saPrivate           string // service-account token signing key pair
	frontProxyCert, frontProxyKey string

	admin, scheduler, frontProxy clientCert
}

// clientCert is a PEM encoded client certificate and its key.
type clientCert struct {
	certPEM, keyPEM []byte
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "fitgate-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("self-signing CA: %w", err)
	}
	if p.caCert, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	p.caKey = caKey
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return nil, err
	}

	servingCertPEM, servingKeyPEM, err := p.IssueServingCert("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saPrivPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	// The admin is system:masters (also used by the controller manager, see
	// controlplane.go). The scheduler gets its canonical identity, to which
	// the RBAC bootstrap policy grants exactly what it needs. The front-proxy
	// client is what the apiserver presents to aggregated API servers; without
	// the requestheader configuration every delegating component (scheduler,
	// controller manager, webhook servers using delegated auth) logs
	// "missing content for CA bundle" errors in a loop.
	if p.admin, err = p.issueClient("fitgate-admin", "system:masters"); err != nil {
		return nil, err
	}
	if p.scheduler, err = p.issueClient("system:kube-scheduler"); err != nil {
		return nil, err
	}
	if p.frontProxy, err = p.issueClient(FrontProxyClientName); err != nil {
		return nil, err
	}

	p.caCertFile = filepath.Join(dir, "ca.crt")
	p.caKeyFile = filepath.Join(dir, "ca.key")
	p.servingCert = filepath.Join(dir, "serving.crt")
	p.servingKey = filepath.Join(dir, "serving.key")
	p.saPublic = filepath.Join(dir, "sa.pub")
	p.saPrivate = filepath.Join(dir, "sa.key")
	p.frontProxyCert = filepath.Join(dir, "front-proxy-client.crt")
	p.frontProxyKey = filepath.Join(dir, "front-proxy-client.key")
	files := map[string][]byte{
		p.caCertFile:     p.caPEM,
		p.caKeyFile:      caKeyPEM,
		p.servingCert:    servingCertPEM,
		p.servingKey:     servingKeyPEM,
		p.saPrivate:      saPrivPEM,
		p.saPublic:       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		p.frontProxyCert: p.frontProxy.certPEM,
		p.frontProxyKey:  p.frontProxy.keyPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// IssueServingCert returns a PEM certificate and key for the given DNS names
// and IP addresses, signed by the control plane's CA. Useful for serving an
// admission webhook the apiserver trusts via caBundle = CACertPEM().
func (p *pki) IssueServingCert(hosts ...string) (certPEM, keyPEMBytes []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := leafTemplate(hosts[0])
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := sign(tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing serving cert for %v: %w", hosts, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

func (p *pki) issueClient(cn string, orgs ...string) (clientCert, error) {
	key, err := newKey()
	if err != nil {
		return clientCert{}, err
	}
	tmpl := leafTemplate(cn)
	tmpl.Subject.Organization = orgs
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := sign(tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return clientCert{}, fmt.Errorf("issuing client cert %q: %w", cn, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return clientCert{}, err
	}
	return clientCert{certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM: kp}, nil
}

func leafTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
