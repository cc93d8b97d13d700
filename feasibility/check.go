package feasibility

import "fmt"

// Check judges whether w's pods can run on the cluster s describes. It only
// reads s, so checks may run concurrently as long as nothing mutates s.
func Check(s *Snapshot, w *Workload, opts *Options) *Report {
	r := &Report{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Replicas: w.Replicas}
	pod, reasons := preparePod(s, w)
	addControllerLabels(w.Kind, pod)
	if len(pod.Spec.SchedulingGates) > 0 {
		r.Gated = true
		reasons = append(reasons, Reason{Code: CodeSchedulingGated, Severity: SeverityInfo,
			Field:   w.SpecPath + ".schedulingGates",
			Message: fmt.Sprintf("pod has %d scheduling gate(s); the scheduler waits until they are removed", len(pod.Spec.SchedulingGates))})
	}
	reasons = append(reasons, checkReferences(s, w, pod, opts)...)
	reasons = append(reasons, checkLimitRanges(s, pod, w.SpecPath)...)

	c := newCandidate(s, pod)
	c.volumes.addClaimTemplates(s, w)
	var res schedResult
	if w.IsDaemonSet() {
		res = checkDaemonSet(s, c)
		r.Replicas = res.wanted
	} else {
		res = simulate(s, c, w.Replicas)
	}
	admitted, quotaReasons := checkQuotas(s, pod, r.Replicas, w.SpecPath)
	reasons = append(reasons, quotaReasons...)

	r.ReplicasFit = res.fit
	r.Placed = res.fit
	if admitted < r.ReplicasFit {
		r.ReplicasFit = admitted
	}
	if blocksEveryPod(reasons) {
		r.ReplicasFit = 0
	}
	if res.diag != nil {
		sev := res.diag.severity(s, c, opts)
		if w.IsDaemonSet() {
			r.Summary = fmt.Sprintf("%d/%d target nodes can run the pod: %s", res.fit, res.wanted, res.diag.histogramText())
		} else {
			r.Summary = res.diag.summary()
			if res.fit > 0 {
				r.Summary = fmt.Sprintf("only %d of %d replicas fit now: %s", res.fit, res.wanted, r.Summary)
			}
		}
		r.Hint = res.diag.hint(c)
		reasons = res.diag.appendReasons(reasons, sev)
		if sev == SeverityTransient && opts != nil && opts.Autoscaler != nil && res.diag.autoscalerRescued {
			reasons = append(reasons, Reason{Code: CodeAutoscalerWouldHelp, Severity: SeverityInfo,
				Message: "the cluster autoscaler can add a node that fits the pod"})
		}
	}
	r.Reasons = reasons
	r.Verdict = VerdictOf(r)
	if r.Reasons == nil {
		r.Reasons = []Reason{}
	}
	return r
}

// VerdictOf is the verdict a report's reasons and replica counts imply: the
// worst severity among the reasons; transient when replicas fall short and
// no reason says why (a quota admits fewer). Callers that drop or soften
// findings (the webhook, after confirming references live) recompute it.
func VerdictOf(r *Report) Verdict {
	switch WorstSeverity(r.Reasons) {
	case SeverityPermanent:
		return Permanent
	case SeverityTransient:
		return Transient
	}
	if r.ReplicasFit < r.Replicas {
		return Transient
	}
	return Fits
}

// WorstSeverity returns the worst severity among reasons, info when none is
// transient or permanent.
func WorstSeverity(reasons []Reason) Severity {
	sev := SeverityInfo
	for _, r := range reasons {
		switch r.Severity {
		case SeverityPermanent:
			return r.Severity
		case SeverityTransient:
			sev = r.Severity
		}
	}
	return sev
}

// schedResult is how many of the wanted pods the simulation placed, and
// why the first one that could not be placed failed.
type schedResult struct {
	wanted, fit int32
	diag        *diagnosis
}

// classesOff turns the class shortcut off, so tests can compare it with
// the node-by-node path it stands for.
var classesOff = false

