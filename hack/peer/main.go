// Command peer measures fitgate's engine side by side with the
// kube-scheduler v1.37 framework (in-tree registry, default profile) built
// in-process, on the same synthetic clusters and the same pods, and checks
// that the two agree on whether each pod fits (issue #9, item 3).
//
// For each scale it generates the cluster from the seed, builds the test
// pods, then measures the engines one after the other in this process:
//
//  1. fitgate: a feasibility.Snapshot of the cluster's objects; each pod is
//     a bare-Pod workload judged by feasibility.Check.
//  2. the framework: a fake clientset holding the same objects, an informer
//     factory over it (started and synced), a scheduler snapshot of what the
//     informers hold; each pod gets a fresh CycleState, the PreFilter
//     plugins, then the Filter plugins on every node PreFilter leaves.
//
// GC: each engine is measured with only its own state alive. fitgate's
// snapshot is dropped and runtime.GC() runs before the framework is built;
// the generated cluster is dropped once the fake clientset holds its copy,
// and runtime.GC() runs again before the framework is timed. The test pods
// (a few hundred) are the only thing both phases share.
//
// Every pod is timed individually with time.Now. A few warm-up pods per
// case run first on each engine and are not counted.
//
// Run: cd hack/peer && go run . [-scales 500x15000,5000x150000] [-pods 300] [-seed 1]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/synth"
)

type config struct {
	scales      []scale
	pods        int
	warmup      int
	seed        uint64
	parallelism int
}

type scale struct{ nodes, pods int }

func (s scale) String() string { return fmt.Sprintf("%dx%d", s.nodes, s.pods) }

func parseScales(v string) ([]scale, error) {
	var out []scale
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, p, ok := strings.Cut(f, "x")
		nodes, err1 := strconv.Atoi(n)
		pods, err2 := strconv.Atoi(p)
		if !ok || err1 != nil || err2 != nil || nodes <= 0 || pods < 0 {
			return nil, fmt.Errorf("scale %q: want NODESxPODS, e.g. 500x15000", f)
		}
		out = append(out, scale{nodes, pods})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scales")
	}
	return out, nil
}

