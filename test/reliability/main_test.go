package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/webhook"
)

// fitgateNamespace is fitgate's own namespace: exempt, like kube-system.
const fitgateNamespace = "fitgate-system"

// webhookConfigName names the configuration the suite registers.
const webhookConfigName = "fitgate"

var (
	cp      *controlplane.ControlPlane
	fg      *fitgateProc // the suite's fitgate; tests that stop it start it again
	binDir  string       // kubectl, helm
	repo    string       // repository root
	workDir string       // fitgate's certificates, kubeconfig and log
	// identity says whom fitgate runs as, for the report.
	identity string
	// fitgateUser is fitgate's user name as the API server sees it.
	fitgateUser string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	var err error
	if repo, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return fail(err)
	}
	if binDir = os.Getenv("FITGATE_BIN_DIR"); binDir == "" {
		binDir = filepath.Join(repo, "bin")
	}
	if workDir, err = os.MkdirTemp("", "fitgate-reliability-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(workDir)
	bin, err := fitgateBinary()
	if err != nil {
		return fail(err)
	}
	cp, err = controlplane.Start(context.Background(), controlplane.Options{})
	if err != nil {
		return fail(fmt.Errorf("the reliability suite needs a local control plane: %w", err))
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubeconfig, err := setUpIdentity(ctx)
	if err != nil {
		return fail(err)
	}
	certDir := filepath.Join(workDir, "certs")
	if err := writeServingCert(certDir); err != nil {
		return fail(err)
	}
	fg, err = newFitgateProc(bin, kubeconfig, certDir, filepath.Join(cp.Dir(), "logs", "fitgate.log"),
		"--shutdown-delay", "1s", "--timeout-seconds", "5")
	if err != nil {
		return fail(err)
	}
	if err := fg.Start(); err != nil {
		return fail(err)
	}
	defer func() {
		if took, err := fg.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping fitgate (after %v): %v\n", took, err)
		}
	}()
	if err := fg.WaitReady(ctx); err != nil {
		return fail(err)
	}
	if err := register(ctx, "Ignore"); err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "reliability suite up in %v: control plane at %s, fitgate at %s as %s\n",
		time.Since(start).Round(time.Millisecond), cp.APIServerURL(), fg.URL(), identity)
	return m.Run()
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
	return 1
}

// fitgateBinary is $FITGATE_BIN_DIR/fitgate when set (make test builds it
// first), else a fresh build of ./cmd/fitgate, so the suite never runs a
// stale binary by accident.
func fitgateBinary() (string, error) {
	if dir := os.Getenv("FITGATE_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, "fitgate")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	out := filepath.Join(workDir, "fitgate")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/fitgate")
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building fitgate: %v\n%s", err, b)
	}
	return out, nil
}

// setUpIdentity creates fitgate's namespace and returns the kubeconfig
// fitgate runs with: the chart's ServiceAccount, bound to exactly the
// chart's RBAC, when charts/fitgate exists.
func setUpIdentity(ctx context.Context) (string, error) {
	if err := cp.EnsureNamespace(ctx, fitgateNamespace); err != nil {
		return "", err
	}
	chart := filepath.Join(repo, "charts", "fitgate")
	if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); err != nil {
		// Running as admin would prove nothing about the chart's RBAC.
		return "", fmt.Errorf("charts/fitgate is needed to run fitgate with the chart's RBAC: %w", err)
	}
	sa, err := applyChartRBAC(ctx, chart)
	if err != nil {
		return "", err
	}
	tok, err := cp.Client().CoreV1().ServiceAccounts(fitgateNamespace).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(2 * 3600))}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", fitgateNamespace, sa, err)
	}
	identity = fmt.Sprintf("ServiceAccount %s/%s with the chart's RBAC", fitgateNamespace, sa)
	fitgateUser = "system:serviceaccount:" + fitgateNamespace + ":" + sa
	path := filepath.Join(workDir, "fitgate.kubeconfig")
	return path, writeTokenKubeconfig(path, tok.Status.Token)
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// applyChartRBAC renders the chart with bin/helm for release "fitgate" in
// fitgateNamespace and applies its ServiceAccount, (Cluster)Roles and
// (Cluster)RoleBindings as rendered: nothing added, nothing left out. It
// returns the ServiceAccount's name.
func applyChartRBAC(ctx context.Context, chart string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "helm"), "template", "fitgate", chart, "--namespace", fitgateNamespace)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("helm template %s: %v\n%s", chart, err, stderr.String())
	}
	var keep []string
	var sa string
	for _, doc := range docSeparator.Split(string(out), -1) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
			continue
		}
		switch head.Kind {
		case "ServiceAccount":
			sa = head.Metadata.Name
			keep = append(keep, doc)
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			keep = append(keep, doc)
		}
	}
	if sa == "" {
		return "", errors.New("the chart renders no ServiceAccount")
	}
	path := filepath.Join(workDir, "chart-rbac.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(keep, "\n---\n")), 0o600); err != nil {
		return "", err
	}
	if out, err := kubectl(ctx, "apply", "-n", fitgateNamespace, "-f", path); err != nil {
		return "", fmt.Errorf("applying the chart's RBAC: %v\n%s", err, out)
	}
	return sa, nil
}

