package certs

import (
	"context"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watchObjects starts informers, running until ctx is done, that send on
// kick (without blocking) whenever the Secret or the webhook configuration
// changes. The rotator
// still reads through GET, not from these caches: the watches only shorten
// the time to react to another replica's rotation, a deleted Secret, or a
// caBundle reverted by Helm, from CheckInterval to about a second.
//
// Both list and watch carry a metadata.name field selector, so RBAC can
// restrict list and watch to the one resourceName.
func (r *Rotator) watchObjects(ctx context.Context, kick chan<- struct{}) {
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	runNamedInformer(ctx, kick, r.Client, &corev1.Secret{}, r.SecretName,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return secrets.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return secrets.Watch(ctx, o) })

	if r.WebhookConfigName != "" {
		vwcs := r.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
		runNamedInformer(ctx, kick, r.Client, &admissionregistrationv1.ValidatingWebhookConfiguration{}, r.WebhookConfigName,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return vwcs.List(ctx, o) },
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return vwcs.Watch(ctx, o) })
	}
}

// runNamedInformer starts an informer for the single object called name that kicks on
// every event.
func runNamedInformer(ctx context.Context, kick chan<- struct{}, client any, obj runtime.Object, name string,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) {
	notify := func(obj any) {
		// The field selector already does this on a real API server; the
		// check keeps a server (or fake) that ignores it from over-kicking.
		if o, ok := obj.(metav1.Object); ok && o.GetName() != name {
			return
		}
		select {
		case kick <- struct{}{}:
		default: // a sync is already pending
		}
	}
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return watchFn(ctx, o)
		},
	}
	_, ctl := cache.NewInformerWithOptions(cache.InformerOptions{
		// Carries over whether the client can stream lists (WatchList), as
		// generated informers do; fake clientsets cannot.
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, client),
		ObjectType:    obj,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: notify,
		},
	})
	go ctl.RunWithContext(ctx)
}
