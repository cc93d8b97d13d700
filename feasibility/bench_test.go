package feasibility_test

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/synth"
)

// Benchmarks at the scales issue #9 names: 500 nodes / 15,000 pods and
// 5,000 nodes / 150,000 pods. Each reports ns/op and allocs/op, and p99
// over many distinct pods as a custom metric.

var scales = []struct{ nodes, pods int }{{500, 15000}, {5000, 150000}}

type built struct {
	snap  *feasibility.Snapshot
	nodes []*v1.Node
}

var (
	cacheMu sync.Mutex
	cache   = map[int]*built{}
)

func cluster(b *testing.B, nodes, pods int) *built {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if c, ok := cache[nodes]; ok {
		return c
	}
	c := synth.Generate(synth.Config{Seed: 1, Nodes: nodes, Pods: pods})
	s, err := feasibility.NewSnapshotFrom(c.Objects()...)
	if err != nil {
		b.Fatal(err)
	}
	// Keep only the snapshot, as fitgate does: holding the generator's
	// full Pod objects too would make every GC cycle of the benchmark walk
	// them, which is not what a check costs in production.
	cache[nodes] = &built{snap: s, nodes: c.Nodes}
	runtime.GC()
	return cache[nodes]
}

// workloads returns n distinct deployments of the given shape.
// Each edit, in order, then changes the pod template.
func workloads(n int, replicas int32, cpu string, mutate func(i int, a *synth.App), edits ...func(*v1.PodTemplateSpec)) []*feasibility.Workload {
	out := make([]*feasibility.Workload, n)
	for i := range out {
		a := &synth.App{Namespace: fmt.Sprintf("team-%02d", 3+i%10), Name: fmt.Sprintf("bench-%d", i), MemMi: 256}
		fmt.Sscan(cpu, &a.CPUMilli)
		a.CPUMilli += int64(i % 7) // distinct pods
		if mutate != nil {
			mutate(i, a)
		}
		t := a.PodTemplate()
		for _, edit := range edits {
			edit(&t)
		}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: a.Namespace},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: t}}
		w, err := feasibility.WorkloadFromObject(d)
		if err != nil {
			panic(err)
		}
		out[i] = w
	}
	return out
}

func benchCheck(b *testing.B, ws []*feasibility.Workload, want feasibility.Verdict) {
	for _, sc := range scales {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.pods), func(b *testing.B) {
			c := cluster(b, sc.nodes, sc.pods)
			if r := feasibility.Check(c.snap, ws[0], nil); r.Verdict != want {
				b.Fatalf("verdict %s, want %s: %s", r.Verdict, want, r.Summary)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				feasibility.Check(c.snap, ws[i%len(ws)], nil)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

func BenchmarkCheckPodFits(b *testing.B) {
	benchCheck(b, workloads(1000, 1, "100", nil), feasibility.Fits)
}

func BenchmarkCheckPodDoesNotFit(b *testing.B) {
	benchCheck(b, workloads(1000, 1, "64000", nil), feasibility.Permanent)
}

func BenchmarkCheckDeployment100(b *testing.B) {
	benchCheck(b, workloads(200, 100, "100", nil), feasibility.Fits)
}

func BenchmarkCheckAntiAffinitySpread(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}), feasibility.Fits)
}

// BenchmarkCheckAntiAffinitySpreadNoFit is a pod with anti-affinity and
// spread that fits nowhere because it asks for more cpu than any node
// has: every node fails NodeResourcesFit, and the diagnosis still walks
// them all with the spread and affinity state built.
func BenchmarkCheckAntiAffinitySpreadNoFit(b *testing.B) {
	benchCheck(b, workloads(500, 1, "64000", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}), feasibility.Permanent)
}

// BenchmarkCheckAntiAffinityConflictNoFit is a pod that fits every node's
// resources but whose anti-affinity every node violates: by zone, against
// an app whose pods run in every zone. The per-node diagnosis is the spread and affinity filters
// themselves.
func BenchmarkCheckAntiAffinityConflictNoFit(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}, conflictEverywhere), feasibility.Transient)
}

// conflictEverywhere points a pod's anti-affinity, by zone, at the pods of
// app-0001 in any namespace: its replicas run in every zone.
func conflictEverywhere(t *v1.PodTemplateSpec) {
	term := &t.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	term.TopologyKey = v1.LabelTopologyZone
	term.LabelSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app-0001"}}
	term.NamespaceSelector = &metav1.LabelSelector{}
}

// BenchmarkCheckTeamWideAntiAffinitySpread is a pod that fits, with
// anti-affinity by hostname and zone spread whose selector is its team's
// label: it matches every pod of the namespace, thousands at 5,000 nodes.
func BenchmarkCheckTeamWideAntiAffinitySpread(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}, selectTeam), feasibility.Fits)
}