func main() {
	scales := flag.String("scales", "500x15000,5000x150000", "comma-separated NODESxPODS cluster sizes")
	pods := flag.Int("pods", 300, "distinct pods measured per case and scale")
	warmup := flag.Int("warmup", 5, "uncounted warm-up pods per case, engine and scale")
	seed := flag.Uint64("seed", 1, "synthetic cluster seed")
	par := flag.Int("parallelism", 16, "the framework's parallelism, used inside PreFilter plugins (16 is the scheduler's default); the Filter pass over nodes is sequential")
	flag.Parse()
	cfg := config{pods: *pods, warmup: *warmup, seed: *seed, parallelism: *par}
	var err error
	if cfg.scales, err = parseScales(*scales); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.pods <= 0 || cfg.warmup < 0 || cfg.parallelism <= 0 {
		fmt.Fprintln(os.Stderr, "-pods and -parallelism must be positive, -warmup not negative")
		os.Exit(2)
	}
	rows, err := run(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	printTable(os.Stdout, cfg, rows)
}

// testCase is one pod shape: warm-up pods first, then the measured ones.
type testCase struct {
	name string
	pods []*v1.Pod
	ws   []*feasibility.Workload
}

// row is one line of the table.
type row struct {
	scale     scale
	name      string
	fitgate   []time.Duration
	framework []time.Duration
	agree     int
	feasible  []int // framework's feasible nodes per measured pod
	fits      int   // pods fitgate says fit
	disagree  []string
}

func run(cfg config, log io.Writer) ([]*row, error) {
	var rows []*row
	for _, sc := range cfg.scales {
		r, err := runScale(cfg, sc, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc, err)
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func runScale(cfg config, sc scale, log io.Writer) ([]*row, error) {
	t0 := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "[%6.1fs] %s: %s\n", time.Since(t0).Seconds(), sc, fmt.Sprintf(format, args...))
	}
	logf("generating cluster (seed %d)", cfg.seed)
	c := synth.Generate(synth.Config{Seed: cfg.seed, Nodes: sc.nodes, Pods: sc.pods})
	cases, err := buildCases(c, cfg.warmup+cfg.pods)
	if err != nil {
		return nil, err
	}
	rows := make([]*row, len(cases))
	for i, tc := range cases {
		rows[i] = &row{scale: sc, name: tc.name}
	}
	verdicts := make([][]*feasibility.Report, len(cases))

	// Phase 1: fitgate, with only its snapshot (and the cluster it was
	// built from) alive.
	runtime.GC()
	logf("fitgate: building snapshot")
	snap, err := feasibility.NewSnapshotFrom(c.Objects()...)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	for i, tc := range cases {
		for j := 0; j < cfg.warmup; j++ {
			feasibility.Check(snap, tc.ws[j], nil)
		}
		for _, w := range tc.ws[cfg.warmup:] {
			start := time.Now()
			rep := feasibility.Check(snap, w, nil)
			rows[i].fitgate = append(rows[i].fitgate, time.Since(start))
			verdicts[i] = append(verdicts[i], rep)
		}
		logf("fitgate %-22s mean %s", tc.name, fmtDur(mean(rows[i].fitgate)))
	}
	snap = nil
	runtime.GC()

	// Phase 2: the framework. The fake clientset copies the objects, so the
	// generated cluster can go before timing starts.
	logf("framework: fake clientset, informers, framework")
	p, err := newPeer(c.Objects(), cfg.parallelism)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	c = nil
	runtime.GC()
	logf("framework: ready; filter plugins %s", p.plugins)
	ctx := context.Background()
	for i, tc := range cases {
		for j := 0; j < cfg.warmup; j++ {
			if _, _, err := p.timed(ctx, tc.pods[j]); err != nil {
				return nil, fmt.Errorf("%s: %w", tc.name, err)
			}
		}
		for _, pod := range tc.pods[cfg.warmup:] {
			d, n, err := p.timed(ctx, pod)
			if err != nil {
				return nil, fmt.Errorf("%s pod %s/%s: %w", tc.name, pod.Namespace, pod.Name, err)
			}
			rows[i].framework = append(rows[i].framework, d)
			rows[i].feasible = append(rows[i].feasible, n)
		}
		// Agreement, outside the timed loop.
		for k, pod := range tc.pods[cfg.warmup:] {
			rep, n := verdicts[i][k], rows[i].feasible[k]
			fits := rep.Verdict == feasibility.Fits
			if fits {
				rows[i].fits++
			}
			if fits == (n > 0) {
				rows[i].agree++
				continue
			}
			rows[i].disagree = append(rows[i].disagree, fmt.Sprintf(
				"%s %s %s/%s: fitgate %s (placed %d, fit %d) %q; framework %s\n    pod: %s",
				sc, tc.name, pod.Namespace, pod.Name, rep.Verdict, rep.Placed, rep.ReplicasFit, rep.Summary,
				p.explain(ctx, pod), describePod(pod)))
		}
		schedulable := 0
		for _, n := range rows[i].feasible {
			if n > 0 {
				schedulable++
			}
		}
		logf("framework %-22s mean %s; feasible nodes median %d; fitgate fits %d, framework schedulable %d; agree %d/%d",
			tc.name, fmtDur(mean(rows[i].framework)), median(rows[i].feasible), rows[i].fits, schedulable, rows[i].agree, len(rows[i].feasible))
	}
	return rows, nil
}

// buildCases returns the pods measured at one scale, n per case. The first
// three shapes are feasibility/bench_test.go's: 100m cpu (fits), 64 cpu
// (fits nowhere), and 100m with required hostname anti-affinity plus zone
// spread, in namespaces team-03..team-12 (no quotas there), each pod its own
// app with a slightly different cpu request. The fourth is one more replica
// of existing apps that use anti-affinity, spread or a host port, so that
// the constraints meet pods already bound.
func buildCases(c *synth.Cluster, n int) ([]testCase, error) {
	shape := func(name, prefix string, cpu int64, constrained bool) testCase {
		tc := testCase{name: name}
		for i := 0; i < n; i++ {
			a := &synth.App{Namespace: fmt.Sprintf("team-%02d", 3+i%10), Name: fmt.Sprintf("%s-%d", prefix, i),
				CPUMilli: cpu + int64(i%7), MemMi: 256, AntiAffinity: constrained, Spread: constrained}
			tc.pods = append(tc.pods, pending(a.Pod(0, "")))
		}
		return tc
	}
	cases := []testCase{
		shape("fits (100m)", "peer-fits", 100, false),
		shape("fits nowhere (64 cpu)", "peer-big", 64000, false),
		shape("anti-affinity+spread", "peer-aa", 100, true),
		existingApps(c, n),
		nearCapacity(n),
	}
	for i := range cases {
		for _, p := range cases[i].pods {
			w, err := feasibility.WorkloadFromObject(p)
			if err != nil {
				return nil, err
			}
			cases[i].ws = append(cases[i].ws, w)
		}
	}
	return cases, nil
}

// nearCapacity returns n pods whose requests lie around what the nodes
// have free (3 to 14 cpu, up to 120Gi of memory; every third one tolerates
// the GPU pool's taint and asks for 1 to 5 of its 4 GPUs), so that some fit
// and some do not, and agreement tests the resource accounting at its edge.
func nearCapacity(n int) testCase {
	tc := testCase{name: "near capacity (mixed)"}
	gpu := v1.ResourceName("example.com/gpu")
	for i := 0; i < n; i++ {
		a := &synth.App{Namespace: fmt.Sprintf("team-%02d", 3+i%10), Name: fmt.Sprintf("peer-edge-%d", i),
			CPUMilli: 3000 + int64(i*617%11000), MemMi: 64 + int64(i*7919%(120<<10))}
		p := pending(a.Pod(0, ""))
		if i%3 == 0 {
			q := *resource.NewQuantity(int64(1+i%5), resource.DecimalSI)
			r := &p.Spec.Containers[0].Resources
			r.Requests[gpu] = q
			r.Limits = v1.ResourceList{gpu: q}
			p.Spec.Tolerations = []v1.Toleration{{Key: string(gpu), Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
		}
		tc.pods = append(tc.pods, p)
	}
	return tc
}

// existingApps returns n pods, each one more replica of an existing app
// with required anti-affinity, zone spread or a host port, in a namespace
// without quotas. With fewer such apps than n it cycles through them, the
// pods still distinct by name.
func existingApps(c *synth.Cluster, n int) testCase {
	tc := testCase{name: "replica of existing app"}
	quota := map[string]bool{}
	for _, q := range c.Quotas {
		quota[q.Namespace] = true
	}
	seen := map[string]bool{}
	var protos []*v1.Pod
	for _, p := range c.Pods {
		key := p.Namespace + "/" + p.Labels["app"]
		if quota[p.Namespace] || seen[key] {
			continue
		}
		seen[key] = true
		if p.Spec.Affinity != nil || len(p.Spec.TopologySpreadConstraints) > 0 || hostPort(p) {
			protos = append(protos, p)
		}
	}
	if len(protos) == 0 {
		return tc
	}
	for i := 0; i < n; i++ {
		proto := protos[i%len(protos)]
		q := &v1.Pod{Spec: *proto.Spec.DeepCopy()}
		proto.ObjectMeta.DeepCopyInto(&q.ObjectMeta)
		q.Name = fmt.Sprintf("%s-peer-%d", proto.Labels["app"], i)
		q.Spec.NodeName = ""
		tc.pods = append(tc.pods, pending(q))
	}
	return tc
}

func hostPort(p *v1.Pod) bool {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort > 0 {
				return true
			}
		}
	}
	return false
}

// pending makes p a new, unbound pod as the scheduler would receive it.
func pending(p *v1.Pod) *v1.Pod {
	p.Spec.NodeName = ""
	p.Status = v1.PodStatus{Phase: v1.PodPending}
	p.UID = types.UID("peer-" + p.Namespace + "-" + p.Name)
	p.ResourceVersion = ""
	return p
}

func describePod(p *v1.Pod) string {
	var parts []string
	for _, c := range p.Spec.Containers {
		parts = append(parts, fmt.Sprintf("requests %v", c.Resources.Requests))
		for _, port := range c.Ports {
			if port.HostPort > 0 {
				parts = append(parts, fmt.Sprintf("hostPort %d/%s", port.HostPort, port.Protocol))
			}
		}
	}
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			parts = append(parts, fmt.Sprintf("anti-affinity %s on %v", t.TopologyKey, t.LabelSelector.MatchLabels))
		}
	}
	for _, t := range p.Spec.TopologySpreadConstraints {
		parts = append(parts, fmt.Sprintf("spread %s maxSkew %d %s on %v", t.TopologyKey, t.MaxSkew, t.WhenUnsatisfiable, t.LabelSelector.MatchLabels))
	}
	for _, t := range p.Spec.Tolerations {
		parts = append(parts, fmt.Sprintf("tolerates %s %s", t.Key, t.Effect))
	}
	parts = append(parts, fmt.Sprintf("labels %v", p.Labels))
	return strings.Join(parts, ", ")
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// p99 is the nearest-rank 99th percentile.
func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := (len(s)*99 + 99) / 100 // ceil(0.99 n)
	return s[k-1]
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	case d >= time.Microsecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%dns", d.Nanoseconds())
}

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f×", float64(a)/float64(b))
}

