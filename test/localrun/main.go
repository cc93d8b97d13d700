// Command localrun is `make run`: a real local control plane (etcd,
// kube-apiserver, kube-scheduler, kube-controller-manager) with a handful of
// sample nodes and the fitgate webhook registered in URL mode, running in
// the foreground until Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/test/controlplane"
)

func main() {
	fitgate := flag.String("fitgate", "bin/fitgate", "the fitgate binary to run")
	dir := flag.String("dir", "", "state directory (default: a temporary one, removed on exit)")
	flag.Parse()
	if err := run(*fitgate, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "make run: %v\n", err)
		os.Exit(1)
	}
}

// sampleNodes are small, large and GPU-style nodes across two zones.
var sampleNodes = []controlplane.NodeSpec{
	{Name: "small-a", CPU: "2", Memory: "4Gi", Labels: zone("a", "small")},
	{Name: "small-b", CPU: "2", Memory: "4Gi", Labels: zone("b", "small")},
	{Name: "large-a", CPU: "8", Memory: "32Gi", Labels: zone("a", "large")},
	{Name: "gpu-b", CPU: "8", Memory: "64Gi", Extended: map[string]string{"example.com/gpu": "4"},
		Labels: zone("b", "gpu"),
		Taints: []corev1.Taint{{Key: "example.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}},
}

func zone(z, pool string) map[string]string {
	return map[string]string{corev1.LabelTopologyZone: "zone-" + z, "fitgate.dev/pool": pool}
}

func run(fitgateBin, dir string) error {
	if _, err := os.Stat(fitgateBin); err != nil {
		return fmt.Errorf("%s not found: run `make build` first (make run does): %w", fitgateBin, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	fmt.Println("Starting etcd, kube-apiserver, kube-scheduler and kube-controller-manager on 127.0.0.1 ...")
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nStopping the control plane ...")
		_ = cp.Stop()
	}()
	fmt.Printf("Control plane ready in %v.\n", time.Since(start).Round(100*time.Millisecond))

	for _, n := range sampleNodes {
		if _, err := cp.CreateNode(ctx, n); err != nil {
			return err
		}
	}
	if err := cp.WaitForDefaultServiceAccount(ctx, "default"); err != nil {
		return err
	}
	// A namespace in strict mode, to show denials of transient findings too.
	if _, err := cp.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "strict-demo", Labels: map[string]string{"fitgate.dev/mode": "strict"}}}, metav1.CreateOptions{}); err != nil {
		return err
	}

	webhookDir := filepath.Join(cp.Dir(), "fitgate")
	if err := os.MkdirAll(webhookDir, 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": cp.CACertPEM()} {
		if err := os.WriteFile(filepath.Join(webhookDir, name), data, 0o600); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	healthPort, err := freePort()
	if err != nil {
		return err
	}
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/validate"
	cmd := exec.Command(fitgateBin, "serve",
		"--kubeconfig", cp.KubeconfigPath(),
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--cert-dir", webhookDir,
		"--health-addr", "127.0.0.1:"+strconv.Itoa(healthPort),
		"--metrics-addr", "127.0.0.1:"+strconv.Itoa(metricsPort),
		"--register-url", url,
		"--ca-file", filepath.Join(webhookDir, "ca.crt"),
		"--unregister-on-exit",
	)
	logPath := filepath.Join(cp.Dir(), "logs", "fitgate.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting fitgate: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := waitReady(ctx, healthPort, done); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}

	fmt.Printf(`
fitgate is running at %s and registered with the apiserver.
Nodes: small-a, small-b (2 cpu), large-a (8 cpu), gpu-b (8 cpu, 4 example.com/gpu, tainted).

In another terminal:

  export KUBECONFIG=%s
  bin/kubectl apply -f examples/pod-fits.yaml            # fits: no warning
  bin/kubectl apply -f examples/deployment-warned.yaml   # 6 x 3 cpu: admitted, with a warning
  bin/kubectl apply -f examples/pod-denied.yaml          # 16 cpu: denied (bare Pods are enforced)

fitgate's log: %s
Press Ctrl-C to stop and clean up.
`, url, cp.KubeconfigPath(), logPath)

	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return fmt.Errorf("fitgate exited: %v (log: %s)", err, logPath)
	}
}

func waitReady(ctx context.Context, healthPort int, exited <-chan error) error {
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("fitgate exited before it was ready: %v", err)
		case <-deadline:
			return errors.New("fitgate was not ready within 60s")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if readyz(healthPort) {
			return nil
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
