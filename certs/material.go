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
	// not expired yet, and last, while one is staged, the next CA. It is
	// what the webhook configuration trusts.
	CABundle []byte
	// CAKey is ca.key, the signing CA's private key.
	CAKey []byte
	// NextCAKey is ca-next.key, the private key of the staged next CA; empty
	// when none is staged. Its certificate is in CABundle, but it signs
	// nothing until it has been published for the lead and is promoted.
	NextCAKey []byte
	// Cert and Key are tls.crt and tls.key, the serving pair.
	Cert []byte
	Key  []byte
}

// Equal reports whether m and o hold the same bytes.
func (m Material) Equal(o Material) bool {
	return bytes.Equal(m.CABundle, o.CABundle) && bytes.Equal(m.CAKey, o.CAKey) &&
		bytes.Equal(m.NextCAKey, o.NextCAKey) && bytes.Equal(m.Cert, o.Cert) && bytes.Equal(m.Key, o.Key)
}

// Action is what Reconcile decided to do.
type Action int

const (
	// ActionNone: the material is fine as it is.
	ActionNone Action = iota
	// ActionPruneBundle: only expired, duplicate or unparsable CAs are
	// dropped from the bundle, and a staged CA key that is unusable while
	// the signing CA is not due.
	ActionPruneBundle
	// ActionRenewCert: a new serving pair from the signing CA.
	ActionRenewCert
	// ActionStageCA: a new CA is appended to the bundle and its key stored
	// as the next CA; it does not sign yet. The serving pair is only
	// renewed (from the signing CA) if it would not last until the staged
	// CA has taken over.
	ActionStageCA
	// ActionRotateCA: a new signing CA and a new serving pair signed by it;
	// the old CA stays in the bundle until it expires. The new CA is the
	// staged one when there is one that is still good (a promotion), and
	// freshly generated otherwise (an emergency, or too late to stage).
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
	case ActionStageCA:
		return "StageCA"
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
	// CAPublishLead is how long a staged CA is in the bundle before it may
	// sign serving certificates, so that every client (above all the API
	// servers, through the webhook configuration) trusts it before it is
	// presented. It must fit twice into the CA rotation window: once to
	// publish, once for the old CA to outlive the handover. Zero means
	// DefaultCAPublishLead for a rotator checking every DefaultCheckInterval;
	// Rotator sets it from its own CheckInterval.
	CAPublishLead time.Duration
}

// DefaultCAPublishLead is the publish lead for a rotator that re-checks
// every checkInterval and CAs whose rotation window is caWindow: twice the
// check interval, at least a minute, at most a third of the window.
//
// An API server watches webhook configurations and trusts a new caBundle
// within seconds of its injection. The lead is longer because the bundle
// can be late to get there or be reverted briefly: a replica that read the
// Secret just before the staging write may inject the older bundle over
// it, and one whose watch was down only notices at its next periodic sync;
// two check intervals cover either. The minute is a floor for slow API
// server watches on loaded control planes. The third leaves the rest of the
// window for the two other steps: staging itself happens up to a check
// interval after the window opens, and after the promotion every replica
// must switch to a certificate from the new CA before the old one expires.
func DefaultCAPublishLead(checkInterval, caWindow time.Duration) time.Duration {
	return min(max(2*checkInterval, time.Minute), caWindow/3)
}

// caWindow is the rotation window of the CAs this configuration issues.
// The lifetime includes the clock-skew backdate, as RotationPolicy's does.
func (c IssueConfig) caWindow() time.Duration {
	return c.RotateBefore.Window(c.CAValidity + clockSkew)
}

