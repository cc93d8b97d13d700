package feasibility

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// diagnosis explains why a pod fits on no node: the scheduler's histogram
// of first-failure reasons, whether any node could take it later, and the
// numbers for a hint.
type diagnosis struct {
	numNodes  int
	prefilter *prefilterFailure
	// histogram counts the nodes that failed for each reason. A handful of
	// reasons ever occur, so a list serves, in no particular order.
	histogram []reasonCount
	// resolvable is set once some node has failed only for reasons that
	// can go away: the verdict asks no more than that, so once it is set
	// the nodes after need only their first failure (diagnose).
	resolvable bool
	daemon     bool
	// autoscalerRescued is set when an autoscaler could add a node that fits.
	autoscalerRescued bool

	resources map[v1.ResourceName]*resourceHint
	// taints counts nodes by the taint the pod does not tolerate there.
	taints []taintCount
	// foreignAnti: anti-affinity conflicts involve other namespaces' pods.
	foreignAnti bool
}

// reasonCount is how many nodes failed for one scheduler reason, and the
// code that stands for it.
type reasonCount struct {
	code   Code
	reason string
	nodes  int
}

// taintCount is how many nodes carry one untolerated taint. The taint is
// one of those nodes' own, rendered only if a hint speaks of it.
type taintCount struct {
	taint *v1.Taint
	nodes int
}

type resourceHint struct {
	requested    int64
	bestFree     int64
	bestFreeNode string
	maxAlloc     int64
	nodes        int
	unresolvable int
	// amounts holds requested, bestFree and maxAlloc as formatAmount
	// renders them (never ""), once rendered: the reasons and the hint
	// both say them.
	amounts [3]string
}

// count adds nodes that failed for reason, which code stands for.
func (d *diagnosis) count(code Code, reason string, nodes int) {
	for i := range d.histogram {
		if h := &d.histogram[i]; h.reason == reason && h.code == code {
			h.nodes += nodes
			return
		}
	}
	if d.histogram == nil {
		d.histogram = make([]reasonCount, 0, 4) // room for the usual few
	}
	d.histogram = append(d.histogram, reasonCount{code: code, reason: reason, nodes: nodes})
}

// codeNodes is how many nodes failed with code, for any of its reasons.
func (d *diagnosis) codeNodes(code Code) int {
	n := 0
	for _, h := range d.histogram {
		if h.code == code {
			n += h.nodes
		}
	}
	return n
}

// noteTaint counts nodes carrying an untolerated taint.
func (d *diagnosis) noteTaint(t *v1.Taint, nodes int) {
	for i := range d.taints {
		if x := d.taints[i].taint; x.Key == t.Key && x.Value == t.Value && x.Effect == t.Effect {
			d.taints[i].nodes += nodes
			return
		}
	}
	d.taints = append(d.taints, taintCount{taint: t, nodes: nodes})
}

func (d *diagnosis) record(cs *checkState, ni *nodeInfo, f *nodeFailure, unresolvable bool) {
	if !unresolvable {
		d.resolvable = true
	}
	d.recordOne(cs, ni, f)
	for i := range f.more {
		d.recordOne(cs, ni, &f.more[i])
	}
}

