package feasibility

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// tcTerm is a required term over the label key/value pairs, changed by
// mutate (namespaces, namespaceSelector, matchLabelKeys...).
func tcTerm(key string, sel *metav1.LabelSelector, mutate ...func(*v1.PodAffinityTerm)) v1.PodAffinityTerm {
	t := v1.PodAffinityTerm{TopologyKey: key, LabelSelector: sel}
	for _, m := range mutate {
		m(&t)
	}
	return t
}

func tcAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func tcAntiAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func tcNamespaces(ns ...string) func(*v1.PodAffinityTerm) {
	return func(t *v1.PodAffinityTerm) { t.Namespaces = ns }
}

func tcNamespaceSelector(sel *metav1.LabelSelector) func(*v1.PodAffinityTerm) {
	return func(t *v1.PodAffinityTerm) { t.NamespaceSelector = sel }
}

func tcNamespace(name string, kv ...string) *v1.Namespace {
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelMetadataName: name}}}
	for i := 0; i+1 < len(kv); i += 2 {
		ns.Labels[kv[i]] = kv[i+1]
	}
	return ns
}

// tcGuard is a bound pod whose own required anti-affinity term keeps
// matching pods out of its domain.
func tcGuard(ns, name, node string, term v1.PodAffinityTerm) *v1.Pod {
	p := tcPodOn(ns, name, node, "app", "guard")
	tcAntiAffinity(term)(p)
	return p
}

