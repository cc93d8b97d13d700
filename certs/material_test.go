package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// testConfig issues 3h serving certificates from 10h CAs, so that with the
// default third-of-lifetime policy:
//
//	serving cert issued at T is due from T+1h58m20s, expires at T+3h
//	CA issued at T is due from T+6h38m20s, expires at T+10h
func testConfig() IssueConfig {
	return IssueConfig{
		CACommonName: "fitgate.fitgate-system-ca",
		DNSNames:     ServiceDNSNames("fitgate", "fitgate-system"),
		Validity:     3 * time.Hour,
		CAValidity:   10 * time.Hour,
	}
}

// With testConfig the publish lead is the default for a 5-minute check
// interval: 10 minutes. A CA staged when its predecessor's window opens at
// T+6h38m20s is promoted 10 minutes after it was staged.
const testLead = 10 * time.Minute

// e2eConfig has the lifetimes test/e2e/certs_test.go gives `fitgate
// serve`: 40s certificates, 90s CAs, both renewed 20s before expiry, and
// the lead a Rotator checking every 5s derives, a third of the CA's 20s
// window.
func e2eConfig() IssueConfig {
	c := IssueConfig{
		CACommonName: "fitgate.fitgate-system-ca",
		DNSNames:     ServiceDNSNames("fitgate", "fitgate-system"),
		IPs:          []net.IP{net.ParseIP("127.0.0.1")},
		Validity:     40 * time.Second,
		CAValidity:   90 * time.Second,
		RotateBefore: RotationPolicy{Before: 20 * time.Second},
	}
	c.CAPublishLead = DefaultCAPublishLead(5*time.Second, c.caWindow())
	return c
}

func mustReconcile(t *testing.T, cur Material, cfg IssueConfig, now time.Time) Plan {
	t.Helper()
	p, err := Reconcile(cur, cfg, now)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return p
}

// walk is the material a rotator syncing at t0+each of at in turn stores,
// starting from nothing.
func walk(t *testing.T, cfg IssueConfig, at ...time.Duration) Material {
	t.Helper()
	var m Material
	for _, d := range at {
		m = mustReconcile(t, m, cfg, t0.Add(d)).Material
	}
	return m
}