// recordOne records one reason of a node's failure.
func (d *diagnosis) recordOne(cs *checkState, ni *nodeInfo, x *nodeFailure) {
	d.count(x.code, x.reason, 1)
	switch {
	case x.insufficient.name != "" && x.code != CodeHostPortConflict:
		d.noteResource(ni, &x.insufficient, !x.resolvable)
	case x.code == CodeUntoleratedTaint:
		if t := cs.c.untoleratedTaint(ni.node); t != nil {
			d.noteTaint(t, 1)
		}
	case x.code == CodePodAntiAffinity || x.code == CodeExistingPodAntiAffnity:
		if cs.affinity.foreignAnti {
			d.foreignAnti = true
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
	h.noteFree(in.capacity-in.used, ni.name)
	if in.capacity > h.maxAlloc {
		h.maxAlloc = in.capacity
	}
}

// noteFree keeps the most free a failing node has, and of the nodes that
// have that much, the first by name, whatever order nodes are noted in.
func (h *resourceHint) noteFree(free int64, node string) {
	if free > h.bestFree || (free == h.bestFree && h.bestFreeNode != "" && node < h.bestFreeNode) {
		h.bestFree, h.bestFreeNode = free, node
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
	if d.numNodes == 0 || d.resolvable {
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
	f, _ := cs.filterNode(ni, modeFeasible)
	return f == nil
}

func (d *diagnosis) histogramText() string {
	return string(d.appendHistogramText(nil))
}

// appendHistogramText appends the scheduler's rendering of the histogram:
// "N reason" for each reason, sorted as strings, joined by ", ", and a
// final "."; or the PreFilter message. The entries are rendered into a
// scratch buffer and sorted there, so that a check's summary is one
// allocation.
func (d *diagnosis) appendHistogramText(b []byte) []byte {
	if d.prefilter != nil {
		return append(append(b, d.prefilter.message...), '.')
	}
	type span struct{ from, to int }
	var scratchBuf [256]byte
	var spansBuf [8]span
	scratch, spans := scratchBuf[:0], spansBuf[:0]
	for i, h := range d.histogram {
		// A reason is counted under one code, but were it under two, the
		// scheduler's histogram would still hold it once.
		if slices.ContainsFunc(d.histogram[:i], func(e reasonCount) bool { return e.reason == h.reason }) {
			continue
		}
		n := 0
		for _, e := range d.histogram[i:] {
			if e.reason == h.reason {
				n += e.nodes
			}
		}
		from := len(scratch)
		scratch = strconv.AppendInt(scratch, int64(n), 10)
		scratch = append(append(scratch, ' '), h.reason...)
		spans = append(spans, span{from, len(scratch)})
	}
	slices.SortFunc(spans, func(x, y span) int {
		return bytes.Compare(scratch[x.from:x.to], scratch[y.from:y.to])
	})
	for i, sp := range spans {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, scratch[sp.from:sp.to]...)
	}
	return append(b, '.')
}

// summary is the scheduler's FailedScheduling sentence.
func (d *diagnosis) summary() string {
	b := make([]byte, 0, 256)
	b = append(b, "0/"...)
	b = strconv.AppendInt(b, int64(d.numNodes), 10)
	if d.prefilter == nil && len(d.histogram) == 0 {
		return string(append(b, " nodes are available."...))
	}
	b = append(b, " nodes are available: "...)
	return string(d.appendHistogramText(b))
}

// appendReasons appends the diagnosis as structured reasons, most nodes
// first.
func (d *diagnosis) appendReasons(out []Reason, sev Severity) []Reason {
	if p := d.prefilter; p != nil {
		return append(out, Reason{Code: p.code, Severity: sev, Message: p.message, Field: p.field})
	}
	if d.numNodes == 0 {
		return append(out, Reason{Code: CodeNoNodes, Severity: sev, Message: "the cluster has no nodes"})
	}
	type codeCount struct {
		code  Code
		nodes int
	}
	var codesBuf [8]codeCount
	codes := codesBuf[:0]
	for _, h := range d.histogram {
		if i := slices.IndexFunc(codes, func(c codeCount) bool { return c.code == h.code }); i >= 0 {
			codes[i].nodes += h.nodes
		} else {
			codes = append(codes, codeCount{h.code, h.nodes})
		}
	}
	slices.SortFunc(codes, func(a, b codeCount) int {
		if a.nodes != b.nodes {
			return cmp.Compare(b.nodes, a.nodes)
		}
		return cmp.Compare(a.code, b.code)
	})
	total := strconv.Itoa(d.numNodes)
	out = slices.Grow(out, len(codes))
	for _, cc := range codes {
		nodes := strconv.Itoa(cc.nodes)
		// The message ends in text and then resource, which only a
		// resource's shortage names.
		text, resource := codeText(cc.code), v1.ResourceName("")
		r := Reason{Code: cc.code, Severity: sev, Details: map[string]string{"nodes": nodes, "totalNodes": total}}
		if name, ok := codeResource(cc.code); ok {
			if name == "" {
				// Of several extended resources short, the first by name,
				// so that the message is the same every time.
				for rn := range d.resources {
					if isScalarResource(rn) && (name == "" || rn < name) {
						name = rn
					}
				}
			}
			if h, ok := d.resources[name]; ok && name != "" {
				text, resource = "Insufficient ", name
				a := h.formatted(name)
				r.Details["resource"] = string(name)
				r.Details["requested"] = a[0]
				r.Details["largestFree"] = a[1]
				r.Details["largestAllocatable"] = a[2]
			}
		}
		r.Message = nodes + " of " + total + " nodes: " + text + string(resource)
		out = append(out, r)
	}
	return out
}

// formatted returns requested, bestFree and maxAlloc as formatAmount
// renders them for resource name.
func (h *resourceHint) formatted(name v1.ResourceName) *[3]string {
	if h.amounts[0] == "" {
		h.amounts = [3]string{formatAmount(name, h.requested), formatAmount(name, h.bestFree), formatAmount(name, h.maxAlloc)}
	}
	return &h.amounts
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
		// "requests 6 cpu; largest free node has 3500m cpu (node "a");
		// largest node allocatable is 8 cpu", in one allocation.
		a := h.formatted(name)
		b := make([]byte, 0, 160)
		b = appendWithUnit(append(b, "requests "...), a[0], name)
		b = appendWithUnit(append(b, "; largest free node has "...), a[1], name)
		b = strconv.AppendQuote(append(b, " (node "...), h.bestFreeNode)
		b = appendWithUnit(append(b, "); largest node allocatable is "...), a[2], name)
		return string(b)
	}
	if len(d.taints) > 0 {
		byText := make(map[string]int, len(d.taints))
		for _, t := range d.taints {
			byText[t.taint.ToString()] += t.nodes
		}
		return fmt.Sprintf("nodes carry taint %s, which the pod does not tolerate", mostCommon(byText))
	}
	switch {
	case d.codeNodes(CodeNodeAffinityMismatch) > 0:
		if len(c.pod.Spec.NodeSelector) > 0 {
			return fmt.Sprintf("no node matches nodeSelector %s and the pod's required node affinity", formatSelector(c.pod.Spec.NodeSelector))
		}
		return "no node matches the pod's required node affinity"
	case d.codeNodes(CodePodAntiAffinity) > 0 || d.codeNodes(CodeExistingPodAntiAffnity) > 0:
		if d.foreignAnti {
			return "anti-affinity conflicts with pods in other namespaces"
		}
		return "anti-affinity conflicts with pods already running"
	case d.codeNodes(CodeHostPortConflict) > 0:
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

// appendWithUnit appends an amount rendered by formatAmount followed by
// the resource's name, "6 cpu", "512Mi memory", "2 example.com/gpu".
func appendWithUnit(b []byte, amount string, name v1.ResourceName) []byte {
	return append(append(append(b, amount...), ' '), name...)
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
