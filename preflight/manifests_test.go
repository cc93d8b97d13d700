package preflight

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fitgate/fitgate/feasibility"
)

// TestReadManifestsForms reads every input form and checks which objects
// come back, in which order, from where.
func TestReadManifestsForms(t *testing.T) {
	dir := t.TempDir()
	multi := writeFile(t, dir, "multi.yaml", "# leading comment\n---\n"+pod("a", "1")+"---\n---\n"+pod("b", "1"))
	jsonFile := writeFile(t, dir, "pod.json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"i"}]}}`)
	list := writeFile(t, dir, "list.yml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: l1}\n"+
		"- apiVersion: v1\n  kind: Pod\n  metadata: {name: l2}\n")
	tree := filepath.Join(dir, "tree")
	writeFile(t, tree, "b/second.yaml", pod("second", "1"))
	writeFile(t, tree, "a.yml", pod("first", "1"))
	writeFile(t, tree, "c.JSON", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"third"}}`)
	writeFile(t, tree, "README.md", "not: a manifest\n")
	writeFile(t, tree, ".git/config.yaml", "broken: [\n")
	writeFile(t, tree, "values.txt", "broken: [\n")

	tests := []struct {
		name    string
		sources []string
		stdin   string
		want    []string // name@source#index
	}{
		{"multi-document YAML", []string{multi}, "", []string{"a@multi.yaml#1", "b@multi.yaml#2"}},
		{"JSON", []string{jsonFile}, "", []string{"j@pod.json#0"}},
		{"kind: List", []string{list}, "", []string{"l1@list.yml#0", "l2@list.yml#0"}},
		{"directory, sorted, recursive, manifests only", []string{tree}, "",
			[]string{"first@a.yml#0", "second@second.yaml#0", "third@c.JSON#0"}},
		{"stdin", []string{Stdin}, pod("s", "1"), []string{"s@-#0"}},
		{"several sources in order", []string{Stdin, jsonFile}, pod("s", "1"), []string{"s@-#0", "j@pod.json#0"}},
		{"empty stdin", []string{Stdin}, "", nil},
		{"only comments", []string{Stdin}, "# nothing\n---\n# here\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := ReadManifests(tt.sources, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, objectName(d.Object)+"@"+filepath.Base(d.Source)+"#"+strconv.Itoa(d.Index))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReadManifestsErrors: every error names the file and, for a bad
// document, its index and what is wrong; other files are still read.
func TestReadManifestsErrors(t *testing.T) {
	dir := t.TempDir()
	broken := writeFile(t, dir, "broken.yaml", pod("ok", "1")+"---\n"+pod("ok2", "1")+"---\nmetadata: {name: [\n")
	noKind := writeFile(t, dir, "nokind.yaml", "metadata: {name: x}\n")
	noVersion := writeFile(t, dir, "noversion.yaml", "kind: Pod\nmetadata: {name: x}\n")
	badField := writeFile(t, dir, "badfield.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containerz: []}\n")
	good := writeFile(t, dir, "good.yaml", pod("good", "1"))

	tests := []struct {
		name    string
		sources []string
		want    []string // substrings, one error each
	}{
		{"broken YAML document", []string{broken}, []string{broken + ": document 2: "}},
		{"no kind", []string{noKind}, []string{noKind + ": document 0: object has no kind"}},
		{"no apiVersion", []string{noVersion}, []string{noVersion + ": document 0: Pod has no apiVersion"}},
		{"unknown field", []string{badField}, []string{badField + ": document 0: ", `unknown field "spec.containerz"`}},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml: no such file"}},
		{"stdin twice", []string{Stdin, Stdin}, []string{`"-" (stdin) given more than once`}},
		{"every broken file is named", []string{broken, good, noKind}, []string{broken + ": document 2", noKind + ": document 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := ReadManifests(tt.sources, strings.NewReader(""))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var de *feasibility.DecodeError
			if strings.Contains(tt.want[0], "document") && !errors.As(err, &de) {
				t.Errorf("error %v is not a *feasibility.DecodeError", err)
			}
			if tt.name == "every broken file is named" && len(docs) != 3 { // ok, ok2, good
				t.Errorf("read %d documents around the errors, want 3", len(docs))
			}
		})
	}
}
