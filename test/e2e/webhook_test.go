package e2e

// End-to-end tests of the fitgate webhook against the real control plane
// shared by this package (see TestMain in scheduler_smoke_test.go). fitgate
// runs in-process (webhook.Run, what `fitgate serve` runs) on 127.0.0.1
// with a serving certificate from the cluster CA, and is registered in URL
// mode. Its configuration only matches namespaces labelled with this run's
// id, so other tests sharing the control plane never see it.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/webhook"
)

var silenceControllerRuntime sync.Once

// e2eLabel scopes the registered webhook to this run's namespaces.
const e2eLabel = "fitgate.dev/e2e"

// fitgateRun is one in-process fitgate.
type fitgateRun struct {
	url        string
	healthAddr string
	registry   *prometheus.Registry
	cancel     context.CancelFunc
	done       chan error
	stopOnce   sync.Once
}

func (f *fitgateRun) stop(t *testing.T) {
	f.stopOnce.Do(func() {
		f.cancel()
		select {
		case err := <-f.done:
			if err != nil {
				t.Errorf("fitgate: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("fitgate did not stop")
		}
	})
}

func (f *fitgateRun) readyz() (int, string) {
	resp, err := http.Get("http://" + f.healthAddr + "/readyz?verbose")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startFitgate runs fitgate with cfg's API access until the test ends.
func startFitgate(t *testing.T, cfg *rest.Config) *fitgateRun {
	t.Helper()
	// controller-runtime's admission logging would otherwise complain
	// that no logger was set.
	silenceControllerRuntime.Do(func() {
		logf.SetLogger(logr.Discard())
		klog.SetLogger(logr.Discard()) // the forbidden lists of the readiness test
	})
	certDir := t.TempDir()
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freeLoopbackPort(t)
	f := &fitgateRun{
		url:        fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.ValidatePath),
		healthAddr: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)),
		done:       make(chan error, 1),
		registry:   prometheus.NewRegistry(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		f.done <- webhook.Run(ctx, webhook.Config{
			RESTConfig:     cfg,
			Policy:         webhook.DefaultPolicy("fitgate"),
			Engine:         feasibility.Options{},
			TimeoutSeconds: 5,
			Registry:       f.registry,
			Server: webhook.ServerOptions{
				Host: "127.0.0.1", Port: port, CertDir: certDir,
				HealthAddr: f.healthAddr, MetricsAddr: "127.0.0.1:0",
				CertPollInterval: 100 * time.Millisecond,
			},
		})
	}()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// register installs a URL-mode configuration for f that only matches
// namespaces labelled e2eLabel=runID, and removes it when the test ends.
func register(t *testing.T, name, url, runID string) {
	t.Helper()
	whc, err := webhook.NewWebhookConfiguration(webhook.WebhookConfigOptions{
		Name: name, URL: url, CABundle: cp.CACertPEM(),
		ExemptNamespaces: webhook.DefaultPolicy("fitgate").ExemptNamespaces,
	})
	if err != nil {
		t.Fatal(err)
	}
	sel := whc.Webhooks[0].NamespaceSelector
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: e2eLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{runID}})
	ctx := context.Background()
	if err := webhook.ApplyWebhookConfiguration(ctx, cp.Client(), whc); err != nil {
		t.Fatalf("registering the webhook: %v", err)
	}
	t.Cleanup(func() {
		if err := webhook.DeleteWebhookConfiguration(context.Background(), cp.Client(), name); err != nil {
			t.Errorf("unregistering: %v", err)
		}
	})
}

func warningClient(t *testing.T) (kubernetes.Interface, *controlplane.Warnings) {
	t.Helper()
	w := &controlplane.Warnings{}
	cfg := cp.RESTConfig()
	cfg.WarningHandler = w
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// namespace creates a namespace in fitgate's scope with the given mode
// ("" for no label) and waits for its default ServiceAccount.
func namespace(t *testing.T, runID, prefix, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	labels := map[string]string{e2eLabel: runID}
	if mode != "" {
		labels[webhook.ModeLabel] = mode
	}
	ns, err := cp.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client().CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	if err := cp.WaitForDefaultServiceAccount(ctx, ns.Name); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func kubectlPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "bin", "kubectl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubectl not found at %s: run `make tools`: %v", p, err)
	}
	return p
}

