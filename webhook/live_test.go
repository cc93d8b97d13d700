package webhook

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/fitgate/fitgate/feasibility"
)

// TestAPILiveCheckerNeverGetsSecrets pins the RBAC contract of the chart:
// fitgate may list and watch Secrets and ConfigMaps but has no get on
// them, so their live lookups must be name-filtered lists.
func TestAPILiveCheckerNeverGetsSecrets(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := func(apiVersion, kind, ns, name string) runtime.Object {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		meta("v1", "Secret", "a", "present"), meta("v1", "Secret", "a", "present-too"),
		meta("v1", "ConfigMap", "a", "present"), meta("v1", "PersistentVolumeClaim", "a", "present"))
	client.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("get on secrets is not granted")
	})
	client.PrependReactor("get", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("get on configmaps is not granted")
	})
	live := &APILiveChecker{Client: client}
	for _, tc := range []struct {
		kind     feasibility.Kind
		ns, name string
		want     bool
	}{
		{feasibility.KindSecret, "a", "present", true},
		{feasibility.KindSecret, "a", "absent", false},
		{feasibility.KindSecret, "b", "present", false},
		{feasibility.KindConfigMap, "a", "present", true},
		{feasibility.KindConfigMap, "a", "absent", false},
		{feasibility.KindPVC, "a", "present", true},
		{feasibility.KindPVC, "a", "absent", false},
	} {
		got, err := live.Exists(context.Background(), tc.kind, tc.ns, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("Exists(%s %s/%s) = %v, %v; want %v", tc.kind, tc.ns, tc.name, got, err, tc.want)
		}
	}
}
