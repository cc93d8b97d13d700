package webhook

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestNewWebhookConfigurationURLMode(t *testing.T) {
	cfg, err := NewWebhookConfiguration(WebhookConfigOptions{
		URL: "https://127.0.0.1:9443/validate", CABundle: []byte("CA"),
		ExemptNamespaces: []string{"kube-system", "kube-node-lease", "fitgate", "kube-system", ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "fitgate" || cfg.Labels[ManagedByLabel] != "fitgate" || len(cfg.Webhooks) != 1 {
		t.Fatalf("metadata/webhooks: %+v", cfg.ObjectMeta)
	}
	w := cfg.Webhooks[0]
	if w.Name != "validate.fitgate.dev" {
		t.Errorf("name = %s", w.Name)
	}
	if w.ClientConfig.URL == nil || *w.ClientConfig.URL != "https://127.0.0.1:9443/validate" || w.ClientConfig.Service != nil || string(w.ClientConfig.CABundle) != "CA" {
		t.Errorf("clientConfig = %+v", w.ClientConfig)
	}
	if *w.FailurePolicy != admissionregistrationv1.Ignore || *w.TimeoutSeconds != 5 ||
		*w.SideEffects != admissionregistrationv1.SideEffectClassNone || *w.MatchPolicy != admissionregistrationv1.Equivalent {
		t.Errorf("policies: failure %s timeout %d sideEffects %s matchPolicy %s", *w.FailurePolicy, *w.TimeoutSeconds, *w.SideEffects, *w.MatchPolicy)
	}
	if diff := cmp.Diff([]string{"v1"}, w.AdmissionReviewVersions); diff != "" {
		t.Error(diff)
	}
	type rule struct {
		group     string
		ops       []admissionregistrationv1.OperationType
		resources []string
	}
	var got []rule
	for _, r := range w.Rules {
		if len(r.APIGroups) != 1 || len(r.APIVersions) != 1 || r.APIVersions[0] != "v1" || *r.Scope != admissionregistrationv1.NamespacedScope {
			t.Errorf("rule %+v", r)
		}
		got = append(got, rule{r.APIGroups[0], r.Operations, r.Resources})
	}
	C, U := admissionregistrationv1.Create, admissionregistrationv1.Update
	want := []rule{
		{"", []admissionregistrationv1.OperationType{C}, []string{"pods"}},
		{"", []admissionregistrationv1.OperationType{C, U}, []string{"replicationcontrollers"}},
		{"apps", []admissionregistrationv1.OperationType{C, U}, []string{"deployments", "replicasets", "statefulsets", "daemonsets"}},
		{"batch", []admissionregistrationv1.OperationType{C, U}, []string{"jobs", "cronjobs"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(rule{})); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	wantSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "kube-node-lease", "fitgate"}},
		{Key: "fitgate.dev/mode", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"off"}},
	}}
	if diff := cmp.Diff(wantSel, w.NamespaceSelector); diff != "" {
		t.Errorf("namespaceSelector (-want +got):\n%s", diff)
	}
	if w.ObjectSelector != nil {
		t.Errorf("objectSelector = %v", w.ObjectSelector)
	}
	if len(w.MatchConditions) != 1 || w.MatchConditions[0].Expression != "request.operation != 'UPDATE' || object.spec != oldObject.spec" {
		t.Errorf("matchConditions = %+v", w.MatchConditions)
	}
}

func TestNewWebhookConfigurationServiceMode(t *testing.T) {
	cfg, err := NewWebhookConfiguration(WebhookConfigOptions{
		Name:          "fitgate-prod",
		Service:       &admissionregistrationv1.ServiceReference{Namespace: "fitgate", Name: "fitgate", Port: ptr.To(int32(443))},
		FailurePolicy: admissionregistrationv1.Fail, TimeoutSeconds: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Webhooks[0]
	if cfg.Name != "fitgate-prod" || w.ClientConfig.URL != nil || w.ClientConfig.Service == nil || *w.ClientConfig.Service.Path != "/validate" {
		t.Errorf("clientConfig = %+v", w.ClientConfig)
	}
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.TimeoutSeconds != 3 {
		t.Errorf("failurePolicy %s timeout %d", *w.FailurePolicy, *w.TimeoutSeconds)
	}
	if n := len(w.NamespaceSelector.MatchExpressions); n != 1 {
		t.Errorf("no exempt namespaces: want only the mode expression, got %d", n)
	}
}

func TestNewWebhookConfigurationErrors(t *testing.T) {
	svc := &admissionregistrationv1.ServiceReference{Namespace: "a", Name: "b"}
	for name, o := range map[string]WebhookConfigOptions{
		"neither URL nor service": {},
		"both":                    {URL: "https://x/validate", Service: svc},
		"bad failure policy":      {URL: "https://x/validate", FailurePolicy: "Maybe"},
		"timeout too long":        {URL: "https://x/validate", TimeoutSeconds: 31},
	} {
		if _, err := NewWebhookConfiguration(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestApplyAndDeleteWebhookConfiguration(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	cfg, err := NewWebhookConfiguration(WebhookConfigOptions{URL: "https://127.0.0.1:1/validate"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyWebhookConfiguration(ctx, client, cfg); err != nil {
		t.Fatal(err)
	}
	cfg2, _ := NewWebhookConfiguration(WebhookConfigOptions{URL: "https://127.0.0.1:2/validate"})
	if err := ApplyWebhookConfiguration(ctx, client, cfg2); err != nil {
		t.Fatal(err)
	}
	got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "fitgate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Webhooks[0].ClientConfig.URL != "https://127.0.0.1:2/validate" {
		t.Errorf("not updated: %s", *got.Webhooks[0].ClientConfig.URL)
	}
	if err := DeleteWebhookConfiguration(ctx, client, "fitgate"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteWebhookConfiguration(ctx, client, "fitgate"); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}
