package chart

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/fitgate/fitgate/webhook"
)

// TestWebhookConfigurationMatchesGo: the chart's webhook equals the one
// webhook.NewWebhookConfiguration builds for the same options (what `fitgate
// serve --register-url` registers), so rules, selector, match conditions and
// defaults cannot drift between the two. Only the caBundle differs: the
// chart leaves it to the injector.
func TestWebhookConfigurationMatchesGo(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, testRelease, testNamespace, v)
			got := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, m)
			dep := one[*appsv1.Deployment](t, m)
			args := flags(dep.Spec.Template.Spec.Containers[0].Args)
			ref := got.Webhooks[0].ClientConfig.Service
			if ref == nil {
				t.Fatal("not in service mode")
			}
			// The exempt namespaces fitgate itself skips are the ones
			// the selector leaves out.
			want, err := webhook.NewWebhookConfiguration(webhook.WebhookConfigOptions{
				Name:             args["webhook-config-name"],
				Service:          &admissionregistrationv1.ServiceReference{Namespace: testNamespace, Name: ref.Name, Port: ref.Port},
				FailurePolicy:    *got.Webhooks[0].FailurePolicy,
				TimeoutSeconds:   *got.Webhooks[0].TimeoutSeconds,
				ExemptNamespaces: strings.Split(args["exempt-namespaces"], ","),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name {
				t.Errorf("name %q, --webhook-config-name %q", got.Name, want.Name)
			}
			if d := cmp.Diff(want.Webhooks, got.Webhooks); d != "" {
				t.Errorf("chart webhooks differ from webhook.NewWebhookConfiguration (-go +chart):\n%s", d)
			}
			// The defaults are the safe ones.
			if v.name == "default" {
				wh := got.Webhooks[0]
				if *wh.FailurePolicy != admissionregistrationv1.Ignore || *wh.TimeoutSeconds != webhook.DefaultTimeoutSeconds ||
					*wh.SideEffects != admissionregistrationv1.SideEffectClassNone || *wh.MatchPolicy != admissionregistrationv1.Equivalent {
					t.Errorf("defaults: failurePolicy %s timeout %d sideEffects %s matchPolicy %s",
						*wh.FailurePolicy, *wh.TimeoutSeconds, *wh.SideEffects, *wh.MatchPolicy)
				}
			}
		})
	}
}
