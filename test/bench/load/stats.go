package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted
// latencies: the smallest value with at least p% of the samples at or below
// it. It is 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(n, rank))
	return sorted[rank-1]
}

// latencySummary sorts lat in place and returns its p50 and p99.
func latencySummary(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	return percentile(lat, 50), percentile(lat, 99)
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtLatency prints a latency in milliseconds with two decimals.
func fmtLatency(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// parseLevels parses a comma-separated list of positive concurrency levels.
func parseLevels(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(part, "%d", &n); err != nil || fmt.Sprint(n) != part {
			return nil, fmt.Errorf("%q is not a whole number", part)
		}
		if n < 1 || n > 1024 {
			return nil, fmt.Errorf("concurrency %d: want 1..1024", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no concurrency levels in %q", s)
	}
	return out, nil
}

// row is one line of the result table.
type row struct {
	part, scenario, conc, count, errors, rate, p50, p99, cpu, notes string
}

var tableHeader = row{"part", "scenario", "concurrency", "requests", "errors", "rate", "p50", "p99",
	"CPU cores: fitgate / bench / apiserver / etcd", "notes"}

// renderTable renders rows as one markdown table with aligned columns.
func renderTable(rows []row) string {
	cells := func(r row) []string {
		return []string{r.part, r.scenario, r.conc, r.count, r.errors, r.rate, r.p50, r.p99, r.cpu, r.notes}
	}
	all := append([]row{tableHeader}, rows...)
	width := make([]int, len(cells(tableHeader)))
	for _, r := range all {
		for i, c := range cells(r) {
			c = strings.ReplaceAll(c, "|", `\|`)
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cs []string) {
		b.WriteString("|")
		for i, c := range cs {
			c = strings.ReplaceAll(c, "|", `\|`)
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(cells(tableHeader))
	sep := make([]string, len(width))
	for i, w := range width {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, r := range rows {
		line(cells(r))
	}
	return b.String()
}

// parseRates parses a comma-separated list of request rates per second for
// open-loop levels; an empty list is none.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := strconv.ParseFloat(part, 64)
		if err != nil || r < 1 || r > 100_000 {
			return nil, fmt.Errorf("%q: want a rate of 1..100000 requests/s", part)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}
