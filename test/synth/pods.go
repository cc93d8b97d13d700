package synth

import (
	"fmt"
	"math/rand/v2"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type podGen struct {
	r         *rand.Rand
	cluster   *Cluster
	cfg       Config
	quotaUsed map[string]v1.ResourceList
}

// cpuSizes and memSizes are request sizes in millicores and MiB, small ones
// most common, as in real clusters.
var (
	cpuSizes = []int64{50, 100, 100, 250, 250, 500, 500, 1000, 2000}
	memSizes = []int64{64, 128, 256, 256, 512, 1024, 2048}
)

// App is a group of pods that share labels, as a Deployment's do.
type App struct {
	Namespace string
	Name      string
	CPUMilli  int64
	MemMi     int64
	HostPort  int32
	// AntiAffinity: one pod per node (hostname topology).
	AntiAffinity bool
	// Spread: zone spread with maxSkew 1.
	Spread bool
}

// Labels are the app's pod labels.
func (a *App) Labels() map[string]string {
	return map[string]string{"app": a.Name, "team": a.Namespace}
}

// PodTemplate returns the app's pod spec with labels.
func (a *App) PodTemplate() v1.PodTemplateSpec {
	c := v1.Container{Name: "app", Image: "registry.k8s.io/pause:3.10",
		Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(a.CPUMilli, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(a.MemMi<<20, resource.BinarySI),
		}}}
	if a.HostPort > 0 {
		c.Ports = []v1.ContainerPort{{ContainerPort: a.HostPort, HostPort: a.HostPort, Protocol: v1.ProtocolTCP}}
	}
	spec := v1.PodSpec{Containers: []v1.Container{c}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": a.Name}}
	if a.AntiAffinity {
		spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				TopologyKey: v1.LabelHostname, LabelSelector: sel,
			}},
		}}
	}
	if a.Spread {
		spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel,
		}}
	}
	return v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: a.Labels()}, Spec: spec}
}

// Pod returns replica i of the app, bound to node (or unbound if "").
func (a *App) Pod(i int, node string) *v1.Pod {
	t := a.PodTemplate()
	t.Spec.NodeName = node
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", a.Name, i), Namespace: a.Namespace, Labels: t.Labels},
		Spec:       t.Spec,
		Status:     v1.PodStatus{Phase: v1.PodRunning},
	}
}

func (g *podGen) newApp(i int) *App {
	ns := g.cluster.Namespaces[i%len(g.cluster.Namespaces)].Name
	a := &App{Namespace: ns, Name: fmt.Sprintf("app-%04d", i),
		CPUMilli: cpuSizes[g.r.IntN(len(cpuSizes))], MemMi: memSizes[g.r.IntN(len(memSizes))]}
	switch x := g.r.IntN(100); {
	case x < 3:
		a.HostPort = int32(9000 + g.r.IntN(50))
	case x < 10:
		a.AntiAffinity = true
	case x < 18:
		a.Spread = true
	}
	return a
}

// bindPods binds pods to nodes until cfg.Pods are placed, filling each node
// up to cfg.Fill of its cpu. Pods of an app go to distinct nodes, which
// keeps anti-affinity and host ports consistent.
func (g *podGen) bindPods() {
	nodes := g.cluster.Nodes
	if len(nodes) == 0 {
		return
	}
	g.quotaUsed = map[string]v1.ResourceList{}
	free := make([]int64, len(nodes))
	for i, n := range nodes {
		free[i] = int64(float64(n.Status.Allocatable.Cpu().MilliValue()) * g.cfg.Fill)
	}
	placed, next := 0, 0
	for app := 0; placed < g.cfg.Pods; app++ {
		a := g.newApp(app)
		replicas := 1 + g.r.IntN(10)
		for i := 0; i < replicas && placed < g.cfg.Pods; i++ {
			// Walk nodes round-robin from a moving start; skip full and tainted ones.
			bound := false
			for tries := 0; tries < len(nodes); tries++ {
				k := (next + tries) % len(nodes)
				if len(nodes[k].Spec.Taints) > 0 || free[k] < a.CPUMilli {
					continue
				}
				free[k] -= a.CPUMilli
				g.cluster.Pods = append(g.cluster.Pods, a.Pod(i, nodes[k].Name))
				g.addQuotaUse(a)
				next = k + 1
				bound = true
				break
			}
			if !bound {
				// The cluster is full: place the rest as small pods anywhere
				// untainted, so the pod count is still reached.
				a.CPUMilli = 0
				k := next % len(nodes)
				for len(nodes[k].Spec.Taints) > 0 {
					k = (k + 1) % len(nodes)
				}
				g.cluster.Pods = append(g.cluster.Pods, a.Pod(i, nodes[k].Name))
				next = k + 1
			}
			placed++
		}
	}
}

func (g *podGen) addQuotaUse(a *App) {
	u := g.quotaUsed[a.Namespace]
	if u == nil {
		u = v1.ResourceList{v1.ResourceRequestsCPU: resource.MustParse("0"), v1.ResourcePods: resource.MustParse("0")}
		g.quotaUsed[a.Namespace] = u
	}
	cpu := u[v1.ResourceRequestsCPU]
	cpu.Add(*resource.NewMilliQuantity(a.CPUMilli, resource.DecimalSI))
	u[v1.ResourceRequestsCPU] = cpu
	pods := u[v1.ResourcePods]
	pods.Add(resource.MustParse("1"))
	u[v1.ResourcePods] = pods
}
