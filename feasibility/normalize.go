package feasibility

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
)

// This file turns a workload's pod template into the pod the scheduler will
// actually see. Between `kubectl apply` and the scheduler, API defaulting and
// admission plugins change the pod; a Deployment's template gets none of that
// until its ReplicaSet creates pods, so the engine applies it itself. Each
// step is idempotent, because a webhook sees bare Pods after it already ran.

// preparePod returns the pod the scheduler would see for w, and findings
// from the admission steps that would reject it outright.
func preparePod(s *Snapshot, w *Workload) (*v1.Pod, []Reason) {
	pod := &v1.Pod{
		ObjectMeta: *w.Template.ObjectMeta.DeepCopy(),
		Spec:       *w.Template.Spec.DeepCopy(),
	}
	pod.Namespace = w.Namespace
	if pod.Name == "" {
		pod.Name = w.Name
	}
	defaultPodSpec(&pod.Spec)
	var reasons []Reason
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
	if spec.Resources != nil {
		defaultRequests(spec.Resources)
	}
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