// simulate places replicas one after another, each consuming capacity and
// counting for spread and anti-affinity, as the scheduler would.
func simulate(s *Snapshot, c *candidate, replicas int32) schedResult {
	res := schedResult{wanted: replicas}
	if replicas <= 0 {
		return res
	}
	cs := newCheckState(s, c)
	if d := cs.prefilter(); d != nil {
		res.diag = d
		return res
	}
	nodes := s.sortedNodes()
	if !classesOff && cs.byClass() {
		ni := cs.fitByClass()
		if ni == nil {
			res.diag = cs.diagnoseByClass(len(nodes))
			return res
		}
		if replicas == 1 {
			// Any feasible node will do for a single pod, and nothing
			// reads where it went.
			res.fit = 1
			return res
		}
	}
	if c.independentReplicas() {
		res.fit = cs.placeIndependent(nodes, replicas)
		if res.fit < replicas {
			res.diag = cs.diagnose(nodes)
		}
		return res
	}
	for res.fit < replicas {
		best := cs.pickNode(nodes, replicas-res.fit == 1)
		if best == nil {
			res.diag = cs.diagnose(nodes)
			return res
		}
		res.fit++
		if res.fit < replicas {
			cs.place(best) // the last replica's placement would go unread
		}
	}
	return res
}

// independentReplicas reports whether one replica's placement can only
// change what its own node has left: no host ports, spread, pod
// (anti-)affinity or ReadWriteOncePod claims tie replicas together.
func (c *candidate) independentReplicas() bool {
	return len(c.ports) == 0 && len(c.spread) == 0 && len(c.affinity) == 0 && len(c.antiAffinity) == 0 &&
		(c.volumes == nil || len(c.volumes.rwop) == 0)
}

// placeIndependent places up to replicas independent replicas in one pass:
// each node that passes the filters takes as many as its free resources
// and pod slots allow, whatever order the scheduler would pick.
func (cs *checkState) placeIndependent(nodes []*nodeInfo, replicas int32) int32 {
	var fit int32
	for _, ni := range nodes {
		if cs.classRulesOut(ni) {
			continue
		}
		if f, _ := cs.filterNode(ni, modeFeasible); f != nil {
			continue
		}
		k := cs.capacity(ni)
		if rest := int64(replicas - fit); k > rest {
			k = rest
		}
		for i := int64(0); i < k; i++ {
			cs.place(ni)
		}
		fit += int32(k)
		if fit >= replicas {
			break
		}
	}
	return fit
}

// capacity is how many more copies of the candidate fit on ni's free
// resources and pod slots. Called only when one copy fits.
func (cs *checkState) capacity(ni *nodeInfo) int64 {
	used := ni.requested
	pods := ni.podCount
	if pl := cs.placed[ni]; pl != nil {
		used = addResources(used, pl.requests)
		pods += pl.pods
	}
	k := ni.allowedPods - pods
	limit := func(want, free int64) {
		if want > 0 {
			if n := free / want; n < k {
				k = n
			}
		}
	}
	req := &cs.c.requests
	limit(req.MilliCPU, ni.allocatable.MilliCPU-used.MilliCPU)
	limit(req.Memory, ni.allocatable.Memory-used.Memory)
	limit(req.Ephemeral, ni.allocatable.Ephemeral-used.Ephemeral)
	for name, want := range req.Scalar {
		limit(want, ni.allocatable.Scalar[name]-used.Scalar[name])
	}
	if k < 1 {
		k = 1 // the filters just passed, so at least one fits
	}
	return k
}

