package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func tbLR(name string, items ...v1.LimitRangeItem) *v1.LimitRange {
	return &v1.LimitRange{ObjectMeta: tbMeta(name), Spec: v1.LimitRangeSpec{Limits: items}}
}

func tbCItem(min, max, def, defReq, ratio string) v1.LimitRangeItem {
	return v1.LimitRangeItem{Type: v1.LimitTypeContainer, Min: tbList(min), Max: tbList(max),
		Default: tbList(def), DefaultRequest: tbList(defReq), MaxLimitRequestRatio: tbList(ratio)}
}

// tbRes renders a container's resources as "requests | limits" for diffs.
func tbRes(c v1.Container) [2]map[string]string {
	show := func(l v1.ResourceList) map[string]string {
		m := map[string]string{}
		for k, v := range l {
			m[string(k)] = v.String()
		}
		return m
	}
	return [2]map[string]string{show(c.Resources.Requests), show(c.Resources.Limits)}
}

func TestApplyLimitRangeDefaults(t *testing.T) {
	m := func(s string) map[string]string {
		out := map[string]string{}
		for k, v := range tbList(s) {
			out[string(k)] = v.String()
		}
		return out
	}
	tests := []struct {
		name string
		lrs  []*v1.LimitRange
		c    v1.Container
		want [2]map[string]string
	}{
		{"fills only what is missing", []*v1.LimitRange{tbLR("l", tbCItem("", "", "cpu=1,memory=1Gi", "cpu=100m,memory=128Mi", ""))},
			tbC("a", "cpu=200m", ""), [2]map[string]string{m("cpu=200m,memory=128Mi"), m("cpu=1,memory=1Gi")}},
		{"undefaulted manifest: max becomes default limit and request", []*v1.LimitRange{tbLR("l", tbCItem("", "cpu=2", "", "", ""))},
			tbC("a", "", ""), [2]map[string]string{m("cpu=2"), m("cpu=2")}},
		{"min alone becomes the default request only", []*v1.LimitRange{tbLR("l", tbCItem("memory=64Mi", "", "", "", ""))},
			tbC("a", "", ""), [2]map[string]string{m("memory=64Mi"), m("")}},
		{"default wins over max, defaultRequest over default", []*v1.LimitRange{tbLR("l", tbCItem("cpu=10m", "cpu=4", "cpu=1", "cpu=250m", ""))},
			tbC("a", "", ""), [2]map[string]string{m("cpu=250m"), m("cpu=1")}},
		{"first LimitRange to name a resource wins", []*v1.LimitRange{
			tbLR("a", tbCItem("", "", "cpu=1", "", "")), tbLR("b", tbCItem("", "", "cpu=3,memory=1Gi", "", ""))},
			tbC("a", "", ""), [2]map[string]string{m("cpu=1,memory=1Gi"), m("cpu=1,memory=1Gi")}},
		{"Pod items give no defaults", []*v1.LimitRange{tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")})},
			tbC("a", "", ""), [2]map[string]string{m(""), m("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []*v1.LimitRange{}
			objs = append(objs, tt.lrs...)
			s := NewSnapshot()
			for _, lr := range objs {
				if err := s.Upsert(lr); err != nil {
					t.Fatal(err)
				}
			}
			pod := tbPod(tt.c)
			applyLimitRangeDefaults(s, pod)
			if d := cmp.Diff(tt.want, tbRes(pod.Spec.Containers[0])); d != "" {
				t.Errorf("after one pass (-want +got):\n%s", d)
			}
			applyLimitRangeDefaults(s, pod)
			if d := cmp.Diff(tt.want, tbRes(pod.Spec.Containers[0])); d != "" {
				t.Errorf("not idempotent (-want +got):\n%s", d)
			}
		})
	}
}

func TestApplyLimitRangeDefaultsScope(t *testing.T) {
	lr := tbLR("l", tbCItem("", "", "cpu=1", "cpu=1", ""))
	other := lr.DeepCopy()
	other.Namespace, other.Name = "elsewhere", "x"
	other.Spec.Limits[0].Default = tbList("memory=1Gi")
	s := tbSnap(t, nil, lr, other)

	shared := tbList("cpu=500m")
	pod := tbPod(v1.Container{Name: "app", Resources: v1.ResourceRequirements{Requests: shared}})
	pod.Spec.InitContainers = []v1.Container{tbC("init", "", "")}
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg"}}}
	pod.Spec.Resources = &v1.ResourceRequirements{Limits: tbList("cpu=4")} // pod-level: no exemption
	applyLimitRangeDefaults(s, pod)

	got := map[string][2]map[string]string{
		"app": tbRes(pod.Spec.Containers[0]), "init": tbRes(pod.Spec.InitContainers[0]),
		"shared": tbRes(v1.Container{Resources: v1.ResourceRequirements{Requests: shared}}),
	}
	want := map[string][2]map[string]string{
		"app":    {{"cpu": "500m"}, {"cpu": "1"}},
		"init":   {{"cpu": "1"}, {"cpu": "1"}},
		"shared": {{"cpu": "500m"}, {}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if r := pod.Spec.EphemeralContainers[0].Resources; r.Limits != nil || r.Requests != nil {
		t.Errorf("ephemeral container got defaults: %v", r)
	}
}

func TestCheckLimitRanges(t *testing.T) {
	const sp = "spec.template.spec"
	tests := []struct {
		name string
		lr   *v1.LimitRange
		pod  *v1.Pod
		want []string
	}{
		{"limit exactly at max", tbLR("l", tbCItem("", "cpu=2", "", "", "")),
			tbPod(tbC("a", "cpu=2", "cpu=2")), nil},
		{"limit over max", tbLR("l", tbCItem("", "cpu=2", "", "", "")),
			tbPod(tbC("a", "cpu=1", "cpu=2001m")), []string{"LimitRangeMaxExceeded permanent " + sp + ".containers[0].resources.limits.cpu"}},
		{"only max, container without limit", tbLR("l", tbCItem("", "memory=1Gi", "", "", "")),
			tbPod(tbC("a", "memory=1Gi", "")), []string{"LimitRangeMaxExceeded permanent " + sp + ".containers[0].resources.limits.memory"}},
		{"pod requests over max while partial limits are under it", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")}),
			tbPod(tbC("a", "cpu=2", ""), tbC("b", "cpu=1", "cpu=1")), []string{"LimitRangeMaxExceeded permanent "}},
		{"request exactly at min", tbLR("l", tbCItem("cpu=100m", "", "", "", "")),
			tbPod(tbC("a", "cpu=100m", "")), nil},
		{"request under min", tbLR("l", tbCItem("cpu=100m", "", "", "", "")),
			tbPod(tbC("a", "cpu=99m", "")), []string{"LimitRangeMinNotMet permanent " + sp + ".containers[0].resources.requests.cpu"}},
		{"no request under min", tbLR("l", tbCItem("cpu=100m", "", "", "", "")),
			tbPod(tbC("a", "", "")), []string{"LimitRangeMinNotMet permanent " + sp + ".containers[0].resources.requests.cpu"}},
		{"init container judged too", tbLR("l", tbCItem("", "cpu=1", "", "", "")),
			func() *v1.Pod {
				p := tbPod(tbC("a", "cpu=1", "cpu=1"))
				p.Spec.InitContainers = []v1.Container{tbC("i", "cpu=1", "cpu=3")}
				return p
			}(), []string{"LimitRangeMaxExceeded permanent " + sp + ".initContainers[0].resources.limits.cpu"}},
		{"ratio exactly at max", tbLR("l", tbCItem("", "", "", "", "cpu=2")),
			tbPod(tbC("a", "cpu=500m", "cpu=1")), nil},
		{"ratio over max", tbLR("l", tbCItem("", "", "", "", "cpu=2")),
			tbPod(tbC("a", "cpu=499m", "cpu=1")), []string{"LimitRangeRatioExceeded permanent " + sp + ".containers[0].resources.limits.cpu"}},
		{"ratio without limit", tbLR("l", tbCItem("", "", "", "", "memory=2")),
			tbPod(tbC("a", "memory=1Gi", "")), []string{"LimitRangeRatioExceeded permanent " + sp + ".containers[0].resources.limits.memory"}},
		{"pod max sums containers", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")}),
			tbPod(tbC("a", "cpu=1", "cpu=1"), tbC("b", "cpu=1", "cpu=1001m")), []string{"LimitRangeMaxExceeded permanent "}},
		{"pod max at the sum", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")}),
			tbPod(tbC("a", "cpu=1", "cpu=1"), tbC("b", "cpu=1", "cpu=1")), nil},
		{"pod max counts the init container peak, not overhead", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")}),
			func() *v1.Pod {
				p := tbPod(tbC("a", "cpu=1", "cpu=1"))
				p.Spec.InitContainers = []v1.Container{tbC("i", "cpu=3", "cpu=3")}
				p.Spec.Overhead = tbList("cpu=1")
				return p
			}(), []string{"LimitRangeMaxExceeded permanent "}},
		{"pod-level limits replace the sum", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("cpu=2")}),
			func() *v1.Pod {
				p := tbPod(tbC("a", "", ""), tbC("b", "", ""))
				p.Spec.Resources = &v1.ResourceRequirements{Requests: tbList("cpu=2"), Limits: tbList("cpu=2")}
				return p
			}(), nil},
		{"pod max with no limits at all", tbLR("l", v1.LimitRangeItem{Type: v1.LimitTypePod, Max: tbList("memory=1Gi")}),
			tbPod(tbC("a", "memory=100Mi", "")), []string{"LimitRangeMaxExceeded permanent "}},
		{"default limit below an explicit request", tbLR("l", tbCItem("", "", "cpu=1", "", "")),
			tbPod(tbC("a", "cpu=2", "cpu=1")), []string{"LimitRangeDefaultLimitBelowRequest permanent " + sp + ".containers[0].resources.limits.cpu"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tbSnap(t, nil, tt.lr)
			if d := cmp.Diff(tt.want, tbBrief(checkLimitRanges(s, tt.pod, sp))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCheckLimitRangesMessage(t *testing.T) {
	s := tbSnap(t, nil, tbLR("limits", tbCItem("", "cpu=2", "", "", "cpu=3")))
	pod := tbPod(tbC("app", "cpu=1", "cpu=4"))
	applyLimitRangeDefaults(s, pod)
	want := []Reason{{
		Code: CodeLimitRangeMax, Severity: SeverityPermanent, Field: "spec.containers[0].resources.limits.cpu",
		Message: `LimitRange "limits": container "app": maximum cpu usage per Container is 2, but limit is 4`,
		Details: map[string]string{"limitRange": "limits", "resource": "cpu", "type": "Container", "bound": "2", "request": "1", "limit": "4"},
	}, {
		Code: CodeLimitRangeRatio, Severity: SeverityPermanent, Field: "spec.containers[0].resources.limits.cpu",
		Message: `LimitRange "limits": container "app": cpu max limit to request ratio per Container is 3, but provided ratio is 4 (limit 4, request 1)`,
		Details: map[string]string{"limitRange": "limits", "resource": "cpu", "type": "Container", "bound": "3", "request": "1", "limit": "4"},
	}}
	if d := cmp.Diff(want, checkLimitRanges(s, pod, "spec")); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestLRComparableMatchesPluginRounding(t *testing.T) {
	// 0.5m rounds up to 1m in the plugin, so it meets a 1m minimum.
	r, _, m := lrComparable(resource.MustParse("0.0005"), resource.Quantity{}, resource.MustParse("1m"))
	if r < m {
		t.Errorf("request %d < min %d, want it to meet the minimum as upstream does", r, m)
	}
}
