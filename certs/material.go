package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"
)

// Material is everything stored in the Secret. It is plain data so that the
// decision of what to store next (Reconcile) needs no client.
type Material struct {
	// CABundle is ca.crt: the signing CA first, then older CAs that have
	// not expired yet. It is what the webhook configuration trusts.
	CABundle []byte
	// CAKey is ca.key, the signing CA's private key.
	CAKey []byte
	// Cert and Key are tls.crt and tls.key, the serving pair.
	Cert []byte
	Key  []byte
}

// Equal reports whether m and o hold the same bytes.
func (m Material) Equal(o Material) bool {
	return bytes.Equal(m.CABundle, o.CABundle) && bytes.Equal(m.CAKey, o.CAKey) &&
		bytes.Equal(m.Cert, o.Cert) && bytes.Equal(m.Key, o.Key)
}

// Action is what Reconcile decided to do.
type Action int

const (
	// ActionNone: the material is fine as it is.
	ActionNone Action = iota
	// ActionPruneBundle: only expired or unparsable CAs are dropped from
	// the bundle.
	ActionPruneBundle
	// ActionRenewCert: a new serving pair from the existing CA.
	ActionRenewCert
	// ActionRotateCA: a new CA and a new serving pair; the old CA stays in
	// the bundle until it expires.
	ActionRotateCA
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "None"
	case ActionPruneBundle:
		return "PruneBundle"
	case ActionRenewCert:
		return "RenewCert"
	case ActionRotateCA:
		return "RotateCA"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// IssueConfig is what Reconcile needs to judge and issue material.
type IssueConfig struct {
	// CACommonName is the base of the CA's common name; each generation
	// gets "@<unix seconds>" appended so old and new CAs are told apart in
	// logs and openssl output.
	CACommonName string
	DNSNames     []string
	IPs          []net.IP
	Validity     time.Duration
	CAValidity   time.Duration
	RotateBefore RotationPolicy
}

// Validate checks the configuration on its own.
func (c IssueConfig) Validate() error {
	var errs []error
	if c.CACommonName == "" {
		errs = append(errs, errors.New("CA common name is empty"))
	}
	if len(c.DNSNames) == 0 && len(c.IPs) == 0 {
		errs = append(errs, errors.New("no DNS names or IPs"))
	}
	if c.Validity <= 0 {
		errs = append(errs, fmt.Errorf("validity %v is not positive", c.Validity))
	}
	if c.CAValidity <= 0 {
		errs = append(errs, fmt.Errorf("CA validity %v is not positive", c.CAValidity))
	}
	if err := c.RotateBefore.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RotateBefore.Before > 0 && c.RotateBefore.Before >= c.Validity {
		errs = append(errs, fmt.Errorf("rotate-before %v is not shorter than validity %v: %w",
			c.RotateBefore.Before, c.Validity, errNoConvergence))
	}
	return errors.Join(errs...)
}

// Plan is Reconcile's decision: the material to store and why.
type Plan struct {
	Action Action
	// Reason says why, for logs; empty for ActionNone.
	Reason string
	// Material is what should be stored; for ActionNone it is the input.
	Material Material
}

// Reconcile decides what cur should become at now. It is deterministic in
// its decision (not in the keys it generates), so every replica looking at
// the same Secret at about the same time reaches the same Action, and the
// material one replica writes is ActionNone for all the others.
func Reconcile(cur Material, cfg IssueConfig, now time.Time) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, err
	}
	plan, err := plan(cur, cfg, now)
	if err != nil || plan.Action == ActionNone {
		return plan, err
	}
	// Freshly written material must be stable, or every sync would rotate
	// again; Validate catches the obvious cases, this catches the rest
	// (e.g. a CA validity shorter than the rotation window).
	if again, why, _ := planReason(plan.Material, cfg, now); again != ActionNone {
		return Plan{}, fmt.Errorf("newly issued material would be rotated again at once (%s): %w", why, errNoConvergence)
	}
	return plan, nil
}

func plan(cur Material, cfg IssueConfig, now time.Time) (Plan, error) {
	action, reason, caCert := planReason(cur, cfg, now)
	switch action {
	case ActionRotateCA:
		m, err := rotateCA(cur, cfg, now)
		return Plan{Action: action, Reason: reason, Material: m}, err
	case ActionRenewCert:
		ca := &KeyPair{CertPEM: EncodeCertificatesPEM(caCert), KeyPEM: cur.CAKey}
		sc, err := NewServingCert(ca, cfg.DNSNames, cfg.IPs, cfg.Validity, now)
		if err != nil {
			return Plan{}, err
		}
		bundle, _ := pruneBundle(cur.CABundle, now)
		return Plan{Action: action, Reason: reason, Material: Material{
			CABundle: bundle, CAKey: cur.CAKey, Cert: sc.CertPEM, Key: sc.KeyPEM,
		}}, nil
	case ActionPruneBundle:
		bundle, _ := pruneBundle(cur.CABundle, now)
		m := cur
		m.CABundle = bundle
		return Plan{Action: action, Reason: reason, Material: m}, nil
	}
	return Plan{Action: ActionNone, Material: cur}, nil
}

