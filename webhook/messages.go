package webhook

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fitgate/fitgate/feasibility"
)

// Warning limits: each warning stays within maxWarningLen characters, and an
// object gets at most DefaultMaxWarnings findings, most important first.
const (
	maxWarningLen      = 120
	DefaultMaxWarnings = 3
)

// placementCodes are the findings the scheduler-style summary ("0/12 nodes
// are available: ...") already speaks for when they carry no field.
var placementCodes = map[feasibility.Code]bool{
	feasibility.CodeNodeNameNotFound: true, feasibility.CodeNodeNameMismatch: true,
	feasibility.CodeNodeUnschedulable: true, feasibility.CodeUntoleratedTaint: true,
	feasibility.CodeNodeAffinityMismatch: true, feasibility.CodeHostPortConflict: true,
	feasibility.CodeInsufficientCPU: true, feasibility.CodeInsufficientMemory: true,
	feasibility.CodeInsufficientEphemeral: true, feasibility.CodeInsufficientResource: true,
	feasibility.CodeTooManyPods: true, feasibility.CodeTopologySpread: true,
	feasibility.CodeTopologyLabelMissing: true, feasibility.CodePodAffinity: true,
	feasibility.CodePodAntiAffinity: true, feasibility.CodeExistingPodAntiAffnity: true,
	feasibility.CodeVolumeNodeAffinity: true, feasibility.CodeVolumeBindConflict: true,
	feasibility.CodeVolumeZoneConflict: true, feasibility.CodeVolumeCountExceeded: true,
	feasibility.CodeReadWriteOncePodInUse: true, feasibility.CodeDiskConflict: true,
	feasibility.CodeNoNodes: true, feasibility.CodePVCNotFound: true,
	feasibility.CodePVCUnbound: true, feasibility.CodePVNotFound: true,
	feasibility.CodeReplicasPartiallyFit: true,
}

// coveredBySummary reports whether the report's summary speaks for r.
func coveredBySummary(rep *feasibility.Report, r feasibility.Reason) bool {
	return rep.Summary != "" && r.Field == "" && placementCodes[r.Code]
}

// objectRef names an object the way kubectl's errors do: deployment "api".
func objectRef(kind, name string) string {
	return fmt.Sprintf("%s %q", strings.ToLower(kind), name)
}

// Message is how one decision is worded.
type Message struct {
	Report *feasibility.Report
	// ScaleUp is set when only the additional replicas of an update were
	// judged, so the summary speaks of "new replicas".
	ScaleUp bool
}

// summary returns the scheduler-style sentence about the object, e.g.
// `deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu`,
// or "" when the report has no summary. sev is the worst severity among the
// findings it speaks for.
func (m Message) summary(sev feasibility.Severity) string {
	rep := m.Report
	if rep.Summary == "" {
		return ""
	}
	s := strings.TrimSuffix(strings.TrimSpace(rep.Summary), ".")
	if m.ScaleUp {
		old := fmt.Sprintf("only %d of %d replicas", rep.ReplicasFit, rep.Replicas)
		if strings.HasPrefix(s, old) {
			s = fmt.Sprintf("only %d of %d new replicas", rep.ReplicasFit, rep.Replicas) + strings.TrimPrefix(s, old)
		}
	}
	obj := objectRef(rep.Kind, rep.Name)
	if !strings.HasPrefix(s, "0/") {
		return obj + ": " + s
	}
	if sev == feasibility.SeverityPermanent {
		return obj + " cannot run: " + s
	}
	return obj + " cannot run now: " + s
}

// reasonLine words one finding: "path.to.field: message" when a field is at
// fault, else the message alone.
func reasonLine(r feasibility.Reason) string {
	if r.Field != "" {
		return r.Field + ": " + r.Message
	}
	return r.Message
}

// split separates the findings the summary speaks for from the others,
// keeping their order.
func (m Message) split(reasons []feasibility.Reason) (covered, rest []feasibility.Reason) {
	for _, r := range reasons {
		if coveredBySummary(m.Report, r) {
			covered = append(covered, r)
		} else {
			rest = append(rest, r)
		}
	}
	return covered, rest
}

