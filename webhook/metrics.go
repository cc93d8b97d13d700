package webhook

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fitgate/fitgate/feasibility"
)

// Metrics are fitgate's own Prometheus collectors. A nil *Metrics records
// nothing, so tests and tools can leave it out.
type Metrics struct {
	// Decisions counts admission decisions by kind, verdict (fits,
	// transient, permanent, or unchecked), namespace mode (off, warn,
	// enforce, strict, exempt) and result (allowed, warned, denied).
	Decisions *prometheus.CounterVec
	// Latency is the handler's latency by kind, from decoding to response.
	Latency *prometheus.HistogramVec
	// LiveLookups counts live GETs by kind and result (found, missing,
	// error), and the node LISTs made before a denial (kind Node:
	// confirmed, averted, behind, error; see Handler.rejudge).
	LiveLookups *prometheus.CounterVec
	// CacheSynced is 1 for each kind whose informer has synced.
	CacheSynced *prometheus.GaugeVec
}

// NewMetrics creates the collectors; Register them before use.
func NewMetrics() *Metrics {
	return &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fitgate_decisions_total",
			Help: "Admission decisions by workload kind, verdict, namespace mode and result.",
		}, []string{"kind", "verdict", "mode", "result"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fitgate_handler_duration_seconds",
			Help:    "Latency of the admission handler by workload kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"kind"}),
		LiveLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fitgate_live_lookups_total",
			Help: "Live GETs confirming a missing reference or an unknown namespace, and node LISTs confirming the cache is current before a denial, by kind and result.",
		}, []string{"kind", "result"}),
		CacheSynced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fitgate_cache_synced",
			Help: "1 when the informer for the kind has synced, else 0.",
		}, []string{"kind"}),
	}
}

// Register registers the collectors with reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if m == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.Decisions, m.Latency, m.LiveLookups, m.CacheSynced} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

func (m *Metrics) observeDecision(kind, verdict, mode, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.Decisions.WithLabelValues(kind, verdict, mode, result).Inc()
	m.Latency.WithLabelValues(kind).Observe(took.Seconds())
}

func (m *Metrics) observeLookup(kind feasibility.Kind, result string) {
	if m == nil {
		return
	}
	m.LiveLookups.WithLabelValues(string(kind), result).Inc()
}

func (m *Metrics) setSynced(kind feasibility.Kind, synced bool) {
	if m == nil {
		return
	}
	v := 0.0
	if synced {
		v = 1
	}
	m.CacheSynced.WithLabelValues(string(kind)).Set(v)
}

// cacheSizeCollector reports fitgate_cache_objects{kind} at scrape time.
type cacheSizeCollector struct {
	desc   *prometheus.Desc
	counts func() map[feasibility.Kind]int
}

// NewCacheSizeCollector reports, at each scrape, the number of objects of
// each kind counts returns (typically (*Cache).Counts).
func NewCacheSizeCollector(counts func() map[feasibility.Kind]int) prometheus.Collector {
	return &cacheSizeCollector{
		desc: prometheus.NewDesc("fitgate_cache_objects", "Objects held in the cluster cache, by kind.",
			[]string{"kind"}, nil),
		counts: counts,
	}
}

func (c *cacheSizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *cacheSizeCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.counts()
	for _, k := range feasibility.AllKinds {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[k]), string(k))
	}
}
