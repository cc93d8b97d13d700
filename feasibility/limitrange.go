package feasibility

// This file mirrors the LimitRanger admission plugin for pod creation
// (plugin/pkg/admission/limitranger): the mutating half gives every container
// and init container the default limits and requests of the namespace's
// Container items, and the validating half enforces min, max and
// maxLimitRequestRatio of Container and Pod items. It also reports the one
// rejection LimitRanger causes without enforcing it itself: a defaulted limit
// below the container's own request, which pod validation then refuses.
//
// Left out: PersistentVolumeClaim items (they judge claims, not pods), the
// kubernetes.io/limit-ranger annotation, and in-place resize.

import (
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// CodeLimitRangeDefaultBelowRequest: a LimitRange's default limit, given to a
// container that sets a request but no limit, is below that request.
const CodeLimitRangeDefaultBelowRequest Code = "LimitRangeDefaultLimitBelowRequest"

// lrDefaultedItem applies the API server's LimitRangeItem defaulting to a
// copy: LimitRanges read from manifests were never defaulted, and ones read
// from the API already were, so this must only fill what is missing.
func lrDefaultedItem(item *v1.LimitRangeItem) v1.LimitRangeItem {
	out := *item.DeepCopy()
	if out.Type != v1.LimitTypeContainer {
		return out
	}
	if out.Default == nil {
		out.Default = v1.ResourceList{}
	}
	if out.DefaultRequest == nil {
		out.DefaultRequest = v1.ResourceList{}
	}
	lrFillMissing(out.Default, out.Max)
	lrFillMissing(out.DefaultRequest, out.Default)
	lrFillMissing(out.DefaultRequest, out.Min)
	return out
}

func lrFillMissing(dst, src v1.ResourceList) {
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v.DeepCopy()
		}
	}
}

// lrContainerDefaults merges a LimitRange's Container items; when two items
// name the same resource the later wins, as in the plugin.
func lrContainerDefaults(lr *v1.LimitRange) (limits, requests v1.ResourceList) {
	limits, requests = v1.ResourceList{}, v1.ResourceList{}
	for i := range lr.Spec.Limits {
		if lr.Spec.Limits[i].Type != v1.LimitTypeContainer {
			continue
		}
		item := lrDefaultedItem(&lr.Spec.Limits[i])
		maps.Copy(limits, item.Default)
		maps.Copy(requests, item.DefaultRequest)
	}
	return limits, requests
}

func applyLimitRangeDefaults(s *Snapshot, pod *v1.Pod) {
	// The plugin defaults containers even when pod-level resources are set,
	// and never touches ephemeral containers. Each LimitRange fills only what
	// is still missing, so the first one to name a resource wins.
	owned := false
	for _, lr := range s.limitRanges[pod.Namespace] {
		limits, requests := lrContainerDefaults(lr)
		if len(limits)+len(requests) == 0 {
			continue
		}
		if !owned {
			// lrMerge sets each container's lists, and the containers may
			// still be the workload's: the pod gets its own first.
			pod.Spec.InitContainers = slices.Clone(pod.Spec.InitContainers)
			pod.Spec.Containers = slices.Clone(pod.Spec.Containers)
			owned = true
		}
		for i := range pod.Spec.InitContainers {
			lrMerge(&pod.Spec.InitContainers[i].Resources, limits, requests)
		}
		for i := range pod.Spec.Containers {
			lrMerge(&pod.Spec.Containers[i].Resources, limits, requests)
		}
	}
}

// lrMerge copies the lists it changes: the normalized pod may share them with
// the workload's template, which must stay as the user wrote it.
func lrMerge(r *v1.ResourceRequirements, limits, requests v1.ResourceList) {
	r.Limits = lrWithDefaults(r.Limits, limits)
	r.Requests = lrWithDefaults(r.Requests, requests)
}

func lrWithDefaults(have, defaults v1.ResourceList) v1.ResourceList {
	var out v1.ResourceList
	for k, v := range defaults {
		if _, ok := have[k]; ok {
			continue
		}
		if out == nil {
			if out = maps.Clone(have); out == nil {
				out = v1.ResourceList{}
			}
		}
		out[k] = v.DeepCopy()
	}
	if out == nil {
		return have
	}
	return out
}