func TestReconcile(t *testing.T) {
	cfg := testConfig()
	m0 := mustReconcile(t, Material{}, cfg, t0).Material
	expiredCA := mustCA(t, 10*time.Hour, t0.Add(-20*time.Hour))
	otherCA := mustCA(t, 10*time.Hour, t0)
	// m0 after a CA rotation, with m0's certificate put back: it is signed
	// by a CA still in the bundle, but not by the signing one.
	rotated := mustReconcile(t, Material{CABundle: m0.CABundle}, cfg, t0).Material
	staleCert := rotated
	staleCert.Cert, staleCert.Key = m0.Cert, m0.Key

	with := func(f func(*Material)) Material { m := m0; f(&m); return m }
	withCfg := func(f func(*IssueConfig)) IssueConfig { c := testConfig(); f(&c); return c }

	tests := []struct {
		name       string
		cur        Material
		cfg        IssueConfig
		now        time.Time
		want       Action
		wantReason string
		// keepsCA: the signing CA and its key are unchanged.
		keepsCA bool
		// bundleCerts is how many CAs the new bundle holds.
		bundleCerts int
	}{
		{name: "empty", cur: Material{}, cfg: cfg, now: t0, want: ActionRotateCA, wantReason: "CA key missing", bundleCerts: 1},
		{name: "fresh", cur: m0, cfg: cfg, now: t0.Add(time.Hour), want: ActionNone, keepsCA: true, bundleCerts: 1},
		{name: "serving cert due", cur: m0, cfg: cfg, now: t0.Add(2 * time.Hour), want: ActionRenewCert, wantReason: "certificate expires", keepsCA: true, bundleCerts: 1},
		{name: "serving cert expired", cur: m0, cfg: cfg, now: t0.Add(4 * time.Hour), want: ActionRenewCert, wantReason: "certificate expired", keepsCA: true, bundleCerts: 1},
		{name: "new SAN configured", cur: m0, cfg: withCfg(func(c *IssueConfig) { c.DNSNames = append(c.DNSNames, "fitgate.example.com") }), now: t0, want: ActionRenewCert, wantReason: "lacks SANs", keepsCA: true, bundleCerts: 1},
		{name: "new IP configured", cur: m0, cfg: withCfg(func(c *IssueConfig) { c.IPs = []net.IP{net.ParseIP("10.0.0.7")} }), now: t0, want: ActionRenewCert, wantReason: "lacks SANs 10.0.0.7", keepsCA: true, bundleCerts: 1},
		{name: "serving key corrupt", cur: with(func(m *Material) { m.Key = []byte("junk") }), cfg: cfg, now: t0, want: ActionRenewCert, wantReason: "private key unparsable", keepsCA: true, bundleCerts: 1},
		{name: "serving cert from a retired CA", cur: staleCert, cfg: cfg, now: t0, want: ActionRenewCert, wantReason: "not signed by the CA", keepsCA: true, bundleCerts: 2},
		{name: "CA key missing", cur: with(func(m *Material) { m.CAKey = nil }), cfg: cfg, now: t0, want: ActionRotateCA, wantReason: "CA key missing", bundleCerts: 2},
		{name: "CA key unparsable", cur: with(func(m *Material) { m.CAKey = []byte("junk") }), cfg: cfg, now: t0, want: ActionRotateCA, wantReason: "CA key unparsable", bundleCerts: 2},
		{name: "CA key matches no CA", cur: with(func(m *Material) { m.CAKey = otherCA.KeyPEM }), cfg: cfg, now: t0, want: ActionRotateCA, wantReason: "matches no CA", bundleCerts: 2},
		{name: "CA bundle missing", cur: with(func(m *Material) { m.CABundle = nil }), cfg: cfg, now: t0, want: ActionRotateCA, wantReason: "CA bundle missing", bundleCerts: 1},
		// m0's serving certificate has long expired, so staging renews it
		// from the old CA too; TestReconcileCAStaging has the usual case.
		{name: "CA due stages the next CA", cur: m0, cfg: cfg, now: t0.Add(6*time.Hour + 40*time.Minute), want: ActionStageCA, wantReason: "CA expires", keepsCA: true, bundleCerts: 2},
		{name: "CA expired drops the old CA", cur: m0, cfg: cfg, now: t0.Add(10 * time.Hour), want: ActionRotateCA, wantReason: "CA expired", bundleCerts: 1},
		{name: "expired CA in bundle pruned", cur: with(func(m *Material) { m.CABundle = append(bytes.Clone(m.CABundle), expiredCA.CertPEM...) }), cfg: cfg, now: t0, want: ActionPruneBundle, keepsCA: true, bundleCerts: 1},
		{name: "garbage in bundle pruned", cur: with(func(m *Material) { m.CABundle = append(bytes.Clone(m.CABundle), "junk\n"...) }), cfg: cfg, now: t0, want: ActionPruneBundle, keepsCA: true, bundleCerts: 1},
		{name: "duplicate CA pruned", cur: with(func(m *Material) { m.CABundle = append(bytes.Clone(m.CABundle), m.CABundle...) }), cfg: cfg, now: t0, want: ActionPruneBundle, keepsCA: true, bundleCerts: 1},
		{name: "duration policy", cur: m0, cfg: withCfg(func(c *IssueConfig) { c.RotateBefore = RotationPolicy{Before: 30 * time.Minute} }), now: t0.Add(2 * time.Hour), want: ActionNone, keepsCA: true, bundleCerts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustReconcile(t, tt.cur, tt.cfg, tt.now)
			if p.Action != tt.want {
				t.Fatalf("Action = %v (%q), want %v", p.Action, p.Reason, tt.want)
			}
			if !strings.Contains(p.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want containing %q", p.Reason, tt.wantReason)
			}
			m := p.Material
			if tt.want == ActionNone && !m.Equal(tt.cur) {
				t.Error("ActionNone changed the material")
			}
			if got := len(mustCerts(t, m.CABundle)); got != tt.bundleCerts {
				t.Errorf("bundle holds %d CAs, want %d", got, tt.bundleCerts)
			}
			if tt.keepsCA != bytes.Equal(m.CAKey, tt.cur.CAKey) {
				t.Errorf("CA key kept = %v, want %v", !tt.keepsCA, tt.keepsCA)
			}
			// Whatever was decided, the result is stable and serves.
			if again := mustReconcile(t, m, tt.cfg, tt.now); again.Action != ActionNone {
				t.Errorf("result is not stable: %v (%s)", again.Action, again.Reason)
			}
			if err := verifyServing(t, m.Cert, m.CABundle, tt.cfg.DNSNames[0], tt.now); err != nil {
				t.Errorf("serving cert does not verify against the bundle: %v", err)
			}
			if tt.want == ActionRotateCA {
				newCA := mustCerts(t, m.CABundle)[0]
				if !strings.HasPrefix(newCA.Subject.CommonName, tt.cfg.CACommonName+"@") {
					t.Errorf("new CA is not first in the bundle (CN %q)", newCA.Subject.CommonName)
				}
			}
			checkBundleInvariants(t, m, tt.now)
		})
	}
}

