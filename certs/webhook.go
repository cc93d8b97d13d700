package certs

import (
	"bytes"
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// injectCABundle sets caBundle on every webhook of the named
// ValidatingWebhookConfiguration. It writes only when some webhook differs,
// so the periodic resync costs one GET, and it retries on Conflict because
// Helm or another replica may update the object concurrently. It reports
// whether it wrote.
func (r *Rotator) injectCABundle(ctx context.Context, bundle []byte) (bool, error) {
	vwcs := r.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	wrote := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vwc, err := vwcs.Get(ctx, r.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		for i := range vwc.Webhooks {
			if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, bundle) {
				vwc.Webhooks[i].ClientConfig.CABundle = bytes.Clone(bundle)
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := vwcs.Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return wrote, err
}