// BenchmarkCheckInSelectorAntiAffinitySpread is a pod that fits, with
// anti-affinity and spread selecting "app In (three apps)".
func BenchmarkCheckInSelectorAntiAffinitySpread(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}, selectAppsIn), feasibility.Fits)
}

// BenchmarkCheckNotInExistsAntiAffinitySpread is a pod that fits, with
// anti-affinity selecting "app NotIn (two apps)" in its team and spread
// selecting pods that have an app label: both match most of the namespace.
func BenchmarkCheckNotInExistsAntiAffinitySpread(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}, selectNotInExists), feasibility.Fits)
}

// BenchmarkCheckTeamAndAppExistsAntiAffinitySpread is a pod that fits,
// with anti-affinity and spread selecting its team's pods that have an app
// label: two requirements that each match thousands of pods.
func BenchmarkCheckTeamAndAppExistsAntiAffinitySpread(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", func(i int, a *synth.App) {
		a.AntiAffinity, a.Spread = true, true
	}, selectTeamWithApp), feasibility.Fits)
}

// BenchmarkCheckTwoTermAffinity is a pod that fits, with required pod
// affinity of two terms by zone: its team's pods, thousands, and one app
// of its team. Only pods that match both count.
func BenchmarkCheckTwoTermAffinity(b *testing.B) {
	benchCheck(b, workloads(500, 1, "100", nil, func(t *v1.PodTemplateSpec) {
		term := func(sel map[string]string) v1.PodAffinityTerm {
			return v1.PodAffinityTerm{TopologyKey: v1.LabelTopologyZone, LabelSelector: &metav1.LabelSelector{MatchLabels: sel}}
		}
		t.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{
			term(map[string]string{"team": t.Labels["team"]}),
			term(map[string]string{"app": teamApps(t, 1)[0]}),
		}}}
	}), feasibility.Fits)
}

// selectTeamWithApp points a pod's anti-affinity and spread at the pods of
// its team that have an app label: all of them, in the synth cluster.
func selectTeamWithApp(t *v1.PodTemplateSpec) {
	setSelectors(t, &metav1.LabelSelector{
		MatchLabels: map[string]string{"team": t.Labels["team"]},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "app", Operator: metav1.LabelSelectorOpExists,
		}},
	}, nil)
}

// selectTeam points a pod's anti-affinity and spread at every pod of its
// team.
func selectTeam(t *v1.PodTemplateSpec) {
	setSelectors(t, &metav1.LabelSelector{MatchLabels: map[string]string{"team": t.Labels["team"]}}, nil)
}

// selectAppsIn points a pod's anti-affinity and spread at its own app and
// two apps of the synth cluster in its namespace.
func selectAppsIn(t *v1.PodTemplateSpec) {
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "app", Operator: metav1.LabelSelectorOpIn, Values: append([]string{t.Labels["app"]}, teamApps(t, 2)...),
	}}}
	setSelectors(t, sel, nil)
}

// selectNotInExists points a pod's anti-affinity at its team's pods but
// two apps, and its spread at the pods with an app label.
func selectNotInExists(t *v1.PodTemplateSpec) {
	anti := &metav1.LabelSelector{
		MatchLabels: map[string]string{"team": t.Labels["team"]},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: teamApps(t, 2),
		}},
	}
	spread := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "app", Operator: metav1.LabelSelectorOpExists,
	}}}
	setSelectors(t, anti, spread)
}

// teamApps names n apps the synth generator puts in the template's
// namespace (app i goes to namespace team-(i mod 20)).
func teamApps(t *v1.PodTemplateSpec, n int) []string {
	var ns int
	fmt.Sscanf(t.Labels["team"], "team-%d", &ns)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("app-%04d", ns+20*(i+1))
	}
	return out
}

// setSelectors sets the selector of a template's anti-affinity term and of
// its spread constraint (spread defaults to anti's).
func setSelectors(t *v1.PodTemplateSpec, anti, spread *metav1.LabelSelector) {
	if spread == nil {
		spread = anti
	}
	t.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector = anti
	t.Spec.TopologySpreadConstraints[0].LabelSelector = spread
}

// BenchmarkCacheUpdate binds and deletes a pod: what the webhook cache
// does on every pod event.
func BenchmarkCacheUpdate(b *testing.B) {
	for _, sc := range scales {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sc.nodes, sc.pods), func(b *testing.B) {
			c := cluster(b, sc.nodes, sc.pods)
			a := &synth.App{Namespace: "team-05", Name: "churn", CPUMilli: 100, MemMi: 128}
			pods := make([]*v1.Pod, 1000)
			for i := range pods {
				pods[i] = a.Pod(i, c.nodes[i%len(c.nodes)].Name)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pods[i%len(pods)]
				if err := c.snap.Upsert(p); err != nil {
					b.Fatal(err)
				}
				c.snap.DeletePod(p.Namespace, p.Name)
			}
		})
	}
}
