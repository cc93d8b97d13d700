package feasibility

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestValidateResources mirrors the apiserver validation that rejects a
// pod for its resources. Each case is checked after defaulting, as the
// apiserver does.
func TestValidateResources(t *testing.T) {
	podLevel := func(requests, limits string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Resources = &v1.ResourceRequirements{Requests: tbList(requests), Limits: tbList(limits)}
		}
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"plain requests", taPod("p", []v1.Container{tbC("app", "cpu=1,memory=1Gi", "cpu=2")}), nil},
		{"gpu request equal to limit", taPod("p", []v1.Container{tbC("app", "example.com/gpu=1", "example.com/gpu=1")}), nil},
		{"gpu limit alone (request defaults)", taPod("p", []v1.Container{tbC("app", "", "example.com/gpu=1")}), nil},
		{"gpu request without limit", taPod("p", []v1.Container{tbC("app", "example.com/gpu=1", "")}),
			[]string{"InvalidSpec permanent spec.containers[0].resources.limits.example.com/gpu"}},
		{"gpu request below limit", taPod("p", []v1.Container{tbC("app", "example.com/gpu=1", "example.com/gpu=2")}),
			[]string{"InvalidSpec permanent spec.containers[0].resources.requests.example.com/gpu"}},
		{"cpu request above limit", taPod("p", []v1.Container{tbC("app", "cpu=2", "cpu=1")}),
			[]string{"InvalidSpec permanent spec.containers[0].resources.requests.cpu"}},
		{"hugepages request below limit in an init container", taPod("p", nil, func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{tbC("setup", "memory=1Gi,hugepages-2Mi=2Mi", "memory=1Gi,hugepages-2Mi=4Mi")}
		}), []string{"InvalidSpec permanent spec.initContainers[0].resources.requests.hugepages-2Mi"}},
		{"hugepages without cpu or memory", taPod("p", []v1.Container{tbC("app", "hugepages-2Mi=2Mi", "hugepages-2Mi=2Mi")}),
			[]string{"InvalidSpec permanent spec.containers[0].resources"}},
		{"kubernetes.io resources may be overcommitted", taPod("p", []v1.Container{tbC("app", "ephemeral-storage=1Gi", "")}), nil},
		{"pod-level covers the containers", taPod("p", []v1.Container{tbC("a", "cpu=500m", ""), tbC("b", "cpu=500m", "")}, podLevel("cpu=1", "")), nil},
		{"pod-level limit defaults its request", taPod("p", []v1.Container{tbC("a", "cpu=200m", "")}, podLevel("", "cpu=2")), nil},
		{"pod-level request below the containers", taPod("p", []v1.Container{tbC("a", "cpu=600m", ""), tbC("b", "cpu=400m", "")}, podLevel("cpu=500m", "")),
			[]string{"InvalidSpec permanent spec.resources.requests.cpu"}},
		{"pod-level ephemeral storage", taPod("p", nil, podLevel("ephemeral-storage=1Gi", "")),
			[]string{"InvalidSpec permanent spec.resources"}},
		{"container limit above the pod-level limit", taPod("p", []v1.Container{tbC("a", "", "memory=2Gi")}, podLevel("", "memory=1Gi")),
			// The pod-level request defaults to the container's 2Gi
			// (its request, from its limit), above the 1Gi pod-level limit.
			[]string{"InvalidSpec permanent spec.resources.requests.memory", "InvalidSpec permanent spec.containers[0].resources.limits.memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.pod.Spec.DeepCopy()
			defaultPodSpec(spec)
			got := tbBrief(validateResources(spec, "spec"))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultPodSpecPodLevel checks pod-level request defaulting: from the
// containers' aggregate for cpu and memory when they request any, else
// from the pod-level limit; an explicit request is kept.
func TestDefaultPodSpecPodLevel(t *testing.T) {
	tests := []struct {
		name       string
		containers []v1.Container
		requests   string
		limits     string
		want       string
	}{
		{"limit over container requests", []v1.Container{tbC("a", "cpu=200m", ""), tbC("b", "cpu=100m", "")}, "", "cpu=2", "cpu=300m"},
		{"limit over container limits", []v1.Container{tbC("a", "", "memory=1Gi")}, "", "memory=3Gi", "memory=1Gi"},
		{"limit with no container request", []v1.Container{tbC("a", "", "")}, "", "memory=3Gi", "memory=3Gi"},
		{"mixed", []v1.Container{tbC("a", "cpu=250m", "")}, "", "cpu=1,memory=2Gi", "cpu=250m,memory=2Gi"},
		{"explicit request kept", []v1.Container{tbC("a", "cpu=200m", "")}, "cpu=1500m", "cpu=2", "cpu=1500m"},
		{"requests only", []v1.Container{tbC("a", "cpu=200m", "")}, "cpu=1", "", "cpu=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &v1.PodSpec{Containers: tt.containers,
				Resources: &v1.ResourceRequirements{Requests: tbList(tt.requests), Limits: tbList(tt.limits)}}
			defaultPodSpec(spec)
			if diff := cmp.Diff(resourcesFromList(tbList(tt.want)), resourcesFromList(spec.Resources.Requests)); diff != "" {
				t.Errorf("pod-level requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWithAPIDefaults checks that a bound pod read from a raw manifest is
// counted as the apiserver would store it, and that a pod already in its
// stored form is not copied.
func TestWithAPIDefaults(t *testing.T) {
	stored := taPod("p", []v1.Container{tbC("app", "cpu=1", "cpu=1")})
	if got := withAPIDefaults(stored); got != stored {
		t.Error("a pod with nothing to default was copied")
	}
	raw := taPod("p", []v1.Container{tbC("app", "", "cpu=1,example.com/gpu=1")})
	got := withAPIDefaults(raw)
	if got == raw {
		t.Fatal("a limits-only pod was not defaulted")
	}
	if raw.Spec.Containers[0].Resources.Requests != nil {
		t.Error("withAPIDefaults changed its argument")
	}
	if diff := cmp.Diff(resourcesFromList(tbList("cpu=1,example.com/gpu=1")), existingPodRequests(got)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	hostNet := taPod("p", nil, func(p *v1.Pod) { p.Spec.HostNetwork = true }, taWithPorts(v1.ContainerPort{ContainerPort: 8443}))
	ports := podHostPorts(&withAPIDefaults(hostNet).Spec)
	if len(ports) != 1 || ports[0].port != 8443 {
		t.Errorf("host-network pod ports = %v, want 8443 bound on the host", ports)
	}
}

// TestCheckLeavesWorkloadAlone checks that preparing the pod never writes
// into the workload it was given, which shares its maps and slices with
// the pod until a step needs to change one: API defaulting, RuntimeClass,
// Priority, default and DaemonSet tolerations, LimitRange defaults and
// controller labels all have something to change here. Two checks of the
// same workload run at once, so that `go test -race` sees any write.
func TestCheckLeavesWorkloadAlone(t *testing.T) {
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "sandboxed"}, Handler: "runc",
		Overhead: &nodev1.Overhead{PodFixed: tbList("cpu=250m")},
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "yes"},
			Tolerations: []v1.Toleration{{Key: "sandbox", Operator: v1.TolerationOpExists}}}}
	lr := &v1.LimitRange{ObjectMeta: tbMeta("defaults"), Spec: v1.LimitRangeSpec{Limits: []v1.LimitRangeItem{{
		Type: v1.LimitTypeContainer, Default: tbList("cpu=1,memory=1Gi"), DefaultRequest: tbList("cpu=100m")}}}}
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Value: 10, GlobalDefault: true}
	s := tbSnap(t, AllKinds, taNode("n1", "cpu=4,memory=8Gi", func(n *v1.Node) { n.Labels["sandbox"] = "yes" }), rc, lr, pc)

	spare := v1.Toleration{Key: "untouched"}
	for _, kind := range []string{"Pod", "Deployment", "DaemonSet"} {
		// API defaulting deep-copies the spec, so only a template that
		// needs none shows whether the later steps copy what they change.
		for _, defaults := range []bool{false, true} {
			// Which step appends to the tolerations first: tolerating
			// everything leaves the default tolerations out, so that the
			// DaemonSet's come first.
			for _, first := range []struct {
				name         string
				toleration   v1.Toleration
				runtimeClass *string
			}{
				{"runtime class", v1.Toleration{Key: "a", Operator: v1.TolerationOpExists}, tbPtr("sandboxed")},
				{"default tolerations", v1.Toleration{Key: "a", Operator: v1.TolerationOpExists}, nil},
				{"tolerating all", v1.Toleration{Operator: v1.TolerationOpExists}, nil},
			} {
				name := fmt.Sprintf("%s, API defaults %v, %s", kind, defaults, first.name)
				// Tolerations with spare capacity, where an append in place
				// would land unseen by DeepEqual.
				tolerations := append(make([]v1.Toleration, 0, 8), first.toleration)
				tolerations[:2][1] = spare
				spec := v1.PodSpec{
					InitContainers:   []v1.Container{tbC("init", "cpu=500m", "")},
					Containers:       []v1.Container{tbC("app", "memory=1Gi", "memory=1Gi"), {Name: "bare", Image: "img", Ports: []v1.ContainerPort{{ContainerPort: 8080}}}},
					NodeSelector:     map[string]string{"zone": "a"},
					Tolerations:      tolerations,
					RuntimeClassName: first.runtimeClass,
				}
				if defaults {
					spec.HostNetwork = true
					spec.Containers[0] = tbC("app", "", "cpu=2,memory=1Gi")
				}
				w := &Workload{Kind: kind, Namespace: tbNS, Name: "w", Replicas: 2, SpecPath: "spec.template.spec",
					Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "w"}}, Spec: spec}}
				before := w.Template.DeepCopy()
				done := make(chan *Report)
				for range 2 {
					go func() { done <- Check(s, w, nil) }()
				}
				r1, r2 := <-done, <-done
				if diff := cmp.Diff(before, &w.Template); diff != "" {
					t.Errorf("%s: Check changed the workload's template (-before +after):\n%s", name, diff)
				}
				if got := tolerations[:2][1]; !cmp.Equal(got, spare) {
					t.Errorf("%s: Check wrote %+v into the spare capacity of the workload's tolerations", name, got)
				}
				if diff := cmp.Diff(r1, r2); diff != "" {
					t.Errorf("%s: two checks of one workload differ:\n%s", name, diff)
				}
			}
		}
	}
}