func printTable(w io.Writer, cfg config, rows []*row) {
	fmt.Fprintln(w, "| scale | case | fitgate mean | fitgate p99 | framework mean | framework p99 | ratio mean | ratio p99 | agree |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	agree, total := 0, 0
	var disagree []string
	for _, r := range rows {
		fm, fp, km, kp := mean(r.fitgate), p99(r.fitgate), mean(r.framework), p99(r.framework)
		fmt.Fprintf(w, "| %d nodes / %d pods | %s | %s | %s | %s | %s | %s | %s | %d/%d |\n",
			r.scale.nodes, r.scale.pods, r.name, fmtDur(fm), fmtDur(fp), fmtDur(km), fmtDur(kp),
			ratio(km, fm), ratio(kp, fp), r.agree, len(r.feasible))
		agree += r.agree
		total += len(r.feasible)
		disagree = append(disagree, r.disagree...)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Machine: GOMAXPROCS=%d, %d CPUs, %s; %s %s/%s. Seed %d, %d pods per case (+%d warm-up), framework parallelism %d.\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		cfg.seed, cfg.pods, cfg.warmup, cfg.parallelism)
	fmt.Fprintf(w, "Agreement (fitgate verdict fits ⇔ framework finds ≥1 feasible node): %d/%d.\n", agree, total)
	if len(disagree) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Disagreements:")
		for _, d := range disagree {
			fmt.Fprintln(w, "- "+d)
		}
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