// planReason inspects cur without issuing anything. It also returns the
// signing CA's certificate when that CA is to be kept.
func planReason(cur Material, cfg IssueConfig, now time.Time) (Action, string, *x509.Certificate) {
	ca, reason := signingCA(cur, now, cfg.RotateBefore)
	if reason != "" {
		return ActionRotateCA, reason, nil
	}
	// Judge the serving pair against the signing CA only: a certificate
	// from an older CA in the bundle still verifies, but must be replaced
	// so the old CA can retire.
	if reason := servingReason([]*x509.Certificate{ca}, cur.Cert, cur.Key, cfg.DNSNames, cfg.IPs, now, cfg.RotateBefore); reason != "" {
		return ActionRenewCert, reason, ca
	}
	if _, changed := pruneBundle(cur.CABundle, now); changed {
		return ActionPruneBundle, "CA bundle holds expired, duplicate or unparsable certificates", ca
	}
	return ActionNone, "", ca
}

// signingCA returns the bundle's certificate for CAKey, or why the CA must
// be rotated.
func signingCA(cur Material, now time.Time, policy RotationPolicy) (*x509.Certificate, string) {
	switch {
	case len(cur.CAKey) == 0:
		return nil, "CA key missing"
	case len(cur.CABundle) == 0:
		return nil, "CA bundle missing"
	}
	key, err := ParsePrivateKeyPEM(cur.CAKey)
	if err != nil {
		return nil, "CA key unparsable: " + err.Error()
	}
	var ca *x509.Certificate
	for _, c := range parseBundleLenient(cur.CABundle) {
		if c.IsCA && publicKeysEqual(c, key.Public()) {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, "CA key matches no CA certificate in the bundle"
	}
	if r := validityReason("CA", ca, now); r != "" {
		return nil, r
	}
	if policy.Due(ca, now) {
		return nil, fmt.Sprintf("CA expires at %s, inside its rotation window", ca.NotAfter.Format(time.RFC3339))
	}
	return ca, ""
}

// rotateCA issues a new CA and serving pair. The bundle keeps every
// unexpired CA from the old one, after the new CA: a replica that has not
// yet reloaded still serves a certificate from the old CA, and clients that
// were handed the new bundle must go on trusting it until it expires.
func rotateCA(cur Material, cfg IssueConfig, now time.Time) (Material, error) {
	ca, err := NewCA(fmt.Sprintf("%s@%d", cfg.CACommonName, now.Unix()), cfg.CAValidity, now)
	if err != nil {
		return Material{}, err
	}
	sc, err := NewServingCert(ca, cfg.DNSNames, cfg.IPs, cfg.Validity, now)
	if err != nil {
		return Material{}, err
	}
	kept, _ := pruneBundle(cur.CABundle, now)
	return Material{
		CABundle: append(bytes.Clone(ca.CertPEM), kept...),
		CAKey:    ca.KeyPEM,
		Cert:     sc.CertPEM,
		Key:      sc.KeyPEM,
	}, nil
}

// pruneBundle drops expired, non-CA, duplicate and unparsable certificates.
// If nothing is dropped it returns bundle unchanged, byte for byte, so a
// bundle written by another tool with different PEM formatting is not
// rewritten for nothing.
func pruneBundle(bundle []byte, now time.Time) ([]byte, bool) {
	var (
		kept    []*x509.Certificate
		dropped bool
		seen    = map[string]bool{}
	)
	rest := bundle
	for len(bytes.TrimSpace(rest)) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			dropped = true // trailing garbage
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if block.Type != pemTypeCertificate || err != nil || !c.IsCA ||
			!now.Before(c.NotAfter) || seen[string(c.Raw)] {
			dropped = true
			continue
		}
		seen[string(c.Raw)] = true
		kept = append(kept, c)
	}
	if !dropped {
		return bundle, false
	}
	return EncodeCertificatesPEM(kept...), true
}

// parseBundleLenient returns the certificates that parse, skipping the rest.
func parseBundleLenient(bundle []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs
		}
		if block.Type != pemTypeCertificate {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
}
