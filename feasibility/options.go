package feasibility

import v1 "k8s.io/api/core/v1"

// DefaultSchedulerName is the scheduler that serves pods with no schedulerName.
const DefaultSchedulerName = v1.DefaultSchedulerName

// Options tune a check to the cluster it judges.
type Options struct {
	// KnownSchedulers are the scheduler names someone serves. A pod naming
	// another is flagged. Empty means just "default-scheduler".
	KnownSchedulers []string
	// Autoscaler, when set, says the cluster can add nodes: "no node is big
	// enough or matches" becomes transient unless even the largest node the
	// autoscaler can add could not take the pod.
	Autoscaler *AutoscalerOptions
}

// AutoscalerOptions describe what a cluster autoscaler can add.
type AutoscalerOptions struct {
	// MaxNode is the largest node shape the autoscaler can add: its
	// allocatable, labels and taints. Nil means the shape is unknown, and any
	// node-level failure is taken as one a new node could fix.
	MaxNode *v1.Node
}

func (o *Options) schedulers() []string {
	if o == nil || len(o.KnownSchedulers) == 0 {
		return []string{DefaultSchedulerName}
	}
	return o.KnownSchedulers
}
