package parity

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/test/scenarios"
)

func TestTCDebug(t *testing.T) {
	want := os.Getenv("TC_DEBUG")
	if want == "" {
		t.Skip()
	}
	all, _ := scenarios.Load()
	for i, sc := range all {
		if sc.Name != want {
			continue
		}
		ctx := context.Background()
		out, cleanup, err := rp.replay(ctx, sc, renamer{prefix: fmt.Sprintf("d%03d", i)})
		defer cleanup()
		t.Logf("out %+v err %v", out, err)
		if out != nil && out.rejected != nil {
			t.Logf("rejected: %v", out.rejected)
		}
		time.Sleep(3 * time.Second)
		var pods v1.PodList
		_ = rp.c.List(ctx, &pods, client.InNamespace(fmt.Sprintf("d%03d-default", i)))
		for _, p := range pods.Items {
			p.ManagedFields = nil
			b, _ := yaml.Marshal(p.Status)
			t.Logf("pod %s node=%q\n%s", p.Name, p.Spec.NodeName, b)
		}
		var pvcs v1.PersistentVolumeClaimList
		_ = rp.c.List(ctx, &pvcs, client.InNamespace(fmt.Sprintf("d%03d-default", i)))
		for _, p := range pvcs.Items {
			t.Logf("pvc %s ann=%v phase=%s", p.Name, p.Annotations, p.Status.Phase)
		}
	}
}
