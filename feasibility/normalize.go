package feasibility

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// This file turns a workload's pod template into the pod the scheduler will
// actually see. Between `kubectl apply` and the scheduler, API defaulting and
// admission plugins change the pod; a Deployment's template gets none of that
// until its ReplicaSet creates pods, so the engine applies it itself. Each
// step is idempotent, because a webhook sees bare Pods after it already ran.

// preparePod returns the pod the scheduler would see for w, and findings
// from the admission steps that would reject it outright.
//
// The pod starts as a shallow copy of the template, sharing its maps,
// slices and pointers with the caller's workload, which must never be
// written to (checks of one workload may run at once). So every step below
// that changes one of them puts a copy in its place first; a deep copy of
// every template was a good part of what a check allocates.
func preparePod(s *Snapshot, w *Workload) (*v1.Pod, []Reason) {
	pod := &v1.Pod{ObjectMeta: w.Template.ObjectMeta, Spec: w.Template.Spec}
	pod.Namespace = w.Namespace
	if pod.Name == "" {
		pod.Name = w.Name
	}
	if needsAPIDefaults(&pod.Spec) {
		// Defaulting writes into the containers' resource lists and ports.
		pod.Spec = *pod.Spec.DeepCopy()
		defaultPodSpec(&pod.Spec)
	}
	reasons := validateResources(&pod.Spec, w.SpecPath)
	reasons = append(reasons, applyRuntimeClass(s, pod, w.SpecPath)...)
	reasons = append(reasons, resolvePriority(s, pod, w.SpecPath)...)
	addDefaultTolerations(&pod.Spec)
	applyLimitRangeDefaults(s, pod)
	return pod, reasons
}

// defaultPodSpec applies the API's own defaulting that matters to
// scheduling: requests default to limits when only limits are set, at
// container and pod level, and host-network pods bind their container ports
// on the host.
//
// A pod-level request defaults differently: for cpu and memory the
// apiserver (DefaultPodLevelResources) first takes the containers'
// aggregate request, and only a resource no container requests takes the
// pod-level limit. So limits {cpu: 2} over containers requesting 300m
// schedule as 300m, not 2.
func defaultPodSpec(spec *v1.PodSpec) {
	defaultRequests := func(r *v1.ResourceRequirements) {
		for name, q := range r.Limits {
			if _, ok := r.Requests[name]; ok {
				continue
			}
			if r.Requests == nil {
				r.Requests = v1.ResourceList{}
			}
			r.Requests[name] = q.DeepCopy()
		}
	}
	for _, cs := range [][]v1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			defaultRequests(&cs[i].Resources)
			if spec.HostNetwork {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].HostPort == 0 {
						cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
					}
				}
			}
		}
	}
	if r := spec.Resources; r != nil && len(r.Limits) > 0 {
		containers := resourcehelper.AggregateContainerRequests(&v1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})
		for name, q := range containers {
			if _, ok := r.Requests[name]; ok || (name != v1.ResourceCPU && name != v1.ResourceMemory) {
				continue
			}
			if _, limited := r.Limits[name]; !limited {
				continue // the scheduler uses the containers' sum anyway
			}
			if r.Requests == nil {
				r.Requests = v1.ResourceList{}
			}
			r.Requests[name] = q.DeepCopy()
		}
		defaultRequests(r)
	}
}

// withAPIDefaults returns p as the apiserver stores it, for pods read from
// raw manifests rather than from the API: requests defaulted from limits
// and host-network ports made host ports. A pod that needs none of it is
// returned as is, without a copy.
func withAPIDefaults(p *v1.Pod) *v1.Pod {
	if !needsAPIDefaults(&p.Spec) {
		return p
	}
	p = p.DeepCopy()
	defaultPodSpec(&p.Spec)
	return p
}

func needsAPIDefaults(spec *v1.PodSpec) bool {
	missing := func(r *v1.ResourceRequirements) bool {
		for name := range r.Limits {
			if _, ok := r.Requests[name]; !ok {
				return true
			}
		}
		return false
	}
	if spec.Resources != nil && missing(spec.Resources) {
		return true
	}
	for _, cs := range [][]v1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if missing(&cs[i].Resources) {
				return true
			}
			if spec.HostNetwork {
				for _, p := range cs[i].Ports {
					if p.HostPort == 0 {
						return true
					}
				}
			}
		}
	}
	return false
}

