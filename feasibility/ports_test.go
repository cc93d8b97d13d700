package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestHostPortSetConflicts mirrors the scheduler's HostPortInfo.CheckConflict:
// same protocol and port, and overlapping host IPs, where 0.0.0.0 overlaps
// every address.
func TestHostPortSetConflicts(t *testing.T) {
	hp := func(ip string, proto v1.Protocol, port int32) hostPort {
		return hostPort{ip: ip, protocol: proto, port: port}
	}
	tests := []struct {
		name     string
		used     []hostPort
		want     []hostPort
		conflict bool
	}{
		{"nothing bound", nil, []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, false},
		{"same port, any IP", []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, true},
		{"other port", []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, []hostPort{hp(bindAll, v1.ProtocolTCP, 81)}, false},
		{"TCP vs UDP", []hostPort{hp(bindAll, v1.ProtocolTCP, 53)}, []hostPort{hp(bindAll, v1.ProtocolUDP, 53)}, false},
		{"TCP vs SCTP", []hostPort{hp(bindAll, v1.ProtocolTCP, 53)}, []hostPort{hp(bindAll, v1.ProtocolSCTP, 53)}, false},
		{"specific wanted, any bound", []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, []hostPort{hp("10.0.0.1", v1.ProtocolTCP, 80)}, true},
		{"any wanted, specific bound", []hostPort{hp("10.0.0.1", v1.ProtocolTCP, 80)}, []hostPort{hp(bindAll, v1.ProtocolTCP, 80)}, true},
		{"same specific IP", []hostPort{hp("10.0.0.1", v1.ProtocolTCP, 80)}, []hostPort{hp("10.0.0.1", v1.ProtocolTCP, 80)}, true},
		{"different specific IPs", []hostPort{hp("10.0.0.1", v1.ProtocolTCP, 80)}, []hostPort{hp("10.0.0.2", v1.ProtocolTCP, 80)}, false},
		{"second wanted port conflicts", []hostPort{hp(bindAll, v1.ProtocolUDP, 9000)},
			[]hostPort{hp(bindAll, v1.ProtocolTCP, 9000), hp(bindAll, v1.ProtocolUDP, 9000)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s hostPortSet
			s.add(tt.used)
			_, got := s.conflicts(tt.want)
			if got != tt.conflict {
				t.Errorf("conflicts = %v, want %v", got, tt.conflict)
			}
		})
	}
}

// TestHostPortSetCountsHolders checks that a port two pods hold stays bound
// until both are gone.
func TestHostPortSetCountsHolders(t *testing.T) {
	p := []hostPort{{ip: bindAll, protocol: v1.ProtocolTCP, port: 80}}
	var s hostPortSet
	s.add(p)
	s.add(p)
	s.remove(p)
	if _, c := s.conflicts(p); !c {
		t.Fatal("port released while a second pod still holds it")
	}
	s.remove(p)
	if _, c := s.conflicts(p); c {
		t.Fatal("port still held after both pods left")
	}
}

