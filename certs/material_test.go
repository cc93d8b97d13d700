package certs

import (
	"bytes"
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

func mustReconcile(t *testing.T, cur Material, cfg IssueConfig, now time.Time) Plan {
	t.Helper()
	p, err := Reconcile(cur, cfg, now)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return p
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
		{name: "CA due keeps the old CA", cur: m0, cfg: cfg, now: t0.Add(6*time.Hour + 40*time.Minute), want: ActionRotateCA, wantReason: "CA expires", bundleCerts: 2},
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
		})
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
		})
	}
}

// TestReconcileCALifecycle walks one Secret through two CA generations and
// checks the overlap that keeps clients working during CA rotation.
func TestReconcileCALifecycle(t *testing.T) {
	cfg := testConfig()
	host := cfg.DNSNames[0]
	var m, caRotated Material
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
		{at: 6*time.Hour + 40*time.Minute, want: ActionRotateCA, check: func(t *testing.T, prev, next Material, now time.Time) {
			caRotated = next
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
			// And why the rotator publishes the bundle before serving the
			// new certificate: the old bundle does not trust it.
			if err := verifyServing(t, next.Cert, prev.CABundle, host, now); err == nil {
				t.Error("old bundle unexpectedly trusts the new CA")
			}
		}},
		{at: 8 * time.Hour, want: ActionNone},
		{at: 9 * time.Hour, want: ActionRenewCert, check: func(t *testing.T, _, next Material, _ time.Time) {
			if !bytes.Equal(next.CABundle, caRotated.CABundle) {
				t.Error("bundle changed while the old CA is still valid")
			}
		}},
		{at: 10 * time.Hour, want: ActionPruneBundle, check: func(t *testing.T, prev, next Material, _ time.Time) {
			if got := mustCerts(t, next.CABundle); len(got) != 1 || !bytes.Equal(got[0].Raw, mustCerts(t, prev.CABundle)[0].Raw) {
				t.Error("pruning did not leave exactly the current CA")
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
			m = p.Material
		})
	}
}

func TestMaterialSecretRoundTrip(t *testing.T) {
	m := Material{CABundle: []byte("a"), CAKey: []byte("b"), Cert: []byte("c"), Key: []byte("d")}
	s := newSecret("ns", "name", m)
	s.Data["other"] = []byte("kept")
	if got := MaterialFromSecret(s); !got.Equal(m) {
		t.Errorf("round trip: %+v", got)
	}
	Material{}.ApplyToSecret(s)
	if string(s.Data["other"]) != "kept" {
		t.Error("ApplyToSecret dropped an unrelated key")
	}
	if s.Type != "kubernetes.io/tls" {
		t.Errorf("type %q", s.Type)
	}
	if got := MaterialFromSecret(nil); !got.Equal(Material{}) {
		t.Error("nil Secret is not empty material")
	}
}
