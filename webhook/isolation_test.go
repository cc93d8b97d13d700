package webhook

// Messages never name objects from other namespaces (issue #8, Security):
// whatever another tenant's pods do to a request (use its node's cpu, hold
// its host port, repel it with anti-affinity, or repel it by its own
// anti-affinity), the denial, the warnings and the audit annotations say
// what happened without saying whose pod it was or where it lives.

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fitgate/fitgate/feasibility"
)

// secrets the answers must not reveal: another namespace's name, its
// pods' names and labels.
var otherTenant = []string{"finance", "payroll", "ledger"}

// tenantFixture: one 4-cpu node, on which namespace "finance" runs
// payroll-db-0 (3 cpu, host port 8443, labels app=ledger, and a required
// anti-affinity against every pod of every namespace).
func tenantFixture(t *testing.T) *Handler {
	t.Helper()
	objs := []runtime.Object{
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelHostname: "node-a"}},
			Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"),
				v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110")}}},
		&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "finance"}},
		&v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "finance", Name: "payroll-db-0", Labels: map[string]string{"app": "ledger"}},
			Spec: v1.PodSpec{NodeName: "node-a",
				Containers: []v1.Container{{Name: "payroll", Ports: []v1.ContainerPort{{HostPort: 8443, ContainerPort: 8443, Protocol: v1.ProtocolTCP}},
					Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}}}},
				Affinity: &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					TopologyKey: v1.LabelHostname, NamespaceSelector: &metav1.LabelSelector{},
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"frontend"}}}}}}}}},
			Status: v1.PodStatus{Phase: v1.PodRunning}},
	}
	labels := map[string]map[string]string{nsStrict: {ModeLabel: "strict"}, nsWarn: {ModeLabel: "warn"}}
	for ns, l := range labels {
		objs = append(objs, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: l}},
			&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	snap, err := feasibility.NewSnapshotFrom(objs...)
	if err != nil {
		t.Fatal(err)
	}
	snap.MarkKnown(feasibility.AllKinds...)
	return &Handler{Source: &fakeSource{snap: snap, namespaces: labels}, Policy: DefaultPolicy("fitgate"), Metrics: NewMetrics()}
}

func TestAnswersNeverNameOtherNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func(s *v1.PodSpec, meta *metav1.ObjectMeta)
	}{
		{"cpu used by their pod", func(s *v1.PodSpec, _ *metav1.ObjectMeta) {
			s.Containers[0].Resources.Requests[v1.ResourceCPU] = resource.MustParse("2")
		}},
		{"host port held by their pod", func(s *v1.PodSpec, _ *metav1.ObjectMeta) {
			s.Containers[0].Ports = []v1.ContainerPort{{HostPort: 8443, ContainerPort: 8443, Protocol: v1.ProtocolTCP}}
		}},
		{"their anti-affinity repels us", func(_ *v1.PodSpec, m *metav1.ObjectMeta) {
			m.Labels = map[string]string{"tier": "frontend"}
		}},
		{"our anti-affinity against their pods", func(s *v1.PodSpec, _ *metav1.ObjectMeta) {
			s.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				TopologyKey: v1.LabelHostname, NamespaceSelector: &metav1.LabelSelector{},
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ledger"}}}}}}
		}},
		{"our affinity to pods nobody runs", func(s *v1.PodSpec, _ *metav1.ObjectMeta) {
			s.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				TopologyKey: v1.LabelHostname, NamespaceSelector: &metav1.LabelSelector{},
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}}}}}
		}},
	} {
		for _, ns := range []string{nsStrict, nsWarn} {
			for _, workload := range []bool{false, true} {
				name := tc.name + "/" + ns + "/pod"
				if workload {
					name = tc.name + "/" + ns + "/deployment"
				}
				t.Run(name, func(t *testing.T) {
					h := tenantFixture(t)
					var obj runtime.Object
					if workload {
						d := deployment(ns, "web", "500m", 2)
						tc.spec(&d.Spec.Template.Spec, &d.Spec.Template.ObjectMeta)
						obj = d
					} else {
						p := pod(ns, "web", "500m")
						tc.spec(&p.Spec, &p.ObjectMeta)
						obj = p
					}
					resp := handle(t, h, create(t, obj))
					answer := strings.Join(resp.Warnings, "\n")
					if resp.Result != nil {
						answer += "\n" + resp.Result.Message
					}
					for k, v := range resp.AuditAnnotations {
						answer += "\n" + k + "=" + v
					}
					if resp.Allowed && len(resp.Warnings) == 0 {
						t.Fatalf("no finding at all; the scenario did not bite: %s", answer)
					}
					for _, leak := range otherTenant {
						if strings.Contains(answer, leak) {
							t.Errorf("answer names %q from another namespace:\n%s", leak, answer)
						}
					}
					t.Logf("allowed %v:\n%s", resp.Allowed, answer)
				})
			}
		}
	}
}