func writeTokenKubeconfig(path, token string) error {
	type m = map[string]any
	data, err := yaml.Marshal(m{
		"apiVersion": "v1", "kind": "Config",
		"clusters":        []m{{"name": "local", "cluster": m{"server": cp.APIServerURL(), "certificate-authority-data": cp.CACertPEM()}}},
		"users":           []m{{"name": "fitgate", "user": m{"token": token}}},
		"contexts":        []m{{"name": "local", "context": m{"cluster": "local", "user": "fitgate"}}},
		"current-context": "local",
	})
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// register installs (or updates) the suite's configuration for fg.
func register(ctx context.Context, failurePolicy string) error {
	whc, err := webhook.NewWebhookConfiguration(webhook.WebhookConfigOptions{
		Name: webhookConfigName, URL: fg.URL(), CABundle: cp.CACertPEM(), TimeoutSeconds: 5,
		FailurePolicy:    admissionFailurePolicy(failurePolicy),
		ExemptNamespaces: webhook.DefaultPolicy(fitgateNamespace).ExemptNamespaces,
	})
	if err != nil {
		return err
	}
	return webhook.ApplyWebhookConfiguration(ctx, cp.Client(), whc)
}

func admissionFailurePolicy(s string) admissionregistrationv1.FailurePolicyType {
	return admissionregistrationv1.FailurePolicyType(s)
}

func kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", cp.KubeconfigPath()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// namespace creates a namespace with fitgate's mode label ("" for none),
// waits for its default ServiceAccount and deletes it when the test ends.
func namespace(t *testing.T, prefix, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	labels := map[string]string{}
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

// pool is a label only this test's nodes carry and only its pods select.
func pool(t *testing.T) map[string]string {
	return map[string]string{"fitgate.dev/pool": strings.ToLower(rand.String(8))}
}

func nodeSpec(name, cpu string, labels map[string]string) controlplane.NodeSpec {
	return controlplane.NodeSpec{Name: name, CPU: cpu, Memory: "64Gi", Pods: 500, Labels: labels}
}

// addNode creates a fake node and deletes it when the test ends.
func addNode(ctx context.Context, t *testing.T, name, cpu string, labels map[string]string) {
	t.Helper()
	if _, err := cp.CreateNode(ctx, nodeSpec(name, cpu, labels)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client().CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

func smallPod(ns, name, cpu string, selector map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeSelector: selector, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}}}
}

// prober asks the API server for fitgate's verdict on a pod with a
// server-side dry run: the full admission chain, nothing stored.
type prober struct {
	c kubernetes.Interface
	w *controlplane.Warnings
	// serialises probes so each one's warnings are its own
	mu sync.Mutex
}

func newProber(t *testing.T) *prober {
	t.Helper()
	w := &controlplane.Warnings{}
	cfg := cp.RESTConfig()
	cfg.WarningHandler = w
	cfg.Timeout = 15 * time.Second
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &prober{c: c, w: w}
}

// verdict is fitgate's answer as the user sees it.
type verdict struct {
	denied   bool
	message  string
	warnings []string
	err      error // the request failed for another reason
}

// typoMode is a mode label fitgate does not know: it judges such a
// namespace with the default mode (enforce for bare pods) and says so in a
// warning on every answer, allowed or not. That warning is the proof an
// answer came from fitgate rather than from the API server failing open.
const typoMode = "enforcing"

// fingerprintedNamespace is a namespace whose every fitgate answer carries
// the typo warning.
func fingerprintedNamespace(t *testing.T, prefix string) string {
	return namespace(t, prefix, typoMode)
}

func (v verdict) has(s string) bool {
	for _, w := range v.warnings {
		if strings.Contains(w, s) {
			return true
		}
	}
	return strings.Contains(v.message, s)
}

// fromFitgate: fitgate answered (in a fingerprinted namespace).
func (v verdict) fromFitgate() bool {
	return v.err == nil && v.has("is not off, warn, enforce or strict")
}

// judged: fitgate answered after checking, not "not checked".
func (v verdict) judged() bool { return v.fromFitgate() && !v.has("not checked") }

// unchecked: admitted without a check: the API server failed open
// (fitgate unreachable), or fitgate allowed it unchecked (cache not
// synced, behind, or out of budget).
func (v verdict) unchecked() bool { return v.err == nil && !v.denied && !v.judged() }

func (v verdict) String() string {
	switch {
	case v.err != nil:
		return "error: " + v.err.Error()
	case v.denied:
		return "denied: " + v.message
	}
	return fmt.Sprintf("allowed, warnings %q", v.warnings)
}

func (p *prober) dryRun(ctx context.Context, pod *corev1.Pod) verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Take()
	_, err := p.c.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	v := verdict{warnings: p.w.Take()}
	switch {
	case err == nil:
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "denied the request"):
		v.denied, v.message = true, err.Error()
	default:
		v.err = err
	}
	return v
}

// figure logs a measured figure in a form easy to collect for
// docs/reliability.md.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}
