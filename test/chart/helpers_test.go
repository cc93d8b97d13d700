package chart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const modulePath = "github.com/fitgate/fitgate"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot is the directory of the main module's go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for dir := wd; ; dir = filepath.Dir(dir) {
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				bytes.Contains(data, []byte("module "+modulePath+"\n")) {
				rootDir = dir
				return
			}
			if filepath.Dir(dir) == dir {
				rootErr = errors.New("no go.mod of " + modulePath + " above " + wd)
				return
			}
		}
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "fitgate") }

// binary is a tool from $FITGATE_BIN_DIR or bin/. A missing one fails the
// test with what builds it.
func binary(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("FITGATE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		how := "make tools"
		if name == "fitgate" {
			how = "make build"
		}
		t.Fatalf("%s is missing (%v): run `%s` (make test does)", p, err, how)
	}
	return p
}

var helmHome struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes helm's private home after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if helmHome.dir != "" {
		_ = os.RemoveAll(helmHome.dir)
	}
	os.Exit(code)
}

// helm runs bin/helm with its config, cache and data directories in a
// private temporary directory, so no user's repositories or plugins count.
func helm(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	bin := binary(t, "helm")
	helmHome.once.Do(func() {
		helmHome.dir, helmHome.err = os.MkdirTemp("", "fitgate-chart-helm-")
	})
	if helmHome.err != nil {
		t.Fatalf("helm's private home: %v", helmHome.err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome.dir, "config"),
		"HELM_CACHE_HOME="+filepath.Join(helmHome.dir, "cache"),
		"HELM_DATA_HOME="+filepath.Join(helmHome.dir, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), errors.New(err.Error() + ": " + strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// variant is one set of values the chart is tested with.
type variant struct {
	name   string
	values string // relative to the chart; "" for the defaults
}

// variants are the defaults plus every ci/*-values.yaml;
// TestVariantsCoverCIValues keeps the list complete.
var variants = []variant{
	{"default", ""},
	{"cert-manager", "ci/cert-manager-values.yaml"},
	{"ha", "ci/ha-values.yaml"},
	{"strict", "ci/strict-values.yaml"},
}

func (v variant) helmArgs(t testing.TB) []string {
	if v.values == "" {
		return nil
	}
	return []string{"--values", filepath.Join(chartDir(t), v.values)}
}

// manifest is a rendered chart.
type manifest struct {
	raw     []byte
	objs    []runtime.Object             // typed for built-in kinds, else *unstructured.Unstructured
	generic []*unstructured.Unstructured // every object, untyped
}

// strictDecoder rejects unknown and duplicate fields, so a misspelt field
// in a template fails here rather than being dropped by the API server.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// render runs helm template and decodes every object.
func render(t testing.TB, release, namespace string, v variant, extra ...string) manifest {
	t.Helper()
	args := append([]string{"template", release, chartDir(t), "--namespace", namespace}, v.helmArgs(t)...)
	out, err := helm(t, append(args, extra...)...)
	if err != nil {
		t.Fatalf("helm template (%s): %v", v.name, err)
	}
	m := manifest{raw: out}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if len(probe) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: probe}
		m.generic = append(m.generic, u)
		if scheme.Scheme.Recognizes(u.GroupVersionKind()) {
			obj, _, err := strictDecoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			m.objs = append(m.objs, obj)
			continue
		}
		m.objs = append(m.objs, u)
	}
	return m
}

// all returns the objects of type T.
func all[T runtime.Object](m manifest) []T {
	var out []T
	for _, o := range m.objs {
		if x, ok := o.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// one returns the only object of type T, failing otherwise.
func one[T runtime.Object](t testing.TB, m manifest) T {
	t.Helper()
	got := all[T](m)
	if len(got) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, got %d", zero, len(got))
	}
	return got[0]
}

// custom returns the unstructured objects of a kind.
func custom(m manifest, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range all[*unstructured.Unstructured](m) {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// flags parses a container's --name=value arguments; the last one wins, as
// with Go's flag package. Bare --name is "true".
func flags(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		k, v, found := strings.Cut(name, "=")
		if !found {
			v = "true"
		}
		out[k] = v
	}
	return out
}
