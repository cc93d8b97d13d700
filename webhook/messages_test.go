package webhook

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/fitgate/fitgate/feasibility"
)

func cpuReport() *feasibility.Report {
	return &feasibility.Report{
		Kind: "Deployment", Namespace: "apps", Name: "api", Verdict: feasibility.Permanent,
		Replicas: 3, ReplicasFit: 0,
		Summary: "0/12 nodes are available: 12 Insufficient cpu.",
		Hint:    "requests 6 cpu; largest node allocatable is 4 cpu",
		Reasons: []feasibility.Reason{{Code: feasibility.CodeInsufficientCPU, Severity: feasibility.SeverityPermanent,
			Message: "12 of 12 nodes: Insufficient cpu"}},
	}
}

func TestMessages(t *testing.T) {
	secret := feasibility.Reason{Code: feasibility.CodeSecretNotFound, Severity: feasibility.SeverityPermanent,
		Message: `secret "db" not found`, Field: "spec.template.spec.volumes[0].secret.secretName"}
	quota := feasibility.Reason{Code: feasibility.CodeQuotaExceeded, Severity: feasibility.SeverityTransient,
		Message: "exceeded quota: compute, requested: cpu=1, used: cpu=10, limited: cpu=10; the quota has room for 0 of 3 replicas"}
	gated := feasibility.Reason{Code: feasibility.CodeSchedulingGated, Severity: feasibility.SeverityInfo,
		Message: "pod has 1 scheduling gate(s); the scheduler waits until they are removed", Field: "spec.schedulingGates"}
	pullSecret := feasibility.Reason{Code: feasibility.CodeSecretNotFound, Severity: feasibility.SeverityInfo,
		Message: `secret "regcred" not found`, Field: "spec.template.spec.imagePullSecrets[0].name"}

	partial := cpuReport()
	partial.Verdict, partial.ReplicasFit, partial.Replicas = feasibility.Transient, 3, 5
	partial.Summary = "only 3 of 5 replicas fit now: 0/12 nodes are available: 12 Insufficient cpu."
	partial.Hint = ""
	partial.Reasons[0].Severity = feasibility.SeverityTransient

	transient := cpuReport()
	transient.Verdict = feasibility.Transient
	transient.Reasons[0].Severity = feasibility.SeverityTransient
	transient.Hint = ""

	refsOnly := &feasibility.Report{Kind: "CronJob", Name: "nightly", Verdict: feasibility.Permanent, Replicas: 1}

	daemon := &feasibility.Report{Kind: "DaemonSet", Name: "agent", Verdict: feasibility.Permanent, Replicas: 3, ReplicasFit: 2,
		Summary: "2/3 target nodes can run the pod: 1 node(s) had untolerated taint(s)."}
	taint := feasibility.Reason{Code: feasibility.CodeUntoleratedTaint, Severity: feasibility.SeverityPermanent, Message: "1 of 3 nodes: taint"}

	for _, tc := range []struct {
		name     string
		msg      Message
		reasons  []feasibility.Reason
		denial   string
		warnings []string
	}{
		{
			name:    "insufficient cpu",
			msg:     Message{Report: cpuReport()},
			reasons: cpuReport().Reasons,
			denial:  `deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu (requests 6 cpu; largest node allocatable is 4 cpu)`,
			// Summary and hint together pass 120 characters: two warnings.
			warnings: []string{
				`deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu`,
				`requests 6 cpu; largest node allocatable is 4 cpu`,
			},
		},
		{
			name:    "partial replicas",
			msg:     Message{Report: partial},
			reasons: partial.Reasons,
			denial:  `deployment "api": only 3 of 5 replicas fit now: 0/12 nodes are available: 12 Insufficient cpu`,
			warnings: []string{
				`deployment "api": only 3 of 5 replicas fit now: 0/12 nodes are available: 12 Insufficient cpu`,
			},
		},
		{
			name:    "partial replicas of a scale-up",
			msg:     Message{Report: partial, ScaleUp: true},
			reasons: partial.Reasons,
			denial:  `deployment "api": only 3 of 5 new replicas fit now: 0/12 nodes are available: 12 Insufficient cpu`,
			warnings: []string{
				`deployment "api": only 3 of 5 new replicas fit now: 0/12 nodes are available: 12 Insufficient cpu`,
			},
		},
		{
			name:     "transient says now",
			msg:      Message{Report: transient},
			reasons:  transient.Reasons,
			denial:   `deployment "api" cannot run now: 0/12 nodes are available: 12 Insufficient cpu`,
			warnings: []string{`deployment "api" cannot run now: 0/12 nodes are available: 12 Insufficient cpu`},
		},
		{
			name:    "field findings follow the summary, most severe first",
			msg:     Message{Report: cpuReport()},
			reasons: []feasibility.Reason{pullSecret, quota, cpuReport().Reasons[0], secret},
			denial: `deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu (requests 6 cpu; largest node allocatable is 4 cpu); ` +
				`spec.template.spec.volumes[0].secret.secretName: secret "db" not found; ` +
				`exceeded quota: compute, requested: cpu=1, used: cpu=10, limited: cpu=10; the quota has room for 0 of 3 replicas; ` +
				`spec.template.spec.imagePullSecrets[0].name: secret "regcred" not found`,
			warnings: []string{
				`deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu`,
				`requests 6 cpu; largest node allocatable is 4 cpu`,
				`spec.template.spec.volumes[0].secret.secretName: secret "db" not found`,
			},
		},
		{
			name:     "references only",
			msg:      Message{Report: refsOnly},
			reasons:  []feasibility.Reason{secret},
			denial:   `cronjob "nightly" cannot run: spec.template.spec.volumes[0].secret.secretName: secret "db" not found`,
			warnings: []string{`spec.template.spec.volumes[0].secret.secretName: secret "db" not found`},
		},
		{
			name:     "scheduling gates are not warned about",
			msg:      Message{Report: refsOnly},
			reasons:  []feasibility.Reason{gated},
			denial:   `cronjob "nightly" cannot run: spec.schedulingGates: pod has 1 scheduling gate(s); the scheduler waits until they are removed`,
			warnings: nil,
		},
		{
			name:     "daemonset",
			msg:      Message{Report: daemon},
			reasons:  []feasibility.Reason{taint},
			denial:   `daemonset "agent": 2/3 target nodes can run the pod: 1 node(s) had untolerated taint(s)`,
			warnings: []string{`daemonset "agent": 2/3 target nodes can run the pod: 1 node(s) had untolerated taint(s)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.msg.Denial(tc.reasons); got != tc.denial {
				t.Errorf("Denial:\n got %s\nwant %s", got, tc.denial)
			}
			got := tc.msg.Warnings(tc.reasons, DefaultMaxWarnings)
			if diff := cmp.Diff(tc.warnings, got); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
			for _, w := range got {
				if n := utf8.RuneCountInString(w); n > maxWarningLen {
					t.Errorf("warning of %d chars: %s", n, w)
				}
			}
		})
	}
}

func TestWarningsLimits(t *testing.T) {
	long := cpuReport()
	long.Name = strings.Repeat("a", 30)
	long.Hint = "requests 6 cpu; largest free node has 3 cpu (node \"worker-pool-a-1\"); largest node allocatable is 4 cpu"
	var reasons []feasibility.Reason
	reasons = append(reasons, long.Reasons...)
	for i := range 6 {
		reasons = append(reasons, feasibility.Reason{Code: feasibility.CodeConfigMapNotFound, Severity: feasibility.SeverityPermanent,
			Field:   "spec.jobTemplate.spec.template.spec.containers[0].env[" + string(rune('0'+i)) + "].valueFrom.configMapKeyRef.name",
			Message: `configmap "` + strings.Repeat("c", 40) + `" not found`})
	}
	got := Message{Report: long}.Warnings(reasons, DefaultMaxWarnings)
	if len(got) != DefaultMaxWarnings {
		t.Fatalf("got %d warnings, want %d: %q", len(got), DefaultMaxWarnings, got)
	}
	want0 := `deployment "` + long.Name + `" cannot run: 0/12 nodes are available: 12 Insufficient cpu`
	if got[0] != want0 {
		t.Errorf("first warning = %q, want the summary without the hint: %q", got[0], want0)
	}
	if got[1] != long.Hint {
		t.Errorf("second warning = %q, want the hint", got[1])
	}
	if !strings.HasSuffix(got[2], "…") || !strings.HasPrefix(got[2], "spec.jobTemplate.spec.template.spec.containers[0].env[0]") {
		t.Errorf("third warning = %q, want the first field finding, truncated", got[2])
	}
	for _, w := range got {
		if n := utf8.RuneCountInString(w); n > maxWarningLen {
			t.Errorf("warning of %d chars: %s", n, w)
		}
	}
	if got := (Message{Report: long}).Warnings(reasons, 1); len(got) != 1 {
		t.Errorf("max 1: got %d warnings", len(got))
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"this is too long", 10, "this is…"},
		{"cut at; separator", 8, "cut at…"},
		{"ünïcödé characters", 6, "ünïcö…"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestSummaryWithShortHintIsOneWarning(t *testing.T) {
	rep := cpuReport()
	rep.Name, rep.Hint = "a", "requests 6 cpu"
	got := Message{Report: rep}.Warnings(rep.Reasons, DefaultMaxWarnings)
	want := []string{`deployment "a" cannot run: 0/12 nodes are available: 12 Insufficient cpu (requests 6 cpu)`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSplitLine(t *testing.T) {
	long := `deployment "api": only 2 of 6 replicas fit now: 0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient cpu.`
	got := splitLine(long, maxWarningLen)
	want := []string{
		`deployment "api": only 2 of 6 replicas fit now`,
		`0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient cpu.`,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitLine =\n%q\nwant\n%q", got, want)
	}
	if got := splitLine("short: enough", maxWarningLen); len(got) != 1 || got[0] != "short: enough" {
		t.Errorf("short line split: %q", got)
	}
}
