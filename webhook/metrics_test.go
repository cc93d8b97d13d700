package webhook

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fitgate/fitgate/feasibility"
)

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &out)
	return 0
}

func testutilCount(t *testing.T, m *Metrics, labels ...string) float64 {
	return value(t, m.Decisions.WithLabelValues(labels...))
}

func TestMetricsRegisterAndCacheSizes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(NewCacheSizeCollector(func() map[feasibility.Kind]int {
		return map[feasibility.Kind]int{feasibility.KindNode: 3, feasibility.KindPod: 40}
	}))
	m.setSynced(feasibility.KindNode, true)
	m.observeDecision("Pod", "fits", "warn", "allowed", 0)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, f := range families {
		got[f.GetName()] = map[string]float64{}
		for _, metric := range f.GetMetric() {
			key := ""
			for _, l := range metric.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			switch {
			case metric.Gauge != nil:
				got[f.GetName()][key] = metric.Gauge.GetValue()
			case metric.Counter != nil:
				got[f.GetName()][key] = metric.Counter.GetValue()
			case metric.Histogram != nil:
				got[f.GetName()][key] = float64(metric.Histogram.GetSampleCount())
			}
		}
	}
	for name, want := range map[string]map[string]float64{
		"fitgate_cache_objects":            {"kind=Node,": 3, "kind=Pod,": 40, "kind=Secret,": 0},
		"fitgate_cache_synced":             {"kind=Node,": 1},
		"fitgate_decisions_total":          {"kind=Pod,mode=warn,result=allowed,verdict=fits,": 1},
		"fitgate_handler_duration_seconds": {"kind=Pod,": 1},
	} {
		for k, v := range want {
			if g, ok := got[name][k]; !ok || g != v {
				t.Errorf("%s{%s} = %v (present %v), want %v", name, k, g, ok, v)
			}
		}
	}
	if n := len(got["fitgate_cache_objects"]); n != len(feasibility.AllKinds) {
		t.Errorf("fitgate_cache_objects has %d kinds, want %d", n, len(feasibility.AllKinds))
	}
	var nilMetrics *Metrics // records nothing, never panics
	nilMetrics.observeDecision("Pod", "fits", "warn", "allowed", 0)
	nilMetrics.setSynced(feasibility.KindPod, true)
	nilMetrics.observeLookup(feasibility.KindSecret, "found")
}
