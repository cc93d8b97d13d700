package feasibility

import (
	"slices"

	v1 "k8s.io/api/core/v1"
)

// This file mirrors what the DaemonSet controller does before the scheduler
// sees a daemon pod: it tolerates the node-condition taints, and it only
// targets nodes whose labels and taints admit the pod.

// addDaemonSetTolerations adds the tolerations the DaemonSet controller
// gives every daemon pod.
func addDaemonSetTolerations(pod *v1.Pod) {
	// Clipped, so that append copies: the tolerations may still be the
	// workload's own, and their spare capacity must not be written to.
	pod.Spec.Tolerations = slices.Clip(pod.Spec.Tolerations)
	add := func(key string, effect v1.TaintEffect) {
		t := v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: effect}
		if !hasToleration(pod.Spec.Tolerations, t) {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
		}
	}
	add(v1.TaintNodeNotReady, v1.TaintEffectNoExecute)
	add(v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
	add(v1.TaintNodeDiskPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodeMemoryPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodePIDPressure, v1.TaintEffectNoSchedule)
	add(v1.TaintNodeUnschedulable, v1.TaintEffectNoSchedule)
	if pod.Spec.HostNetwork {
		add(v1.TaintNodeNetworkUnavailable, v1.TaintEffectNoSchedule)
	}
}

// daemonTargets reports whether the DaemonSet controller would create a
// pod for node n: its node selector and required affinity match, and it
// tolerates the node's NoSchedule and NoExecute taints.
func (c *candidate) daemonTargets(n *v1.Node) bool {
	if ok, _ := c.nodeAffinity.Match(n); !ok {
		return false
	}
	return c.untoleratedTaint(n) == nil
}
