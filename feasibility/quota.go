package feasibility

// This file mirrors ResourceQuota admission for pod creation (apiserver
// pkg/admission/plugin/resourcequota/controller.go with the pod evaluator of
// pkg/quota/v1/evaluator/core/pods.go): which quotas match a pod, by tracked
// resource and by scope; the cpu and memory fields a matching quota makes
// every container set; and how many copies of the pod fit in what each quota
// has left.
//
// Left out: the admission configuration's limitedResources and matchScopes
// (not visible from the cluster), quotas on the other objects a workload
// makes (a StatefulSet's claims, count/* of other kinds), DRA claims, and the
// rejection of a quota whose usage the controller has not computed yet: that
// lasts seconds, so such a quota is only judged on its hard limits.

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
)

const quotaCountPods v1.ResourceName = "count/pods"

func checkQuotas(s *Snapshot, pod *v1.Pod, replicas int32, specPath string) (admitted int32, reasons []Reason) {
	// A workload that makes no pods is never charged: judging it would block
	// a scale-to-zero on a quota nobody is about to hit.
	if replicas <= 0 {
		return 0, nil
	}
	admitted = replicas
	if len(s.quotas[pod.Namespace]) == 0 {
		return admitted, nil
	}
	usage := quotaPodUsage(pod)
	for _, q := range s.quotas[pod.Namespace] {
		// spec.hard is the quota as configured; status.hard trails it by one
		// controller sync and is empty for a quota read from a manifest.
		hard := q.Spec.Hard
		tracked := quotaTracked(hard)
		if len(tracked) == 0 {
			continue
		}
		if match, err := quotaScopesMatch(pod, q); err != nil || !match {
			// An unparsable selector makes admission error out, not forbid;
			// that is for the quota's owner to fix, not this workload.
			continue
		}
		permanent := false
		if r, ok := quotaMissingFields(q.Name, tracked, pod, specPath); ok {
			reasons = append(reasons, r)
			permanent = true
		}
		need := v1.ResourceList{}
		for _, name := range tracked {
			if u, ok := usage[name]; ok && !u.IsZero() {
				need[name] = u
			}
		}
		names := lrSorted(need)
		for _, name := range names {
			if h, n := hard[name], need[name]; n.Cmp(h) > 0 {
				reasons = append(reasons, Reason{Code: CodeQuotaTooSmall, Severity: SeverityPermanent,
					Message: fmt.Sprintf("quota %q limits %s to %s; one pod needs %s", q.Name, name, h.String(), n.String()),
					Details: map[string]string{"quota": q.Name, "resource": string(name), "hard": h.String(), "requested": n.String()}})
				permanent = true
			}
		}
		if permanent {
			admitted = 0
			continue
		}
		// Admission refuses pods against a quota whose status lacks usage
		// for a tracked resource until the controller fills it in, seconds
		// later; we judge what happens after, and cannot judge room before.
		if slices.ContainsFunc(tracked, func(n v1.ResourceName) bool { _, ok := q.Status.Used[n]; return !ok }) {
			continue
		}
		fits := int64(replicas)
		for _, name := range names {
			fits = min(fits, quotaFloorDiv(hard[name], q.Status.Used[name], need[name]))
		}
		if fits >= int64(replicas) {
			continue
		}
		admitted = min(admitted, int32(fits))
		reasons = append(reasons, quotaExceeded(q, hard, need, names, fits, replicas))
	}
	return max(admitted, 0), reasons
}

// quotaPodUsage is what one new pod charges, as the pod evaluator counts it:
// overhead and pod-level resources included, plain cpu/memory/
// ephemeral-storage meaning requests.
func quotaPodUsage(pod *v1.Pod) v1.ResourceList {
	one := resource.MustParse("1")
	u := v1.ResourceList{v1.ResourcePods: one, quotaCountPods: one}
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	lim := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := req[n]; ok {
			u[n] = q
			u[v1.DefaultResourceRequestsPrefix+n] = q
		}
		if q, ok := lim[n]; ok {
			u[v1.ResourceName("limits.")+n] = q
		}
	}
	for n, q := range req {
		if strings.HasPrefix(string(n), v1.ResourceHugePagesPrefix) {
			u[n] = q
			u[v1.DefaultResourceRequestsPrefix+n] = q
		} else if quotaExtendedResource(n) {
			u[v1.DefaultResourceRequestsPrefix+n] = q
		}
	}
	return u
}

// quotaExtendedResource: a resource outside kubernetes.io that a quota can
// only name as requests.<name>, plus DRA's implicit device-class resources.
func quotaExtendedResource(n v1.ResourceName) bool {
	s := string(n)
	if strings.HasPrefix(s, "deviceclass.resource.kubernetes.io/") {
		return true
	}
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") &&
		!strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix)
}

var quotaPodResources = sets.New[v1.ResourceName](quotaCountPods, v1.ResourcePods,
	v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage,
	v1.ResourceRequestsCPU, v1.ResourceRequestsMemory, v1.ResourceRequestsEphemeralStorage,
	v1.ResourceLimitsCPU, v1.ResourceLimitsMemory, v1.ResourceLimitsEphemeralStorage)

