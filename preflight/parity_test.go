package preflight

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/scenarios"
	"github.com/fitgate/fitgate/webhook"
)

// TestCorpusThroughCLI runs every scenario of the parity corpus through
// `fitgate check`, in-process: the scenario's cluster written as a state
// file, its workload as a manifest. The verdict (and replicas, codes and
// summary the scenario asserts) must be the scenario's, and the webhook's
// for the same workload.
//
// scenarios.Snapshot adds what a real control plane has and a scenario
// leaves out; the state file spells the same out, as `fitgate snapshot` of
// a real cluster would: each namespace with its "default" ServiceAccount
// and kube-root-ca.crt ConfigMap, and the kubelet's hostname, os and arch
// labels and 110 pods on each node. A scenario knows every kind even when
// it has none of one; a state file knows Secrets only when it has one, so
// it holds a placeholder Secret in kube-system.
func TestCorpusThroughCLI(t *testing.T) {
	all, err := scenarios.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("the corpus is empty")
	}
	dir := t.TempDir()
	for _, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			cluster, workload := sc.Objects()
			state := writeFile(t, dir, sc.Name+"-state.yaml", stateFileFor(t, sc, cluster))
			manifest := writeFile(t, dir, sc.Name+"-workload.yaml", toYAML(t, workload))

			stdout, stderr, code := check(Env{}, "", "-f", manifest, "--state", state, "-o", "json")
			var out Output
			if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Results) != 1 {
				t.Fatalf("exit %d, output %q (%v)\nstderr:\n%s", code, stdout, err, stderr)
			}
			res := out.Results[0]
			if want := map[bool]int{true: 0, false: 1}[sc.Expect.Verdict == feasibility.Fits]; code != want {
				t.Errorf("exit %d, want %d for %s", code, want, sc.Expect.Verdict)
			}
			rep := &feasibility.Report{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name, Verdict: res.Verdict,
				Replicas: res.Replicas, ReplicasFit: res.ReplicasFit, Summary: res.Summary, Hint: res.Hint}
			for _, r := range res.Reasons {
				rep.Reasons = append(rep.Reasons, feasibility.Reason{Code: r.Code, Severity: r.Severity, Message: r.Message})
			}
			if diff := scenarios.Compare(sc, rep); diff != "" {
				t.Errorf("%s: %s\nresult: %+v", sc.File, diff, res)
			}
			if wv := webhookVerdict(t, sc, workload); wv != string(res.Verdict) {
				t.Errorf("%s: the webhook's verdict is %s, the CLI's %s", sc.File, wv, res.Verdict)
			}
		})
	}
}

// stateFileFor writes a scenario's cluster as a state file.
func stateFileFor(t *testing.T, sc *scenarios.Scenario, cluster []runtime.Object) string {
	t.Helper()
	var objs []runtime.Object
	given := map[string]bool{}
	for _, o := range cluster {
		o = o.DeepCopyObject()
		switch o := o.(type) {
		case *v1.Namespace:
			given[o.Name] = true
		case *v1.Node:
			asKubeletWould(o)
		}
		objs = append(objs, o)
	}
	for _, ns := range append(sc.Namespaces(), "kube-system") {
		if !given[ns] {
			given[ns] = true
			objs = append(objs, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
		objs = append(objs,
			&v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}},
			&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-root-ca.crt"}})
	}
	objs = append(objs, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "fitgate-parity-placeholder"}})
	var b strings.Builder
	for _, o := range objs {
		b.WriteString("---\n" + toYAML(t, o))
	}
	return b.String()
}

// asKubeletWould gives a node what the kubelet (and scenarios.Snapshot)
// does: hostname, os and arch labels, and 110 pods.
func asKubeletWould(n *v1.Node) {
	labels := map[string]string{v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64"}
	for k, v := range n.Labels {
		labels[k] = v
	}
	labels[v1.LabelHostname] = n.Name
	n.Labels = labels
	if n.Status.Allocatable == nil {
		n.Status.Allocatable = v1.ResourceList{}
	}
	if _, ok := n.Status.Allocatable[v1.ResourcePods]; !ok {
		n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("110")
	}
}

// toYAML writes a typed object with its apiVersion and kind.
func toYAML(t *testing.T, o runtime.Object) string {
	t.Helper()
	if o.GetObjectKind().GroupVersionKind().Empty() {
		gvks, _, err := scheme.Scheme.ObjectKinds(o)
		if err != nil {
			t.Fatal(err)
		}
		o.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
	data, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// fixedSource is a webhook.SnapshotSource over one snapshot.
type fixedSource struct{ s *feasibility.Snapshot }

func (f fixedSource) Check(w *feasibility.Workload, opts *feasibility.Options) (*feasibility.Report, bool) {
	return feasibility.Check(f.s, w, opts), true
}

func (f fixedSource) NamespaceLabels(name string) (map[string]string, bool) {
	return map[string]string{v1.LabelMetadataName: name}, true
}

// webhookVerdict is the verdict the webhook records (its audit annotation)
// for creating the scenario's workload on the scenario's cluster.
func webhookVerdict(t *testing.T, sc *scenarios.Scenario, workload runtime.Object) string {
	t.Helper()
	snap, _, err := sc.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(workload)
	if err != nil {
		t.Fatal(err)
	}
	gvk := workload.GetObjectKind().GroupVersionKind()
	m, _ := workload.(metav1.Object)
	h := &webhook.Handler{Source: fixedSource{snap}, Policy: webhook.DefaultPolicy("fitgate"), Options: &feasibility.Options{}}
	resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "parity", Operation: admissionv1.Create, Namespace: m.GetNamespace(), Name: m.GetName(),
		Kind:   metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Object: runtime.RawExtension{Raw: raw},
	}})
	v := resp.AuditAnnotations[webhook.AuditVerdict]
	if v == "" {
		t.Fatalf("the webhook recorded no verdict: %+v", resp)
	}
	return v
}
