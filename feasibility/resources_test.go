package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	resourcehelper "k8s.io/component-helpers/resource"
)

// TestFilterResources mirrors NodeResourcesFit: the pod count, then cpu,
// memory, ephemeral storage and scalar resources against allocatable minus
// what bound pods request. Every short resource is reported, and one is
// unresolvable only when the request exceeds the node's whole allocatable.
func TestFilterResources(t *testing.T) {
	tests := []struct {
		name         string
		alloc        string
		used         []string // requests of bound pods, one pod each
		requests     string
		limits       string
		wantReasons  []string
		unresolvable bool
	}{
		{"cpu equal to free", "cpu=2", []string{"cpu=1500m"}, "cpu=500m", "", nil, false},
		{"cpu one milli over", "cpu=2", []string{"cpu=1500m"}, "cpu=501m", "", []string{"Insufficient cpu"}, false},
		{"cpu above allocatable", "cpu=2", nil, "cpu=2001m", "", []string{"Insufficient cpu"}, true},
		{"memory equal to allocatable", "memory=2Gi", nil, "memory=2Gi", "", nil, false},
		{"memory one byte over", "memory=4Gi", []string{"memory=3Gi"}, "memory=1073741825", "", []string{"Insufficient memory"}, false},
		{"ephemeral equal", "ephemeral-storage=10Gi", []string{"ephemeral-storage=6Gi"}, "ephemeral-storage=4Gi", "", nil, false},
		{"ephemeral over", "ephemeral-storage=10Gi", []string{"ephemeral-storage=6Gi"}, "ephemeral-storage=4097Mi", "", []string{"Insufficient ephemeral-storage"}, false},
		{"ephemeral on a node reporting none", "cpu=2", nil, "ephemeral-storage=1Gi", "", []string{"Insufficient ephemeral-storage"}, true},
		{"hugepages equal", "memory=8Gi,hugepages-2Mi=8Mi", []string{"memory=64Mi,hugepages-2Mi=4Mi"},
			"memory=64Mi,hugepages-2Mi=4Mi", "memory=64Mi,hugepages-2Mi=4Mi", nil, false},
		{"hugepages one page over", "memory=8Gi,hugepages-2Mi=8Mi", []string{"memory=64Mi,hugepages-2Mi=4Mi"},
			"memory=64Mi,hugepages-2Mi=6Mi", "memory=64Mi,hugepages-2Mi=6Mi", []string{"Insufficient hugepages-2Mi"}, false},
		{"gpu equal", "example.com/gpu=4", []string{"example.com/gpu=2"}, "example.com/gpu=2", "example.com/gpu=2", nil, false},
		{"gpu over", "example.com/gpu=4", []string{"example.com/gpu=2"}, "example.com/gpu=3", "example.com/gpu=3", []string{"Insufficient example.com/gpu"}, false},
		{"gpu on a node without any", "cpu=8", nil, "example.com/gpu=1", "example.com/gpu=1", []string{"Insufficient example.com/gpu"}, true},
		{"gpu from a limit alone", "example.com/gpu=2", []string{"example.com/gpu=1"}, "", "example.com/gpu=2", []string{"Insufficient example.com/gpu"}, false},
		{"zero requests on a zero-cpu node", "memory=1Gi", nil, "", "", nil, false},
		{"pods at allocatable", "cpu=4,pods=2", []string{"", ""}, "", "", []string{"Too many pods"}, false},
		{"pods one below allocatable", "cpu=4,pods=2", []string{""}, "cpu=100m", "", nil, false},
		{"every short resource, in the scheduler's order", "cpu=2,memory=4Gi,pods=1,example.com/a=1,example.com/b=1",
			[]string{"cpu=1500m,memory=3Gi,example.com/a=1,example.com/b=1"},
			"cpu=1,memory=2Gi,example.com/a=1,example.com/b=1", "example.com/a=1,example.com/b=1",
			[]string{"Too many pods", "Insufficient cpu", "Insufficient memory", "Insufficient example.com/a", "Insufficient example.com/b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := []runtime.Object{taNode("n1", tt.alloc)}
			for i, u := range tt.used {
				var c v1.Container
				if hasScalarLimitNeed(u) {
					c = tbC("app", u, u)
				} else {
					c = tbC("app", u, "")
				}
				cluster = append(cluster, taPod(string(rune('a'+i)), []v1.Container{c}, taOn("n1")))
			}
			pod := taPod("p", []v1.Container{tbC("app", tt.requests, tt.limits)})
			f, unresolvable := taFilter(t, pod, "n1", cluster...)
			var got []string
			if f != nil {
				got = f.reasons()
			}
			if diff := cmp.Diff(tt.wantReasons, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if unresolvable != tt.unresolvable {
				t.Errorf("unresolvable = %v, want %v", unresolvable, tt.unresolvable)
			}
		})
	}
}

// hasScalarLimitNeed reports whether a tbList spec names a resource that
// cannot be overcommitted, which a valid pod must also limit.
func hasScalarLimitNeed(spec string) bool {
	for name := range tbList(spec) {
		if !overcommitAllowed(name) {
			return true
		}
	}
	return false
}

// TestCandidateRequests checks the effective request the scheduler
// computes for a pending pod: the larger of the biggest init container and
// the containers, sidecars adding to both, plus RuntimeClass overhead, or
// pod-level resources when set, after API defaulting.
func TestCandidateRequests(t *testing.T) {
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "sandboxed"}, Handler: "runc",
		Overhead: &nodev1.Overhead{PodFixed: tbList("cpu=250m,memory=64Mi")}}
	init := func(cs ...v1.Container) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Spec.InitContainers = cs }
	}
	podLevel := func(requests, limits string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Resources = &v1.ResourceRequirements{Requests: tbList(requests), Limits: tbList(limits)}
		}
	}
	app := func(requests string) []v1.Container { return []v1.Container{tbC("app", requests, "")} }
	tests := []struct {
		name string
		pod  *v1.Pod
		want string // in tbList form
	}{
		{"containers summed", taPod("p", []v1.Container{tbC("a", "cpu=1", ""), tbC("b", "cpu=500m", "")}), "cpu=1500m"},
		{"init container dominates", taPod("p", app("cpu=1"), init(tbC("i", "cpu=2", ""))), "cpu=2"},
		{"init containers not summed", taPod("p", app("cpu=500m"), init(tbC("i1", "cpu=1", ""), tbC("i2", "cpu=1", ""))), "cpu=1"},
		{"sidecar adds to containers", taPod("p", app("cpu=1"), init(taSidecar(tbC("s", "cpu=500m", "")))), "cpu=1500m"},
		{"sidecar adds to a later init container", taPod("p", app("cpu=200m"),
			init(taSidecar(tbC("s", "cpu=500m", "")), tbC("i", "cpu=1500m", ""))), "cpu=2"},
		{"init before the sidecar does not", taPod("p", app("cpu=200m"),
			init(tbC("i", "cpu=1500m", ""), taSidecar(tbC("s", "cpu=500m", "")))), "cpu=1500m"},
		{"limits become requests", taPod("p", []v1.Container{tbC("a", "", "cpu=2,memory=512Mi")}), "cpu=2,memory=512Mi"},
		{"runtime class overhead", taPod("p", app("cpu=1"), func(p *v1.Pod) { p.Spec.RuntimeClassName = tbPtr("sandboxed") }),
			"cpu=1250m,memory=64Mi"},
		{"pod-level request wins", taPod("p", []v1.Container{tbC("a", "cpu=500m", ""), tbC("b", "cpu=500m", "")}, podLevel("cpu=1500m", "")), "cpu=1500m"},
		{"pod-level limit over container requests", taPod("p", []v1.Container{tbC("a", "cpu=200m", ""), tbC("b", "cpu=100m", "")}, podLevel("", "cpu=2")), "cpu=300m"},
		{"pod-level limit without container requests", taPod("p", app(""), podLevel("", "memory=3Gi")), "memory=3Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tbSnap(t, AllKinds, rc)
			w, err := WorkloadFromObject(tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := preparePod(s, w)
			got := newCandidate(s, p).requests
			if diff := cmp.Diff(resourcesFromList(tbList(tt.want)), got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPodRequestsShortcut checks that podRequests, which reads a lone
// container's requests directly, agrees with resourcehelper.PodRequests,
// which it stands for, on pods it shortcuts and pods it does not.
func TestPodRequestsShortcut(t *testing.T) {
	podLevel := func(p *v1.Pod) { p.Spec.Resources = &v1.ResourceRequirements{Requests: tbList("cpu=3")} }
	podLevelLimits := func(p *v1.Pod) { p.Spec.Resources = &v1.ResourceRequirements{Limits: tbList("cpu=3")} }
	overhead := func(p *v1.Pod) { p.Spec.Overhead = tbList("cpu=250m,memory=64Mi") }
	init := func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{tbC("i", "cpu=2,memory=1Gi", "")} }
	sidecar := func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{taSidecar(tbC("s", "cpu=500m", ""))} }
	pods := []*v1.Pod{
		taPod("p", []v1.Container{tbC("app", "", "")}),
		taPod("p", []v1.Container{{Name: "app", Image: "img"}}),
		taPod("p", []v1.Container{tbC("app", "cpu=1500m,memory=1Gi,ephemeral-storage=2Gi", "")}),
		taPod("p", []v1.Container{tbC("app", "cpu=0.0001,memory=1.5", "")}),
		taPod("p", []v1.Container{tbC("app", "cpu=1,example.com/gpu=2,hugepages-2Mi=4Mi,pods=3", "example.com/gpu=2,hugepages-2Mi=4Mi")}),
		taPod("p", []v1.Container{tbC("app", "cpu=1", ""), tbC("b", "cpu=0.0001", "")}),
		taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, podLevel),
		taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, podLevelLimits),
		taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, overhead),
		taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, init),
		taPod("p", []v1.Container{tbC("app", "cpu=1", "")}, sidecar),
		{ObjectMeta: metav1.ObjectMeta{Name: "none"}},
	}
	for i, p := range pods {
		want := resourcesFromList(resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}))
		if diff := cmp.Diff(want, podRequests(p)); diff != "" {
			t.Errorf("pod %d: requests (-PodRequests +podRequests):\n%s", i, diff)
		}
	}
}

func TestIsScalarResource(t *testing.T) {
	tests := []struct {
		name v1.ResourceName
		want bool
	}{
		{"cpu", false},
		{"memory", false},
		{"ephemeral-storage", false},
		{"hugepages-2Mi", true},
		{"hugepages-1Gi", true},
		{"example.com/gpu", true},
		{"nvidia.com/gpu", true},
		{"attachable-volumes-csi-ebs", true},
		{"kubernetes.io/foo", false},
		{"foo.kubernetes.io/bar", false},
		{"requests.example.com/gpu", false},
	}
	for _, tt := range tests {
		if got := isScalarResource(tt.name); got != tt.want {
			t.Errorf("isScalarResource(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
