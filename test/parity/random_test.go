package parity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/controlplane"
)

// TestRandomAgreesWithRealScheduler generates seeded random clusters and
// pods, predicts each pod with the engine, creates it on the real control
// plane, and compares. Pods are created one at a time and the scheduler's
// actual placements are fed back into the engine's snapshot, so every
// prediction is made against exactly the state the scheduler saw.
//
// A pod the engine says does not fit but the scheduler binds is a false
// denial: the test fails on any. A pod the engine says fits but the
// scheduler leaves pending fails the test too. FITGATE_RANDOM_CLUSTERS and
// FITGATE_RANDOM_PODS scale the run (default 12 clusters x 25 pods).
func TestRandomAgreesWithRealScheduler(t *testing.T) {
	clusters, pods := envInt("FITGATE_RANDOM_CLUSTERS", 12), envInt("FITGATE_RANDOM_PODS", 25)
	var total, agree, falseDeny, falseFit, boundCount int
	for seed := 1; seed <= clusters; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			g := &randomGen{r: rand.New(rand.NewPCG(uint64(seed), 42)), prefix: fmt.Sprintf("r%02d", seed)}
			s, cleanup, err := g.setUp(ctx, rp)
			defer cleanup()
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < pods; i++ {
				pod := g.pod(i)
				w, err := feasibility.WorkloadFromObject(pod)
				if err != nil {
					t.Fatal(err)
				}
				rep := feasibility.Check(s, w, nil)
				bound, msg, err := g.create(ctx, rp.c, pod)
				if err != nil {
					t.Fatal(err)
				}
				total++
				fits := rep.Verdict == feasibility.Fits
				switch {
				case fits == (bound != nil):
					agree++
				case bound != nil:
					falseDeny++
					t.Errorf("FALSE DENIAL: pod %d: engine %s (%s), scheduler bound it to %s\npod: %s", i, rep.Verdict, rep.Summary, bound.Spec.NodeName, describe(pod))
				default:
					falseFit++
					t.Errorf("pod %d: engine says fits, scheduler: %q\npod: %s", i, msg, describe(pod))
				}
				if bound != nil {
					boundCount++
					if err := s.Upsert(bound); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
	t.Logf("randomized parity: %d/%d pods agree (%.1f%%); %d bound, %d unschedulable; false denials %d, false fits %d",
		agree, total, 100*float64(agree)/float64(max(total, 1)), boundCount, total-boundCount, falseDeny, falseFit)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type randomGen struct {
	r      *rand.Rand
	prefix string
	ns     string
	nodes  []string
}

var zones = []string{"zone-a", "zone-b", "zone-c"}

// setUp creates 2-5 random nodes and a namespace, and returns the engine's
// snapshot of them, built from the objects as the apiserver stored them.
func (g *randomGen) setUp(ctx context.Context, rp *replayer) (*feasibility.Snapshot, func(), error) {
	g.ns = g.prefix + "-ns"
	var created []string
	cleanup := func() {
		bg := context.Background()
		_ = rp.c.Delete(bg, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: g.ns}})
		_ = rp.c.DeleteAllOf(bg, &v1.Pod{}, client.InNamespace(g.ns), client.GracePeriodSeconds(0))
		for _, n := range created {
			_ = rp.c.Delete(bg, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
	}
	s := feasibility.NewSnapshot()
	s.MarkKnown(feasibility.AllKinds...)
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: g.ns}}
	if err := rp.c.Create(ctx, ns); err != nil {
		return nil, cleanup, err
	}
	if err := rp.cp.WaitForDefaultServiceAccount(ctx, g.ns); err != nil {
		return nil, cleanup, err
	}
	for _, o := range []client.Object{ns,
		&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "default"}},
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "kube-root-ca.crt"}}} {
		if err := s.Upsert(o); err != nil {
			return nil, cleanup, err
		}
	}
	for i, n := 0, 2+g.r.IntN(4); i < n; i++ {
		spec := controlplane.NodeSpec{
			Name:   fmt.Sprintf("%s-n%d", g.prefix, i),
			CPU:    []string{"1", "2", "4"}[g.r.IntN(3)],
			Memory: []string{"2Gi", "4Gi", "8Gi"}[g.r.IntN(3)],
			Pods:   []int{3, 8, 110}[g.r.IntN(3)],
			Labels: map[string]string{"pool": []string{"web", "batch"}[g.r.IntN(2)]},
		}
		if g.r.IntN(4) > 0 {
			spec.Labels[v1.LabelTopologyZone] = zones[g.r.IntN(len(zones))]
		}
		if g.r.IntN(5) == 0 {
			spec.Taints = []v1.Taint{{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoSchedule}}
		}
		spec.Unschedulable = g.r.IntN(8) == 0
		node, err := rp.cp.CreateNode(ctx, spec)
		if err != nil {
			return nil, cleanup, err
		}
		created = append(created, node.Name)
		g.nodes = append(g.nodes, node.Name)
		if err := s.Upsert(node); err != nil {
			return nil, cleanup, err
		}
	}
	return s, cleanup, rp.barrier(ctx)
}

// pod returns the i-th random pod: random requests, and sometimes a node
// selector, a toleration, a host port, anti-affinity, affinity or spread.
func (g *randomGen) pod(i int) *v1.Pod {
	app := []string{"a", "b", "c"}[g.r.IntN(3)]
	c := v1.Container{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
		Requests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(int64(100*(1+g.r.IntN(20))), resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(int64(128*(1+g.r.IntN(24)))<<20, resource.BinarySI),
		}}}
	if g.r.IntN(6) == 0 {
		c.Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: int32(8080 + g.r.IntN(2))}}
	}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%03d", i), Namespace: g.ns,
		Labels: map[string]string{"app": app}}, Spec: v1.PodSpec{Containers: []v1.Container{c}}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	switch g.r.IntN(10) {
	case 0:
		p.Spec.NodeSelector = map[string]string{"pool": "batch"}
	case 1:
		p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists}}
	case 2:
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: v1.LabelHostname, LabelSelector: sel}}}}
	case 3:
		p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: v1.LabelTopologyZone, LabelSelector: sel}}}}
	case 4:
		p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelTopologyZone,
			WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel}}
	}
	return p
}

// create creates the pod and returns it once bound, or nil with the
// scheduler's message once it is reported unschedulable. An unschedulable
// pod is deleted, so it cannot be placed later behind the engine's back.
func (g *randomGen) create(ctx context.Context, c client.Client, p *v1.Pod) (*v1.Pod, string, error) {
	if err := c.Create(ctx, p.DeepCopy()); err != nil {
		return nil, "", fmt.Errorf("creating %s: %w", p.Name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var got v1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return nil, "", err
		}
		if got.Spec.NodeName != "" {
			return &got, "", nil
		}
		if cond := scheduledCondition(&got); cond != nil && cond.Status == v1.ConditionFalse {
			_ = c.Delete(ctx, &got, client.GracePeriodSeconds(0))
			return nil, cond.Message, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, "", fmt.Errorf("pod %s was neither bound nor reported unschedulable in 30s", p.Name)
}

func describe(p *v1.Pod) string {
	return fmt.Sprintf("requests %v, nodeSelector %v, tolerations %d, ports %v, affinity %v, spread %d",
		p.Spec.Containers[0].Resources.Requests, p.Spec.NodeSelector, len(p.Spec.Tolerations),
		p.Spec.Containers[0].Ports, p.Spec.Affinity != nil, len(p.Spec.TopologySpreadConstraints))
}
