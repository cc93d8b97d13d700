package preflight

import (
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/fitgate/fitgate/feasibility"
)

func TestReadStateFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		content   string
		wantErr   string
		known     []feasibility.Kind
		unknown   []feasibility.Kind
		has       []string // kind/namespace/name
		wantNotes []string
	}{
		{name: "no nodes", content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
			wantErr: "has no Nodes: an empty cluster can judge nothing"},
		{name: "empty", content: "", wantErr: "has no Nodes"},
		{name: "broken document", content: twoNodes + "---\nkind: [\n", wantErr: "state: %s: document 1: "},
		{name: "nodes make every dump kind known; secrets are known when present", content: twoNodes,
			known:   append(append([]feasibility.Kind(nil), DumpKinds...), feasibility.KindSecret),
			unknown: []feasibility.Kind{feasibility.KindConfigMap},
			has: []string{"Node//n1", "Secret/default/existing", "Namespace//default", "Namespace//kube-system",
				"ServiceAccount/default/default", "PriorityClass//system-cluster-critical"}},
		{name: "implied objects for every namespace; configmaps known when present",
			content: twoNodes + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" +
				"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec: {nodeName: n1, containers: [{name: a, image: b}]}\n",
			known: []feasibility.Kind{feasibility.KindConfigMap},
			has: []string{"ConfigMap/default/c", "Namespace//shop", "ServiceAccount/shop/default",
				"ConfigMap/shop/kube-root-ca.crt", "Pod/shop/p"}},
		{name: "workloads and unknown kinds are ignored, and said so",
			content: twoNodes + "---\n" + deployment("d", 1, "1") + "---\n" + deployment("e", 1, "1") +
				"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
			wantNotes: []string{"ignored what is not cluster state in %s: 2 Deployment, 1 Widget (example.com/v1)"}},
		{name: "a node without allocatable pods is flagged",
			content:   "apiVersion: v1\nkind: Node\nmetadata: {name: bare}\nstatus: {allocatable: {cpu: '1'}}\n",
			wantNotes: []string{"node bare has no allocatable pods"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "state"+strconv.Itoa(i)+".yaml", tt.content)
			st, notes, err := ReadStateFile(path, nil)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "%s", path)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want it to contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.known {
				if !st.Knows(k) {
					t.Errorf("%s not known", k)
				}
			}
			for _, k := range tt.unknown {
				if st.Knows(k) {
					t.Errorf("%s known", k)
				}
			}
			for _, h := range tt.has {
				p := strings.SplitN(h, "/", 3)
				if !st.Has(feasibility.Kind(p[0]), p[1], p[2]) {
					t.Errorf("state lacks %s", h)
				}
			}
			for _, w := range tt.wantNotes {
				w = strings.ReplaceAll(w, "%s", path)
				if !strings.Contains(strings.Join(notes, "\n"), w) {
					t.Errorf("notes %q lack %q", notes, w)
				}
			}
			if _, err := st.Snapshot(); err != nil {
				t.Errorf("snapshot: %v", err)
			}
		})
	}
}

// TestApplyManifests: the manifests' state objects are created as kubectl
// apply would, never over the cluster's.
func TestApplyManifests(t *testing.T) {
	const classes = "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: ebs.csi.aws.com\n" +
		"allowedTopologies: [{matchLabelExpressions: [{key: zone, values: [a]}]}]\n" +
		"---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: std, annotations: {storageclass.kubernetes.io/is-default-class: 'true'}}\n" +
		"provisioner: ebs.csi.aws.com\nvolumeBindingMode: WaitForFirstConsumer\n"
	path := writeFile(t, t.TempDir(), "state.yaml", twoNodes+classes+
		"---\napiVersion: v1\nkind: Secret\nmetadata: {name: taken, namespace: default, labels: {from: cluster}}\n")
	st, _, err := ReadStateFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ReadManifests([]string{Stdin}, strings.NewReader(
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"+
			"---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"+
			"---\napiVersion: v1\nkind: Secret\nmetadata: {name: taken, labels: {from: manifest}}\n"+
			"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"+
			"---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: quick, namespace: shop}\n"+
			"spec: {storageClassName: fast, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"+
			"---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: later, namespace: shop}\n"+
			"spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"+
			"---\napiVersion: v1\nkind: Node\nmetadata: {name: n9}\n"))
	if err != nil {
		t.Fatal(err)
	}
	notes, verbose := applyManifests(st, docs, "default")
	for _, h := range []string{"Namespace//shop", "ServiceAccount/shop/default", "Secret/default/db",
		"PersistentVolumeClaim/shop/quick", "PersistentVolumeClaim/shop/later", "PersistentVolume//preflight-shop-quick"} {
		p := strings.SplitN(h, "/", 3)
		if !st.Has(feasibility.Kind(p[0]), p[1], p[2]) {
			t.Errorf("state lacks %s", h)
		}
	}
	if st.Has(feasibility.KindConfigMap, "default", "cfg") {
		t.Error("a ConfigMap was added though the state does not know ConfigMaps")
	}
	if st.Has(feasibility.KindNode, "", "n9") {
		t.Error("a Node from the manifests was added")
	}
	for _, o := range st.Objects() {
		switch o := o.(type) {
		case *v1.Secret:
			if o.Name == "taken" && o.Labels["from"] != "cluster" {
				t.Error("the manifest's Secret replaced the cluster's")
			}
		case *v1.Namespace:
			if o.Name == "shop" && o.Labels[v1.LabelMetadataName] != "shop" {
				t.Errorf("namespace labels %v lack the name label", o.Labels)
			}
		case *v1.PersistentVolumeClaim:
			switch o.Name {
			case "quick":
				if o.Spec.VolumeName != "preflight-shop-quick" {
					t.Errorf("claim on an Immediate class is not bound: %+v", o.Spec)
				}
			case "later":
				if o.Spec.StorageClassName == nil || *o.Spec.StorageClassName != "std" || o.Spec.VolumeName != "" {
					t.Errorf("claim without a class: %+v, want the default class std and unbound", o.Spec)
				}
			}
		case *v1.PersistentVolume:
			if r := o.Spec.NodeAffinity; r == nil || r.Required.NodeSelectorTerms[0].MatchExpressions[0].Key != "zone" {
				t.Errorf("provisioned volume's node affinity %+v, want the class's allowed topologies", r)
			}
		}
	}
	all := strings.Join(append(notes, verbose...), "\n")
	for _, w := range []string{"skipped: v1 Node n9", "Secret default/taken exists in the cluster; using the cluster's",
		"not using ConfigMap default/cfg as state: the cluster state has no ConfigMaps", "using Namespace shop as state (stdin, document 0)"} {
		if !strings.Contains(all, w) {
			t.Errorf("notes lack %q:\n%s", w, all)
		}
	}
}