// publishLead is CAPublishLead with its default applied.
func (c IssueConfig) publishLead() time.Duration {
	if c.CAPublishLead != 0 {
		return c.CAPublishLead
	}
	return DefaultCAPublishLead(DefaultCheckInterval, c.caWindow())
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
	if c.CAPublishLead < 0 {
		errs = append(errs, fmt.Errorf("CA publish lead %v is negative", c.CAPublishLead))
	} else if c.CAValidity > 0 && c.RotateBefore.Validate() == nil {
		lead, window := c.publishLead(), c.caWindow()
		switch {
		case lead < time.Second:
			// Certificates carry whole seconds; a staged CA's issue time
			// read back from one may be up to a second early.
			errs = append(errs, fmt.Errorf("CA publish lead %v is under a second (CA rotation window %v)", lead, window))
		case 2*lead > window:
			errs = append(errs, fmt.Errorf("CA publish lead %v does not fit twice into the CA rotation window %v "+
				"(CA validity %v): the next CA is published for the lead before it signs, "+
				"and the old CA must then outlive the handover by about as long", lead, window, c.CAValidity))
		}
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
//
// A CA is rotated in two steps. When the signing CA enters its rotation
// window, ActionStageCA adds a next CA to the bundle; the serving pair
// stays as it is. Once the staged CA has been published for
// CAPublishLead, ActionRotateCA promotes it: it becomes the signing CA and
// signs a new serving pair. Every step reads its state from the Secret
// alone (the staged CA's issue time is its NotBefore plus the clock-skew
// backdate), so replicas need no local state to agree. See promoteAt for
// late staging and planReason for everything that cannot wait.
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
	// (e.g. a CA validity shorter than the rotation window). Every action
	// fixes all that it can at once so that this holds: staging renews a
	// serving pair that needs it, renewing drops an unusable staged key.
	if again, why, _ := planReason(plan.Material, cfg, now); again != ActionNone {
		return Plan{}, fmt.Errorf("newly issued material would be rotated again at once (%s): %w", why, errNoConvergence)
	}
	return plan, nil
}

// assessment is what planReason found, for plan to act on.
type assessment struct {
	// signing is the signing CA; nil if it has to be replaced at once.
	signing *x509.Certificate
	// next is the staged CA if it is usable, nextBroken why it is not (both
	// zero when none is staged).
	next       *x509.Certificate
	nextBroken string
}

func plan(cur Material, cfg IssueConfig, now time.Time) (Plan, error) {
	action, reason, a := planReason(cur, cfg, now)
	bundle, _ := pruneBundle(cur.CABundle, now)
	switch action {
	case ActionRotateCA:
		m, err := rotateCA(cur, a.next, cfg, now)
		return Plan{Action: action, Reason: reason, Material: m}, err
	case ActionStageCA:
		m, why, err := stageCA(cur, a.signing, cfg, now)
		if why != "" {
			reason += "; renewing the serving certificate from the current CA: " + why
		}
		return Plan{Action: action, Reason: reason, Material: m}, err
	case ActionRenewCert:
		sc, err := renewServing(cur, a.signing, cfg, now)
		if err != nil {
			return Plan{}, err
		}
		return Plan{Action: action, Reason: reason, Material: Material{
			CABundle: bundle, CAKey: cur.CAKey, NextCAKey: keepNext(cur, a),
			Cert: sc.CertPEM, Key: sc.KeyPEM,
		}}, nil
	case ActionPruneBundle:
		m := cur
		m.CABundle = bundle
		m.NextCAKey = keepNext(cur, a)
		return Plan{Action: action, Reason: reason, Material: m}, nil
	}
	return Plan{Action: ActionNone, Material: cur}, nil
}

// planReason inspects cur without issuing anything. The order is the order
// of urgency:
//
//  1. The signing CA is unusable (missing, unparsable, matching nothing,
//     not yet valid or expired): rotate at once; nothing that waits helps
//     once it cannot sign. A staged CA that is still good is promoted early
//     rather than a fresh one generated, since it has been published for a
//     while at least.
//  2. The signing CA is inside its rotation window: stage a next CA, or,
//     once one has been published long enough, promote it. Meanwhile the
//     serving pair is only renewed if it would not outlast the handover.
//  3. Otherwise the serving pair is judged as always, and an unusable
//     staged key is dropped. A usable one is kept even though the signing
//     CA is not due: a replica whose clock runs a little behind the one
//     that staged it must not undo the staging.
//  4. Finally the bundle is pruned.
func planReason(cur Material, cfg IssueConfig, now time.Time) (Action, string, assessment) {
	var a assessment
	signing, emergency := signingCA(cur, now)
	a.signing = signing
	a.next, a.nextBroken = stagedCA(cur, signing, now, cfg.RotateBefore)
	if emergency != "" {
		if a.next != nil {
			return ActionRotateCA, emergency + "; promoting the staged CA early", a
		}
		return ActionRotateCA, emergency, a
	}
	lead := cfg.publishLead()
	if cfg.RotateBefore.Due(signing, now) {
		expires := signing.NotAfter.Format(time.RFC3339)
		if a.next == nil {
			if !now.Before(signing.NotAfter.Add(-lead)) {
				// The window was missed (say, no replica ran for a while):
				// a staged CA would have to be promoted at once anyway.
				return ActionRotateCA, fmt.Sprintf("CA expires at %s, too soon to publish a successor for %v first", expires, lead), a
			}
			if a.nextBroken != "" {
				return ActionStageCA, fmt.Sprintf("CA expires at %s, inside its rotation window; restaging: %s", expires, a.nextBroken), a
			}
			return ActionStageCA, fmt.Sprintf("CA expires at %s, inside its rotation window", expires), a
		}
		at := promoteAt(a.next, signing, lead)
		if !now.Before(at) {
			return ActionRotateCA, fmt.Sprintf("CA expires at %s; promoting the CA staged at %s",
				expires, issuedAt(a.next).Format(time.RFC3339)), a
		}
		if reason := handoverServingReason(cur, signing, cfg, now, at.Add(lead)); reason != "" {
			return ActionRenewCert, reason, a
		}
	} else {
		// Judge the serving pair against the signing CA only: a certificate
		// from an older CA in the bundle still verifies, but must be
		// replaced so the old CA can retire.
		if reason := servingReason([]*x509.Certificate{signing}, cur.Cert, cur.Key, cfg.DNSNames, cfg.IPs, now, cfg.RotateBefore); reason != "" {
			return ActionRenewCert, reason, a
		}
		if a.nextBroken != "" {
			return ActionPruneBundle, "dropping the staged CA key: " + a.nextBroken, a
		}
	}
	if _, changed := pruneBundle(cur.CABundle, now); changed {
		return ActionPruneBundle, "CA bundle holds expired, duplicate or unparsable certificates", a
	}
	return ActionNone, "", a
}

// signingCA returns the bundle's certificate for CAKey, or why the CA must
// be replaced at once. Whether it is due is left to the caller.
func signingCA(cur Material, now time.Time) (*x509.Certificate, string) {
	switch {
	case len(cur.CAKey) == 0:
		return nil, "CA key missing"
	case len(cur.CABundle) == 0:
		return nil, "CA bundle missing"
	}
	ca, reason := caForKey(cur.CABundle, cur.CAKey)
	if reason != "" {
		return nil, "CA " + reason
	}
	if r := validityReason("CA", ca, now); r != "" {
		return nil, r
	}
	return ca, ""
}

// stagedCA returns the bundle's certificate for NextCAKey if it can still
// be promoted: valid, not yet due itself, and not the signing CA. Otherwise
// it says why not, or nothing if no CA is staged. A staged CA that became
// due or expired before its promotion (the Secret sat untouched for most of
// a CA lifetime) is useless: it is replaced like a broken one.
func stagedCA(cur Material, signing *x509.Certificate, now time.Time, policy RotationPolicy) (*x509.Certificate, string) {
	if len(cur.NextCAKey) == 0 {
		return nil, ""
	}
	next, reason := caForKey(cur.CABundle, cur.NextCAKey)
	switch {
	case reason != "":
		return nil, "staged CA " + reason
	case signing != nil && next.Equal(signing):
		return nil, "staged CA is the signing CA"
	}
	if r := validityReason("staged CA", next, now); r != "" {
		return nil, r
	}
	if policy.Due(next, now) {
		return nil, fmt.Sprintf("staged CA expires at %s, inside its own rotation window", next.NotAfter.Format(time.RFC3339))
	}
	return next, ""
}

// caForKey returns the CA certificate in bundle whose public key is keyPEM's,
// or why there is none ("key unparsable: ...", "key matches no CA
// certificate in the bundle").
func caForKey(bundle, keyPEM []byte) (*x509.Certificate, string) {
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, "key unparsable: " + err.Error()
	}
	for _, c := range parseBundleLenient(bundle) {
		if c.IsCA && publicKeysEqual(c, key.Public()) {
			return c, ""
		}
	}
	return nil, "key matches no CA certificate in the bundle"
}

