package synth

import (
	"fmt"
	"math/rand/v2"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Pool is a group of identical nodes.
type Pool struct {
	Name   string
	CPU    string
	Memory string
	// Extended resources, e.g. example.com/gpu.
	Extended map[string]string
	Taints   []v1.Taint
	// Weight is the pool's share of nodes.
	Weight int
}

// DefaultPools are four shapes seen in real clusters: general purpose,
// compute- and memory-heavy, and a tainted GPU pool.
var DefaultPools = []Pool{
	{Name: "general", CPU: "8", Memory: "32Gi", Weight: 6},
	{Name: "compute", CPU: "32", Memory: "64Gi", Weight: 2},
	{Name: "memory", CPU: "16", Memory: "128Gi", Weight: 1},
	{Name: "gpu", CPU: "16", Memory: "64Gi", Extended: map[string]string{"example.com/gpu": "4"}, Weight: 1,
		Taints: []v1.Taint{{Key: "example.com/gpu", Value: "present", Effect: v1.TaintEffectNoSchedule}}},
}

// Config describes a synthetic cluster.
type Config struct {
	Seed  uint64
	Nodes int
	Pods  int
	// Namespaces the pods spread over; quotas go in the first few.
	Namespaces int
	Zones      int
	Pools      []Pool
	// Fill is the target share of allocatable cpu that bound pods request.
	Fill float64
}

// Cluster is the generated state.
type Cluster struct {
	Nodes      []*v1.Node
	Pods       []*v1.Pod
	Namespaces []*v1.Namespace
	Quotas     []*v1.ResourceQuota
}

// Objects returns every object, nodes first.
func (c *Cluster) Objects() []runtime.Object {
	out := make([]runtime.Object, 0, len(c.Nodes)+len(c.Pods)+len(c.Namespaces)+len(c.Quotas))
	for _, n := range c.Namespaces {
		out = append(out, n)
	}
	for _, n := range c.Nodes {
		out = append(out, n)
	}
	for _, q := range c.Quotas {
		out = append(out, q)
	}
	for _, p := range c.Pods {
		out = append(out, p)
	}
	return out
}

// Generate builds a cluster. The same Config always gives the same cluster.
func Generate(cfg Config) *Cluster {
	if cfg.Zones == 0 {
		cfg.Zones = 3
	}
	if cfg.Namespaces == 0 {
		cfg.Namespaces = 20
	}
	if cfg.Pools == nil {
		cfg.Pools = DefaultPools
	}
	if cfg.Fill == 0 {
		cfg.Fill = 0.6
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	c := &Cluster{}
	for i := 0; i < cfg.Namespaces; i++ {
		name := fmt.Sprintf("team-%02d", i)
		c.Namespaces = append(c.Namespaces, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{v1.LabelMetadataName: name, "tier": []string{"prod", "dev"}[i%2]}}})
	}
	total := 0
	for _, p := range cfg.Pools {
		total += p.Weight
	}
	for i := 0; i < cfg.Nodes; i++ {
		pool := pickPool(cfg.Pools, total, i)
		c.Nodes = append(c.Nodes, MakeNode(fmt.Sprintf("node-%05d", i), pool, fmt.Sprintf("zone-%c", 'a'+i%cfg.Zones)))
	}
	g := &podGen{r: r, cluster: c, cfg: cfg}
	g.bindPods()
	for i := 0; i < 3 && i < len(c.Namespaces); i++ {
		ns := c.Namespaces[i].Name
		c.Quotas = append(c.Quotas, &v1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "compute", Namespace: ns},
			Spec:       v1.ResourceQuotaSpec{Hard: v1.ResourceList{v1.ResourceRequestsCPU: resource.MustParse("2000"), v1.ResourcePods: resource.MustParse("20000")}},
			Status: v1.ResourceQuotaStatus{
				Hard: v1.ResourceList{v1.ResourceRequestsCPU: resource.MustParse("2000"), v1.ResourcePods: resource.MustParse("20000")},
				Used: g.quotaUsed[ns],
			},
		})
	}
	return c
}

// pickPool deals pools round-robin by weight, so every pool is present
// even in small clusters.
func pickPool(pools []Pool, total, i int) Pool {
	k := i % total
	for _, p := range pools {
		if k < p.Weight {
			return p
		}
		k -= p.Weight
	}
	return pools[0]
}

// MakeNode returns a ready node of a pool's shape in a zone.
func MakeNode(name string, p Pool, zone string) *v1.Node {
	alloc := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse(p.CPU),
		v1.ResourceMemory:           resource.MustParse(p.Memory),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	for k, v := range p.Extended {
		alloc[v1.ResourceName(k)] = resource.MustParse(v)
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1.LabelHostname: name, v1.LabelTopologyZone: zone, "node.kubernetes.io/pool": p.Name,
			v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64",
		}},
		Spec:   v1.NodeSpec{Taints: append([]v1.Taint(nil), p.Taints...)},
		Status: v1.NodeStatus{Capacity: alloc, Allocatable: alloc.DeepCopy()},
	}
}