// validateResources mirrors the apiserver's validation of resources that
// would reject the pod outright: a request above its limit, and for
// resources that cannot be overcommitted (extended resources such as
// example.com/gpu, and hugepages) a request without an equal limit.
// Hugepages also need a cpu or memory request or limit. Pod-level
// resources must cover the containers. It runs after defaulting, as
// validation does, so a limit alone is fine.
func validateResources(spec *v1.PodSpec, specPath string) []Reason {
	var out []Reason
	invalid := func(field, msg string) {
		out = append(out, Reason{Code: CodeInvalidSpec, Severity: SeverityPermanent, Field: field, Message: msg})
	}
	// path names the resources field; it is only rendered for a finding.
	check := func(r *v1.ResourceRequirements, path func() string) {
		hugePages, cpuOrMemory := false, false
		for _, l := range []v1.ResourceList{r.Requests, r.Limits} {
			for name := range l {
				if isHugePages(name) {
					hugePages = true
				}
				if name == v1.ResourceCPU || name == v1.ResourceMemory {
					cpuOrMemory = true
				}
			}
		}
		var buf [4]v1.ResourceName
		for _, name := range appendSortedNames(buf[:0], r.Requests) {
			req := r.Requests[name]
			lim, limited := r.Limits[name]
			switch {
			case !limited && !overcommitAllowed(name):
				invalid(path()+".limits."+string(name), fmt.Sprintf("%s is requested without a limit; it cannot be overcommitted, so the apiserver requires a limit equal to the request", name))
			case limited && !overcommitAllowed(name) && req.Cmp(lim) != 0:
				invalid(path()+".requests."+string(name), fmt.Sprintf("%s request %s must equal its limit %s", name, req.String(), lim.String()))
			case limited && req.Cmp(lim) > 0:
				invalid(path()+".requests."+string(name), fmt.Sprintf("%s request %s is above its limit %s", name, req.String(), lim.String()))
			}
		}
		if hugePages && !cpuOrMemory {
			invalid(path(), "hugepages require a cpu or memory request or limit")
		}
	}
	for _, group := range []struct {
		name string
		cs   []v1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i := range group.cs {
			check(&group.cs[i].Resources, func() string { return fmt.Sprintf("%s.%s[%d].resources", specPath, group.name, i) })
		}
	}
	if r := spec.Resources; r != nil {
		// Pod-level resources take only cpu, memory and hugepages, and
		// must cover what the containers ask for.
		path := specPath + ".resources"
		for _, l := range []v1.ResourceList{r.Requests, r.Limits} {
			for _, name := range sortedResourceNames(l) {
				if !resourcehelper.IsSupportedPodLevelResource(name) {
					invalid(path, fmt.Sprintf("pod-level resources support cpu, memory and hugepages, not %s", name))
				}
			}
		}
		check(r, func() string { return path })
		containers := resourcehelper.AggregateContainerRequests(&v1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})
		for _, name := range sortedResourceNames(containers) {
			q := containers[name]
			if pod, ok := r.Requests[name]; ok && q.Cmp(pod) > 0 {
				invalid(path+".requests."+string(name), fmt.Sprintf("pod-level %s request %s is below the containers' aggregate request %s", name, pod.String(), q.String()))
			}
		}
		for i := range spec.Containers {
			for _, name := range sortedResourceNames(spec.Containers[i].Resources.Limits) {
				q := spec.Containers[i].Resources.Limits[name]
				if pod, ok := r.Limits[name]; ok && q.Cmp(pod) > 0 {
					invalid(fmt.Sprintf("%s.containers[%d].resources.limits.%s", specPath, i, name),
						fmt.Sprintf("container %s limit %s is above the pod-level limit %s", name, q.String(), pod.String()))
				}
			}
		}
	}
	return out
}

// overcommitAllowed mirrors the API's IsOvercommitAllowed: native
// resources (no domain, or a kubernetes.io one) other than hugepages.
func overcommitAllowed(name v1.ResourceName) bool {
	s := string(name)
	native := !strings.Contains(s, "/") || strings.Contains(s, v1.ResourceDefaultNamespacePrefix)
	return native && !isHugePages(name)
}

func isHugePages(name v1.ResourceName) bool {
	return strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix)
}

func sortedResourceNames(l v1.ResourceList) []v1.ResourceName {
	return appendSortedNames(nil, l)
}

// appendSortedNames appends l's names to names, sorted. A caller that
// passes a buffer of its own spares an allocation.
func appendSortedNames(names []v1.ResourceName, l v1.ResourceList) []v1.ResourceName {
	names = slices.Grow(names, len(l))
	start := len(names)
	for name := range l {
		names = append(names, name)
	}
	slices.Sort(names[start:])
	return names
}

// addDefaultTolerations mirrors the DefaultTolerationSeconds admission
// plugin: every pod tolerates not-ready and unreachable NoExecute taints for
// 300 s unless it says otherwise. So a pod with no tolerations does land on
// a node tainted node.kubernetes.io/unreachable:NoExecute.
func addDefaultTolerations(spec *v1.PodSpec) {
	var notReady, unreachable bool
	for _, t := range spec.Tolerations {
		if t.Effect != "" && t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		if t.Key == "" || t.Key == v1.TaintNodeNotReady {
			notReady = true
		}
		if t.Key == "" || t.Key == v1.TaintNodeUnreachable {
			unreachable = true
		}
	}
	if notReady && unreachable {
		return
	}
	// Clipped, then grown with room for both: what is added goes into an
	// array of the pod's own, never into spare capacity of the workload's
	// tolerations.
	spec.Tolerations = slices.Grow(slices.Clip(spec.Tolerations), 2)
	seconds := int64(300)
	add := func(key string) {
		spec.Tolerations = append(spec.Tolerations, v1.Toleration{
			Key: key, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: &seconds,
		})
	}
	if !notReady {
		add(v1.TaintNodeNotReady)
	}
	if !unreachable {
		add(v1.TaintNodeUnreachable)
	}
}