// quotaTracked lists, sorted, the resources of hard that the pod evaluator
// counts; a quota tracking none of them does not match pods at all.
func quotaTracked(hard v1.ResourceList) []v1.ResourceName {
	var out []v1.ResourceName
	for _, n := range lrSorted(hard) {
		s := string(n)
		switch {
		case quotaPodResources.Has(n),
			strings.HasPrefix(s, v1.ResourceHugePagesPrefix),
			strings.HasPrefix(s, v1.ResourceRequestsHugePagesPrefix),
			strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix) &&
				(strings.HasPrefix(s, "requests.deviceclass.resource.kubernetes.io/") ||
					strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/")):
			out = append(out, n)
		}
	}
	return out
}

// quotaValidated maps the resources whose quota makes every container state
// them to the field it must set; upstream calls this rule a mistake it will
// not repeat for other resources, so ephemeral-storage and extended
// resources are not in it.
var quotaValidated = map[v1.ResourceName]string{
	v1.ResourceCPU: "requests.cpu", v1.ResourceRequestsCPU: "requests.cpu", v1.ResourceLimitsCPU: "limits.cpu",
	v1.ResourceMemory: "requests.memory", v1.ResourceRequestsMemory: "requests.memory", v1.ResourceLimitsMemory: "limits.memory",
}

func quotaMissingFields(quota string, tracked []v1.ResourceName, pod *v1.Pod, specPath string) (Reason, bool) {
	// Pod-level resources lift the rule for the whole pod.
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		return Reason{}, false
	}
	missing := map[v1.ResourceName]sets.Set[string]{}
	first := ""
	check := func(c *v1.Container, path string) {
		for _, n := range tracked {
			f, ok := quotaValidated[n]
			if !ok {
				continue
			}
			side, base, _ := strings.Cut(f, ".")
			list := c.Resources.Requests
			if side == "limits" {
				list = c.Resources.Limits
			}
			if _, set := list[v1.ResourceName(base)]; set {
				continue
			}
			if first == "" {
				first = path + ".resources." + f
			}
			if missing[n] == nil {
				missing[n] = sets.New[string]()
			}
			missing[n].Insert(c.Name)
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i], fmt.Sprintf("%s.containers[%d]", specPath, i))
	}
	for i := range pod.Spec.InitContainers {
		check(&pod.Spec.InitContainers[i], fmt.Sprintf("%s.initContainers[%d]", specPath, i))
	}
	if len(missing) == 0 {
		return Reason{}, false
	}
	var parts []string
	for _, n := range sets.List(sets.KeySet(missing)) {
		parts = append(parts, fmt.Sprintf("%s for: %s", n, strings.Join(sets.List(missing[n]), ",")))
	}
	return Reason{Code: CodeQuotaMissingField, Severity: SeverityPermanent,
		Message: fmt.Sprintf("failed quota: %s: must specify %s", quota, strings.Join(parts, "; ")),
		Field:   first, Details: map[string]string{"quota": quota, "missing": strings.Join(parts, "; ")}}, true
}

// quotaScopesMatch: every scope and scopeSelector expression must match.
func quotaScopesMatch(pod *v1.Pod, q *v1.ResourceQuota) (bool, error) {
	sel := make([]v1.ScopedResourceSelectorRequirement, 0, len(q.Spec.Scopes))
	for _, sc := range q.Spec.Scopes {
		sel = append(sel, v1.ScopedResourceSelectorRequirement{ScopeName: sc, Operator: v1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		sel = append(sel, q.Spec.ScopeSelector.MatchExpressions...)
	}
	for _, r := range sel {
		ok, err := quotaScopeMatches(pod, r)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func quotaScopeMatches(pod *v1.Pod, r v1.ScopedResourceSelectorRequirement) (bool, error) {
	switch r.ScopeName {
	case v1.ResourceQuotaScopeTerminating:
		return quotaTerminating(pod), nil
	case v1.ResourceQuotaScopeNotTerminating:
		return !quotaTerminating(pod), nil
	case v1.ResourceQuotaScopeBestEffort:
		return quotaBestEffort(pod), nil
	case v1.ResourceQuotaScopeNotBestEffort:
		return !quotaBestEffort(pod), nil
	case v1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return quotaCrossNamespaceAffinity(pod), nil
	case v1.ResourceQuotaScopePriorityClass:
		return quotaPriorityClassMatches(pod.Spec.PriorityClassName, r)
	}
	// Other scopes (e.g. VolumeAttributesClass) never match a pod.
	return false, nil
}

// quotaPriorityClassMatches evaluates the expression as the evaluator does,
// as a label selector on {PriorityClass: name}: NotIn and DoesNotExist match
// a pod without a class, and a malformed expression is an error.
func quotaPriorityClassMatches(name string, r v1.ScopedResourceSelectorRequirement) (bool, error) {
	if r.Operator == v1.ScopeSelectorOpExists {
		return name != "", nil // checked before, and without, parsing values
	}
	ops := map[v1.ScopeSelectorOperator]selection.Operator{v1.ScopeSelectorOpIn: selection.In,
		v1.ScopeSelectorOpNotIn: selection.NotIn, v1.ScopeSelectorOpExists: selection.Exists,
		v1.ScopeSelectorOpDoesNotExist: selection.DoesNotExist}
	op, ok := ops[r.Operator]
	if !ok {
		return false, fmt.Errorf("%q is not a valid scope selector operator", r.Operator)
	}
	req, err := labels.NewRequirement(string(r.ScopeName), op, r.Values)
	if err != nil {
		return false, err
	}
	set := labels.Set{}
	if name != "" {
		set[string(r.ScopeName)] = name
	}
	return req.Matches(set), nil
}

func quotaTerminating(pod *v1.Pod) bool {
	return pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
}

// quotaBestEffort is the pod's QoS class being BestEffort: no cpu or memory
// request or limit anywhere, judged on pod-level resources alone when the pod
// sets them.
func quotaBestEffort(pod *v1.Pod) bool {
	some := func(r *v1.ResourceRequirements) bool {
		for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if req, lim := r.Requests[n], r.Limits[n]; !req.IsZero() || !lim.IsZero() {
				return true
			}
		}
		return false
	}
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		return !some(pod.Spec.Resources)
	}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if some(&cs[i].Resources) {
				return false
			}
		}
	}
	return true
}

