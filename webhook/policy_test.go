package webhook

import (
	"strings"
	"testing"

	"github.com/fitgate/fitgate/feasibility"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"off": ModeOff, "warn": ModeWarn, " Enforce ": ModeEnforce, "STRICT": ModeStrict} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "audit", "enforcing", "on"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q): want an error", in)
		}
	}
}

func TestModeDenies(t *testing.T) {
	P, T, I := feasibility.SeverityPermanent, feasibility.SeverityTransient, feasibility.SeverityInfo
	for _, tc := range []struct {
		mode             Mode
		perm, tran, info bool
	}{
		{ModeOff, false, false, false},
		{ModeWarn, false, false, false},
		{ModeEnforce, true, false, false},
		{ModeStrict, true, true, false},
	} {
		if got := []bool{tc.mode.Denies(P), tc.mode.Denies(T), tc.mode.Denies(I)}; got[0] != tc.perm || got[1] != tc.tran || got[2] != tc.info {
			t.Errorf("%s denies permanent/transient/info = %v, want %v/%v/%v", tc.mode, got, tc.perm, tc.tran, tc.info)
		}
	}
}

func TestPolicyResolve(t *testing.T) {
	p := DefaultPolicy("fitgate")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	label := func(v string) map[string]string { return map[string]string{ModeLabel: v} }
	for _, tc := range []struct {
		name     string
		ns       string
		labels   map[string]string
		barePod  bool
		want     Mode
		source   ModeSource
		wantWarn bool
	}{
		{"workload default", "apps", nil, false, ModeWarn, SourceDefault, false},
		{"bare pod default", "apps", nil, true, ModeEnforce, SourceDefault, false},
		{"label off", "apps", label("off"), true, ModeOff, SourceLabel, false},
		{"label warn beats pod default", "apps", label("warn"), true, ModeWarn, SourceLabel, false},
		{"label enforce", "apps", label("enforce"), false, ModeEnforce, SourceLabel, false},
		{"label strict", "apps", label("strict"), false, ModeStrict, SourceLabel, false},
		{"label case-insensitive", "apps", label("Strict"), false, ModeStrict, SourceLabel, false},
		{"invalid label falls back for workloads", "apps", label("audit"), false, ModeWarn, SourceDefault, true},
		{"invalid label falls back for pods", "apps", label(""), true, ModeEnforce, SourceDefault, true},
		{"other labels ignored", "apps", map[string]string{"team": "a"}, false, ModeWarn, SourceDefault, false},
		{"kube-system exempt", "kube-system", label("strict"), true, ModeOff, SourceExempt, false},
		{"kube-node-lease exempt", "kube-node-lease", nil, true, ModeOff, SourceExempt, false},
		{"own namespace exempt", "fitgate", label("strict"), false, ModeOff, SourceExempt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Resolve(tc.ns, tc.labels, tc.barePod)
			if d.Mode != tc.want || d.Source != tc.source || (d.Warning != "") != tc.wantWarn {
				t.Fatalf("Resolve = %+v, want mode %s from %s, warning %v", d, tc.want, tc.source, tc.wantWarn)
			}
			if d.Warning != "" && (len([]rune(d.Warning)) > maxWarningLen || !strings.Contains(d.Warning, ModeLabel)) {
				t.Fatalf("warning %q: want ≤%d chars naming %s", d.Warning, maxWarningLen, ModeLabel)
			}
		})
	}
}

func TestPolicyCustomDefaults(t *testing.T) {
	p := Policy{DefaultMode: ModeOff, DefaultPodMode: ModeStrict, ExemptNamespaces: []string{"infra"}}
	if d := p.Resolve("apps", nil, false); d.Mode != ModeOff {
		t.Errorf("workload mode = %s, want off", d.Mode)
	}
	if d := p.Resolve("apps", nil, true); d.Mode != ModeStrict {
		t.Errorf("pod mode = %s, want strict", d.Mode)
	}
	if d := p.Resolve("kube-system", nil, true); d.Mode != ModeStrict {
		t.Errorf("kube-system is not exempt unless configured: mode = %s, want strict", d.Mode)
	}
	if d := p.Resolve("infra", nil, true); d.Source != SourceExempt {
		t.Errorf("infra: %+v, want exempt", d)
	}
	if err := (Policy{DefaultMode: "bogus", DefaultPodMode: ModeWarn}).Validate(); err == nil {
		t.Error("Validate accepted an invalid default mode")
	}
}
