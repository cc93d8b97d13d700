package feasibility

import (
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// This file mirrors the NodePorts filter: a pod's host ports conflict with
// those already bound on a node when protocol and port match and the host IPs
// overlap, where 0.0.0.0 (or an empty hostIP) overlaps every address.

const bindAll = "0.0.0.0"

type hostPort struct {
	ip       string
	protocol v1.Protocol
	port     int32
}

func (p hostPort) String() string {
	s := string(p.protocol) + "/"
	if p.ip != bindAll {
		s = p.ip + ":" + s
	}
	return s + strconv.Itoa(int(p.port))
}

// podHostPorts returns the host ports a pod binds: those of its containers
// and of its restartable (sidecar) init containers, which run for the pod's
// whole life. Ordinary init containers do not hold their ports.
func podHostPorts(spec *v1.PodSpec) []hostPort {
	var out []hostPort
	add := func(c *v1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if hp.ip == "" {
				hp.ip = bindAll
			}
			if hp.protocol == "" {
				hp.protocol = v1.ProtocolTCP
			}
			out = append(out, hp)
		}
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range spec.Containers {
		add(&spec.Containers[i])
	}
	return out
}

// hostPortSet counts the bound host ports of a node's pods. Counts, not a
// set, so that removing one of two pods that share a port keeps it bound.
type hostPortSet map[hostPort]int

func (s *hostPortSet) add(ports []hostPort) {
	if len(ports) == 0 {
		return
	}
	if *s == nil {
		*s = hostPortSet{}
	}
	for _, p := range ports {
		(*s)[p]++
	}
}

func (s *hostPortSet) remove(ports []hostPort) {
	for _, p := range ports {
		if (*s)[p]--; (*s)[p] <= 0 {
			delete(*s, p)
		}
	}
}

// conflicts reports the first of want that is already bound in s.
func (s hostPortSet) conflicts(want []hostPort) (hostPort, bool) {
	if len(s) == 0 {
		return hostPort{}, false
	}
	for _, w := range want {
		if w.ip == bindAll {
			for used := range s {
				if used.protocol == w.protocol && used.port == w.port {
					return w, true
				}
			}
			continue
		}
		if s[w] > 0 || s[hostPort{ip: bindAll, protocol: w.protocol, port: w.port}] > 0 {
			return w, true
		}
	}
	return hostPort{}, false
}