// pickNode returns the node the next replica would go to, or nil. Among
// feasible nodes it prefers, like the scheduler's default scoring, the
// emptiest topology domain for hard spread constraints, then the least
// allocated node.
func (cs *checkState) pickNode(nodes []*nodeInfo, last bool) *nodeInfo {
	var best *nodeInfo
	var bestSpread int
	var bestFree float64
	for _, ni := range nodes {
		if cs.classRulesOut(ni) {
			continue
		}
		if f, _ := cs.filterNode(ni, modeFeasible); f != nil {
			continue
		}
		sp := cs.spreadScore(ni)
		free := cs.freeFraction(ni)
		if best == nil || sp < bestSpread || (sp == bestSpread && free > bestFree) {
			best, bestSpread, bestFree = ni, sp, free
		}
		if last || len(cs.c.spread) == 0 && cs.c.requests.isZero() {
			break // nothing to prefer: any feasible node will do
		}
	}
	return best
}

func (cs *checkState) spreadScore(ni *nodeInfo) int {
	if cs.spread == nil {
		return 0
	}
	total := 0
	for i := range cs.c.spread {
		total += cs.spread.counts[i][ni.node.Labels[cs.c.spread[i].topologyKey]]
	}
	return total
}

// freeFraction is the mean share of cpu and memory left on ni.
func (cs *checkState) freeFraction(ni *nodeInfo) float64 {
	used := ni.requested
	if pl := cs.placed[ni]; pl != nil {
		used = addResources(used, pl.requests)
	}
	frac := func(u, a int64) float64 {
		if a <= 0 {
			return 0
		}
		return float64(a-u) / float64(a)
	}
	return (frac(used.MilliCPU, ni.allocatable.MilliCPU) + frac(used.Memory, ni.allocatable.Memory)) / 2
}

// prefilter returns a diagnosis when the pod fails before any node is
// looked at.
func (cs *checkState) prefilter() *diagnosis {
	if p := cs.c.prefilterFailure(cs.s); p != nil {
		return &diagnosis{numNodes: len(cs.s.sortedNodes()), prefilter: p}
	}
	if vn := cs.c.volumes; vn != nil && vn.prefilter != nil {
		return &diagnosis{numNodes: len(cs.s.sortedNodes()), prefilter: vn.prefilter}
	}
	return nil
}

// diagnose runs the filters on every node for a pod that fits nowhere, to
// build the scheduler's histogram and to tell transient from permanent.
// Classes that decide their members' diagnosis are counted whole; the
// other nodes are filtered one by one, classifying until one node proves
// resolvable and then only for the first failure, which is all the
// histogram counts.
func (cs *checkState) diagnose(nodes []*nodeInfo) *diagnosis {
	d := &diagnosis{numNodes: len(nodes)}
	settled, n := cs.settleClasses(d)
	if n == len(nodes) {
		return d
	}
	for _, ni := range nodes {
		if settled != nil && ni.class != nil && settled[ni.class.id] {
			continue
		}
		f, unresolvable := cs.filterNode(ni, cs.diagnoseMode(d))
		if f == nil {
			continue // cannot happen after pickNode found none; be safe
		}
		d.record(cs, ni, f, unresolvable)
	}
	return d
}

// diagnoseMode is how much of a node's failure d still needs.
func (cs *checkState) diagnoseMode(d *diagnosis) filterMode {
	if d.resolvable && !classesOff {
		return modeFirst
	}
	return modeClassify
}

// checkDaemonSet judges a DaemonSet pod on each node it targets, as the
// DaemonSet controller pins one pod per eligible node.
func checkDaemonSet(s *Snapshot, c *candidate) schedResult {
	addDaemonSetTolerations(c.pod)
	var res schedResult
	cs := newCheckState(s, c)
	pre := cs.prefilter()
	d := &diagnosis{daemon: true}
	for _, ni := range s.sortedNodes() {
		if !c.daemonTargets(ni.node) {
			continue
		}
		res.wanted++
		d.numNodes++
		if pre != nil {
			continue
		}
		f, unresolvable := cs.filterNode(ni, cs.diagnoseMode(d))
		if f == nil {
			res.fit++
			continue
		}
		d.record(cs, ni, f, unresolvable)
	}
	if pre != nil && res.wanted > 0 {
		pre.numNodes = int(res.wanted)
		res.diag = pre
	} else if res.fit < res.wanted {
		res.diag = d
	}
	return res
}
