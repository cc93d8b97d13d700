package feasibility

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// resources is a compact resource vector: the scheduler's NodeResourcesFit
// compares cpu in millicores and everything else in base units.
type resources struct {
	MilliCPU  int64
	Memory    int64
	Ephemeral int64
	// Scalar holds hugepages-* and extended resources. Nil when empty, which
	// is the common case.
	Scalar map[v1.ResourceName]int64
}

func resourcesFromList(l v1.ResourceList) resources {
	var r resources
	for name, q := range l {
		r.set(name, q)
	}
	return r
}

func (r *resources) set(name v1.ResourceName, q resource.Quantity) {
	switch name {
	case v1.ResourceCPU:
		r.MilliCPU = q.MilliValue()
	case v1.ResourceMemory:
		r.Memory = q.Value()
	case v1.ResourceEphemeralStorage:
		r.Ephemeral = q.Value()
	case v1.ResourcePods:
		// Counted separately: every pod uses exactly one.
	default:
		if isScalarResource(name) {
			if r.Scalar == nil {
				r.Scalar = map[v1.ResourceName]int64{}
			}
			r.Scalar[name] = q.Value()
		}
	}
}

// isScalarResource reports whether the scheduler tracks name as a scalar
// resource: hugepages, extended resources, and attachable-volume counts.
func isScalarResource(name v1.ResourceName) bool {
	s := string(name)
	if len(s) > len(v1.ResourceHugePagesPrefix) && s[:len(v1.ResourceHugePagesPrefix)] == v1.ResourceHugePagesPrefix {
		return true
	}
	if len(s) > len(v1.ResourceAttachableVolumesPrefix) && s[:len(v1.ResourceAttachableVolumesPrefix)] == v1.ResourceAttachableVolumesPrefix {
		return true
	}
	return isExtendedResource(name)
}

// isExtendedResource mirrors the API's rule: a fully qualified name outside
// the kubernetes.io/ namespace, not prefixed requests.
func isExtendedResource(name v1.ResourceName) bool {
	s := string(name)
	slash := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			slash = i
			break
		}
	}
	if slash <= 0 {
		return false
	}
	domain := s[:slash]
	if domain == "kubernetes.io" || hasSuffix(domain, ".kubernetes.io") {
		return false
	}
	return !hasPrefix(s, "requests.")
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
func hasSuffix(s, p string) bool { return len(s) >= len(p) && s[len(s)-len(p):] == p }

func (r *resources) add(o resources, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.Ephemeral += sign * o.Ephemeral
	for k, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[v1.ResourceName]int64{}
		}
		r.Scalar[k] += sign * v
		if r.Scalar[k] == 0 {
			delete(r.Scalar, k)
		}
	}
}

func (r resources) isZero() bool {
	return r.MilliCPU == 0 && r.Memory == 0 && r.Ephemeral == 0 && len(r.Scalar) == 0
}

// scalarNames returns the scalar resource names in a stable order.
func (r resources) scalarNames() []v1.ResourceName {
	if len(r.Scalar) == 0 {
		return nil
	}
	names := make([]v1.ResourceName, 0, len(r.Scalar))
	for k := range r.Scalar {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
