package main

import (
	"fmt"
	"io"
	"time"
)

// result is the soak's verdict, also written as JSON with -report.
type result struct {
	Options   string  `json:"options"`
	Tolerance float64 `json:"tolerance"`
	Baseline  sample  `json:"baseline"`
	End       sample  `json:"end"`
	// Deltas are (end - baseline) / baseline.
	HeapDelta       float64 `json:"heapDelta"`
	GoroutinesDelta float64 `json:"goroutinesDelta"`
	OpenFDsDelta    float64 `json:"openFDsDelta"`

	Requests    int            `json:"requests"`
	Rate        float64        `json:"achievedRatePerSecond"`
	Errors      map[string]int `json:"errors"`
	Allowed     int            `json:"allowed"`
	Denied      int            `json:"denied"`
	Warned      int            `json:"warned"`
	Unchecked   int64          `json:"uncheckedAllows"`
	LatencyP50  string         `json:"latencyP50"`
	LatencyP99  string         `json:"latencyP99"`
	LatencyMax  string         `json:"latencyMax"`
	Passed      bool           `json:"passed"`
	Problems    []string       `json:"problems,omitempty"`
	ElapsedSecs float64        `json:"elapsedSeconds"`
}

func delta(base, end float64) float64 {
	if base == 0 {
		return 0
	}
	return (end - base) / base
}

func (r *result) finish(s *stats, elapsed time.Duration) {
	ok, failed := s.counts()
	s.mu.Lock()
	r.Requests, r.Errors = ok+failed, s.errors
	r.Allowed, r.Denied, r.Warned = s.allowed, s.denied, s.warns
	s.mu.Unlock()
	r.Unchecked = s.unchecked.Load()
	r.Rate = float64(r.Requests) / elapsed.Seconds()
	r.ElapsedSecs = elapsed.Seconds()
	r.LatencyP50 = s.percentile(0.50).Round(10 * time.Microsecond).String()
	r.LatencyP99 = s.percentile(0.99).Round(10 * time.Microsecond).String()
	r.LatencyMax = s.percentile(1).Round(10 * time.Microsecond).String()
	r.HeapDelta = delta(r.Baseline.HeapAlloc, r.End.HeapAlloc)
	r.GoroutinesDelta = delta(r.Baseline.Goroutines, r.End.Goroutines)
	r.OpenFDsDelta = delta(r.Baseline.OpenFDs, r.End.OpenFDs)
	r.Passed = true
	if failed > 0 {
		r.Passed = false
		r.Problems = append(r.Problems, fmt.Sprintf("%d error responses", failed))
	}
	for name, d := range map[string]float64{"heap": r.HeapDelta, "goroutines": r.GoroutinesDelta, "open fds": r.OpenFDsDelta} {
		if d > r.Tolerance {
			r.Passed = false
			r.Problems = append(r.Problems, fmt.Sprintf("%s grew %+.1f%% (over %.0f%%)", name, 100*d, 100*r.Tolerance))
		}
	}
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak (%s):\n", r.Options)
	fmt.Fprintf(w, "  requests   %d in %.0f s (%.1f/s): %d allowed (%d with warnings, %d unchecked), %d denied, %d errors\n",
		r.Requests, r.ElapsedSecs, r.Rate, r.Allowed, r.Warned, r.Unchecked, r.Denied, r.Requests-r.Allowed-r.Denied)
	for e, n := range r.Errors {
		fmt.Fprintf(w, "    %d × %s\n", n, e)
	}
	fmt.Fprintf(w, "  latency    p50 %s, p99 %s, max %s\n", r.LatencyP50, r.LatencyP99, r.LatencyMax)
	fmt.Fprintf(w, "  baseline   %s\n  end        %s\n", r.Baseline, r.End)
	fmt.Fprintf(w, "  deltas     heap %+.1f%%, goroutines %+.1f%%, open fds %+.1f%% (growth tolerance %.0f%%)\n",
		100*r.HeapDelta, 100*r.GoroutinesDelta, 100*r.OpenFDsDelta, 100*r.Tolerance)
	if r.Passed {
		fmt.Fprintln(w, "  PASS")
		return
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  FAIL: %s\n", p)
	}
}
