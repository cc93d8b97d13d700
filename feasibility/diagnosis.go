package feasibility

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// diagnosis explains why a pod fits on no node: the scheduler's histogram
// of first-failure reasons, whether any node could take it later, and the
// numbers for a hint.
type diagnosis struct {
	numNodes  int
	prefilter *prefilterFailure
	histogram map[string]int
	codes     map[Code]int
	// resolvableNodes failed only for reasons that can go away.
	resolvableNodes int
	daemon          bool
	// autoscalerRescued is set when an autoscaler could add a node that fits.
	autoscalerRescued bool

	resources map[v1.ResourceName]*resourceHint
	taints    map[string]int
	// foreignAnti: anti-affinity conflicts involve other namespaces' pods.
	foreignAnti bool
}

type resourceHint struct {
	requested    int64
	bestFree     int64
	bestFreeNode string
	maxAlloc     int64
	nodes        int
	unresolvable int
}

func (d *diagnosis) record(cs *checkState, ni *nodeInfo, f *nodeFailure, unresolvable bool) {
	for _, r := range f.reasons() {
		d.histogram[r]++
	}
	d.codes[f.code]++
	for i := range f.more {
		d.codes[f.more[i].code]++
	}
	if !unresolvable {
		d.resolvableNodes++
	}
	for _, x := range append([]nodeFailure{*f}, f.more...) {
		switch {
		case x.insufficient != nil && x.code != CodeHostPortConflict:
			d.noteResource(ni, x.insufficient, !x.resolvable)
		case x.code == CodeUntoleratedTaint:
			if t := cs.c.untoleratedTaint(ni.node); t != nil {
				if d.taints == nil {
					d.taints = map[string]int{}
				}
				d.taints[t.ToString()]++
			}
		case x.code == CodePodAntiAffinity || x.code == CodeExistingPodAntiAffnity:
			if cs.affinity.foreignAnti {
				d.foreignAnti = true
			}
		}
	}
}

func (d *diagnosis) resourceHint(name v1.ResourceName, requested int64) *resourceHint {
	if d.resources == nil {
		d.resources = map[v1.ResourceName]*resourceHint{}
	}
	h := d.resources[name]
	if h == nil {
		h = &resourceHint{requested: requested, bestFree: -1, maxAlloc: -1}
		d.resources[name] = h
	}
	return h
}

func (d *diagnosis) noteResource(ni *nodeInfo, in *insufficientResource, unresolvable bool) {
	h := d.resourceHint(in.name, in.requested)
	h.nodes++
	if unresolvable {
		h.unresolvable++
	}
	if free := in.capacity - in.used; free > h.bestFree {
		h.bestFree, h.bestFreeNode = free, ni.name
	}
	if in.capacity > h.maxAlloc {
		h.maxAlloc = in.capacity
	}
}

// severity classifies the failure: transient if some node could take the
// pod once capacity frees up (or an autoscaler adds a node), permanent if
// every node is ruled out for good.
func (d *diagnosis) severity(s *Snapshot, c *candidate, opts *Options) Severity {
	if p := d.prefilter; p != nil {
		if p.resolvable {
			return SeverityTransient
		}
		return SeverityPermanent
	}
	if d.numNodes == 0 || d.resolvableNodes > 0 {
		// A cluster with no nodes yet is waiting for them, not misconfigured.
		return SeverityTransient
	}
	if !d.daemon && opts != nil && opts.Autoscaler != nil && c.pod.Spec.NodeName == "" && c.nodeNames == nil {
		if d.autoscalerCouldFit(s, c, opts.Autoscaler) {
			d.autoscalerRescued = true
			return SeverityTransient
		}
	}
	return SeverityPermanent
}

// autoscalerCouldFit runs the filters against the largest node shape the
// autoscaler can add, empty of pods.
func (d *diagnosis) autoscalerCouldFit(s *Snapshot, c *candidate, a *AutoscalerOptions) bool {
	if a.MaxNode == nil {
		return true
	}
	n := a.MaxNode.DeepCopy()
	if n.Name == "" {
		n.Name = "autoscaler-template"
	}
	ni := &nodeInfo{name: n.Name, node: n, allocatable: resourcesFromList(n.Status.Allocatable)}
	if q, ok := n.Status.Allocatable[v1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	} else {
		ni.allowedPods = 110
	}
	cs := newCheckState(s, c)
	f, _ := cs.filterNode(ni, false)
	return f == nil
}

func (d *diagnosis) histogramText() string {
	if d.prefilter != nil {
		return d.prefilter.message + "."
	}
	return joinReasons(d.histogram) + "."
}

// summary is the scheduler's FailedScheduling sentence.
func (d *diagnosis) summary() string {
	if d.prefilter == nil && len(d.histogram) == 0 {
		return fmt.Sprintf("0/%d nodes are available.", d.numNodes)
	}
	return fmt.Sprintf("0/%d nodes are available: %s", d.numNodes, d.histogramText())
}

