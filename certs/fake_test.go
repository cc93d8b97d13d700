package certs

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testNamespace = "fitgate-system"
	testSecret    = "fitgate-serving-cert"
	testService   = "fitgate"
	testWebhooks  = "fitgate"
)

var (
	secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")
	vwcGVR     = admissionregistrationv1.SchemeGroupVersion.WithResource("validatingwebhookconfigurations")
)

// newFakeClient is the fake clientset plus what it lacks and the rotator
// relies on: resourceVersions, and Update failing with Conflict when the
// resourceVersion sent is not the stored one. Reactors run under the fake's
// lock, so compare-and-store is atomic as on a real API server.
func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	var rv atomic.Int64
	rv.Store(100)
	next := func() string { return strconv.FormatInt(rv.Add(1), 10) }

	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, err := meta.Accessor(a.(k8stesting.CreateAction).GetObject()); err == nil {
			o.SetResourceVersion(next())
		}
		return false, nil, nil // the default reactor stores it
	})
	cs.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua := a.(k8stesting.UpdateAction)
		o, err := meta.Accessor(ua.GetObject())
		if err != nil {
			return false, nil, nil
		}
		stored, err := cs.Tracker().Get(ua.GetResource(), ua.GetNamespace(), o.GetName())
		if err != nil {
			return false, nil, nil // the default reactor returns NotFound
		}
		s, _ := meta.Accessor(stored)
		if o.GetResourceVersion() != "" && o.GetResourceVersion() != s.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(ua.GetResource().GroupResource(), o.GetName(),
				errors.New("the object has been modified"))
		}
		o.SetResourceVersion(next())
		return false, nil, nil
	})
	return cs
}

// failOnce prepends a reactor that, the first time verb on resource is
// called, runs before (which may change the tracker behind the caller's
// back) and fails with err.
func failOnce(cs *fake.Clientset, verb, resource string, before func(), err error) {
	var done atomic.Bool
	cs.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		if done.Swap(true) {
			return false, nil, nil
		}
		if before != nil {
			before()
		}
		return true, nil, err
	})
}

func countActions(cs *fake.Clientset, verb, resource string) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func webhookConfig() *admissionregistrationv1.ValidatingWebhookConfiguration {
	none := admissionregistrationv1.SideEffectClassNone
	hook := func(name string) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: testNamespace, Name: testService},
			},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: testWebhooks, ResourceVersion: "1"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{hook("workloads.fitgate.io"), hook("quotas.fitgate.io")},
	}
}

func secretWith(m Material) *corev1.Secret {
	s := newSecret(testNamespace, testSecret, m)
	s.ResourceVersion = "1"
	return s
}

func getSecret(t *testing.T, c kubernetes.Interface) *corev1.Secret {
	t.Helper()
	s, err := c.CoreV1().Secrets(testNamespace).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Secret: %v", err)
	}
	return s
}

func getWebhookConfig(t *testing.T, c kubernetes.Interface) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	v, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), testWebhooks, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ValidatingWebhookConfiguration: %v", err)
	}
	return v
}

// gatedClient holds the first n Secret GETs until all n have arrived, so
// that n rotators deterministically read the same state before any of them
// writes: the race the optimistic concurrency has to settle.
type gatedClient struct {
	kubernetes.Interface
	gate *gate
}

type gate struct {
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newGate(n int) *gate {
	g := &gate{waiting: n, open: make(chan struct{})}
	return g
}

func (g *gate) pass() {
	g.mu.Lock()
	select {
	case <-g.open:
		g.mu.Unlock()
		return
	default:
	}
	g.waiting--
	if g.waiting == 0 {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(10 * time.Second): // never deadlock a broken test
	}
}

func (c gatedClient) CoreV1() typedcorev1.CoreV1Interface {
	return gatedCore{CoreV1Interface: c.Interface.CoreV1(), gate: c.gate}
}

type gatedCore struct {
	typedcorev1.CoreV1Interface
	gate *gate
}

func (c gatedCore) Secrets(namespace string) typedcorev1.SecretInterface {
	return gatedSecrets{SecretInterface: c.CoreV1Interface.Secrets(namespace), gate: c.gate}
}

type gatedSecrets struct {
	typedcorev1.SecretInterface
	gate *gate
}

func (s gatedSecrets) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	sec, err := s.SecretInterface.Get(ctx, name, opts)
	s.gate.pass()
	return sec, err
}