// checkBundleInvariants checks what every stored material must satisfy:
// the signing CA is first in the bundle, the bundle holds the CA that
// signed the serving certificate, and, while one is staged, the next CA.
func checkBundleInvariants(t *testing.T, m Material, now time.Time) {
	t.Helper()
	bundle := mustCerts(t, m.CABundle)
	signing, why := caForKey(m.CABundle, m.CAKey)
	if why != "" {
		t.Fatalf("signing CA: %s", why)
	}
	if !bundle[0].Equal(signing) {
		t.Errorf("signing CA %q is not first in the bundle", signing.Subject.CommonName)
	}
	if findIssuer(mustCert(t, m.Cert), bundle) == nil {
		t.Error("bundle lacks the serving certificate's CA")
	}
	if len(m.NextCAKey) > 0 {
		next, why := caForKey(m.CABundle, m.NextCAKey)
		if why != "" {
			t.Fatalf("staged CA: %s", why)
		}
		if next.Equal(signing) {
			t.Error("staged CA is the signing CA")
		}
		if validityReason("staged CA", next, now) != "" {
			t.Error("staged CA not valid")
		}
	}
}

func TestReconcileRejectsConfig(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*IssueConfig)
		noConverge  bool
		wantContain string
	}{
		{name: "no names", mutate: func(c *IssueConfig) { c.DNSNames = nil }, wantContain: "no DNS names"},
		{name: "no CA name", mutate: func(c *IssueConfig) { c.CACommonName = "" }, wantContain: "common name"},
		{name: "zero validity", mutate: func(c *IssueConfig) { c.Validity = 0 }, wantContain: "validity"},
		{name: "zero CA validity", mutate: func(c *IssueConfig) { c.CAValidity = 0 }, wantContain: "CA validity"},
		{name: "bad fraction", mutate: func(c *IssueConfig) { c.RotateBefore.Fraction = 1.5 }, wantContain: "fraction"},
		{name: "window as long as the validity", mutate: func(c *IssueConfig) { c.RotateBefore.Before = 3 * time.Hour }, noConverge: true},
		{name: "window as long as the CA validity", mutate: func(c *IssueConfig) {
			c.RotateBefore.Before = 2 * time.Hour
			c.CAValidity = 2 * time.Hour
		}, noConverge: true},
		// testConfig's CA window is 3h21m40s.
		{name: "publish lead over half the CA window", mutate: func(c *IssueConfig) { c.CAPublishLead = 1*time.Hour + 41*time.Minute },
			wantContain: "CA publish lead 1h41m0s does not fit twice into the CA rotation window 3h21m40s"},
		{name: "negative publish lead", mutate: func(c *IssueConfig) { c.CAPublishLead = -time.Minute }, wantContain: "negative"},
		{name: "publish lead under a second", mutate: func(c *IssueConfig) { c.CAPublishLead = 500 * time.Millisecond }, wantContain: "under a second"},
		// A short CA window makes the default lead short, never too long.
		{name: "default lead always fits", mutate: func(c *IssueConfig) {
			c.CAValidity = time.Hour
			c.RotateBefore.Before = 10 * time.Second
			c.DNSNames = nil // the only error left
		}, wantContain: "no DNS names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg)
			_, err := Reconcile(Material{}, cfg, t0)
			if err == nil {
				t.Fatal("Reconcile accepted the configuration")
			}
			if tt.noConverge && !errors.Is(err, errNoConvergence) {
				t.Errorf("err = %v, want errNoConvergence", err)
			}
			if !strings.Contains(err.Error(), tt.wantContain) {
				t.Errorf("err = %v, want containing %q", err, tt.wantContain)
			}
			if !strings.Contains(tt.name, "lead") && strings.Contains(err.Error(), "publish lead") {
				t.Errorf("err = %v, blames the publish lead", err)
			}
		})
	}
}

