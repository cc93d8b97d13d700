package feasibility

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeDocuments(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}]}\n"
	tests := []struct {
		name      string
		in        string
		state     bool // decode as cluster state (lenient)
		wantKinds []string
		wantErr   string // substring; "" means no error
	}{
		{name: "one pod", in: pod, wantKinds: []string{"Pod"}},
		{name: "blank and comment documents are skipped", in: "---\n# nothing\n---\n" + pod, wantKinds: []string{"Pod"}},
		{name: "kind List expands", in: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: node-1}\n- " +
			"apiVersion: v1\n  kind: Namespace\n  metadata: {name: x}\n", wantKinds: []string{"Node", "Namespace"}},
		{name: "JSON", in: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}`, wantKinds: []string{"Namespace"}},
		{name: "unknown kind is kept as unknown", in: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", wantKinds: []string{"?Widget"}},
		{name: "no kind", in: "apiVersion: v1\nmetadata: {name: a}\n", wantErr: "document 0: object has no kind"},
		{name: "no apiVersion", in: "kind: Pod\n", wantErr: "document 0: Pod has no apiVersion"},
		{name: "the error names the document", in: pod + "---\nkind: [\n", wantErr: "test.yaml: document 1:"},
		{name: "bad quantity", in: "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, resources: {requests: {cpu: banana}}}]}\n", wantErr: "quantities must match"},
		{name: "manifests reject unknown fields, like kubectl apply", in: strings.Replace(pod, "spec:", "spek: {}\nspec:", 1), wantErr: "unknown field"},
		{name: "state from a newer server keeps its known fields", in: strings.Replace(pod, "spec:", "spek: {}\nspec:", 1), state: true, wantKinds: []string{"Pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decode := DecodeDocuments
			if tt.state {
				decode = DecodeState
			}
			docs, err := decode("test.yaml", strings.NewReader(tt.in))
			if tt.wantErr != "" {
				var de *DecodeError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &de) {
					t.Fatalf("error %v, want a *DecodeError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, d := range docs {
				if d.Unknown != nil {
					kinds = append(kinds, "?"+d.Unknown.GetKind())
					continue
				}
				kinds = append(kinds, d.Object.GetObjectKind().GroupVersionKind().Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.wantKinds, ",") {
				t.Errorf("kinds %v, want %v", kinds, tt.wantKinds)
			}
		})
	}
}