func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig", cp.KubeconfigPath()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// webhookEnv is the cluster every webhook subtest shares: two 4-cpu nodes
// that only this run's pods select, and one fitgate.
type webhookEnv struct {
	runID    string
	selector map[string]string
	fitgate  *fitgateRun
}

// addNodes creates two 4-cpu nodes that only pods selecting pool run on,
// and points the env's pods at them.
func (e *webhookEnv) addNodes(ctx context.Context, t *testing.T, pool string) {
	t.Helper()
	e.selector = map[string]string{"fitgate.dev/e2e-pool": e.runID + "-" + pool}
	for _, n := range []string{"a", "b"} {
		name := "fitgate-e2e-" + e.runID + "-" + pool + "-" + n
		if _, err := cp.CreateNode(ctx, controlplaneNode(name, e.selector)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cp.Client().CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
}

// withNodes is a copy of the env with a node pool of its own.
func (e *webhookEnv) withNodes(ctx context.Context, t *testing.T, pool string) *webhookEnv {
	c := *e
	c.addNodes(ctx, t, pool)
	return &c
}

func (e *webhookEnv) podSpec(cpu string) corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: e.selector,
		Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
	}
}

func (e *webhookEnv) pod(ns, name, cpu string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: e.podSpec(cpu)}
}

func (e *webhookEnv) template(name, cpu string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: e.podSpec(cpu)}
}

func (e *webhookEnv) deployment(ns, name, cpu string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: e.template(name, cpu)}}
}

// createKind creates a workload of the given kind, as client-go does.
func (e *webhookEnv) createKind(ctx context.Context, c kubernetes.Interface, kind, ns, name, cpu string) error {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	tmpl := e.template(name, cpu)
	var err error
	switch kind {
	case "Pod":
		_, err = c.CoreV1().Pods(ns).Create(ctx, e.pod(ns, name, cpu), metav1.CreateOptions{})
	case "Deployment":
		_, err = c.AppsV1().Deployments(ns).Create(ctx, e.deployment(ns, name, cpu, 2), metav1.CreateOptions{})
	case "ReplicaSet":
		_, err = c.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(2)), Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	case "StatefulSet":
		_, err = c.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2)), Selector: sel, Template: tmpl, ServiceName: name}}, metav1.CreateOptions{})
	case "DaemonSet":
		_, err = c.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	case "Job":
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
		_, err = c.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{Template: tmpl}}, metav1.CreateOptions{})
	case "CronJob":
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
		_, err = c.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.CronJobSpec{Schedule: "*/30 * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
			metav1.CreateOptions{})
	case "ReplicationController":
		_, err = c.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(2)), Selector: map[string]string{"app": name}, Template: &tmpl}},
			metav1.CreateOptions{})
	default:
		return fmt.Errorf("unknown kind %s", kind)
	}
	return err
}

func TestWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := &webhookEnv{runID: rand.String(6)}
	env.addNodes(ctx, t, "shared")
	env.fitgate = startFitgate(t, cp.RESTConfig())
	waitReady(t, env.fitgate, time.Minute)
	register(t, "fitgate-e2e-"+env.runID, env.fitgate.url, env.runID)

	// Subtests whose pods get bound have nodes of their own.
	t.Run("modes", func(t *testing.T) { testModes(ctx, t, env.withNodes(ctx, t, "modes")) })
	t.Run("every kind", func(t *testing.T) { testEveryKind(ctx, t, env.withNodes(ctx, t, "kinds")) })
	t.Run("scale up", func(t *testing.T) { testScaleUp(ctx, t, env.withNodes(ctx, t, "scale")) })
	t.Run("unchanged updates are skipped by the API server", func(t *testing.T) { testMatchCondition(ctx, t, env) })
	t.Run("dry run", func(t *testing.T) { testDryRun(ctx, t, env) })
	t.Run("secret and deployment in either order", func(t *testing.T) { testApplyOrder(ctx, t, env) })
	t.Run("helm install order", func(t *testing.T) { testHelmOrder(ctx, t, env) })
	// Last: it stops fitgate.
	t.Run("webhook down", func(t *testing.T) { testWebhookDown(ctx, t, env) })
}