func TestDefaultCAPublishLead(t *testing.T) {
	tests := []struct {
		name                    string
		checkInterval, caWindow time.Duration
		want                    time.Duration
	}{
		{name: "production: two check intervals", checkInterval: 5 * time.Minute, caWindow: 5 * 365 * 24 * time.Hour / 3, want: 10 * time.Minute},
		{name: "fast checks: a minute", checkInterval: 5 * time.Second, caWindow: 24 * time.Hour, want: time.Minute},
		{name: "short-lived CA: a third of its window", checkInterval: 5 * time.Second, caWindow: 20 * time.Second, want: 20 * time.Second / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DefaultCAPublishLead(tt.checkInterval, tt.caWindow); got != tt.want {
				t.Errorf("DefaultCAPublishLead = %v, want %v", got, tt.want)
			}
		})
	}
	if got := testConfig().publishLead(); got != testLead {
		t.Errorf("testConfig's lead = %v, want %v", got, testLead)
	}
}

// TestReconcileCALifecycle walks one Secret through two CA generations and
// checks the overlap that keeps clients working during CA rotation: the
// next CA is published before it signs, the old one stays until it expires.
func TestReconcileCALifecycle(t *testing.T) {
	cfg := testConfig()
	host := cfg.DNSNames[0]
	var m, staged, promoted Material
	steps := []struct {
		at    time.Duration
		want  Action
		check func(t *testing.T, prev, next Material, now time.Time)
	}{
		{at: 0, want: ActionRotateCA},
		{at: time.Hour, want: ActionNone},
		{at: 2 * time.Hour, want: ActionRenewCert},
		{at: 4 * time.Hour, want: ActionRenewCert},
		{at: 6 * time.Hour, want: ActionRenewCert},
		{at: 6*time.Hour + 38*time.Minute, want: ActionNone}, // the CA's window opens at 6h38m20s
		{at: 6*time.Hour + 40*time.Minute, want: ActionStageCA, check: func(t *testing.T, prev, next Material, now time.Time) {
			staged = next
			if n := len(mustCerts(t, next.CABundle)); n != 2 {
				t.Fatalf("bundle holds %d CAs while staged, want 2", n)
			}
			if !bytes.Equal(next.Cert, prev.Cert) || !bytes.Equal(next.Key, prev.Key) || !bytes.Equal(next.CAKey, prev.CAKey) {
				t.Error("staging touched the serving pair or the signing CA")
			}
			if len(next.NextCAKey) == 0 {
				t.Error("no ca-next.key stored")
			}
			if !bytes.HasPrefix(next.CABundle, prev.CABundle) {
				t.Error("the staged CA is not appended after the signing CA")
			}
		}},
		{at: 6*time.Hour + 45*time.Minute, want: ActionNone},
		{at: 6*time.Hour + 50*time.Minute - time.Second, want: ActionNone},
		{at: 6*time.Hour + 50*time.Minute, want: ActionRotateCA, check: func(t *testing.T, prev, next Material, now time.Time) {
			promoted = next
			if !bytes.Equal(next.CAKey, prev.NextCAKey) || len(next.NextCAKey) != 0 {
				t.Error("the staged CA was not promoted")
			}
			if n := len(mustCerts(t, next.CABundle)); n != 2 {
				t.Fatalf("bundle holds %d CAs during the overlap, want 2", n)
			}
			// A replica that has not reloaded yet still serves the old
			// certificate; clients given the new bundle must accept it.
			if err := verifyServing(t, prev.Cert, next.CABundle, host, now); err != nil {
				t.Errorf("old certificate rejected by the new bundle: %v", err)
			}
			if err := verifyServing(t, next.Cert, next.CABundle, host, now); err != nil {
				t.Errorf("new certificate rejected by the new bundle: %v", err)
			}
			// The point of staging: a client still holding the bundle
			// published before the promotion trusts the new certificate.
			if err := verifyServing(t, next.Cert, prev.CABundle, host, now); err != nil {
				t.Errorf("the bundle published before the promotion rejects the new certificate: %v", err)
			}
		}},
		{at: 8 * time.Hour, want: ActionNone},
		{at: 9 * time.Hour, want: ActionRenewCert, check: func(t *testing.T, _, next Material, _ time.Time) {
			if !bytes.Equal(next.CABundle, promoted.CABundle) {
				t.Error("bundle changed while the old CA is still valid")
			}
		}},
		{at: 10 * time.Hour, want: ActionPruneBundle, check: func(t *testing.T, prev, next Material, _ time.Time) {
			if got := mustCerts(t, next.CABundle); len(got) != 1 || !bytes.Equal(got[0].Raw, mustCerts(t, staged.CABundle)[1].Raw) {
				t.Error("pruning did not leave exactly the CA staged at 6h40m")
			}
			if !bytes.Equal(next.Cert, prev.Cert) || !bytes.Equal(next.CAKey, prev.CAKey) {
				t.Error("pruning touched more than the bundle")
			}
		}},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		t.Run("t0+"+s.at.String(), func(t *testing.T) {
			p := mustReconcile(t, m, cfg, now)
			if p.Action != s.want {
				t.Fatalf("Action = %v (%s), want %v", p.Action, p.Reason, s.want)
			}
			if s.check != nil {
				s.check(t, m, p.Material, now)
			}
			checkBundleInvariants(t, p.Material, now)
			m = p.Material
		})
	}
}

