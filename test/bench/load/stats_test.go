package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100", hundred, 100, 100 * time.Millisecond},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p", ms(1, 2, 3), 0.001, time.Millisecond},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestLatencySummarySorts(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3}
	p50, p99 := latencySummary(lat)
	if p50 != 3 || p99 != 5 {
		t.Fatalf("p50, p99 = %v, %v; want 3, 5", p50, p99)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1}, 2}, {[]float64{0.9, 1.1, 0.95}, 0.95},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseLevels(t *testing.T) {
	got, err := parseLevels(" 4,16, 64,16 ")
	if err != nil || len(got) != 3 || got[0] != 4 || got[1] != 16 || got[2] != 64 {
		t.Fatalf("parseLevels = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "0", "-1", "4,x", "2000", "1.5", "8k"} {
		if _, err := parseLevels(bad); err == nil {
			t.Errorf("parseLevels(%q): no error", bad)
		}
	}
}

func TestBodyTemplate(t *testing.T) {
	tmpl, err := newBodyTemplate([]byte(`{"uid":"@U@","name":"@N@","labels":{"app":"@N@"}}`), "@U@", "@N@")
	if err != nil {
		t.Fatal(err)
	}
	got := string(tmpl.render(nil, "u-1", "web-1"))
	if want := `{"uid":"u-1","name":"web-1","labels":{"app":"web-1"}}`; got != want {
		t.Fatalf("render = %s, want %s", got, want)
	}
	// The buffer is reused.
	buf := make([]byte, 0, 8)
	buf = tmpl.render(buf, "u-2", "x")
	if got, want := string(buf), `{"uid":"u-2","name":"x","labels":{"app":"x"}}`; got != want {
		t.Fatalf("render = %s, want %s", got, want)
	}
	// Placeholders at the very start and end.
	edge, err := newBodyTemplate([]byte(`AmidB`), "A", "B")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(edge.render(nil, "1", "2")); got != "1mid2" {
		t.Fatalf("render = %q", got)
	}
	for _, bad := range [][]string{nil, {""}, {"@X@"}, {"@U@", "@U@x"}} {
		if _, err := newBodyTemplate([]byte(`{"uid":"@U@x"}`), bad...); err == nil {
			t.Errorf("newBodyTemplate(%q): no error", bad)
		}
	}
}

func TestRenderTable(t *testing.T) {
	out := renderTable([]row{{part: "1", scenario: "a|b", rate: "3000/s"}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header, separator and one row:\n%s", out)
	}
	if !strings.Contains(lines[2], `a\|b`) {
		t.Errorf("pipe not escaped: %s", lines[2])
	}
	if len(lines[0]) != len(lines[1]) || len(lines[1]) != len(lines[2]) {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP fitgate_decisions_total Admission decisions.
# TYPE fitgate_decisions_total counter
fitgate_decisions_total{kind="Pod",mode="enforce",result="allowed",verdict="fits"} 2998
fitgate_decisions_total{kind="Pod",mode="enforce",result="denied",verdict="permanent"} 2
fitgate_decisions_total{kind="Deployment",mode="warn",result="allowed",verdict="fits"} 1e+03
fitgate_decisions_totally_different 7
fitgate_handler_duration_seconds_sum{kind="Pod"} 1.5
fitgate_handler_duration_seconds_count{kind="Pod"} 3000
process_cpu_seconds_total 12.5
`
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fitgate_decisions_total", nil, 4000},
		{"fitgate_decisions_total", []string{`kind="Pod"`}, 3000},
		{"fitgate_decisions_total", []string{`kind="Pod"`, `result="denied"`}, 2},
		{"fitgate_decisions_total", []string{`kind="Job"`}, 0},
		{"fitgate_handler_duration_seconds_sum", nil, 1.5},
		{"process_cpu_seconds_total", nil, 12.5},
	} {
		got, err := sumMetric(strings.NewReader(text), c.name, c.labels...)
		if err != nil || got != c.want {
			t.Errorf("sumMetric(%s, %v) = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
	if _, err := sumMetric(strings.NewReader(text), "absent_total"); err == nil {
		t.Error("absent metric: no error")
	}
	if _, err := sumMetric(strings.NewReader("x_total{a=\"b\"} nope\n"), "x_total"); err == nil {
		t.Error("bad value: no error")
	}
}

func TestApproxManagedFields(t *testing.T) {
	var v map[string]any
	if err := json.Unmarshal([]byte(`{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i",
		"ports":[{"containerPort":80,"protocol":"TCP"}],"args":["a","b"]}],"nodeName":"n"}}`), &v); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(approxManagedFields(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"f:metadata":{".":{},"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:args":{},"f:image":{},"f:name":{},` +
		`"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}}}},"f:nodeName":{}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseRates(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []float64
		bad  bool
	}{
		{in: "", want: nil},
		{in: " 3000, 1500.5,3000 ", want: []float64{3000, 1500.5}},
		{in: "0", bad: true},
		{in: "fast", bad: true},
		{in: "1e9", bad: true},
	} {
		got, err := parseRates(c.in)
		if (err != nil) != c.bad || !slices.Equal(got, c.want) {
			t.Errorf("parseRates(%q) = %v, %v", c.in, got, err)
		}
	}
}

// TestOpenLoopSchedule: requests are due every 1/rate from the start,
// none at or after the end, whether or not anyone takes them on time.
func TestOpenLoopSchedule(t *testing.T) {
	begin := time.Now()
	end := begin.Add(100 * time.Millisecond)
	s := newSchedule(context.Background(), begin, end, 1000)
	time.Sleep(150 * time.Millisecond) // a worker that was busy: the due times must not slip
	var got []time.Time
	for {
		due, ok := s.next(context.Background())
		if !ok {
			break
		}
		got = append(got, due)
	}
	if len(got) != 100 {
		t.Fatalf("%d requests due, want 100", len(got))
	}
	for i, due := range got {
		if want := begin.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("request %d due at +%v, want +%v", i, due.Sub(begin), want.Sub(begin))
		}
	}
	closed := newSchedule(context.Background(), begin, begin, 0)
	if _, ok := closed.next(context.Background()); ok {
		t.Error("closed loop: a request due after the end")
	}
}