// TestPodHostPorts mirrors the scheduler's GetHostPorts: container ports
// with a hostPort, and those of restartable (sidecar) init containers, with
// the IP and protocol defaulted; ordinary init containers do not hold theirs.
func TestPodHostPorts(t *testing.T) {
	withPorts := func(c v1.Container, ports ...v1.ContainerPort) v1.Container {
		c.Ports = ports
		return c
	}
	tests := []struct {
		name string
		spec v1.PodSpec
		want []hostPort
	}{
		{"container port without hostPort", v1.PodSpec{Containers: []v1.Container{withPorts(tbC("app", "", ""), v1.ContainerPort{ContainerPort: 80})}}, nil},
		{"defaults", v1.PodSpec{Containers: []v1.Container{withPorts(tbC("app", "", ""), v1.ContainerPort{ContainerPort: 80, HostPort: 8080})}},
			[]hostPort{{ip: bindAll, protocol: v1.ProtocolTCP, port: 8080}}},
		{"specific IP and UDP", v1.PodSpec{Containers: []v1.Container{withPorts(tbC("app", "", ""), taPort("10.0.0.1", v1.ProtocolUDP, 53))}},
			[]hostPort{{ip: "10.0.0.1", protocol: v1.ProtocolUDP, port: 53}}},
		{"sidecar holds, init does not", v1.PodSpec{
			InitContainers: []v1.Container{
				withPorts(tbC("setup", "", ""), taPort("", "", 9000)),
				taSidecar(withPorts(tbC("proxy", "", ""), taPort("", "", 9100))),
			},
			Containers: []v1.Container{withPorts(tbC("app", "", ""), taPort("", "", 80))},
		}, []hostPort{{ip: bindAll, protocol: v1.ProtocolTCP, port: 9100}, {ip: bindAll, protocol: v1.ProtocolTCP, port: 80}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := podHostPorts(&tt.spec)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(hostPort{})); diff != "" {
				t.Errorf("podHostPorts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterPorts runs NodePorts on a node against bound pods' ports,
// including the API defaulting of host-network pods' ports.
func TestFilterPorts(t *testing.T) {
	bound := func(name string, mutate ...func(*v1.Pod)) *v1.Pod {
		return taPod(name, nil, append([]func(*v1.Pod){taOn("n1")}, mutate...)...)
	}
	hostNetwork := func(p *v1.Pod) { p.Spec.HostNetwork = true }
	tests := []struct {
		name     string
		existing []runtime.Object
		pod      *v1.Pod
		conflict bool
	}{
		{"free", nil, taPod("p", nil, taWithPorts(taPort("", "", 8080))), false},
		{"taken", []runtime.Object{bound("a", taWithPorts(taPort("", "", 8080)))}, taPod("p", nil, taWithPorts(taPort("", "", 8080))), true},
		{"taken over UDP only", []runtime.Object{bound("a", taWithPorts(taPort("", v1.ProtocolUDP, 8080)))},
			taPod("p", nil, taWithPorts(taPort("", "", 8080))), false},
		{"bound sidecar holds its port", []runtime.Object{bound("a", func(p *v1.Pod) {
			c := taSidecar(tbC("proxy", "", ""))
			c.Ports = []v1.ContainerPort{taPort("", "", 9100)}
			p.Spec.InitContainers = []v1.Container{c}
		})}, taPod("p", nil, taWithPorts(taPort("", "", 9100))), true},
		{"bound init container released its port", []runtime.Object{bound("a", func(p *v1.Pod) {
			c := tbC("setup", "", "")
			c.Ports = []v1.ContainerPort{taPort("", "", 9100)}
			p.Spec.InitContainers = []v1.Container{c}
		})}, taPod("p", nil, taWithPorts(taPort("", "", 9100))), false},
		{"host network makes the container port a host port", []runtime.Object{bound("a", taWithPorts(taPort("", "", 8443)))},
			taPod("p", nil, hostNetwork, taWithPorts(v1.ContainerPort{ContainerPort: 8443})), true},
		{"a bound host-network pod holds its container port", []runtime.Object{bound("a", hostNetwork, taWithPorts(v1.ContainerPort{ContainerPort: 8443}))},
			taPod("p", nil, taWithPorts(taPort("", "", 8443))), true},
		{"a Succeeded pod holds nothing", []runtime.Object{bound("a", taWithPorts(taPort("", "", 8080)), func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded })},
			taPod("p", nil, taWithPorts(taPort("", "", 8080))), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, unresolvable := taFilter(t, tt.pod, "n1", append([]runtime.Object{taNode("n1", "cpu=2")}, tt.existing...)...)
			if got := f != nil; got != tt.conflict {
				t.Fatalf("conflict = %v (failure %+v), want %v", got, f, tt.conflict)
			}
			if f != nil && (f.code != CodeHostPortConflict || unresolvable) {
				t.Errorf("failure = %s (unresolvable %v), want a resolvable %s", f.code, unresolvable, CodeHostPortConflict)
			}
		})
	}
}
