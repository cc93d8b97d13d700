package chart

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fitgate/fitgate/test/controlplane"
	"github.com/fitgate/fitgate/webhook"
)

// testInstall installs variant v with `helm install` (Helm 4 applies
// server-side) and runs bin/fitgate with the Deployment's arguments, as the
// chart's ServiceAccount, so that a missing permission or a flag the binary
// does not know fails here. It checks:
//   - /readyz passes: the cache synced and, self-managed, the rotator
//     stored the Secret and injected its CA into the chart's configuration;
//   - `helm upgrade` leaves the injected caBundle alone;
//   - the serving certificate verifies as <service>.<namespace>.svc;
//   - a live lookup of a Secret (a name-filtered list) is allowed;
//   - the API server's authorizer agrees with the least-privilege intent;
//   - the uninstall order of the README works.
func testInstall(t *testing.T, cp *controlplane.ControlPlane, v variant) {
	release := "fg-" + v.name
	ns := release
	if err := cp.EnsureNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client().CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	var extra []string
	if len(custom(render(t, release, ns, v), "ServiceMonitor")) > 0 {
		extra = []string{"--set", "metrics.serviceMonitor.enabled=false"} // no Prometheus Operator CRDs here
	}
	m := render(t, release, ns, v, extra...)
	helmArgs := append(append([]string{release, chartDir(t), "--namespace", ns, "--kubeconfig", cp.KubeconfigPath()},
		v.helmArgs(t)...), extra...)
	if out, err := helm(t, append([]string{"install"}, helmArgs...)...); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	k := &kube{t: t, cp: cp}
	uninstalled := false
	uninstall := func() {
		// The webhook configuration first, as the README says.
		if out, err := k.run(nil, "delete", "validatingwebhookconfiguration", "--ignore-not-found",
			"-l", "app.kubernetes.io/instance="+release); err != nil {
			t.Errorf("deleting the webhook configuration: %v\n%s", err, out)
		}
		if out, err := helm(t, "uninstall", release, "--namespace", ns, "--kubeconfig", cp.KubeconfigPath()); err != nil {
			t.Errorf("helm uninstall: %v\n%s", err, out)
		}
		uninstalled = true
	}
	t.Cleanup(func() {
		if !uninstalled {
			uninstall()
		}
	})

	dep := one[*appsv1.Deployment](t, m)
	pod := dep.Spec.Template.Spec
	vwcName := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, m).Name
	svc := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, m).Webhooks[0].ClientConfig.Service.Name
	args := flags(pod.Containers[0].Args)
	user := "system:serviceaccount:" + ns + ":" + pod.ServiceAccountName
	selfManaged := args["cert-secret"] != ""
	serverName := svc + "." + ns + ".svc"

	certDir := t.TempDir()
	if !selfManaged {
		// Stands in for cert-manager, which the test cluster does not run.
		cert, key, err := cp.IssueServingCert(serverName)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(certDir, "tls.crt"), cert)
		writeFile(t, filepath.Join(certDir, "tls.key"), key)
	}
	f := startFitgate(t, cp, pod.Containers[0].Args, user, certDir)
	f.waitReady(t, 90*time.Second)

	client := cp.Client()
	ctx := context.Background()
	vwc, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caBundle := vwc.Webhooks[0].ClientConfig.CABundle
	roots := x509.NewCertPool()
	if selfManaged {
		sec, err := client.CoreV1().Secrets(ns).Get(ctx, args["cert-secret"], metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the rotator's Secret: %v", err)
		}
		if sec.Type != corev1.SecretTypeTLS || len(sec.Data["tls.key"]) == 0 || len(sec.Data["ca.key"]) == 0 {
			t.Errorf("Secret type %s with keys %v", sec.Type, keys(sec.Data))
		}
		if len(caBundle) == 0 || !bytes.Equal(caBundle, sec.Data["ca.crt"]) {
			t.Fatalf("caBundle (%d bytes) is not the Secret's ca.crt", len(caBundle))
		}
		roots.AppendCertsFromPEM(caBundle)
	} else {
		if len(caBundle) != 0 {
			t.Errorf("cert-manager mode: fitgate touched the caBundle")
		}
		list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if s.Type != "helm.sh/release.v1" {
				t.Errorf("cert-manager mode: fitgate created Secret %s", s.Name)
			}
		}
		roots.AppendCertsFromPEM(cp.CACertPEM())
	}

	// An upgrade re-applies the configuration without a caBundle; the
	// field belongs to the injector, so Helm leaves it as it is.
	if out, err := helm(t, append([]string{"upgrade"}, append(helmArgs, "--set", "logLevel=debug")...)...); err != nil {
		t.Fatalf("helm upgrade: %v\n%s", err, out)
	}
	vwc, err = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, vwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after := vwc.Webhooks[0].ClientConfig.CABundle; !bytes.Equal(after, caBundle) {
		t.Errorf("helm upgrade changed the caBundle from %d to %d bytes", len(caBundle), len(after))
	}

	// The serving certificate is good for the name the API server dials.
	conn, err := tls.Dial("tcp", f.webhookAddr, &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS as %s: %v", serverName, err)
	}
	conn.Close()

	checkLiveLookup(t, cp, f, roots, serverName)
	checkAccess(t, cp, user, ns, args["cert-secret"], vwcName, selfManaged)
	f.stop(t)
	uninstall()
	for _, o := range m.generic {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ValidatingWebhookConfiguration" {
			if out, err := k.run(nil, "get", o.GetKind(), o.GetName()); err == nil {
				t.Errorf("%s %s survives helm uninstall:\n%s", o.GetKind(), o.GetName(), out)
			}
		}
	}
}