func waitReady(t *testing.T, f *fitgateRun, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := f.readyz()
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fitgate not ready after %v: %d %s", timeout, code, body)
		}
		select {
		case err := <-f.done:
			t.Fatalf("fitgate exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func joined(w []string) string { return strings.Join(w, "\n") }

func testModes(ctx context.Context, t *testing.T, env *webhookEnv) {
	c, warns := warningClient(t)
	nsDefault := namespace(t, env.runID, "default-mode", "")
	nsWarn := namespace(t, env.runID, "warn", "warn")
	nsEnforce := namespace(t, env.runID, "enforce", "enforce")
	nsStrict := namespace(t, env.runID, "strict", "strict")
	nsOff := namespace(t, env.runID, "off", "off")

	// A bare Pod bigger than any node: denied by default (enforce for Pods).
	_, err := c.CoreV1().Pods(nsDefault).Create(ctx, env.pod(nsDefault, "big", "6"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("bare pod in a namespace without label: err = %v, want a denial", err)
	}
	for _, want := range []string{`admission webhook "validate.fitgate.dev" denied the request: pod "big" cannot run: 0/`,
		"2 Insufficient cpu", "(requests 6 cpu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q does not contain %q", err.Error(), want)
		}
	}
	t.Logf("denial: %v", err)

	// A Deployment: warned by default.
	warns.Take()
	if _, err := c.AppsV1().Deployments(nsDefault).Create(ctx, env.deployment(nsDefault, "big", "6", 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("deployment in a namespace without label: %v", err)
	}
	w := warns.Take()
	// A summary too long for one warning is split at its joints: the
	// object first, then the scheduler's sentence.
	if len(w) == 0 || !strings.HasPrefix(w[0], `deployment "big" cannot run`) || !strings.Contains(joined(w), "0/") ||
		!strings.Contains(joined(w), "2 Insufficient cpu") {
		t.Fatalf("warnings = %q", w)
	}
	for _, x := range w {
		if len(x) > 130 {
			t.Errorf("warning of %d bytes: %s", len(x), x)
		}
	}
	t.Logf("warnings: %q", w)

	// warn: the same bare Pod is admitted with the warning.
	if _, err := c.CoreV1().Pods(nsWarn).Create(ctx, env.pod(nsWarn, "big", "6"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("warn: %v", err)
	}
	if w := warns.Take(); len(w) == 0 || !strings.Contains(joined(w), `pod "big" cannot run`) {
		t.Fatalf("warn: warnings = %q", w)
	}

	// strict: a Deployment that only partly fits now (transient) is
	// denied; one that fits is admitted without a word.
	_, err = c.AppsV1().Deployments(nsStrict).Create(ctx, env.deployment(nsStrict, "partial", "3", 3), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `deployment "partial": only 2 of 3 replicas fit now`) {
		t.Fatalf("strict, transient: err = %v", err)
	}
	if _, err := c.AppsV1().Deployments(nsStrict).Create(ctx, env.deployment(nsStrict, "fits", "100m", 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("strict, fits: %v", err)
	}
	if w := warns.Take(); len(w) != 0 {
		t.Fatalf("strict, fits: warnings = %q", w)
	}

	// enforce: a Deployment that can never run is denied; the transient
	// one is admitted with a warning.
	_, err = c.AppsV1().Deployments(nsEnforce).Create(ctx, env.deployment(nsEnforce, "big", "6", 1), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `deployment "big" cannot run: 0/`) {
		t.Fatalf("enforce, permanent: err = %v", err)
	}
	if _, err := c.AppsV1().Deployments(nsEnforce).Create(ctx, env.deployment(nsEnforce, "partial", "3", 3), metav1.CreateOptions{}); err != nil {
		t.Fatalf("enforce, transient: %v", err)
	}
	if w := warns.Take(); !strings.Contains(joined(w), `deployment "partial": only 2 of 3 replicas fit now`) {
		t.Fatalf("enforce, transient: warnings = %q", w)
	}

	// off: nothing is judged.
	if _, err := c.CoreV1().Pods(nsOff).Create(ctx, env.pod(nsOff, "huge", "64"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("off: %v", err)
	}
	if w := warns.Take(); len(w) != 0 {
		t.Fatalf("off: warnings = %q", w)
	}
}

func testEveryKind(ctx context.Context, t *testing.T, env *webhookEnv) {
	c, warns := warningClient(t)
	nsWarn := namespace(t, env.runID, "kinds-warn", "warn")
	nsEnforce := namespace(t, env.runID, "kinds-enforce", "enforce")
	for _, kind := range feasibility.SupportedKinds {
		name := "big-" + strings.ToLower(kind)
		ref := fmt.Sprintf("%s %q", strings.ToLower(kind), name)
		warns.Take()
		if err := env.createKind(ctx, c, kind, nsWarn, name, "6"); err != nil {
			t.Errorf("%s in warn: %v", kind, err)
			continue
		}
		if w := warns.Take(); !strings.Contains(joined(w), ref) || !strings.Contains(joined(w), "Insufficient cpu") {
			t.Errorf("%s in warn: warnings = %q", kind, w)
		}
		err := env.createKind(ctx, c, kind, nsEnforce, name, "6")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "Insufficient cpu") {
			t.Errorf("%s in enforce: err = %v, want a denial naming %s", kind, err, ref)
		}
		if err := env.createKind(ctx, c, kind, nsEnforce, "ok-"+strings.ToLower(kind), "100m"); err != nil {
			t.Errorf("%s that fits, in enforce: %v", kind, err)
		}
	}
}

func boundPods(ctx context.Context, t *testing.T, ns, app string) int {
	t.Helper()
	pods, err := cp.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			n++
		}
	}
	return n
}

func waitBound(ctx context.Context, t *testing.T, ns, app string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for boundPods(ctx, t, ns, app) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pods of %s bound after a minute", boundPods(ctx, t, ns, app), want, app)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // for fitgate's informer to see the bindings
}

func scaleTo(ctx context.Context, c kubernetes.Interface, ns, name string, replicas int32) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Replicas = &replicas
		_, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
}

// testScaleUp: 8 cpu in all. With 2 × 1 cpu running, going to 8 adds 6,
// which fit exactly (judging all 8 on top of the 2 would not); going on
// to 9 adds one that does not.
func testScaleUp(ctx context.Context, t *testing.T, env *webhookEnv) {
	c, warns := warningClient(t)
	ns := namespace(t, env.runID, "scale", "strict")
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, env.deployment(ns, "web", "1", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBound(ctx, t, ns, "web", 2)
	if err := scaleTo(ctx, c, ns, "web", 8); err != nil {
		t.Fatalf("scaling 2 → 8 (6 new replicas, 6 cpu free): %v", err)
	}
	waitBound(ctx, t, ns, "web", 8)
	warns.Take()
	err := scaleTo(ctx, c, ns, "web", 9)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `deployment "web" cannot run now: 0/`) {
		t.Fatalf("scaling 8 → 9 with no cpu left: err = %v", err)
	}
	t.Logf("denial: %v", err)
	// Scaling down is never judged.
	if err := scaleTo(ctx, c, ns, "web", 1); err != nil {
		t.Fatalf("scaling down: %v", err)
	}
	if w := warns.Take(); len(w) != 0 {
		t.Fatalf("scaling down: warnings = %q", w)
	}
}

// webhookRequests reads controller-runtime's request counter for /validate.
func webhookRequests(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlMetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// testMatchCondition shows the CEL match condition at work on the real API
// server: an update that leaves the spec alone never reaches fitgate.
func testMatchCondition(ctx context.Context, t *testing.T, env *webhookEnv) {
	c := cp.Client()
	ns := namespace(t, env.runID, "cel", "strict")
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, env.deployment(ns, "web", "100m", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Let the ReplicaSet and its pod be created (each one a request) first.
	waitBound(ctx, t, ns, "web", 1)
	before := webhookRequests(t)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Labels = map[string]string{"touched": "yes"}
		_, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := webhookRequests(t); after != before {
		t.Fatalf("a metadata-only update reached the webhook (%v → %v requests)", before, after)
	}
	if err := scaleTo(ctx, c, ns, "web", 2); err != nil {
		t.Fatal(err)
	}
	if after := webhookRequests(t); after <= before {
		t.Fatal("a spec change did not reach the webhook")
	}
}

func writeManifests(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func podManifest(env *webhookEnv, ns, name, cpu string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  nodeSelector:
    fitgate.dev/e2e-pool: %q
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    resources:
      requests:
        cpu: %q
`, name, ns, env.selector["fitgate.dev/e2e-pool"], cpu)
}

func testDryRun(ctx context.Context, t *testing.T, env *webhookEnv) {
	nsWarn := namespace(t, env.runID, "dry-warn", "warn")
	nsEnforce := namespace(t, env.runID, "dry-enforce", "enforce")
	dir := writeManifests(t, map[string]string{
		"warn.yaml":    podManifest(env, nsWarn, "big", "6"),
		"enforce.yaml": podManifest(env, nsEnforce, "big", "6"),
	})
	out, err := kubectl(t, "apply", "--dry-run=server", "-f", filepath.Join(dir, "warn.yaml"))
	if err != nil {
		t.Fatalf("dry run in warn: %v\n%s", err, out)
	}
	if !strings.Contains(out, `Warning: pod "big" cannot run: 0/`) || !strings.Contains(out, "pod/big created (server dry run)") {
		t.Fatalf("dry run in warn:\n%s", out)
	}
	t.Logf("kubectl apply --dry-run=server:\n%s", out)
	// The same warning for real, and nothing was left behind by the dry run.
	real, err := kubectl(t, "apply", "-f", filepath.Join(dir, "warn.yaml"))
	if err != nil {
		t.Fatalf("apply in warn: %v\n%s", err, real)
	}
	if warn := firstLine(out); warn != firstLine(real) {
		t.Errorf("dry run warned %q, real apply %q", warn, firstLine(real))
	}
	out, err = kubectl(t, "apply", "--dry-run=server", "-f", filepath.Join(dir, "enforce.yaml"))
	if err == nil || !strings.Contains(out, `denied the request: pod "big" cannot run: 0/`) {
		t.Fatalf("dry run in enforce: err %v\n%s", err, out)
	}
	if _, err := cp.Client().CoreV1().Pods(nsEnforce).Get(ctx, "big", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run left a pod behind: %v", err)
	}
	// client-go's dry run gets the same warnings.
	c, warns := warningClient(t)
	d := env.deployment(nsWarn, "dry", "6", 1)
	if _, err := c.AppsV1().Deployments(nsWarn).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if w := warns.Take(); !strings.Contains(joined(w), `deployment "dry" cannot run: 0/`) {
		t.Fatalf("client-go dry run: warnings = %q", w)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// testApplyOrder: kubectl applies a directory in file-name order, so the
// Deployment may come before the Secret it mounts. Neither order is ever
// denied, even in strict mode; only the Deployment-first order warns.
func testApplyOrder(ctx context.Context, t *testing.T, env *webhookEnv) {
	for _, order := range []struct {
		name                 string
		secretFile, depFile  string
		wantMissingSecretMsg bool
	}{
		{"secret first", "1-secret.yaml", "2-deployment.yaml", false},
		{"deployment first", "2-secret.yaml", "1-deployment.yaml", true},
	} {
		t.Run(order.name, func(t *testing.T) {
			ns := namespace(t, env.runID, "order", "strict")
			secret := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: %s\nstringData:\n  password: hunter2\n", ns)
			deployment := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      nodeSelector:
        fitgate.dev/e2e-pool: %q
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        resources:
          requests: {cpu: 100m}
        volumeMounts:
        - {name: db, mountPath: /etc/db}
      volumes:
      - name: db
        secret: {secretName: db}
`, ns, env.selector["fitgate.dev/e2e-pool"])
			dir := writeManifests(t, map[string]string{order.secretFile: secret, order.depFile: deployment})
			out, err := kubectl(t, "apply", "-f", dir)
			if err != nil {
				t.Fatalf("kubectl apply -f dir/: %v\n%s", err, out)
			}
			t.Logf("kubectl apply -f dir/:\n%s", out)
			if !strings.Contains(out, "secret/db created") || !strings.Contains(out, "deployment.apps/api created") {
				t.Fatalf("output:\n%s", out)
			}
			warned := strings.Contains(out, `secret "db" not found`)
			if warned != order.wantMissingSecretMsg {
				t.Fatalf("missing-secret warning: %v, want %v\n%s", warned, order.wantMissingSecretMsg, out)
			}
		})
	}
}

