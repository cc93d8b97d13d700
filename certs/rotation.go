package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DefaultRotationFraction renews a certificate once a third of its lifetime
// is left: early enough that a renewal failing for days is still noticed and
// fixed before expiry, late enough not to churn.
const DefaultRotationFraction = 1.0 / 3

// RotationPolicy says how long before expiry a certificate (serving or CA)
// is replaced. The rotation window is
//
//   - Fraction of the lifetime if only Fraction is set,
//   - Before if only Before is set,
//   - the larger of the two if both are set (whichever triggers first),
//   - DefaultRotationFraction of the lifetime if neither is set.
//
// The lifetime is NotAfter-NotBefore, so it includes the clock-skew backdate.
type RotationPolicy struct {
	Fraction float64
	Before   time.Duration
}

// Validate rejects policies that make no sense for any lifetime. Whether a
// Before fits a given validity is checked where both are known.
func (p RotationPolicy) Validate() error {
	if p.Fraction < 0 || p.Fraction >= 1 {
		return fmt.Errorf("rotation fraction %v must be in [0, 1)", p.Fraction)
	}
	if p.Before < 0 {
		return fmt.Errorf("rotate-before %v is negative", p.Before)
	}
	return nil
}

// Window is how long before NotAfter a certificate of the given lifetime is
// due for rotation.
func (p RotationPolicy) Window(lifetime time.Duration) time.Duration {
	frac := p.Fraction
	if frac == 0 && p.Before == 0 {
		frac = DefaultRotationFraction
	}
	w := time.Duration(float64(lifetime) * frac)
	return max(w, p.Before)
}

// RenewAt is when c becomes due for rotation.
func (p RotationPolicy) RenewAt(c *x509.Certificate) time.Time {
	return c.NotAfter.Add(-p.Window(c.NotAfter.Sub(c.NotBefore)))
}

// Due reports whether c is inside its rotation window (or expired) at now.
func (p RotationPolicy) Due(c *x509.Certificate, now time.Time) bool {
	return !now.Before(p.RenewAt(c))
}

// NeedsRotation reports whether the serving pair must be replaced, and why.
// caPEM is the trusted CA bundle; the certificate must be signed by one of
// its CAs, and that CA must itself be outside its rotation window, so that
// the CA is replaced before it expires. It is true when anything is missing
// or unparsable, the key does not match the certificate, the chain does not
// verify for server auth, a dnsName is not among the SANs (extra SANs are
// fine, so replicas with an older, shorter name list do not fight a newer
// one), or either certificate is not yet valid, expired or due.
func NeedsRotation(caPEM, certPEM, keyPEM []byte, dnsNames []string, now time.Time, policy RotationPolicy) (bool, string) {
	if len(caPEM) == 0 {
		return true, "CA bundle missing"
	}
	cas, err := ParseCertificatesPEM(caPEM)
	if err != nil {
		return true, "CA bundle unparsable: " + err.Error()
	}
	reason := servingReason(cas, certPEM, keyPEM, dnsNames, nil, now, policy)
	return reason != "", reason
}

// servingReason is NeedsRotation with parsed CAs and required IPs; it
// returns "" when the pair is fine.
func servingReason(cas []*x509.Certificate, certPEM, keyPEM []byte, dnsNames []string, ips []net.IP, now time.Time, policy RotationPolicy) string {
	cert, issuer, reason := checkServing(cas, certPEM, keyPEM, dnsNames, ips, now)
	if reason != "" {
		return reason
	}
	if policy.Due(cert, now) {
		return fmt.Sprintf("certificate expires at %s, inside its rotation window", cert.NotAfter.Format(time.RFC3339))
	}
	if policy.Due(issuer, now) {
		return fmt.Sprintf("CA expires at %s, inside its rotation window", issuer.NotAfter.Format(time.RFC3339))
	}
	return ""
}

// checkServing is servingReason without the rotation windows: it returns
// the parsed certificate and the CA in cas that signed it, or why the pair
// is unusable at now (missing, unparsable, mismatched, not yet or no longer
// valid, lacking SANs, not verifying for server auth). Material.go judges
// the windows itself while the next CA is staged.
func checkServing(cas []*x509.Certificate, certPEM, keyPEM []byte, dnsNames []string, ips []net.IP, now time.Time) (cert, issuer *x509.Certificate, reason string) {
	switch {
	case len(certPEM) == 0:
		return nil, nil, "certificate missing"
	case len(keyPEM) == 0:
		return nil, nil, "private key missing"
	}
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, nil, "certificate unparsable: " + err.Error()
	}
	cert = certs[0]
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, "private key unparsable: " + err.Error()
	}
	if !publicKeysEqual(cert, key.Public()) {
		return nil, nil, "private key does not match certificate"
	}
	issuer = findIssuer(cert, cas)
	if issuer == nil {
		return nil, nil, "certificate not signed by the CA"
	}
	if r := validityReason("certificate", cert, now); r != "" {
		return nil, nil, r
	}
	if r := validityReason("CA", issuer, now); r != "" {
		return nil, nil, r
	}
	if missing := missingSANs(cert, dnsNames, ips); len(missing) > 0 {
		return nil, nil, "certificate lacks SANs " + strings.Join(missing, ", ")
	}
	// A catch-all for what the checks above do not spell out, e.g. a
	// certificate without the serverAuth extended key usage.
	roots := x509.NewCertPool()
	roots.AddCert(issuer)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, nil, "certificate does not verify: " + err.Error()
	}
	return cert, issuer, ""
}

// findIssuer returns the CA in cas that signed cert, or nil.
func findIssuer(cert *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	for _, ca := range cas {
		if !ca.IsCA {
			continue
		}
		if err := cert.CheckSignatureFrom(ca); err == nil {
			return ca
		}
	}
	return nil
}

func validityReason(what string, c *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Sprintf("%s not valid before %s", what, c.NotBefore.Format(time.RFC3339))
	case !now.Before(c.NotAfter):
		return fmt.Sprintf("%s expired at %s", what, c.NotAfter.Format(time.RFC3339))
	}
	return ""
}

func missingSANs(cert *x509.Certificate, dnsNames []string, ips []net.IP) []string {
	var missing []string
	for _, want := range dnsNames {
		found := false
		for _, have := range cert.DNSNames {
			if strings.EqualFold(want, have) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, want)
		}
	}
	for _, want := range ips {
		found := false
		for _, have := range cert.IPAddresses {
			if want.Equal(have) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, want.String())
		}
	}
	return missing
}

// errNoConvergence is returned when freshly issued material would itself be
// due for rotation, which would otherwise make every sync rotate again.
var errNoConvergence = errors.New("rotation window is not shorter than the validity")