// checkLiveLookup sends a review of a Pod whose Secret and ConfigMap do
// not exist: fitgate confirms each with a live, name-filtered list, which
// the chart's RBAC must allow.
func checkLiveLookup(t *testing.T, cp *controlplane.ControlPlane, f *fitgateProc, roots *x509.CertPool, serverName string) {
	t.Helper()
	appNS := f.name + "-apps"
	ctx := context.Background()
	if _, err := cp.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: appNS, Labels: map[string]string{webhook.ModeLabel: string(webhook.ModeEnforce)}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client().CoreV1().Namespaces().Delete(context.Background(), appNS, metav1.DeleteOptions{})
	})
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "app"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
			EnvFrom: []corev1.EnvFromSource{
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}},
			}}}}}
	raw, _ := json.Marshal(pod)
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "chart-test", Operation: admissionv1.Create,
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: appNS, Name: "app", Object: runtime.RawExtension{Raw: raw}},
	})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
	resp, err := hc.Post("https://"+f.webhookAddr+webhook.ValidatePath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var rev admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&rev)
	resp.Body.Close()
	if err != nil || rev.Response == nil {
		t.Fatalf("review: %v %+v", err, rev)
	}
	msg := ""
	if rev.Response.Result != nil {
		msg = rev.Response.Result.Message
	}
	metrics := f.scrape(t, "fitgate_live_lookups_total")
	for _, want := range []string{`kind="Secret",result="missing"`, `kind="ConfigMap",result="missing"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("no live lookup %s (allowed=%v %q); lookups:\n%s", want, rev.Response.Allowed, msg, metrics)
		}
	}
	if strings.Contains(metrics, `result="error"`) {
		t.Errorf("a live lookup failed (RBAC?):\n%s", metrics)
	}
	// Whether a confirmed missing reference warns or denies is the
	// handler's business; that fitgate could confirm it is the chart's.
	if said := msg + strings.Join(rev.Response.Warnings, "\n"); !strings.Contains(said, `secret "absent" not found`) {
		t.Errorf("review: allowed=%v %q %q, want the missing secret named", rev.Response.Allowed, msg, rev.Response.Warnings)
	}
}

// checkAccess asks the API server's authorizer what the ServiceAccount may
// do; resourceNames and namespaces are judged by the real RBAC authorizer.
func checkAccess(t *testing.T, cp *controlplane.ControlPlane, user, ns, secret, vwc string, selfManaged bool) {
	t.Helper()
	type attrs = authorizationv1.ResourceAttributes
	for _, tc := range []struct {
		what    string
		attrs   attrs
		allowed bool
	}{
		{"get a secret anywhere", attrs{Verb: "get", Resource: "secrets", Name: "x"}, false},
		{"get a secret in another namespace", attrs{Verb: "get", Resource: "secrets", Namespace: "default", Name: "x"}, false},
		{"get another secret in its namespace", attrs{Verb: "get", Resource: "secrets", Namespace: ns, Name: "x"}, false},
		{"list secrets (metadata informer; RBAC cannot say metadata only)", attrs{Verb: "list", Resource: "secrets"}, true},
		{"watch configmaps", attrs{Verb: "watch", Resource: "configmaps"}, true},
		{"get a configmap", attrs{Verb: "get", Resource: "configmaps", Namespace: "default", Name: "x"}, false},
		{"get its certificate Secret", attrs{Verb: "get", Resource: "secrets", Namespace: ns, Name: secret}, selfManaged},
		{"update its certificate Secret", attrs{Verb: "update", Resource: "secrets", Namespace: ns, Name: secret}, selfManaged},
		{"update another secret in its namespace", attrs{Verb: "update", Resource: "secrets", Namespace: ns, Name: "x"}, false},
		{"create secrets in its namespace", attrs{Verb: "create", Resource: "secrets", Namespace: ns}, selfManaged},
		{"create secrets elsewhere", attrs{Verb: "create", Resource: "secrets", Namespace: "default"}, false},
		{"delete its certificate Secret", attrs{Verb: "delete", Resource: "secrets", Namespace: ns, Name: secret}, false},
		{"update its webhook configuration", attrs{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "validatingwebhookconfigurations", Name: vwc}, selfManaged},
		{"update another webhook configuration", attrs{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "validatingwebhookconfigurations", Name: "x"}, false},
		{"delete its webhook configuration", attrs{Verb: "delete", Group: "admissionregistration.k8s.io",
			Resource: "validatingwebhookconfigurations", Name: vwc}, false},
		{"list nodes", attrs{Verb: "list", Resource: "nodes"}, true},
		{"get a namespace", attrs{Verb: "get", Resource: "namespaces", Name: "default"}, true},
		{"create pods", attrs{Verb: "create", Resource: "pods", Namespace: "default"}, false},
		{"patch nodes", attrs{Verb: "patch", Resource: "nodes", Name: "x"}, false},
		{"list deployments", attrs{Verb: "list", Group: "apps", Resource: "deployments"}, false},
	} {
		a := tc.attrs
		sar, err := cp.Client().AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &a}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s: allowed=%v, want %v (%s)", tc.what, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
}

// fitgateProc is bin/fitgate serve running as the chart would run it.
type fitgateProc struct {
	name        string
	cmd         *exec.Cmd
	log         *bytes.Buffer
	done        chan error
	webhookAddr string
	healthAddr  string
	metricsAddr string
}

// startFitgate runs bin/fitgate with the chart's container args, then
// overrides for a local process: loopback ports, a temporary certificate
// directory and a kubeconfig that impersonates user (the chart's
// ServiceAccount). Go's flag package keeps the last value of a flag.
func startFitgate(t *testing.T, cp *controlplane.ControlPlane, args []string, user, certDir string) *fitgateProc {
	t.Helper()
	ns := strings.Split(user, ":")[2]
	f := &fitgateProc{name: ns, log: &bytes.Buffer{}, done: make(chan error, 1),
		webhookAddr: freeAddr(t), healthAddr: freeAddr(t), metricsAddr: freeAddr(t)}
	_, port, _ := net.SplitHostPort(f.webhookAddr)
	args = append(slices.Clone(args), "--kubeconfig="+impersonatingKubeconfig(t, cp, user, ns),
		"--bind-address=127.0.0.1", "--port="+port, "--health-addr="+f.healthAddr, "--metrics-addr="+f.metricsAddr,
		"--cert-dir="+certDir, "--shutdown-delay=0s", "--log-format=text")
	f.cmd = exec.Command(binary(t, "fitgate"), args...)
	f.cmd.Stdout, f.cmd.Stderr = f.log, f.log
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() {
		f.stop(t)
		if t.Failed() {
			t.Logf("fitgate %q log:\n%s", args, f.log.String())
		}
	})
	return f
}

func (f *fitgateProc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	body := ""
	for time.Since(start) < timeout {
		select {
		case err := <-f.done:
			f.done <- err
			t.Fatalf("fitgate exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + f.healthAddr + "/readyz?verbose")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode == http.StatusOK {
			t.Logf("fitgate ready in %v", time.Since(start).Round(time.Millisecond))
			return
		}
	}
	t.Fatalf("fitgate not ready after %v:\n%s", timeout, body)
}

// scrape returns the /metrics lines of one metric.
func (f *fitgateProc) scrape(t *testing.T, metric string) string {
	t.Helper()
	resp, err := http.Get("http://" + f.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), metric+"{") {
			out = append(out, s.Text())
		}
	}
	return strings.Join(out, "\n")
}

func (f *fitgateProc) stop(t *testing.T) {
	if f.cmd.Process == nil || f.cmd.ProcessState != nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-f.done:
		f.done <- err
	case <-time.After(30 * time.Second):
		_ = f.cmd.Process.Kill()
		t.Errorf("fitgate did not stop on SIGTERM")
	}
}

// impersonatingKubeconfig is the admin kubeconfig acting as user, a
// ServiceAccount of namespace ns, with the groups its token would carry.
func impersonatingKubeconfig(t *testing.T, cp *controlplane.ControlPlane, user, ns string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cp.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
