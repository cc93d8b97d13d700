package feasibility

// Builders shared by the LimitRange, quota and reference tests. Prefixed tb
// so they never clash with the engine tests' own helpers.

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const tbNS = "team"

// tbList parses "cpu=1,memory=1Gi" into a ResourceList; "" is nil.
func tbList(spec string) v1.ResourceList {
	if spec == "" {
		return nil
	}
	l := v1.ResourceList{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(kv, "=")
		l[v1.ResourceName(k)] = resource.MustParse(v)
	}
	return l
}

// tbC is a container with requests and limits in tbList form.
func tbC(name, requests, limits string) v1.Container {
	return v1.Container{Name: name, Image: "img",
		Resources: v1.ResourceRequirements{Requests: tbList(requests), Limits: tbList(limits)}}
}

func tbPod(containers ...v1.Container) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: tbNS},
		Spec: v1.PodSpec{Containers: containers}}
}

func tbSnap(t *testing.T, known []Kind, objs ...runtime.Object) *Snapshot {
	t.Helper()
	s, err := NewSnapshotFrom(objs...)
	if err != nil {
		t.Fatal(err)
	}
	s.MarkKnown(known...)
	return s
}

// tbBrief reduces reasons to "Code severity field" lines, for tables that
// care which findings appear rather than their wording.
func tbBrief(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %s", r.Code, r.Severity, r.Field))
	}
	return out
}

func tbMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: tbNS}
}

func tbPtr[T any](v T) *T { return &v }