// reasons turns the diagnosis into structured reasons, most nodes first.
func (d *diagnosis) reasons(sev Severity) []Reason {
	if p := d.prefilter; p != nil {
		return []Reason{{Code: p.code, Severity: sev, Message: p.message, Field: p.field}}
	}
	if d.numNodes == 0 {
		return []Reason{{Code: CodeNoNodes, Severity: sev, Message: "the cluster has no nodes"}}
	}
	codes := make([]Code, 0, len(d.codes))
	for c := range d.codes {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if d.codes[codes[i]] != d.codes[codes[j]] {
			return d.codes[codes[i]] > d.codes[codes[j]]
		}
		return codes[i] < codes[j]
	})
	out := make([]Reason, 0, len(codes))
	for _, code := range codes {
		r := Reason{Code: code, Severity: sev,
			Message: fmt.Sprintf("%d of %d nodes: %s", d.codes[code], d.numNodes, codeText(code)),
			Details: map[string]string{"nodes": fmt.Sprint(d.codes[code]), "totalNodes": fmt.Sprint(d.numNodes)}}
		if name, ok := codeResource(code); ok {
			for rn, h := range d.resources {
				if rn == name || (name == "" && isScalarResource(rn)) {
					r.Message = fmt.Sprintf("%d of %d nodes: Insufficient %s", d.codes[code], d.numNodes, rn)
					r.Details["resource"] = string(rn)
					r.Details["requested"] = formatAmount(rn, h.requested)
					r.Details["largestFree"] = formatAmount(rn, h.bestFree)
					r.Details["largestAllocatable"] = formatAmount(rn, h.maxAlloc)
					break
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func codeResource(code Code) (v1.ResourceName, bool) {
	switch code {
	case CodeInsufficientCPU:
		return v1.ResourceCPU, true
	case CodeInsufficientMemory:
		return v1.ResourceMemory, true
	case CodeInsufficientEphemeral:
		return v1.ResourceEphemeralStorage, true
	case CodeTooManyPods:
		return v1.ResourcePods, true
	case CodeInsufficientResource:
		return "", true
	}
	return "", false
}

var codeTexts = map[Code]string{
	CodeNodeNameMismatch:       reasonNodeName,
	CodeNodeUnschedulable:      reasonUnschedulable,
	CodeUntoleratedTaint:       reasonTaints,
	CodeNodeAffinityMismatch:   reasonNodeAffinity,
	CodeHostPortConflict:       reasonNodePorts,
	CodeTooManyPods:            reasonTooManyPods,
	CodeReadWriteOncePodInUse:  reasonRWOPConflict,
	CodeVolumeNodeAffinity:     reasonVolumeNodeConflict,
	CodeVolumeBindConflict:     reasonVolumeBindConflict,
	CodeVolumeZoneConflict:     reasonVolumeZoneConflict,
	CodeTopologySpread:         reasonSpreadNotMatch,
	CodeTopologyLabelMissing:   reasonSpreadMissingLabel,
	CodePodAffinity:            reasonAffinityNotMatch,
	CodePodAntiAffinity:        reasonAntiAffinityNotMatch,
	CodeExistingPodAntiAffnity: reasonExistingAntiAffinity,
}

func codeText(c Code) string {
	if t, ok := codeTexts[c]; ok {
		return t
	}
	return string(c)
}

// hint is one actionable sentence about the most telling failure.
func (d *diagnosis) hint(c *candidate) string {
	if h, name := d.primaryResource(); h != nil {
		if name == v1.ResourcePods {
			return fmt.Sprintf("every candidate node is at its pod limit (largest is %d pods)", h.maxAlloc)
		}
		return fmt.Sprintf("requests %s; largest free node has %s (node %q); largest node allocatable is %s",
			withUnit(name, h.requested), withUnit(name, h.bestFree), h.bestFreeNode, withUnit(name, h.maxAlloc))
	}
	if len(d.taints) > 0 {
		return fmt.Sprintf("nodes carry taint %s, which the pod does not tolerate", mostCommon(d.taints))
	}
	switch {
	case d.codes[CodeNodeAffinityMismatch] > 0:
		if len(c.pod.Spec.NodeSelector) > 0 {
			return fmt.Sprintf("no node matches nodeSelector %s and the pod's required node affinity", formatSelector(c.pod.Spec.NodeSelector))
		}
		return "no node matches the pod's required node affinity"
	case d.codes[CodePodAntiAffinity] > 0 || d.codes[CodeExistingPodAntiAffnity] > 0:
		if d.foreignAnti {
			return "anti-affinity conflicts with pods in other namespaces"
		}
		return "anti-affinity conflicts with pods already running"
	case d.codes[CodeHostPortConflict] > 0:
		return fmt.Sprintf("host port(s) %s are taken on every node that could take the pod", formatPorts(c.ports))
	}
	return ""
}

// primaryResource picks the resource to speak of: cpu, then memory, then
// the rest in name order.
func (d *diagnosis) primaryResource() (*resourceHint, v1.ResourceName) {
	for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if h := d.resources[n]; h != nil {
			return h, n
		}
	}
	names := make([]string, 0, len(d.resources))
	for n := range d.resources {
		names = append(names, string(n))
	}
	sort.Strings(names)
	for _, n := range names {
		if n != string(v1.ResourcePods) {
			return d.resources[v1.ResourceName(n)], v1.ResourceName(n)
		}
	}
	if h := d.resources[v1.ResourcePods]; h != nil {
		return h, v1.ResourcePods
	}
	return nil, ""
}

func mostCommon(m map[string]int) string {
	best, n := "", -1
	for k, v := range m {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best
}

func formatSelector(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += k + "=" + sel[k]
	}
	return out
}

func formatPorts(ps []hostPort) string {
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += ", "
		}
		out += p.String()
	}
	return out
}

// withUnit renders an amount followed by the resource's name, "6 cpu",
// "512Mi memory", "2 example.com/gpu".
func withUnit(name v1.ResourceName, v int64) string {
	return formatAmount(name, v) + " " + string(name)
}

// formatAmount renders a resource amount the way a user writes it: cpu in
// cores or millicores, memory and storage in binary units.
func formatAmount(name v1.ResourceName, v int64) string {
	switch {
	case name == v1.ResourceCPU:
		return resource.NewMilliQuantity(v, resource.DecimalSI).String()
	case name == v1.ResourceMemory || name == v1.ResourceEphemeralStorage || hasPrefix(string(name), v1.ResourceHugePagesPrefix):
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return fmt.Sprint(v)
}