// TestReconcileCAStaging covers the two-phase CA rotation case by case:
// when a CA is staged and promoted, what is left alone meanwhile, and what
// happens when the staged CA is broken, late or overtaken by an emergency.
func TestReconcileCAStaging(t *testing.T) {
	cfg := testConfig()
	// CA1 issued at t0: due from 6h38m20s, expires at 10h. The serving
	// certificate renewed at 6h expires at 9h, due from 7h58m20s.
	base := walk(t, cfg, 0, 2*time.Hour, 4*time.Hour, 6*time.Hour)
	// CA2 staged at 6h40m: promoted at 6h50m, due from 13h18m20s.
	staged := mustReconcile(t, base, cfg, t0.Add(6*time.Hour+40*time.Minute)).Material
	otherCA := mustCA(t, 10*time.Hour, t0)
	with := func(m Material, f func(*Material)) Material { f(&m); return m }

	// A lead of an hour makes the handover (promotion at 7h40m, all
	// replicas switched by 8h40m) outlast a serving certificate renewed at
	// 4h, which expires at 7h.
	longLead := testConfig()
	longLead.CAPublishLead = time.Hour
	early := walk(t, longLead, 0, 2*time.Hour, 4*time.Hour)

	const (
		serving = 1 << iota // the serving pair is unchanged
		signing             // ca.key is unchanged
		promote             // ca.key is the staged key from before
		fresh               // ca.key is a new CA's
	)
	tests := []struct {
		name        string
		cur         Material
		cfg         IssueConfig
		at          time.Duration
		want        Action
		wantReason  string
		keeps       int
		wantStaged  bool // ca-next.key set afterwards
		bundleCerts int
	}{
		{name: "window not open yet", cur: base, at: 6*time.Hour + 38*time.Minute + 19*time.Second,
			want: ActionNone, keeps: serving | signing, bundleCerts: 1},
		{name: "window opens: stage, serving pair untouched", cur: base, at: 6*time.Hour + 38*time.Minute + 20*time.Second,
			want: ActionStageCA, wantReason: "inside its rotation window", keeps: serving | signing, wantStaged: true, bundleCerts: 2},
		{name: "staged, lead not over", cur: staged, at: 6*time.Hour + 50*time.Minute - time.Second,
			want: ActionNone, keeps: serving | signing, wantStaged: true, bundleCerts: 2},
		{name: "staged, lead over: promote", cur: staged, at: 6*time.Hour + 50*time.Minute,
			want: ActionRotateCA, wantReason: "promoting the CA staged at 2030-01-01T06:40:00Z", keeps: promote, bundleCerts: 2},
		{name: "staged long ago, still good: promote", cur: staged, at: 9*time.Hour + 59*time.Minute,
			want: ActionRotateCA, wantReason: "promoting", keeps: promote, bundleCerts: 2},
		{name: "staging renews a serving pair that would not outlast the handover", cur: early, cfg: longLead, at: 6*time.Hour + 40*time.Minute,
			want: ActionStageCA, wantReason: "renewing the serving certificate from the current CA: certificate expires at 2030-01-01T07:00:00Z, before the CA handover ends at 2030-01-01T08:40:00Z",
			keeps: signing, wantStaged: true, bundleCerts: 2},

		// Staged key trouble.
		{name: "staged key unparsable: restage", cur: with(staged, func(m *Material) { m.NextCAKey = []byte("junk") }), at: 6*time.Hour + 45*time.Minute,
			want: ActionStageCA, wantReason: "restaging: staged CA key unparsable", keeps: serving | signing, wantStaged: true, bundleCerts: 3},
		{name: "staged key matches no CA: restage", cur: with(staged, func(m *Material) { m.NextCAKey = otherCA.KeyPEM }), at: 6*time.Hour + 45*time.Minute,
			want: ActionStageCA, wantReason: "restaging: staged CA key matches no CA", keeps: serving | signing, wantStaged: true, bundleCerts: 3},
		{name: "staged key is the signing CA's: restage", cur: with(staged, func(m *Material) { m.NextCAKey = m.CAKey }), at: 6*time.Hour + 45*time.Minute,
			want: ActionStageCA, wantReason: "restaging: staged CA is the signing CA", keeps: serving | signing, wantStaged: true, bundleCerts: 3},
		{name: "broken staged key, CA not due: dropped", cur: with(base, func(m *Material) { m.NextCAKey = []byte("junk") }), at: 6 * time.Hour,
			want: ActionPruneBundle, wantReason: "dropping the staged CA key: staged CA key unparsable", keeps: serving | signing, bundleCerts: 1},
		// A replica whose clock is behind the one that staged: it must not
		// undo the staging.
		{name: "good staged CA, CA not due yet: kept", cur: staged, at: 6*time.Hour + 38*time.Minute,
			want: ActionNone, keeps: serving | signing, wantStaged: true, bundleCerts: 2},

		// Late and emergencies.
		{name: "window missed until too late to stage: rotate at once", cur: base, at: 9*time.Hour + 50*time.Minute,
			want: ActionRotateCA, wantReason: "too soon to publish a successor for 10m0s first", keeps: fresh, bundleCerts: 2},
		{name: "staged late: promoted a lead before the old CA expires", cur: mustReconcile(t, base, cfg, t0.Add(9*time.Hour+45*time.Minute)).Material, at: 9*time.Hour + 50*time.Minute,
			want: ActionRotateCA, wantReason: "promoting", keeps: promote, bundleCerts: 2},
		{name: "CA expired, staged CA good: promoted early", cur: staged, at: 10 * time.Hour,
			want: ActionRotateCA, wantReason: "CA expired at 2030-01-01T10:00:00Z; promoting the staged CA early", keeps: promote, bundleCerts: 1},
		{name: "CA key lost, staged CA good: promoted early", cur: with(staged, func(m *Material) { m.CAKey = nil }), at: 6*time.Hour + 45*time.Minute,
			want: ActionRotateCA, wantReason: "CA key missing; promoting the staged CA early", keeps: promote, bundleCerts: 2},
		{name: "CA key lost, staged key broken: new CA", cur: with(staged, func(m *Material) { m.CAKey, m.NextCAKey = nil, []byte("junk") }), at: 6*time.Hour + 45*time.Minute,
			want: ActionRotateCA, wantReason: "CA key missing", keeps: fresh, bundleCerts: 3},
		// The Secret sat untouched until the staged CA itself was due.
		{name: "staged CA overdue itself: new CA", cur: staged, at: 13*time.Hour + 20*time.Minute,
			want: ActionRotateCA, wantReason: "CA expired", keeps: fresh, bundleCerts: 2},
		{name: "staged CA expired: new CA", cur: staged, at: 17 * time.Hour,
			want: ActionRotateCA, wantReason: "CA expired", keeps: fresh, bundleCerts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg.CACommonName != "" {
				c = tt.cfg
			}
			now := t0.Add(tt.at)
			p := mustReconcile(t, tt.cur, c, now)
			if p.Action != tt.want {
				t.Fatalf("Action = %v (%q), want %v", p.Action, p.Reason, tt.want)
			}
			if !strings.Contains(p.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want containing %q", p.Reason, tt.wantReason)
			}
			m := p.Material
			if got := bytes.Equal(m.Cert, tt.cur.Cert) && bytes.Equal(m.Key, tt.cur.Key); got != (tt.keeps&serving != 0) {
				t.Errorf("serving pair kept = %v, want %v", got, !got)
			}
			if got := bytes.Equal(m.CAKey, tt.cur.CAKey); got != (tt.keeps&signing != 0) {
				t.Errorf("signing CA kept = %v, want %v", got, !got)
			}
			if got := len(tt.cur.NextCAKey) > 0 && !bytes.Equal(tt.cur.NextCAKey, tt.cur.CAKey) &&
				bytes.Equal(m.CAKey, tt.cur.NextCAKey); got != (tt.keeps&promote != 0) {
				t.Errorf("staged CA promoted = %v, want %v", got, !got)
			}
			if tt.keeps&fresh != 0 && (bytes.Equal(m.CAKey, tt.cur.CAKey) || bytes.Equal(m.CAKey, tt.cur.NextCAKey)) {
				t.Error("no new CA")
			}
			if got := len(m.NextCAKey) > 0; got != tt.wantStaged {
				t.Errorf("staged CA present = %v, want %v", got, tt.wantStaged)
			}
			if tt.want == ActionStageCA && bytes.Equal(m.NextCAKey, tt.cur.NextCAKey) {
				t.Error("staged CA key not replaced")
			}
			if got := len(mustCerts(t, m.CABundle)); got != tt.bundleCerts {
				t.Errorf("bundle holds %d CAs, want %d", got, tt.bundleCerts)
			}
			if again := mustReconcile(t, m, c, now); again.Action != ActionNone {
				t.Errorf("result is not stable: %v (%s)", again.Action, again.Reason)
			}
			if err := verifyServing(t, m.Cert, m.CABundle, c.DNSNames[0], now); err != nil {
				t.Errorf("serving cert does not verify against the bundle: %v", err)
			}
			checkBundleInvariants(t, m, now)
		})
	}
}

