package scenarios

import (
	"fmt"
	"strings"

	"github.com/fitgate/fitgate/feasibility"
)

// Compare returns "" when the report matches the scenario's expectation,
// or what differs.
func Compare(sc *Scenario, r *feasibility.Report) string {
	var diffs []string
	if r.Verdict != sc.Expect.Verdict {
		diffs = append(diffs, fmt.Sprintf("verdict %s, want %s", r.Verdict, sc.Expect.Verdict))
	}
	if want := sc.ExpectedReplicasFit(r.Replicas); want >= 0 && r.ReplicasFit != want {
		diffs = append(diffs, fmt.Sprintf("replicasFit %d, want %d", r.ReplicasFit, want))
	}
	for _, code := range sc.Expect.Codes {
		found := false
		for _, x := range r.Reasons {
			if x.Code == code {
				found = true
				break
			}
		}
		if !found {
			diffs = append(diffs, fmt.Sprintf("missing reason %s", code))
		}
	}
	if sc.Expect.Summary != "" && r.Summary != sc.Expect.Summary {
		diffs = append(diffs, fmt.Sprintf("summary %q, want %q", r.Summary, sc.Expect.Summary))
	}
	return strings.Join(diffs, "; ")
}

// ExpectedReplicasFit is the replica count the scenario expects to be
// placeable: the explicit expectation, else all replicas when it fits, or
// -1 when the scenario does not say.
func (sc *Scenario) ExpectedReplicasFit(replicas int32) int32 {
	if sc.Expect.ReplicasFit != nil {
		return *sc.Expect.ReplicasFit
	}
	if sc.Expect.Verdict == feasibility.Fits {
		return replicas
	}
	return -1
}