// TestInterPodAffinityFilter mirrors the InterPodAffinity filter node by
// node: the pod's required affinity, its required anti-affinity, and the
// required anti-affinity of pods already running.
func TestInterPodAffinityFilter(t *testing.T) {
	host, zone := v1.LabelHostname, tcZoneKey
	cache := func(ns, name, node string) *v1.Pod { return tcPodOn(ns, name, node, "app", "cache") }
	tests := []struct {
		name    string
		pod     *v1.Pod
		cluster []runtime.Object
		want    map[string]Code
	}{
		{"affinity to a pod on one node",
			tcWeb(tcAffinity(tcTerm(host, tcSel("app", "cache")))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), cache(tbNS, "c", "n2")},
			map[string]Code{"n1": CodePodAffinity, "n2": ""}},
		{"zone affinity admits every node of the zone",
			tcWeb(tcAffinity(tcTerm(zone, tcSel("app", "cache")))),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), tcInZone("b2", "b"), cache(tbNS, "c", "b1")},
			map[string]Code{"a1": CodePodAffinity, "b1": "", "b2": ""}},
		{"affinity to pods that do not exist",
			tcWeb(tcAffinity(tcTerm(host, tcSel("app", "cache")))),
			[]runtime.Object{tcNode("n1"), tcNode("n2")},
			map[string]Code{"n1": CodePodAffinity, "n2": CodePodAffinity}},
		{"the first pod of a self-affine group goes anywhere with the topology key",
			tcWeb(tcAffinity(tcTerm(zone, tcSel("app", "web")))),
			[]runtime.Object{tcInZone("a1", "a"), tcNode("bare")},
			map[string]Code{"a1": "", "bare": CodePodAffinity}},
		{"once a group member runs, self-affinity follows it",
			tcWeb(tcAffinity(tcTerm(zone, tcSel("app", "web")))),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("b1", "b"), tcPodOn(tbNS, "w0", "b1", "app", "web")},
			map[string]Code{"a1": CodePodAffinity, "b1": ""}},
		{"affinity looks in the pod's own namespace by default",
			tcWeb(tcAffinity(tcTerm(host, tcSel("app", "cache")))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), cache("other", "c", "n2")},
			map[string]Code{"n1": CodePodAffinity, "n2": CodePodAffinity}},
		{"affinity to a namespace named in the term",
			tcWeb(tcAffinity(tcTerm(host, tcSel("app", "cache"), tcNamespaces("other")))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), cache("other", "c", "n2")},
			map[string]Code{"n1": CodePodAffinity, "n2": ""}},
		{"affinity to namespaces picked by label",
			tcWeb(tcAffinity(tcTerm(host, tcSel("app", "cache"), tcNamespaceSelector(tcSel("team", "blue"))))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcNamespace("other", "team", "blue"), cache("other", "c", "n2")},
			map[string]Code{"n1": CodePodAffinity, "n2": ""}},
		{"anti-affinity by hostname",
			tcWeb(tcAntiAffinity(tcTerm(host, tcSel("app", "db")))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcNode("n3"),
				tcPodOn(tbNS, "d0", "n1", "app", "db"), tcPodOn(tbNS, "d1", "n2", "app", "db")},
			map[string]Code{"n1": CodePodAntiAffinity, "n2": CodePodAntiAffinity, "n3": ""}},
		{"anti-affinity by zone blocks the whole zone",
			tcWeb(tcAntiAffinity(tcTerm(zone, tcSel("app", "db")))),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("a2", "a"), tcInZone("b1", "b"), tcPodOn(tbNS, "d0", "a1", "app", "db")},
			map[string]Code{"a1": CodePodAntiAffinity, "a2": CodePodAntiAffinity, "b1": ""}},
		{"an empty namespaceSelector means every namespace",
			tcWeb(tcAntiAffinity(tcTerm(host, tcSel("app", "db"), tcNamespaceSelector(&metav1.LabelSelector{})))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcPodOn("other", "d0", "n1", "app", "db")},
			map[string]Code{"n1": CodePodAntiAffinity, "n2": ""}},
		{"a namespaceSelector that does not match leaves the namespace out",
			tcWeb(tcAntiAffinity(tcTerm(host, tcSel("app", "db"), tcNamespaceSelector(tcSel("team", "red"))))),
			[]runtime.Object{tcNode("n1"), tcNamespace("other", "team", "blue"), tcPodOn("other", "d0", "n1", "app", "db")},
			map[string]Code{"n1": ""}},
		{"a running pod's anti-affinity applies to the new pod (hostname)",
			tcWeb(),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcGuard(tbNS, "g", "n1", tcTerm(host, tcSel("app", "web")))},
			map[string]Code{"n1": CodeExistingPodAntiAffnity, "n2": ""}},
		{"a running pod's anti-affinity applies to the new pod (zone)",
			tcWeb(),
			[]runtime.Object{tcInZone("a1", "a"), tcInZone("a2", "a"), tcInZone("b1", "b"),
				tcGuard(tbNS, "g", "a1", tcTerm(zone, tcSel("app", "web")))},
			map[string]Code{"a1": CodeExistingPodAntiAffnity, "a2": CodeExistingPodAntiAffnity, "b1": ""}},
		{"a running pod's term names the new pod's namespace",
			tcWeb(),
			[]runtime.Object{tcNode("n1"), tcNode("n2"), tcGuard("other", "g", "n1", tcTerm(host, tcSel("app", "web"), tcNamespaces(tbNS)))},
			map[string]Code{"n1": CodeExistingPodAntiAffnity, "n2": ""}},
		{"a running pod's term without namespaces covers only its own namespace",
			tcWeb(),
			[]runtime.Object{tcNode("n1"), tcGuard("other", "g", "n1", tcTerm(host, tcSel("app", "web")))},
			map[string]Code{"n1": ""}},
		{"matchLabelKeys narrows anti-affinity to the pod's own revision",
			tcWeb(func(p *v1.Pod) { p.Labels["rev"] = "new" },
				tcAntiAffinity(tcTerm(host, tcSel("app", "web"), func(t *v1.PodAffinityTerm) { t.MatchLabelKeys = []string{"rev"} }))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"),
				tcPodOn(tbNS, "o0", "n1", "app", "web", "rev", "old"), tcPodOn(tbNS, "w0", "n2", "app", "web", "rev", "new")},
			map[string]Code{"n1": "", "n2": CodePodAntiAffinity}},
		{"mismatchLabelKeys keeps the pod away from other tenants only",
			tcWeb(func(p *v1.Pod) { p.Labels["tenant"] = "a" },
				tcAntiAffinity(tcTerm(host, &metav1.LabelSelector{}, func(t *v1.PodAffinityTerm) { t.MismatchLabelKeys = []string{"tenant"} }))),
			[]runtime.Object{tcNode("n1"), tcNode("n2"),
				tcPodOn(tbNS, "a0", "n1", "tenant", "a"), tcPodOn(tbNS, "b0", "n2", "tenant", "b")},
			map[string]Code{"n1": "", "n2": CodePodAntiAffinity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tcFilterEach(t, tt.pod, tt.cluster...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("failure per node (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInterPodAffinityReplicas: each placed replica counts for the next.
func TestInterPodAffinityReplicas(t *testing.T) {
	self := tcTerm(v1.LabelHostname, tcSel("app", "web"))
	byHash := tcTerm(v1.LabelHostname, tcSel("app", "web"), func(t *v1.PodAffinityTerm) { t.MatchLabelKeys = []string{"pod-template-hash"} })
	oldOn := func(name, node string) *v1.Pod {
		return tcPodOn(tbNS, name, node, "app", "web", "pod-template-hash", "old1")
	}
	three := []runtime.Object{tcNode("n1"), tcNode("n2"), tcNode("n3")}
	tests := []struct {
		name     string
		workload runtime.Object
		cluster  []runtime.Object
		fit      int32
		verdict  Verdict
	}{
		{"one per node", tcWebDeployment(4, "100m", tcAntiAffinity(self)), three, 3, Transient},
		{"one per node, enough nodes", tcWebDeployment(3, "100m", tcAntiAffinity(self)), three, 3, Fits},
		{"self-affinity packs one node", tcWebDeployment(5, "1", tcAffinity(self)), three, 4, Transient},
		{"a rolling update ignores the old revision's pods",
			tcWebDeployment(3, "100m", tcAntiAffinity(byHash)),
			append(three, oldOn("o1", "n1"), oldOn("o2", "n2"), oldOn("o3", "n3")), 3, Fits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tcCheck(t, tt.workload, tt.cluster...)
			if r.ReplicasFit != tt.fit || r.Verdict != tt.verdict {
				t.Errorf("fit %d, verdict %s; want %d, %s (%s)", r.ReplicasFit, r.Verdict, tt.fit, tt.verdict, r.Summary)
			}
		})
	}
}

// TestAntiAffinityNeverNamesOtherNamespaces: when the pod's own
// anti-affinity (namespaceSelector {}) conflicts with pods of another
// namespace, the report must say so without naming them or their namespace.
func TestAntiAffinityNeverNamesOtherNamespaces(t *testing.T) {
	all := tcTerm(v1.LabelHostname, tcSel("app", "db"), tcNamespaceSelector(&metav1.LabelSelector{}))
	r := tcCheck(t, tcWeb(tcAntiAffinity(all)), tcNode("n1"), tcNode("n2"),
		tcPodOn("payroll", "salaries-db-0", "n1", "app", "db"),
		tcPodOn("payroll", "salaries-db-1", "n2", "app", "db"))
	if r.Verdict != Transient {
		t.Fatalf("verdict %s, want transient", r.Verdict)
	}
	text := r.Summary + " " + r.Hint
	for _, x := range r.Reasons {
		text += " " + x.Message + " " + x.Field
		for k, v := range x.Details {
			text += " " + k + "=" + v
		}
	}
	for _, leak := range []string{"salaries", "payroll"} {
		if strings.Contains(text, leak) {
			t.Errorf("the report names %q of another namespace: %s", leak, text)
		}
	}
	if want := "anti-affinity conflicts with pods in other namespaces"; r.Hint != want {
		t.Errorf("hint %q, want %q", r.Hint, want)
	}
}