// TestReconcileCAGenerations syncs one Secret at a steady pace through
// several CA generations, as a rotator would, and checks at every step what
// keeps webhook calls working across CA rotations:
//
//   - every serving certificate ever stored, after the bootstrap, is signed
//     by a CA that was published at least the lead before it was stored;
//   - a client still holding the previous step's bundle trusts the new
//     serving certificate, and the new bundle trusts the previous one
//     (a replica that has not reloaded yet) until it expires;
//   - the stored certificate is valid at every step: no gap;
//   - nothing is renewed while a staged CA waits, and the old CA is still
//     valid for about the lead when the new one takes over.
func TestReconcileCAGenerations(t *testing.T) {
	tests := []struct {
		name        string
		cfg         IssueConfig
		step, until time.Duration
		// pattern, if set, is cycled through instead of step, which is
		// then its longest.
		pattern []time.Duration
		wantCAs int
	}{
		{name: "hours, every 3 minutes", cfg: testConfig(), step: 3 * time.Minute, until: 30 * time.Hour, wantCAs: 5},
		// Watch events make real syncs irregular.
		{name: "hours, irregularly", cfg: testConfig(), step: 5 * time.Minute, until: 30 * time.Hour, wantCAs: 5,
			pattern: []time.Duration{time.Minute, 4 * time.Minute, 10 * time.Second, 5 * time.Minute, 150 * time.Second}},
		{name: "hours, every 5 minutes", cfg: testConfig(), step: 5 * time.Minute, until: 30 * time.Hour, wantCAs: 5},
		{name: "hours, every 7 minutes", cfg: testConfig(), step: 7 * time.Minute, until: 30 * time.Hour, wantCAs: 5},
		{name: "hours, an hour's lead", cfg: func() IssueConfig { c := testConfig(); c.CAPublishLead = time.Hour; return c }(),
			step: 5 * time.Minute, until: 30 * time.Hour, wantCAs: 5},
		{name: "e2e lifetimes, every second", cfg: e2eConfig(), step: time.Second, until: 6 * time.Minute, wantCAs: 5},
		{name: "e2e lifetimes, every 3s", cfg: e2eConfig(), step: 3 * time.Second, until: 6 * time.Minute, wantCAs: 5},
		{name: "e2e lifetimes, every 5s", cfg: e2eConfig(), step: 5 * time.Second, until: 6 * time.Minute, wantCAs: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.cfg.DNSNames[0]
			lead := tt.cfg.publishLead()
			var (
				m         Material
				published = map[string]time.Time{} // CA (raw) -> first stored in the bundle
				first     *x509.Certificate        // the bootstrap CA
				signers   = map[string]bool{}
				actions   = map[Action]int{}

				renewedWhileStaged int
			)
			pattern := tt.pattern
			if pattern == nil {
				pattern = []time.Duration{tt.step}
			}
			for i, at := 0, time.Duration(0); at <= tt.until; i, at = i+1, at+pattern[i%len(pattern)] {
				now := t0.Add(at)
				p, err := Reconcile(m, tt.cfg, now)
				if err != nil {
					t.Fatalf("t0+%v: %v", at, err)
				}
				next := p.Material
				actions[p.Action]++
				for _, ca := range mustCerts(t, next.CABundle) {
					if _, ok := published[string(ca.Raw)]; !ok {
						published[string(ca.Raw)] = now
					}
				}
				issuer := findIssuer(mustCert(t, next.Cert), mustCerts(t, next.CABundle))
				if issuer == nil {
					t.Fatalf("t0+%v: bundle lacks the serving certificate's CA", at)
				}
				if first == nil {
					first = issuer
				}
				signers[string(issuer.Raw)] = true
				checkBundleInvariants(t, next, now)
				if err := verifyServing(t, next.Cert, next.CABundle, host, now); err != nil {
					t.Fatalf("t0+%v: stored certificate does not serve: %v", at, err)
				}
				if !bytes.Equal(next.Cert, m.Cert) && m.Cert != nil {
					if !issuer.Equal(first) {
						if since := now.Sub(published[string(issuer.Raw)]); since < lead {
							t.Errorf("t0+%v (%v): certificate stored %v after its CA was published, want at least %v", at, p.Action, since, lead)
						}
					}
					if err := verifyServing(t, next.Cert, m.CABundle, host, now); err != nil {
						t.Errorf("t0+%v (%v): the previous bundle rejects the new certificate: %v", at, p.Action, err)
					}
					if prev := mustCert(t, m.Cert); now.Before(prev.NotAfter) {
						if err := verifyServing(t, m.Cert, next.CABundle, host, now); err != nil {
							t.Errorf("t0+%v (%v): the new bundle rejects the previous certificate: %v", at, p.Action, err)
						}
					}
				}
				// A serving certificate that would expire before the
				// handover ends is renewed once from the old CA (its NotAfter
				// then is the old CA's); more would be churn.
				if p.Action == ActionStageCA {
					renewedWhileStaged = 0
				}
				if p.Action == ActionRenewCert && len(m.NextCAKey) > 0 {
					if renewedWhileStaged++; renewedWhileStaged > 1 {
						t.Errorf("t0+%v: renewed again while a CA was staged: %s", at, p.Reason)
					}
				}
				if p.Action == ActionRotateCA && m.Cert != nil {
					if !bytes.Equal(next.CAKey, m.NextCAKey) {
						t.Errorf("t0+%v: rotated without promoting a staged CA: %s", at, p.Reason)
					}
					old, _ := caForKey(m.CABundle, m.CAKey)
					if left := old.NotAfter.Sub(now); left < lead-tt.step {
						t.Errorf("t0+%v: old CA has %v left at the promotion, want about the lead %v", at, left, lead)
					}
				}
				m = next
			}
			if len(signers) < tt.wantCAs {
				t.Errorf("%d CAs signed, want at least %d", len(signers), tt.wantCAs)
			}
			t.Logf("lead %v; actions %v; %d CA generations", lead, actions, len(signers))
		})
	}
}