// systemPriorityClasses exist on every cluster: the apiserver creates them.
var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2000001000,
	"system-cluster-critical": 2000000000,
}

// resolvePriority mirrors the Priority admission plugin: priorityClassName
// becomes priority and preemptionPolicy, and a pod without one takes the
// global default class, if any.
func resolvePriority(s *Snapshot, pod *v1.Pod, specPath string) []Reason {
	name := pod.Spec.PriorityClassName
	if name == "" {
		// The admission plugin also writes the default class's name into
		// the pod, which PriorityClass-scoped quotas then match on.
		if pc := s.globalDefaultPriorityClass(); pc != nil {
			pod.Spec.PriorityClassName = pc.Name
			setPriority(pod, pc.Value, pc.PreemptionPolicy)
			return nil
		}
		if pod.Spec.Priority == nil {
			zero := int32(0)
			pod.Spec.Priority = &zero
		}
		return nil
	}
	if pc, ok := s.priorityClasses[name]; ok {
		setPriority(pod, pc.Value, pc.PreemptionPolicy)
		return nil
	}
	if v, ok := systemPriorityClasses[name]; ok {
		setPriority(pod, v, nil)
		return nil
	}
	if !s.Knows(KindPriorityClass) {
		return nil
	}
	return []Reason{{
		Code: CodePriorityClassNotFound, Severity: SeverityPermanent,
		Field:   specPath + ".priorityClassName",
		Message: fmt.Sprintf("priorityclass %q not found", name),
	}}
}

// globalDefaultPriorityClass returns the global default class; with several
// (a transient state the API allows), the lowest value wins, as upstream.
func (s *Snapshot) globalDefaultPriorityClass() *schedulingv1.PriorityClass {
	var best *schedulingv1.PriorityClass
	for _, pc := range s.priorityClasses {
		if pc.GlobalDefault && (best == nil || pc.Value < best.Value || pc.Value == best.Value && pc.Name < best.Name) {
			best = pc
		}
	}
	return best
}

func setPriority(pod *v1.Pod, value int32, policy *v1.PreemptionPolicy) {
	if pod.Spec.Priority == nil {
		pod.Spec.Priority = &value
	}
	if pod.Spec.PreemptionPolicy == nil && policy != nil {
		p := *policy
		pod.Spec.PreemptionPolicy = &p
	}
}

// applyRuntimeClass mirrors the RuntimeClass admission plugin: the class's
// pod overhead and scheduling constraints (node selector, tolerations) join
// the pod. A class that does not exist gets the pod rejected.
func applyRuntimeClass(s *Snapshot, pod *v1.Pod, specPath string) []Reason {
	name := pod.Spec.RuntimeClassName
	if name == nil || *name == "" {
		return nil
	}
	rc, ok := s.runtimeClasses[*name]
	if !ok {
		if !s.Knows(KindRuntimeClass) {
			return nil
		}
		return []Reason{{
			Code: CodeRuntimeClassNotFound, Severity: SeverityPermanent,
			Field:   specPath + ".runtimeClassName",
			Message: fmt.Sprintf("runtimeclass %q not found", *name),
		}}
	}
	if rc.Overhead != nil && pod.Spec.Overhead == nil {
		pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	}
	if sch := rc.Scheduling; sch != nil {
		// Copies: the selector and tolerations may be the workload's own.
		if len(sch.NodeSelector) > 0 {
			pod.Spec.NodeSelector = maps.Clone(pod.Spec.NodeSelector)
		}
		pod.Spec.Tolerations = slices.Clip(pod.Spec.Tolerations)
		var reasons []Reason
		for k, v := range sch.NodeSelector {
			if cur, ok := pod.Spec.NodeSelector[k]; ok && cur != v {
				reasons = append(reasons, Reason{
					Code: CodeInvalidSpec, Severity: SeverityPermanent,
					Field:   specPath + ".nodeSelector",
					Message: fmt.Sprintf("nodeSelector %s=%s conflicts with runtimeclass %q, which requires %s=%s", k, cur, *name, k, v),
				})
				continue
			}
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			pod.Spec.NodeSelector[k] = v
		}
		for _, t := range sch.Tolerations {
			if !hasToleration(pod.Spec.Tolerations, t) {
				pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
			}
		}
		return reasons
	}
	return nil
}

func hasToleration(list []v1.Toleration, t v1.Toleration) bool {
	for i := range list {
		if list[i].MatchToleration(&t) {
			return true
		}
	}
	return false
}