// lrTarget is one thing a LimitRange item judges: a container, or the pod.
type lrTarget struct {
	who      string // e.g. `container "app"`, or "" for the pod
	path     string // its resources field, or "" for the pod
	requests v1.ResourceList
	limits   v1.ResourceList
}

func checkLimitRanges(s *Snapshot, pod *v1.Pod, specPath string) []Reason {
	lrs := s.limitRanges[pod.Namespace]
	if len(lrs) == 0 {
		return nil // and no default can be below a request
	}
	var out []Reason
	containers := lrContainerTargets(pod, specPath)
	for _, lr := range lrs {
		for i := range lr.Spec.Limits {
			item := &lr.Spec.Limits[i]
			switch item.Type {
			case v1.LimitTypeContainer:
				for _, t := range containers {
					out = append(out, lrJudge(lr.Name, item, t)...)
				}
			case v1.LimitTypePod:
				out = append(out, lrJudge(lr.Name, item, lrPodTarget(pod))...)
			}
		}
	}
	return append(out, lrDefaultsBelowRequests(s, pod, containers)...)
}

func lrContainerTargets(pod *v1.Pod, specPath string) []lrTarget {
	var ts []lrTarget
	for i, c := range pod.Spec.InitContainers {
		ts = append(ts, lrTarget{fmt.Sprintf("init container %q", c.Name),
			fmt.Sprintf("%s.initContainers[%d].resources", specPath, i), c.Resources.Requests, c.Resources.Limits})
	}
	for i, c := range pod.Spec.Containers {
		ts = append(ts, lrTarget{fmt.Sprintf("container %q", c.Name),
			fmt.Sprintf("%s.containers[%d].resources", specPath, i), c.Resources.Requests, c.Resources.Limits})
	}
	return ts
}

// lrPodTarget sums as the plugin does for Pod items: containers plus the
// sidecar-aware init container peak, no overhead, and pod-level cpu and
// memory replacing the sums when set.
func lrPodTarget(pod *v1.Pod) lrTarget {
	req := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	lim := resourcehelper.AggregateContainerLimits(pod, resourcehelper.PodResourcesOptions{})
	if r := pod.Spec.Resources; r != nil {
		for _, n := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := r.Requests[n]; ok {
				req[n] = q
			}
			if q, ok := r.Limits[n]; ok {
				lim[n] = q
			}
		}
	}
	return lrTarget{requests: req, limits: lim}
}