// testWebhookDown stops fitgate while it is still registered: the API
// server admits what fitgate would deny, because failurePolicy is Ignore.
func testWebhookDown(ctx context.Context, t *testing.T, env *webhookEnv) {
	ns := namespace(t, env.runID, "down", "strict")
	env.fitgate.stop(t)
	start := time.Now()
	if _, err := cp.Client().CoreV1().Pods(ns).Create(ctx, env.pod(ns, "big", "64"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("with fitgate down: %v", err)
	}
	t.Logf("admitted with fitgate down in %v", time.Since(start).Round(time.Millisecond))
}

// TestWebhookReadinessBeforeSync runs fitgate as a user that may not list
// anything: TLS loads, the cache never syncs, /readyz says so, and a request
// sent anyway is allowed with a warning. Granting the RBAC fitgate needs
// makes it ready.
func TestWebhookReadinessBeforeSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	user := "fitgate-e2e-" + rand.String(6)
	cfg := cp.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	f := startFitgate(t, cfg)

	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := f.readyz()
		if strings.Contains(body, "[+]tls ok") {
			if code == http.StatusOK || !strings.Contains(body, "[-]cache failed") {
				t.Fatalf("/readyz = %d:\n%s", code, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS not loaded: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if code, body := f.readyz(); code == http.StatusOK {
		t.Fatalf("ready without being able to list anything:\n%s", body)
	}

	// A request that reaches it anyway is allowed, saying why.
	rev := postReview(t, f.url, &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "somewhere", Name: "big"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("640")}}}}}})
	if !rev.Response.Allowed || !strings.Contains(joined(rev.Response.Warnings), "cache is still syncing") {
		t.Fatalf("response before sync: %+v", rev.Response)
	}

	grantFitgateRBAC(ctx, t, user)
	waitReady(t, f, 2*time.Minute)
	if code, body := f.readyz(); code != http.StatusOK || !strings.Contains(body, "[+]cache ok") {
		t.Fatalf("/readyz = %d:\n%s", code, body)
	}
}

