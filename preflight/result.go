package preflight

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/fitgate/fitgate/feasibility"
)

// Output is what `fitgate check -o json` prints. Other tools parse it:
// fields may be added, never renamed or removed.
type Output struct {
	Results []Result `json:"results"`
}

// Result is one workload's verdict.
type Result struct {
	Kind      string              `json:"kind"`
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Verdict   feasibility.Verdict `json:"verdict"`
	// Replicas is how many pods the workload wants at once (for a
	// DaemonSet, the nodes it targets); ReplicasFit how many can be placed.
	Replicas    int32 `json:"replicas"`
	ReplicasFit int32 `json:"replicasFit"`
	// Summary is the scheduler's own sentence ("0/3 nodes are available:
	// ..."), Hint one actionable sentence; both empty when everything fits.
	Summary string   `json:"summary,omitempty"`
	Hint    string   `json:"hint,omitempty"`
	Reasons []Reason `json:"reasons"`
	// File and Document say where the workload was read ("-" for stdin;
	// documents count from 0).
	File     string `json:"file"`
	Document int    `json:"document"`

	report *feasibility.Report // with Reasons as above, for the text wording
}

// Reason is one finding.
type Reason struct {
	Code     feasibility.Code     `json:"code"`
	Severity feasibility.Severity `json:"severity"`
	Message  string               `json:"message"`
	// Field is the path of the field at fault, when one is.
	Field string `json:"field,omitempty"`
}

// Judgement is the outcome of judging a set of manifests.
type Judgement struct {
	Results []Result
	// Notes are for stderr: what was skipped and why.
	Notes []string
	// Verbose notes are for stderr with -v: which manifest objects were
	// used as cluster state.
	Verbose []string
}

// Judge adds the manifests' cluster-state objects to st (which it
// changes), then judges every workload among docs, each alone against the
// result, in the order of docs. Workloads without a namespace are judged
// in defaultNS.
func Judge(st *State, docs []feasibility.Document, defaultNS string, opts *feasibility.Options) (*Judgement, error) {
	j := &Judgement{}
	j.Notes, j.Verbose = applyManifests(st, docs, defaultNS)
	snap, err := st.Snapshot()
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d.Unknown != nil {
			j.Notes = append(j.Notes, fmt.Sprintf("skipped: %s: not a workload", describe(d)))
			continue
		}
		w, err := feasibility.WorkloadFromObject(d.Object)
		if err != nil {
			if _, isState := stateKind(d.Object); !isState {
				// Services, Ingresses and the like: a chart has many, and
				// none of them changes where pods can run.
				j.Verbose = append(j.Verbose, fmt.Sprintf("skipped: %s: not a workload", describe(d)))
			}
			continue
		}
		if w.Namespace == "" {
			w.Namespace = defaultNS
		}
		j.Results = append(j.Results, newResult(feasibility.Check(snap, w, opts), d))
	}
	return j, nil
}

func newResult(rep *feasibility.Report, d feasibility.Document) Result {
	reasons := rep.Reasons
	// As the webhook does: replicas that do not all fit with no reason
	// worse than info saying why (a quota admits fewer) get one.
	if rep.ReplicasFit < rep.Replicas && feasibility.WorstSeverity(reasons) == feasibility.SeverityInfo {
		msg := rep.Summary
		if msg == "" {
			msg = fmt.Sprintf("only %d of %d replicas fit now", rep.ReplicasFit, rep.Replicas)
		}
		reasons = append(append([]feasibility.Reason(nil), reasons...), feasibility.Reason{
			Code: feasibility.CodeReplicasPartiallyFit, Severity: feasibility.SeverityTransient, Message: msg})
	}
	full := *rep
	full.Reasons = reasons
	r := Result{Kind: rep.Kind, Namespace: rep.Namespace, Name: rep.Name, Verdict: rep.Verdict,
		Replicas: rep.Replicas, ReplicasFit: rep.ReplicasFit, Summary: rep.Summary, Hint: rep.Hint,
		Reasons: make([]Reason, 0, len(reasons)), File: d.Source, Document: d.Index, report: &full}
	for _, x := range reasons {
		r.Reasons = append(r.Reasons, Reason{Code: x.Code, Severity: x.Severity, Message: x.Message, Field: x.Field})
	}
	return r
}

// Exit codes of `fitgate check`.
const (
	ExitFits     = 0 // every workload fits (or nothing worse than --fail-on allows)
	ExitNotFit   = 1 // some workload is at least as bad as --fail-on
	ExitBadInput = 2 // nothing was judged: bad flags, manifests or state
)

// ExitCode is ExitNotFit when any result is at least as bad as failOn
// (Transient or Permanent), else ExitFits.
func ExitCode(results []Result, failOn feasibility.Verdict) int {
	for _, r := range results {
		if r.Verdict == feasibility.Permanent || (r.Verdict == feasibility.Transient && failOn == feasibility.Transient) {
			return ExitNotFit
		}
	}
	return ExitFits
}

// WriteJSON writes the results as Output, indented.
func WriteJSON(w io.Writer, results []Result) error {
	if results == nil {
		results = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Output{Results: results})
}