func quotaCrossNamespaceAffinity(pod *v1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil {
		return false
	}
	other := func(t *v1.PodAffinityTerm) bool { return len(t.Namespaces) != 0 || t.NamespaceSelector != nil }
	cross := func(req []v1.PodAffinityTerm, pref []v1.WeightedPodAffinityTerm) bool {
		return slices.ContainsFunc(req, func(t v1.PodAffinityTerm) bool { return other(&t) }) ||
			slices.ContainsFunc(pref, func(w v1.WeightedPodAffinityTerm) bool { return other(&w.PodAffinityTerm) })
	}
	return a.PodAffinity != nil && cross(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) ||
		a.PodAntiAffinity != nil && cross(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
}

// quotaFloorDiv is how many more pods needing per fit in hard-used, computed
// exactly: quantities may carry more precision than milli-units.
func quotaFloorDiv(hard, used, per resource.Quantity) int64 {
	room := new(big.Rat).Sub(quotaRat(hard), quotaRat(used))
	if room.Sign() <= 0 {
		return 0
	}
	room.Quo(room, quotaRat(per))
	n := new(big.Int).Quo(room.Num(), room.Denom())
	if !n.IsInt64() {
		return 1<<62 - 1
	}
	return n.Int64()
}

// quotaRat is q exactly; inf.Dec prints plain decimals, never exponents.
func quotaRat(q resource.Quantity) *big.Rat {
	r, ok := new(big.Rat).SetString(q.AsDec().String())
	if !ok {
		return new(big.Rat)
	}
	return r
}

// quotaExceeded words the refusal the first pod past the quota's room would
// get, upstream's way: its usage, the quota's usage by then, and the hard
// limits, for the resources that run out first.
func quotaExceeded(q *v1.ResourceQuota, hard, need v1.ResourceList, names []v1.ResourceName, fits int64, replicas int32) Reason {
	var req, used, lim []string
	for _, n := range names {
		if quotaFloorDiv(hard[n], q.Status.Used[n], need[n]) != fits {
			continue
		}
		u := new(big.Rat).Add(quotaRat(q.Status.Used[n]), new(big.Rat).Mul(quotaRat(need[n]), new(big.Rat).SetInt64(fits)))
		h, p := hard[n], need[n]
		req = append(req, fmt.Sprintf("%s=%s", n, p.String()))
		used = append(used, fmt.Sprintf("%s=%s", n, quotaFormat(u, h.Format)))
		lim = append(lim, fmt.Sprintf("%s=%s", n, h.String()))
	}
	msg := fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s; the quota has room for %d of %d replicas",
		q.Name, strings.Join(req, ","), strings.Join(used, ","), strings.Join(lim, ","), fits, replicas)
	return Reason{Code: CodeQuotaExceeded, Severity: SeverityTransient, Message: msg,
		Details: map[string]string{"quota": q.Name, "requested": strings.Join(req, ","), "used": strings.Join(used, ","),
			"limited": strings.Join(lim, ","), "admitted": fmt.Sprint(fits), "replicas": fmt.Sprint(replicas)}}
}

func quotaFormat(r *big.Rat, f resource.Format) string {
	milli := new(big.Rat).Mul(r, big.NewRat(1000, 1))
	if milli.IsInt() && milli.Num().IsInt64() {
		return resource.NewMilliQuantity(milli.Num().Int64(), f).String()
	}
	return r.FloatString(3)
}
