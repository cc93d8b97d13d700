package chart

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVariantsCoverCIValues fails when a ci/*-values.yaml is added without
// a variant, so every values file gets the rendering and dry-run tests.
func TestVariantsCoverCIValues(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci values files: %v", err)
	}
	var have []string
	for _, v := range variants {
		if v.values != "" {
			have = append(have, v.values)
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(chartDir(t), f)
		if !slices.Contains(have, rel) {
			t.Errorf("%s has no variant in variants", rel)
		}
	}
}

func TestHelmLint(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chartDir(t)}, v.helmArgs(t)...)...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestSchemaRejects: values.schema.json turns typos, wrong types and
// values fitgate would refuse into an install-time error.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"typo at the top", []string{"--set", "replicaCont=3"}, "additional properties 'replicaCont' not allowed"},
		{"typo nested", []string{"--set", "webhook.failurPolicy=Fail"}, "additional properties 'failurPolicy' not allowed"},
		{"typo in cert-manager", []string{"--set", "certManager.enable=true"}, "additional properties 'enable' not allowed"},
		{"string for an integer", []string{"--set-string", "replicaCount=two"}, "want integer"},
		{"string for timeoutSeconds", []string{"--set", "webhook.timeoutSeconds=abc"}, "want integer"},
		{"string for a boolean", []string{"--set-string", "certManager.enabled=yes"}, "want boolean"},
		{"zero replicas", []string{"--set", "replicaCount=0"}, "minimum"},
		{"timeout above 30", []string{"--set", "webhook.timeoutSeconds=31"}, "maximum"},
		{"unknown failurePolicy", []string{"--set", "webhook.failurePolicy=Sometimes"}, "failurePolicy"},
		{"unknown mode", []string{"--set", "defaultMode=audit"}, "defaultMode"},
		{"bad duration", []string{"--set", "tls.validity=1year"}, "validity"},
		{"bad namespace name", []string{"--set", "exemptNamespaces[0]=Kube_System"}, "exemptNamespaces"},
		{"bad log level", []string{"--set", "logLevel=verbose"}, "logLevel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "fitgate", chartDir(t)}, tc.set...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v:\n%.300s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