// Denial words a denial for the denied findings: the object, the
// scheduler-style summary with the hint, then each other finding, e.g.
//
//	deployment "api" cannot run: 0/12 nodes are available: 12 Insufficient cpu (requests 6 cpu; ...)
func (m Message) Denial(denied []feasibility.Reason) string {
	covered, rest := m.split(denied)
	var parts []string
	if len(covered) > 0 {
		s := m.summary(feasibility.WorstSeverity(covered))
		if m.Report.Hint != "" {
			s += " (" + m.Report.Hint + ")"
		}
		parts = append(parts, s)
	}
	for i, r := range orderBySeverity(rest) {
		line := reasonLine(r)
		if i == 0 && len(parts) == 0 {
			line = objectRef(m.Report.Kind, m.Report.Name) + " cannot run: " + line
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return objectRef(m.Report.Kind, m.Report.Name) + " cannot run"
	}
	return strings.Join(parts, "; ")
}

// Warnings words findings as at most max warnings of about 120 characters
// each, most important first: the summary (with the hint when it fits),
// then the findings the summary does not speak for, by severity. Scheduling
// gates are left out: they are how gated pods are meant to be created.
func (m Message) Warnings(findings []feasibility.Reason, max int) []string {
	if max <= 0 {
		max = DefaultMaxWarnings
	}
	var kept []feasibility.Reason
	for _, r := range findings {
		if r.Code != feasibility.CodeSchedulingGated {
			kept = append(kept, r)
		}
	}
	covered, rest := m.split(kept)
	var out []string
	if len(covered) > 0 {
		s := m.summary(feasibility.WorstSeverity(covered))
		withHint := s
		if m.Report.Hint != "" {
			withHint += " (" + m.Report.Hint + ")"
		}
		if utf8.RuneCountInString(withHint) <= maxWarningLen || m.Report.Hint == "" {
			out = append(out, splitLine(withHint, maxWarningLen)...)
		} else {
			out = append(out, splitLine(s, maxWarningLen)...)
			out = append(out, truncate(m.Report.Hint, maxWarningLen))
		}
	}
	for _, r := range orderBySeverity(rest) {
		out = append(out, truncate(reasonLine(r), maxWarningLen))
	}
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// orderBySeverity returns reasons permanent first, then transient, then
// info, keeping the engine's order within each.
func orderBySeverity(reasons []feasibility.Reason) []feasibility.Reason {
	out := make([]feasibility.Reason, 0, len(reasons))
	for _, sev := range []feasibility.Severity{feasibility.SeverityPermanent, feasibility.SeverityTransient, feasibility.SeverityInfo} {
		for _, r := range reasons {
			if r.Severity == sev {
				out = append(out, r)
			}
		}
	}
	for _, r := range reasons { // any severity this version does not know
		switch r.Severity {
		case feasibility.SeverityPermanent, feasibility.SeverityTransient, feasibility.SeverityInfo:
		default:
			out = append(out, r)
		}
	}
	return out
}

// splitLine breaks a long sentence into warnings of at most n characters
// at its natural joints, so that `... only 2 of 6 replicas fit now: 0/4
// nodes are available: ...` becomes two readable lines instead of one cut
// mid-word. It splits after ": " where it can, and truncates what remains.
func splitLine(s string, n int) []string {
	var out []string
	for utf8.RuneCountInString(s) > n {
		r := []rune(s)
		// Prefer the earliest joint that leaves a remainder which fits,
		// else the last joint before the limit.
		cut := -1
		for i := n / 3; i < n && i < len(r); i++ {
			if r[i] == ' ' && r[i-1] == ':' {
				cut = i
				if len(r)-i-1 <= n {
					break
				}
			}
		}
		if cut < 0 {
			break
		}
		out = append(out, strings.TrimRight(string(r[:cut]), " :"))
		s = string(r[cut+1:])
	}
	return append(out, truncate(s, n))
}

// truncate shortens s to at most n characters, ending with "…" when cut,
// at a word boundary when one is near.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	all := []rune(s)
	r := all[:n-1]
	if next := all[n-1]; next != ' ' && next != ',' && next != ';' {
		// Mid-word: back up to the last space, if one is near.
		for i := len(r) - 1; i > len(r)-20 && i > 0; i-- {
			if r[i] == ' ' {
				r = r[:i]
				break
			}
		}
	}
	return strings.TrimRight(string(r), " ;,:") + "…"
}