func postReview(t *testing.T, url string, obj runtime.Object) *admissionv1.AdmissionReview {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "e2e", Operation: admissionv1.Create,
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "somewhere", Name: "big", Object: runtime.RawExtension{Raw: raw}},
	})
	roots := newCertPool(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil {
		t.Fatal("no response")
	}
	return &out
}

// grantFitgateRBAC gives user what fitgate serve needs: list and watch of
// every kind it caches, and get for the live lookups.
func grantFitgateRBAC(ctx context.Context, t *testing.T, user string) {
	t.Helper()
	verbs := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Verbs: verbs, Resources: []string{"nodes", "pods", "namespaces", "persistentvolumeclaims",
			"persistentvolumes", "resourcequotas", "limitranges", "serviceaccounts", "secrets", "configmaps"}},
		{APIGroups: []string{"storage.k8s.io"}, Verbs: verbs, Resources: []string{"storageclasses", "csinodes"}},
		{APIGroups: []string{"scheduling.k8s.io"}, Verbs: verbs, Resources: []string{"priorityclasses"}},
		{APIGroups: []string{"node.k8s.io"}, Verbs: verbs, Resources: []string{"runtimeclasses"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	rbac := cp.Client().RbacV1()
	if _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rbac.ClusterRoleBindings().Delete(context.Background(), user, metav1.DeleteOptions{})
		_ = rbac.ClusterRoles().Delete(context.Background(), user, metav1.DeleteOptions{})
	})
}

