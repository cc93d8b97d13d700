package feasibility

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tbQuota is a quota whose status the controller has computed.
func tbQuota(name, hard, used string, scopes ...v1.ResourceQuotaScope) *v1.ResourceQuota {
	return &v1.ResourceQuota{ObjectMeta: tbMeta(name),
		Spec:   v1.ResourceQuotaSpec{Hard: tbList(hard), Scopes: scopes},
		Status: v1.ResourceQuotaStatus{Hard: tbList(hard), Used: tbList(used)}}
}

func tbScoped(q *v1.ResourceQuota, exprs ...v1.ScopedResourceSelectorRequirement) *v1.ResourceQuota {
	q.Spec.ScopeSelector = &v1.ScopeSelector{MatchExpressions: exprs}
	return q
}

func tbPC(op v1.ScopeSelectorOperator, values ...string) v1.ScopedResourceSelectorRequirement {
	return v1.ScopedResourceSelectorRequirement{ScopeName: v1.ResourceQuotaScopePriorityClass, Operator: op, Values: values}
}

func TestCheckQuotas(t *testing.T) {
	burst := tbPod(tbC("app", "cpu=500m,memory=256Mi", "cpu=1,memory=512Mi"))
	bestEffort := tbPod(tbC("app", "", ""))
	withPC := func(name string) *v1.Pod {
		p := burst.DeepCopy()
		p.Spec.PriorityClassName = name
		return p
	}
	terminating := burst.DeepCopy()
	terminating.Spec.ActiveDeadlineSeconds = tbPtr(int64(60))
	crossNS := burst.DeepCopy()
	crossNS.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 1,
			PodAffinityTerm: v1.PodAffinityTerm{TopologyKey: "zone", NamespaceSelector: &metav1.LabelSelector{}}}}}}
	podLevel := tbPod(tbC("app", "", ""), tbC("side", "", ""))
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: tbList("cpu=1"), Limits: tbList("cpu=1")}
	gpu := tbPod(tbC("app", "cpu=1,nvidia.com/gpu=1,hugepages-2Mi=4Mi", "cpu=1,nvidia.com/gpu=1,hugepages-2Mi=4Mi"))
	withInit := burst.DeepCopy()
	withInit.Spec.InitContainers = []v1.Container{tbC("setup", "cpu=100m", "")}
	overhead := burst.DeepCopy()
	overhead.Spec.Overhead = tbList("cpu=500m")

	tests := []struct {
		name     string
		quotas   []*v1.ResourceQuota
		pod      *v1.Pod
		replicas int32
		admitted int32
		want     []string
	}{
		{"no quota", nil, burst, 3, 3, nil},
		{"room for exactly all replicas", []*v1.ResourceQuota{tbQuota("q", "requests.cpu=2", "requests.cpu=500m")}, burst, 3, 3, nil},
		{"one millicore short", []*v1.ResourceQuota{tbQuota("q", "requests.cpu=1999m", "requests.cpu=500m")}, burst, 3, 2,
			[]string{"QuotaExceeded transient "}},
		{"plain cpu means requests", []*v1.ResourceQuota{tbQuota("q", "cpu=1", "cpu=0")}, burst, 3, 2, []string{"QuotaExceeded transient "}},
		{"limits counted separately", []*v1.ResourceQuota{tbQuota("q", "limits.memory=1Gi", "limits.memory=0")}, burst, 3, 2,
			[]string{"QuotaExceeded transient "}},
		{"pod count", []*v1.ResourceQuota{tbQuota("q", "pods=5", "pods=3")}, burst, 3, 2, []string{"QuotaExceeded transient "}},
		{"count/pods", []*v1.ResourceQuota{tbQuota("q", "count/pods=5", "count/pods=5")}, burst, 1, 0, []string{"QuotaExceeded transient "}},
		{"already over hard admits none", []*v1.ResourceQuota{tbQuota("q", "pods=2", "pods=4")}, burst, 1, 0, []string{"QuotaExceeded transient "}},
		{"one pod bigger than the quota", []*v1.ResourceQuota{tbQuota("q", "requests.memory=255Mi", "requests.memory=0")}, burst, 3, 0,
			[]string{"QuotaTooSmall permanent "}},
		{"overhead is charged", []*v1.ResourceQuota{tbQuota("q", "requests.cpu=999m", "requests.cpu=0")}, overhead, 1, 0,
			[]string{"QuotaTooSmall permanent "}},
		{"smallest quota wins", []*v1.ResourceQuota{tbQuota("a", "pods=10", "pods=0"), tbQuota("b", "requests.cpu=1", "requests.cpu=0")}, burst, 3, 2,
			[]string{"QuotaExceeded transient "}},
		{"status not computed yet: not judged on room", []*v1.ResourceQuota{{ObjectMeta: tbMeta("new"),
			Spec: v1.ResourceQuotaSpec{Hard: tbList("pods=1")}}}, burst, 3, 3, nil},
		{"status not computed yet: still too small", []*v1.ResourceQuota{{ObjectMeta: tbMeta("new"),
			Spec: v1.ResourceQuotaSpec{Hard: tbList("pods=0")}}}, burst, 3, 0, []string{"QuotaTooSmall permanent "}},
		{"missing limit", []*v1.ResourceQuota{tbQuota("q", "limits.cpu=10", "limits.cpu=0")}, tbPod(tbC("app", "cpu=1", "")), 1, 0,
			[]string{"QuotaRequiresField permanent spec.containers[0].resources.limits.cpu"}},
		{"missing request in an init container", []*v1.ResourceQuota{tbQuota("q", "memory=10Gi", "memory=0")}, withInit, 1, 0,
			[]string{"QuotaRequiresField permanent spec.initContainers[0].resources.requests.memory"}},
		{"ephemeral-storage is not required", []*v1.ResourceQuota{tbQuota("q", "requests.ephemeral-storage=1Gi", "requests.ephemeral-storage=0")}, burst, 2, 2, nil},
		{"pod-level resources lift the field rule", []*v1.ResourceQuota{tbQuota("q", "requests.cpu=2,limits.cpu=2", "requests.cpu=0,limits.cpu=0")},
			podLevel, 3, 2, []string{"QuotaExceeded transient "}},
		{"extended resource and hugepages", []*v1.ResourceQuota{tbQuota("q", "requests.nvidia.com/gpu=2,requests.hugepages-2Mi=8Mi",
			"requests.nvidia.com/gpu=1,requests.hugepages-2Mi=0")}, gpu, 3, 1, []string{"QuotaExceeded transient "}},
		{"quota tracking nothing pods use", []*v1.ResourceQuota{tbQuota("q", "services=0", "services=0")}, burst, 3, 3, nil},
		{"other namespace ignored", []*v1.ResourceQuota{func() *v1.ResourceQuota {
			q := tbQuota("q", "pods=0", "pods=0")
			q.Namespace = "other"
			return q
		}()}, burst, 3, 3, nil},
		{"no replicas, no judgement", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0")}, burst, 0, 0, nil},
		{"BestEffort scope matches a best-effort pod", []*v1.ResourceQuota{tbQuota("q", "pods=1", "pods=0", v1.ResourceQuotaScopeBestEffort)},
			bestEffort, 2, 1, []string{"QuotaExceeded transient "}},
		{"BestEffort scope skips a burstable pod", []*v1.ResourceQuota{tbQuota("q", "pods=1", "pods=0", v1.ResourceQuotaScopeBestEffort)},
			burst, 2, 2, nil},
		{"NotBestEffort scope", []*v1.ResourceQuota{tbQuota("q", "pods=1", "pods=0", v1.ResourceQuotaScopeNotBestEffort)},
			burst, 2, 1, []string{"QuotaExceeded transient "}},
		{"Terminating scope skips a long-running pod", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0", v1.ResourceQuotaScopeTerminating)},
			burst, 2, 2, nil},
		{"Terminating scope matches a deadline", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0", v1.ResourceQuotaScopeTerminating)},
			terminating, 2, 0, []string{"QuotaTooSmall permanent "}},
		{"NotTerminating scope", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0", v1.ResourceQuotaScopeNotTerminating)},
			terminating, 2, 2, nil},
		{"cross-namespace affinity forbidden by a zero quota", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0",
			v1.ResourceQuotaScopeCrossNamespacePodAffinity)}, crossNS, 1, 0, []string{"QuotaTooSmall permanent "}},
		{"cross-namespace scope skips plain pods", []*v1.ResourceQuota{tbQuota("q", "pods=0", "pods=0",
			v1.ResourceQuotaScopeCrossNamespacePodAffinity)}, burst, 1, 1, nil},
		{"PriorityClass In matches", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC(v1.ScopeSelectorOpIn, "high"))},
			withPC("high"), 1, 0, []string{"QuotaTooSmall permanent "}},
		{"PriorityClass In skips others", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC(v1.ScopeSelectorOpIn, "high"))},
			withPC("low"), 1, 1, nil},
		{"PriorityClass NotIn matches a pod without class", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC(v1.ScopeSelectorOpNotIn, "high"))},
			burst, 1, 0, []string{"QuotaTooSmall permanent "}},
		{"PriorityClass Exists skips a pod without class", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC(v1.ScopeSelectorOpExists))},
			burst, 1, 1, nil},
		{"PriorityClass DoesNotExist", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC(v1.ScopeSelectorOpDoesNotExist))},
			withPC("low"), 1, 1, nil},
		{"malformed selector is not ours to flag", []*v1.ResourceQuota{tbScoped(tbQuota("q", "pods=0", "pods=0"), tbPC("Near", "high"))},
			withPC("high"), 1, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSnapshot()
			for _, q := range tt.quotas {
				if err := s.Upsert(q); err != nil {
					t.Fatal(err)
				}
			}
			got, reasons := checkQuotas(s, tt.pod, tt.replicas, "spec")
			if got != tt.admitted {
				t.Errorf("admitted = %d, want %d", got, tt.admitted)
			}
			if d := cmp.Diff(tt.want, tbBrief(reasons)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCheckQuotasMessages(t *testing.T) {
	pod := tbPod(tbC("app", "cpu=501m", ""), tbC("side", "cpu=0", ""))
	tests := []struct {
		name  string
		quota *v1.ResourceQuota
		want  []Reason
	}{
		{"exceeded", tbQuota("compute", "requests.cpu=1700m", "requests.cpu=200m"), []Reason{{
			Code: CodeQuotaExceeded, Severity: SeverityTransient,
			Message: "exceeded quota: compute, requested: requests.cpu=501m, used: requests.cpu=1202m, limited: requests.cpu=1700m; the quota has room for 2 of 3 replicas",
			Details: map[string]string{"quota": "compute", "requested": "requests.cpu=501m", "used": "requests.cpu=1202m",
				"limited": "requests.cpu=1700m", "admitted": "2", "replicas": "3"},
		}}},
		{"too small", tbQuota("compute", "requests.cpu=500m", "requests.cpu=0"), []Reason{{
			Code: CodeQuotaTooSmall, Severity: SeverityPermanent,
			Message: `quota "compute" limits requests.cpu to 500m; one pod needs 501m`,
			Details: map[string]string{"quota": "compute", "resource": "requests.cpu", "hard": "500m", "requested": "501m"},
		}}},
		{"missing fields", tbQuota("compute", "limits.cpu=4,requests.memory=1Gi", "limits.cpu=0,requests.memory=0"), []Reason{{
			Code: CodeQuotaMissingField, Severity: SeverityPermanent, Field: "spec.containers[0].resources.limits.cpu",
			Message: "failed quota: compute: must specify limits.cpu for: app,side; requests.memory for: app,side",
			Details: map[string]string{"quota": "compute", "missing": "limits.cpu for: app,side; requests.memory for: app,side"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := checkQuotas(tbSnap(t, nil, tt.quota), pod, 3, "spec")
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestQuotaFloorDiv(t *testing.T) {
	tests := []struct {
		hard, used, per string
		want            int64
	}{
		{"1", "0", "500m", 2},
		{"1", "1m", "500m", 1},
		{"1Gi", "0", "1Gi", 1},
		{"1Gi", "1", "1Gi", 0},
		{"10", "12", "1", 0},
		{"1", "0", "0.0001", 10000},
	}
	for _, tt := range tests {
		t.Run(tt.hard+"-"+tt.used+"/"+tt.per, func(t *testing.T) {
			l := tbList("h=" + tt.hard + ",u=" + tt.used + ",p=" + tt.per)
			if got := quotaFloorDiv(l["h"], l["u"], l["p"]); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