// issuedAt is when one of our CAs was issued, and so first published: NewCA
// backdates NotBefore by clockSkew, and the CA goes into the bundle in the
// same write that creates it. Certificates carry whole seconds, so this may
// be up to a second early.
func issuedAt(ca *x509.Certificate) time.Time {
	return ca.NotBefore.Add(clockSkew)
}

// promoteAt is when the staged CA next takes over from signing: once it has
// been published for lead, or once signing has only lead left to live,
// whichever is first. The second only matters when staging came late (the
// window opened while no replica was running, or a replica's clock is
// behind): waiting the full lead would let the old CA, and every serving
// certificate it signed, expire before the new one is in place, which
// fails every webhook call rather than only those of a client with a stale
// bundle. The lead left then is for every replica to switch over.
func promoteAt(next, signing *x509.Certificate, lead time.Duration) time.Time {
	published := issuedAt(next).Add(lead)
	if deadline := signing.NotAfter.Add(-lead); deadline.Before(published) {
		return deadline
	}
	return published
}

// handoverServingReason judges the serving pair while the signing CA is due
// and a next CA staged or about to be: renewing it from the signing CA
// gains little (its NotAfter is capped at the CA's), and is not needed
// since the promotion replaces it. So it is renewed only if it is unusable,
// or inside its own rotation window and due to expire before handoverEnd,
// the promotion plus the lead every replica gets to switch over.
func handoverServingReason(cur Material, signing *x509.Certificate, cfg IssueConfig, now, handoverEnd time.Time) string {
	cert, _, reason := checkServing([]*x509.Certificate{signing}, cur.Cert, cur.Key, cfg.DNSNames, cfg.IPs, now)
	if reason != "" {
		return reason
	}
	if cfg.RotateBefore.Due(cert, now) && cert.NotAfter.Before(handoverEnd) {
		return fmt.Sprintf("certificate expires at %s, before the CA handover ends at %s",
			cert.NotAfter.Format(time.RFC3339), handoverEnd.Format(time.RFC3339))
	}
	return ""
}

