package preflight

import (
	"fmt"
	"io"
	"strings"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/webhook"
)

// findingLines words a report's findings for people, most important
// first, in the webhook's words (what `kubectl apply` prints): the
// scheduler-style summary, its hint, then each other finding as
// "field: message", by severity. Unlike the webhook's warnings, which stop
// at 120 characters, no line is cut: the summary is the webhook's Denial
// wording of the findings it speaks for. Scheduling gates are left out, as
// the webhook does: they are how gated pods are meant to be created.
//
// Swap point: if package webhook grows an uncut variant of
// Message.Warnings, this function becomes a call to it.
func findingLines(rep *feasibility.Report) []string {
	m := webhook.Message{Report: rep}
	ref := fmt.Sprintf("%s %q", strings.ToLower(rep.Kind), rep.Name)
	var covered, rest []feasibility.Reason
	for _, r := range rep.Reasons {
		if r.Code == feasibility.CodeSchedulingGated {
			continue
		}
		// Denial words a finding the summary does not speak for as
		// `<object> cannot run: <field>: <message>`; any other wording
		// means the summary speaks for it.
		if m.Denial([]feasibility.Reason{r}) == ref+" cannot run: "+reasonLine(r) {
			rest = append(rest, r)
		} else {
			covered = append(covered, r)
		}
	}
	var out []string
	if len(covered) > 0 {
		// The summary and its hint, each on its own line, as the webhook's
		// warnings put them when they are long.
		line := m.Denial(covered)
		if h := " (" + rep.Hint + ")"; rep.Hint != "" && strings.HasSuffix(line, h) {
			out = append(out, strings.TrimSuffix(line, h), rep.Hint)
		} else {
			out = append(out, line)
		}
	}
	for _, sev := range []feasibility.Severity{feasibility.SeverityPermanent, feasibility.SeverityTransient, feasibility.SeverityInfo, ""} {
		for _, r := range rest {
			known := r.Severity == feasibility.SeverityPermanent || r.Severity == feasibility.SeverityTransient || r.Severity == feasibility.SeverityInfo
			if r.Severity == sev || (sev == "" && !known) {
				out = append(out, reasonLine(r))
			}
		}
	}
	return out
}

// reasonLine is the webhook's wording of one finding.
func reasonLine(r feasibility.Reason) string {
	if r.Field != "" {
		return r.Field + ": " + r.Message
	}
	return r.Message
}

// WriteText writes one block per workload, then a tally:
//
//	deployment "api" in namespace "shop" (chart.yaml, document 3): permanent, 0 of 3 replicas fit
//	  deployment "api" cannot run: 0/4 nodes are available: 4 Insufficient cpu. (requests 16 cpu; ...)
//	  spec.template.spec.serviceAccountName: serviceaccount "api" not found
func WriteText(w io.Writer, results []Result) error {
	var b strings.Builder
	tally := map[feasibility.Verdict]int{}
	for i, r := range results {
		if i > 0 {
			b.WriteString("\n")
		}
		tally[r.Verdict]++
		fmt.Fprintf(&b, "%s %q in namespace %q (%s): %s%s\n", strings.ToLower(r.Kind), r.Name, r.Namespace,
			where(feasibility.Document{Source: r.File, Index: r.Document}), r.Verdict, replicaCount(r))
		rep := r.report
		if rep == nil { // a Result made elsewhere: word its reasons alone
			rep = &feasibility.Report{Kind: r.Kind, Name: r.Name, Summary: r.Summary, Hint: r.Hint}
			for _, x := range r.Reasons {
				rep.Reasons = append(rep.Reasons, feasibility.Reason{Code: x.Code, Severity: x.Severity, Message: x.Message, Field: x.Field})
			}
		}
		for _, line := range findingLines(rep) {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	if len(results) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d %s judged: %d fit, %d transient, %d permanent\n", len(results), plural(len(results), "workload"),
		tally[feasibility.Fits], tally[feasibility.Transient], tally[feasibility.Permanent])
	_, err := io.WriteString(w, b.String())
	return err
}

// replicaCount is ", 2 of 3 replicas fit" for what can have several pods;
// nothing for a Pod, whose verdict says it all.
func replicaCount(r Result) string {
	switch {
	case r.Kind == "Pod":
		return ""
	case r.Kind == "DaemonSet":
		return fmt.Sprintf(", %d of %d target %s can run it", r.ReplicasFit, r.Replicas, plural(int(r.Replicas), "node"))
	}
	return fmt.Sprintf(", %d of %d %s fit", r.ReplicasFit, r.Replicas, plural(int(r.Replicas), "replica"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
