package preflight

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/webhook"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the current output")

const (
	goldenState     = "testdata/golden-state.yaml"
	goldenManifests = "testdata/golden-manifests.yaml"
	goldenJSON      = "testdata/golden.json"
)

// TestJSONGolden pins the -o json schema, which other tools parse: every
// key at every level, and every value but the engine's prose (messages,
// summary, hint), which must only be present where the golden file has it.
// Run with -update after a deliberate change.
func TestJSONGolden(t *testing.T) {
	stdout, stderr, code := check(Env{}, "", "-f", goldenManifests, "--state", goldenState, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if *update {
		if err := os.WriteFile(goldenJSON, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenJSON)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if err := json.Unmarshal(want, &exp); err != nil {
		t.Fatal(err)
	}
	compareJSON(t, "", got, exp)
}

// prose are the keys whose text is the engine's to change.
var prose = map[string]bool{"message": true, "summary": true, "hint": true}

func compareJSON(t *testing.T, path string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T, want an object", path, got)
			return
		}
		if gk, wk := keys(g), keys(w); !reflect.DeepEqual(gk, wk) {
			t.Errorf("%s: keys %v, want %v", path, gk, wk)
		}
		for k, wv := range w {
			if gv, ok := g[k]; ok {
				if prose[k] {
					if s, _ := gv.(string); s == "" {
						t.Errorf("%s.%s: empty", path, k)
					}
					continue
				}
				compareJSON(t, path+"."+k, gv, wv)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: got %v, want %d items", path, got, len(w))
			return
		}
		for i := range w {
			compareJSON(t, path+"["+strconv.Itoa(i)+"]", g[i], w[i])
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestTextWording: one block per workload, headed by the object, its
// namespace, where it was read and its verdict, then the webhook's own
// wording of the findings, uncut.
func TestTextWording(t *testing.T) {
	stdout, _, code := check(Env{}, "", "-f", goldenManifests, "--state", goldenState)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	blocks := strings.Split(strings.TrimSpace(stdout), "\n\n")
	wantHeads := []string{
		`deployment "web" in namespace "shop" (testdata/golden-manifests.yaml, document 0): fits, 2 of 2 replicas fit`,
		`deployment "workers" in namespace "shop" (testdata/golden-manifests.yaml, document 1): transient, 2 of 3 replicas fit`,
		`job "migrate" in namespace "shop" (testdata/golden-manifests.yaml, document 2): permanent, 0 of 1 replica fit`,
		`3 workloads judged: 1 fit, 1 transient, 1 permanent`,
	}
	if len(blocks) != len(wantHeads) {
		t.Fatalf("%d blocks, want %d:\n%s", len(blocks), len(wantHeads), stdout)
	}
	for i, want := range wantHeads {
		if head := strings.SplitN(blocks[i], "\n", 2)[0]; head != want {
			t.Errorf("block %d starts %q, want %q", i, head, want)
		}
	}
	for _, w := range []string{
		`  job "migrate" cannot run: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint(s)` + "\n" +
			`  requests 4 cpu; largest free node has 2 cpu (node "n1"); largest node allocatable is 2 cpu` + "\n" +
			`  spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name: secret "db" not found`,
		`  deployment "workers": only 2 of 3 replicas fit now: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint(s)`,
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks\n%s\ngot:\n%s", w, stdout)
		}
	}
}

// TestFindingLinesAreTheWebhooks: every warning the webhook would give for
// a report appears, uncut, among the lines of the text output.
func TestFindingLinesAreTheWebhooks(t *testing.T) {
	st, _, err := ReadStateFile(goldenState, nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ReadManifests([]string{goldenManifests}, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Judge(st, docs, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	gated := feasibility.Reason{Code: feasibility.CodeSchedulingGated, Severity: feasibility.SeverityInfo, Message: "gated"}
	for _, r := range j.Results {
		rep := *r.report
		rep.Reasons = append(append([]feasibility.Reason(nil), rep.Reasons...), gated)
		mine := strings.Join(findingLines(&rep), "\n")
		for _, w := range (webhook.Message{Report: &rep}).Warnings(rep.Reasons, 100) {
			if !strings.Contains(mine, strings.TrimSuffix(w, "…")) {
				t.Errorf("%s: webhook warning %q missing from\n%s", r.Name, w, mine)
			}
		}
		if strings.Contains(mine, "gated") {
			t.Errorf("%s: scheduling gates are worded: %s", r.Name, mine)
		}
	}
}
