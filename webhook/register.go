package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Webhook configuration defaults.
const (
	// DefaultConfigurationName names the ValidatingWebhookConfiguration.
	DefaultConfigurationName = "fitgate"
	// WebhookName is the webhook's name within it. The API server prefixes
	// audit annotation keys with it: validate.fitgate.dev/verdict.
	WebhookName = "validate.fitgate.dev"
	// ValidatePath is where the server serves the webhook.
	ValidatePath          = "/validate"
	DefaultTimeoutSeconds = int32(5)
	// NamespaceNameLabel is set by the API server on every namespace.
	NamespaceNameLabel = "kubernetes.io/metadata.name"
	// ManagedByLabel marks configurations fitgate registered itself.
	ManagedByLabel = "app.kubernetes.io/managed-by"
)

// MatchConditionSkipUnchangedSpec sends an UPDATE only when the spec
// changed: status-only and metadata-only updates never reach fitgate.
const MatchConditionSkipUnchangedSpec = "request.operation != 'UPDATE' || object.spec != oldObject.spec"

// WebhookConfigOptions describe the ValidatingWebhookConfiguration.
// Exactly one of URL and Service is set.
type WebhookConfigOptions struct {
	// Name of the configuration (default "fitgate").
	Name string
	// URL mode, for local runs: the full URL of the validate endpoint,
	// e.g. https://127.0.0.1:9443/validate.
	URL string
	// Service mode, for clusters. Path defaults to /validate.
	Service *admissionregistrationv1.ServiceReference
	// CABundle is the PEM CA that signed the serving certificate.
	CABundle []byte
	// FailurePolicy defaults to Ignore: fitgate down never blocks deploys.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// TimeoutSeconds defaults to 5.
	TimeoutSeconds int32
	// ExemptNamespaces are left out by the namespace selector.
	ExemptNamespaces []string
	// Labels are added to the configuration's metadata.
	Labels map[string]string
}

// NewWebhookConfiguration builds fitgate's ValidatingWebhookConfiguration:
// CREATE of Pods, CREATE and UPDATE of the seven workload kinds; Ignore,
// 5 s, sideEffects None, matchPolicy Equivalent; a namespace selector that
// leaves out the exempt namespaces and those labelled fitgate.dev/mode=off;
// and a match condition that skips updates leaving the spec unchanged.
func NewWebhookConfiguration(o WebhookConfigOptions) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if (o.URL == "") == (o.Service == nil) {
		return nil, errors.New("webhook configuration: set exactly one of URL and Service")
	}
	name := o.Name
	if name == "" {
		name = DefaultConfigurationName
	}
	failure := o.FailurePolicy
	if failure == "" {
		failure = admissionregistrationv1.Ignore
	}
	if failure != admissionregistrationv1.Ignore && failure != admissionregistrationv1.Fail {
		return nil, fmt.Errorf("webhook configuration: failurePolicy %q is not Ignore or Fail", failure)
	}
	timeout := o.TimeoutSeconds
	if timeout == 0 {
		timeout = DefaultTimeoutSeconds
	}
	if timeout < 1 || timeout > 30 {
		return nil, fmt.Errorf("webhook configuration: timeoutSeconds %d is not within 1..30", timeout)
	}
	client := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.URL != "" {
		u := o.URL
		client.URL = &u
	} else {
		svc := *o.Service
		if svc.Path == nil {
			p := ValidatePath
			svc.Path = &p
		}
		client.Service = &svc
	}
	sideEffects := admissionregistrationv1.SideEffectClassNone
	matchPolicy := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, ops []admissionregistrationv1.OperationType, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"},
				Resources: resources, Scope: &scope},
		}
	}
	create := []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	createUpdate := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}

	selector := &metav1.LabelSelector{}
	if exempt := dedupe(o.ExemptNamespaces); len(exempt) > 0 {
		selector.MatchExpressions = append(selector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: exempt})
	}
	selector.MatchExpressions = append(selector.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: ModeLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{string(ModeOff)}})

	labels := map[string]string{ManagedByLabel: "fitgate"}
	for k, v := range o.Labels {
		labels[k] = v
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         WebhookName,
			ClientConfig: client,
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule("", create, "pods"),
				rule("", createUpdate, "replicationcontrollers"),
				rule("apps", createUpdate, "deployments", "replicasets", "statefulsets", "daemonsets"),
				rule("batch", createUpdate, "jobs", "cronjobs"),
			},
			FailurePolicy:           &failure,
			MatchPolicy:             &matchPolicy,
			NamespaceSelector:       selector,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "skip-updates-with-unchanged-spec",
				Expression: MatchConditionSkipUnchangedSpec,
			}},
		}},
	}, nil
}

// ApplyWebhookConfiguration creates the configuration, or replaces the
// webhooks of an existing one of the same name.
func ApplyWebhookConfiguration(ctx context.Context, client kubernetes.Interface, cfg *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	api := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, cfg.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, cfg, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		cur = cur.DeepCopy()
		cur.Webhooks = cfg.Webhooks
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for k, v := range cfg.Labels {
			cur.Labels[k] = v
		}
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// DeleteWebhookConfiguration deletes the named configuration; a missing one
// is not an error.
func DeleteWebhookConfiguration(ctx context.Context, client kubernetes.Interface, name string) error {
	err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
