package preflight

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// twoNodes is a minimal state file: two 2-cpu nodes, as the kubelet
// reports them, and one Secret, so Secrets are known.
const twoNodes = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: n1, labels: {kubernetes.io/hostname: n1, kubernetes.io/os: linux}}
  status: {allocatable: {cpu: "2", memory: 4Gi, pods: "110"}}
- apiVersion: v1
  kind: Node
  metadata: {name: n2, labels: {kubernetes.io/hostname: n2, kubernetes.io/os: linux}}
  status: {allocatable: {cpu: "2", memory: 4Gi, pods: "110"}}
- apiVersion: v1
  kind: Secret
  metadata: {name: existing, namespace: default}
`

// pod returns a bare Pod manifest requesting cpu.
func pod(name, cpu string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers:\n" +
		"  - {name: app, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: \"" + cpu + "\"}}}\n"
}

// deployment returns a Deployment manifest of replicas pods requesting cpu.
func deployment(name string, replicas int, cpu string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n" +
		"  replicas: " + strconv.Itoa(replicas) + "\n  selector: {matchLabels: {app: " + name + "}}\n" +
		"  template:\n    metadata: {labels: {app: " + name + "}}\n    spec:\n      containers:\n" +
		"      - {name: app, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: \"" + cpu + "\"}}}\n"
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs a command of env in-process with stdin, returning its output
// and exit status.
func run(env Env, cmd func(Env, []string) int, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(stdin), &out, &errOut
	code = cmd(env, args)
	return out.String(), errOut.String(), code
}

func check(env Env, stdin string, args ...string) (string, string, int) {
	return run(env, Env.Check, stdin, args...)
}