func TestMaterialSecretRoundTrip(t *testing.T) {
	m := Material{CABundle: []byte("a"), CAKey: []byte("b"), NextCAKey: []byte("n"), Cert: []byte("c"), Key: []byte("d")}
	s := newSecret("ns", "name", m)
	s.Data["other"] = []byte("kept")
	if got := MaterialFromSecret(s); !got.Equal(m) {
		t.Errorf("round trip: %+v", got)
	}
	if string(s.Data["ca-next.key"]) != "n" {
		t.Errorf("ca-next.key = %q", s.Data["ca-next.key"])
	}
	if m2 := m; func() bool { m2.NextCAKey = nil; return m2.Equal(m) }() {
		t.Error("Equal ignores NextCAKey")
	}
	Material{}.ApplyToSecret(s)
	if string(s.Data["other"]) != "kept" {
		t.Error("ApplyToSecret dropped an unrelated key")
	}
	if _, ok := s.Data["ca-next.key"]; ok {
		t.Error("ca-next.key left behind when no CA is staged")
	}
	if s.Type != "kubernetes.io/tls" {
		t.Errorf("type %q", s.Type)
	}
	if got := MaterialFromSecret(nil); !got.Equal(Material{}) {
		t.Error("nil Secret is not empty material")
	}
}
