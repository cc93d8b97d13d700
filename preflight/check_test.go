package preflight

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckExitCodes runs `fitgate check` in-process for each outcome and
// error path, checking the exit status and what it says.
func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	state := writeFile(t, dir, "state.yaml", twoNodes)
	noNodes := writeFile(t, dir, "nonodes.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
	fits := writeFile(t, dir, "fits.yaml", pod("small", "1"))
	partial := writeFile(t, dir, "partial.yaml", deployment("api", 5, "1"))
	tooBig := writeFile(t, dir, "big.yaml", pod("big", "8"))
	broken := writeFile(t, dir, "broken.yaml", pod("ok", "1")+"---\n"+pod("ok2", "1")+"---\nspec: {containers: [\n")
	services := writeFile(t, dir, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n")
	widget := writeFile(t, dir, "widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: foo, namespace: shop}\n---\n"+pod("small", "1"))

	tests := []struct {
		name       string
		args       []string
		stdin      string
		code       int
		stderr     []string
		noStdout   bool
		stdoutHave []string
	}{
		{"fits", []string{"-f", fits, "--state", state}, "", 0, nil, false, []string{`pod "small" in namespace "default"`, ": fits"}},
		{"transient exits 1", []string{"-f", partial, "--state", state}, "", 1, nil, false, []string{"transient, 4 of 5 replicas fit"}},
		{"transient passes --fail-on=permanent", []string{"-f", partial, "--state", state, "--fail-on=permanent"}, "", 0, nil, false, nil},
		{"permanent fails --fail-on=permanent", []string{"-f", tooBig, "--state", state, "--fail-on", "permanent"}, "", 1, nil, false, []string{": permanent"}},
		{"worst wins across files", []string{"-f", fits, "-f", tooBig, "--state", state}, "", 1, nil, false, []string{"2 workloads judged: 1 fit, 0 transient, 1 permanent"}},
		{"stdin", []string{"-f", "-", "--state", state}, pod("small", "1"), 0, nil, false, []string{"(stdin, document 0): fits"}},
		{"broken document names file and index", []string{"-f", broken, "--state", state}, "", 2,
			[]string{broken + ": document 2: "}, true, nil},
		{"unknown kind is skipped, not fatal", []string{"-f", widget, "--state", state}, "", 0,
			[]string{"skipped: example.com/v1 Widget shop/foo (" + widget + ", document 0): not a workload"}, false, []string{": fits"}},
		{"empty input", []string{"-f", "-", "--state", state}, "", 2, []string{"no objects found in -: nothing to judge"}, true, nil},
		{"no workloads", []string{"-f", services, "--state", state}, "", 2, []string{"no workloads found among the 1 object in " + services}, true, nil},
		{"state without nodes", []string{"-f", fits, "--state", noNodes}, "", 2, []string{"state file " + noNodes + " has no Nodes"}, true, nil},
		{"missing state file", []string{"-f", fits, "--state", dir + "/nope.yaml"}, "", 2, []string{"nope.yaml: no such file"}, true, nil},
		{"no -f", []string{"--state", state}, "", 2, []string{"no manifests: give -f"}, true, nil},
		{"bad -o", []string{"-f", fits, "--state", state, "-o", "yaml"}, "", 2, []string{`-o "yaml": want text or json`}, true, nil},
		{"bad --fail-on", []string{"-f", fits, "--state", state, "--fail-on", "fits"}, "", 2, []string{"--fail-on"}, true, nil},
		{"unknown flag", []string{"-f", fits, "--bogus"}, "", 2, []string{"flag provided but not defined: -bogus"}, true, nil},
		{"positional argument", []string{"--state", state, fits}, "", 2, []string{"name manifests with -f"}, true, nil},
		{"state and context", []string{"-f", fits, "--state", state, "--context", "x"}, "", 2, []string{"exclusive"}, true, nil},
		{"both read stdin", []string{"-f", "-", "--state", "-"}, "", 2, []string{"cannot both read stdin"}, true, nil},
		{"autoscaler flags", []string{"-f", fits, "--state", state, "--autoscaler-max-node-cpu", "8"}, "", 2, []string{"need --autoscaler"}, true, nil},
		{"help", []string{"-h"}, "", 0, []string{"Usage: fitgate check", "Exit status: 0"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := check(Env{}, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.noStdout && stdout != "" {
				t.Errorf("stdout should be empty when nothing is judged:\n%s", stdout)
			}
			for _, w := range tt.stdoutHave {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestCheckChartBringsItsOwnObjects: a Secret, ServiceAccount and Namespace
// the manifests create are not reported missing; one they do not create is.
func TestCheckChartBringsItsOwnObjects(t *testing.T) {
	state := writeFile(t, t.TempDir(), "state.yaml", twoNodes)
	chart := "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n" +
		"---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: shop}\n" +
		"---\napiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\n" +
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop}\nspec:\n  serviceAccountName: api\n" +
		"  containers: [{name: a, image: b, envFrom: [{secretRef: {name: db}}]}]\n" +
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: lost, namespace: shop}\nspec:\n" +
		"  containers: [{name: a, image: b, envFrom: [{secretRef: {name: nowhere}}]}]\n"
	stdout, stderr, code := check(Env{}, chart, "-f", "-", "--state", state, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	var out Output
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range out.Results {
		var codes []string
		for _, x := range r.Reasons {
			codes = append(codes, string(x.Code))
		}
		got[r.Name] = string(r.Verdict) + " " + strings.Join(codes, ",")
	}
	if got["api"] != "fits " || got["lost"] != "permanent SecretNotFound" {
		t.Errorf("got %v, want api fits with no reasons and lost permanent SecretNotFound", got)
	}
}

// TestCheckNamespaceDefault: -n names the namespace of workloads that name
// none; a namespace that does not exist is permanent.
func TestCheckNamespaceDefault(t *testing.T) {
	state := writeFile(t, t.TempDir(), "state.yaml", twoNodes)
	stdout, _, code := check(Env{}, pod("p", "1"), "-f", "-", "--state", state, "-n", "shop", "-o", "json")
	if code != 1 || !strings.Contains(stdout, `"namespace": "shop"`) || !strings.Contains(stdout, "NamespaceNotFound") {
		t.Errorf("exit %d, output:\n%s\nwant namespace shop, NamespaceNotFound", code, stdout)
	}
}