// lrJudge applies one item's bounds to one target, at most one finding per
// bound and resource, as the plugin stops at the first failure of each.
func lrJudge(lrName string, item *v1.LimitRangeItem, t lrTarget) []Reason {
	var out []Reason
	kind := string(item.Type)
	fail := func(code Code, res v1.ResourceName, side string, bound resource.Quantity, what string) {
		msg := fmt.Sprintf("LimitRange %q: ", lrName)
		if t.who != "" {
			msg += t.who + ": "
		}
		r := Reason{Code: code, Severity: SeverityPermanent, Message: msg + what,
			Details: map[string]string{"limitRange": lrName, "resource": string(res), "type": kind, "bound": bound.String()}}
		if t.path != "" {
			r.Field = t.path + "." + side + "." + string(res)
		}
		if q, ok := t.requests[res]; ok {
			r.Details["request"] = q.String()
		}
		if q, ok := t.limits[res]; ok {
			r.Details["limit"] = q.String()
		}
		out = append(out, r)
	}
	for _, res := range lrSorted(item.Min) {
		bound := item.Min[res]
		req, hasReq := t.requests[res]
		lim, hasLim := t.limits[res]
		r, l, m := lrComparable(req, lim, bound)
		switch {
		case !hasReq:
			fail(CodeLimitRangeMin, res, "requests", bound, fmt.Sprintf("minimum %s usage per %s is %s, but no request is specified", res, kind, bound.String()))
		case r < m:
			fail(CodeLimitRangeMin, res, "requests", bound, fmt.Sprintf("minimum %s usage per %s is %s, but request is %s", res, kind, bound.String(), req.String()))
		case hasLim && l < m:
			fail(CodeLimitRangeMin, res, "limits", bound, fmt.Sprintf("minimum %s usage per %s is %s, but limit is %s", res, kind, bound.String(), lim.String()))
		}
	}
	for _, res := range lrSorted(item.Max) {
		bound := item.Max[res]
		req, hasReq := t.requests[res]
		lim, hasLim := t.limits[res]
		r, l, m := lrComparable(req, lim, bound)
		switch {
		case !hasLim:
			fail(CodeLimitRangeMax, res, "limits", bound, fmt.Sprintf("maximum %s usage per %s is %s, but no limit is specified", res, kind, bound.String()))
		case l > m:
			fail(CodeLimitRangeMax, res, "limits", bound, fmt.Sprintf("maximum %s usage per %s is %s, but limit is %s", res, kind, bound.String(), lim.String()))
		case hasReq && r > m:
			fail(CodeLimitRangeMax, res, "requests", bound, fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", res, kind, bound.String(), req.String()))
		}
	}
	for _, res := range lrSorted(item.MaxLimitRequestRatio) {
		ratio := item.MaxLimitRequestRatio[res]
		req, hasReq := t.requests[res]
		lim, hasLim := t.limits[res]
		r, l, _ := lrComparable(req, lim, ratio)
		switch {
		case !hasReq || r == 0:
			fail(CodeLimitRangeRatio, res, "requests", ratio, fmt.Sprintf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", res, kind, ratio.String()))
		case !hasLim || l == 0:
			fail(CodeLimitRangeRatio, res, "limits", ratio, fmt.Sprintf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", res, kind, ratio.String()))
		default:
			observed := float64(l) / float64(r)
			allowed := float64(ratio.Value())
			scaled := observed
			if ratio.Value() <= resource.MaxMilliValue {
				scaled, allowed = observed*1000, float64(ratio.MilliValue())
			}
			if scaled > allowed {
				fail(CodeLimitRangeRatio, res, "limits", ratio, fmt.Sprintf("%s max limit to request ratio per %s is %s, but provided ratio is %.4g (limit %s, request %s)", res, kind, ratio.String(), observed, lim.String(), req.String()))
			}
		}
	}
	return out
}

// lrComparable brings three quantities to a common integer scale the way the
// plugin does: milli-units when none would overflow, else whole units. Exact
// comparison would disagree with the plugin on sub-milli values, and a
// disagreement in the strict direction would be a false rejection.
func lrComparable(a, b, c resource.Quantity) (int64, int64, int64) {
	if a.Value() <= resource.MaxMilliValue && b.Value() <= resource.MaxMilliValue && c.Value() <= resource.MaxMilliValue {
		return a.MilliValue(), b.MilliValue(), c.MilliValue()
	}
	return a.Value(), b.Value(), c.Value()
}

func lrSorted(l v1.ResourceList) []v1.ResourceName {
	names := make([]v1.ResourceName, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// lrDefaultsBelowRequests finds containers whose request exceeds a limit that
// only a LimitRange could have given them: a template with request > limit is
// refused long before fitgate sees it, so the limit came from a default.
// Pod validation then rejects every pod with "must be less than or equal to
// cpu limit". Only overcommittable resources can get here: the others must
// set limits in the template.
func lrDefaultsBelowRequests(s *Snapshot, pod *v1.Pod, containers []lrTarget) []Reason {
	var out []Reason
	for _, t := range containers {
		for _, res := range lrSorted(t.limits) {
			req, ok := t.requests[res]
			lim := t.limits[res]
			if !ok || req.Cmp(lim) <= 0 {
				continue
			}
			lr := lrDefaultingLimit(s, pod.Namespace, res)
			if lr == "" {
				continue
			}
			out = append(out, Reason{
				Code:     CodeLimitRangeDefaultBelowRequest,
				Severity: SeverityPermanent,
				Message: fmt.Sprintf("LimitRange %q gives %s a default %s limit of %s, below its request of %s; the API rejects a request above the limit",
					lr, t.who, res, lim.String(), req.String()),
				Field:   t.path + ".limits." + string(res),
				Details: map[string]string{"limitRange": lr, "resource": string(res), "limit": lim.String(), "request": req.String()},
			})
		}
	}
	return out
}

// lrDefaultingLimit names the LimitRange whose default limit for res wins.
func lrDefaultingLimit(s *Snapshot, namespace string, res v1.ResourceName) string {
	for _, lr := range s.limitRanges[namespace] {
		if limits, _ := lrContainerDefaults(lr); limits != nil {
			if _, ok := limits[res]; ok {
				return lr.Name
			}
		}
	}
	return ""
}