// keepNext is the NextCAKey to store along a renewal or pruning: kept while
// usable, dropped when broken.
func keepNext(cur Material, a assessment) []byte {
	if a.next == nil {
		return nil
	}
	return cur.NextCAKey
}

// renewServing signs a new serving pair with the signing CA, whose key is
// cur.CAKey.
func renewServing(cur Material, signing *x509.Certificate, cfg IssueConfig, now time.Time) (*KeyPair, error) {
	ca := &KeyPair{CertPEM: EncodeCertificatesPEM(signing), KeyPEM: cur.CAKey}
	return NewServingCert(ca, cfg.DNSNames, cfg.IPs, cfg.Validity, now)
}

// stageCA appends a new CA to the bundle and stores its key as the next CA.
// The serving pair stays, unless it would not last through the handover;
// then it is renewed from the signing CA, and why is returned.
func stageCA(cur Material, signing *x509.Certificate, cfg IssueConfig, now time.Time) (Material, string, error) {
	next, err := NewCA(fmt.Sprintf("%s@%d", cfg.CACommonName, now.Unix()), cfg.CAValidity, now)
	if err != nil {
		return Material{}, "", err
	}
	nextCert, err := next.Certificate()
	if err != nil {
		return Material{}, "", err
	}
	kept, _ := pruneBundle(cur.CABundle, now)
	bundle := bytes.Clone(kept)
	if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
		bundle = append(bundle, '\n') // a bundle from another tool may lack it
	}
	m := Material{
		CABundle:  append(bundle, next.CertPEM...),
		CAKey:     cur.CAKey,
		NextCAKey: next.KeyPEM,
		Cert:      cur.Cert,
		Key:       cur.Key,
	}
	lead := cfg.publishLead()
	why := handoverServingReason(cur, signing, cfg, now, promoteAt(nextCert, signing, lead).Add(lead))
	if why != "" {
		sc, err := renewServing(cur, signing, cfg, now)
		if err != nil {
			return Material{}, "", err
		}
		m.Cert, m.Key = sc.CertPEM, sc.KeyPEM
	}
	return m, why, nil
}

// rotateCA makes next, or if it is nil a new CA, the signing CA and issues
// a serving pair from it. The bundle keeps every unexpired CA from the old
// one, after the new CA: a replica that has not yet reloaded still serves
// a certificate from the old CA, and clients that were handed the new
// bundle must go on trusting it until it expires.
func rotateCA(cur Material, next *x509.Certificate, cfg IssueConfig, now time.Time) (Material, error) {
	kept, _ := pruneBundle(cur.CABundle, now)
	var ca *KeyPair
	var bundle []byte
	if next != nil {
		ca = &KeyPair{CertPEM: EncodeCertificatesPEM(next), KeyPEM: cur.NextCAKey}
		rest := []*x509.Certificate{next}
		for _, c := range parseBundleLenient(kept) {
			if !c.Equal(next) {
				rest = append(rest, c)
			}
		}
		bundle = EncodeCertificatesPEM(rest...)
	} else {
		var err error
		ca, err = NewCA(fmt.Sprintf("%s@%d", cfg.CACommonName, now.Unix()), cfg.CAValidity, now)
		if err != nil {
			return Material{}, err
		}
		bundle = append(bytes.Clone(ca.CertPEM), kept...)
	}
	sc, err := NewServingCert(ca, cfg.DNSNames, cfg.IPs, cfg.Validity, now)
	if err != nil {
		return Material{}, err
	}
	return Material{CABundle: bundle, CAKey: ca.KeyPEM, Cert: sc.CertPEM, Key: sc.KeyPEM}, nil
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