func controlplaneNode(name string, labels map[string]string) controlplane.NodeSpec {
	return controlplane.NodeSpec{Name: name, CPU: "4", Memory: "8Gi", Labels: labels}
}

func ctrlMetricsGatherer() prometheus.Gatherer { return crmetrics.Registry }

func newCertPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cp.CACertPEM()) {
		t.Fatal("cannot parse the cluster CA")
	}
	return pool
}

// testHelmOrder creates a chart's objects back to back in Helm's install
// order (PriorityClass, Namespace, ResourceQuota, LimitRange,
// ServiceAccount, Secret, ConfigMap, StorageClass, PersistentVolumeClaim,
// DaemonSet, Pod, Deployment, StatefulSet, Job, CronJob), in an enforce
// namespace, with no pause for fitgate's cache to catch up: nothing is
// denied, because every missing reference is confirmed with a live GET.
func testHelmOrder(ctx context.Context, t *testing.T, env *webhookEnv) {
	c, warns := warningClient(t)
	defer func() {
		t.Logf("warnings: %q; live lookups: %s", warns.Take(), liveLookups(t, env.fitgate.registry))
	}()
	id := "fitgate-e2e-" + env.runID
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: id}, Value: 1000}, metav1.CreateOptions{})
	must("PriorityClass", err)
	t.Cleanup(func() {
		_ = c.SchedulingV1().PriorityClasses().Delete(context.Background(), id, metav1.DeleteOptions{})
	})
	nsObj, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "helm-",
		Labels: map[string]string{e2eLabel: env.runID, webhook.ModeLabel: "enforce"}}}, metav1.CreateOptions{})
	must("Namespace", err)
	ns := nsObj.Name
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	_, err = c.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("100"),
			corev1.ResourcePods: resource.MustParse("100")}}}, metav1.CreateOptions{})
	must("ResourceQuota", err)
	_, err = c.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			DefaultRequest: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}}}}}, metav1.CreateOptions{})
	must("LimitRange", err)
	_, err = c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	must("ServiceAccount", err)
	_, err = c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		StringData: map[string]string{"token": "t"}}, metav1.CreateOptions{})
	must("Secret", err)
	_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	must("ConfigMap", err)
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	_, err = c.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: id},
		Provisioner: "example.com/fake", VolumeBindingMode: &wffc}, metav1.CreateOptions{})
	must("StorageClass", err)
	t.Cleanup(func() { _ = c.StorageV1().StorageClasses().Delete(context.Background(), id, metav1.DeleteOptions{}) })
	claimSpec := corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(id),
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}
	_, err = c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: claimSpec}, metav1.CreateOptions{})
	must("PersistentVolumeClaim", err)

	spec := func(withClaim bool) corev1.PodSpec {
		s := env.podSpec("100m")
		s.ServiceAccountName = "app"
		s.PriorityClassName = id
		s.Containers[0].EnvFrom = []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}
		if withClaim {
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		}
		return s
	}
	tmpl := func(app string, withClaim bool) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: spec(withClaim)}
	}
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	_, err = c.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: tmpl("agent", false)}}, metav1.CreateOptions{})
	must("DaemonSet", err)
	_, err = c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "migrate"}, Spec: spec(true)}, metav1.CreateOptions{})
	must("Pod", err)
	_, err = c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Selector: sel("web"), Template: tmpl("web", true)}}, metav1.CreateOptions{})
	must("Deployment", err)
	_, err = c.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(1)), Selector: sel("db"), ServiceName: "db", Template: tmpl("db", false),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claimSpec}}}},
		metav1.CreateOptions{})
	must("StatefulSet", err)
	job := tmpl("job", false)
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err = c.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "setup"},
		Spec: batchv1.JobSpec{Template: job}}, metav1.CreateOptions{})
	must("Job", err)
	_, err = c.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: job}}}},
		metav1.CreateOptions{})
	must("CronJob", err)
}

// liveLookups summarises fitgate_live_lookups_total.
func liveLookups(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "fitgate_live_lookups_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s=%v", strings.Join(labels, "/"), m.GetCounter().GetValue()))
		}
	}
	return strings.Join(out, " ")
}
