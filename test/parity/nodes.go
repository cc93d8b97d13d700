package parity

import (
	"context"

	v1 "k8s.io/api/core/v1"

	"github.com/fitgate/fitgate/test/controlplane"
)

// createNode creates a scenario's Node through the control plane's node
// helper, which plays the kubelet: allocatable from the scenario, Ready, and
// the not-ready taint removed.
func createNode(ctx context.Context, cp *controlplane.ControlPlane, n *v1.Node) error {
	spec := controlplane.NodeSpec{
		Name:          n.Name,
		Labels:        n.Labels,
		Taints:        n.Spec.Taints,
		Unschedulable: n.Spec.Unschedulable,
		Extended:      map[string]string{},
	}
	for name, q := range n.Status.Allocatable {
		switch name {
		case v1.ResourceCPU:
			spec.CPU = q.String()
		case v1.ResourceMemory:
			spec.Memory = q.String()
		case v1.ResourceEphemeralStorage:
			spec.EphemeralStorage = q.String()
		case v1.ResourcePods:
			spec.Pods = int(q.Value())
		default:
			spec.Extended[string(name)] = q.String()
		}
	}
	_, err := cp.CreateNode(ctx, spec)
	return err
}
