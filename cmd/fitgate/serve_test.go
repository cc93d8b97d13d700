package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/fitgate/fitgate/webhook"
)

func TestServeConfigPrecedence(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "gate")
	cfg, err := loadServeConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9443 || cfg.DefaultMode != "warn" || cfg.DefaultPodMode != "enforce" || cfg.Namespace != "gate" ||
		cfg.HealthAddr != ":8081" || cfg.MetricsAddr != ":8080" || cfg.TimeoutSeconds != 5 || cfg.FailurePolicy != "Ignore" {
		t.Errorf("defaults: %+v", cfg)
	}
	if want := []string{"kube-system", "kube-node-lease", "gate"}; !slices.Equal(cfg.ExemptNamespaces, want) {
		t.Errorf("exempt = %v, want %v", cfg.ExemptNamespaces, want)
	}

	file := filepath.Join(t.TempDir(), "fitgate.yaml")
	if err := os.WriteFile(file, []byte("port: 10443\ndefaultMode: enforce\nexemptNamespaces: [infra]\ntlsMinVersion: \"1.3\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadServeConfig([]string{"--config", file, "--port=11443", "--known-schedulers", "default-scheduler, volcano"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 11443 || cfg.DefaultMode != "enforce" || cfg.TLSMinVersion != "1.3" ||
		!slices.Equal(cfg.ExemptNamespaces, []string{"infra"}) || !slices.Equal(cfg.KnownSchedulers, []string{"default-scheduler", "volcano"}) {
		t.Errorf("file then flags: %+v", cfg)
	}
	wc, err := cfg.webhookConfig(logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if wc.Server.TLSMinVersion != tls.VersionTLS13 || wc.Policy.DefaultMode != webhook.ModeEnforce || wc.Register != nil {
		t.Errorf("webhook config: %+v", wc)
	}

	if err := os.WriteFile(file, []byte("prot: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadServeConfig([]string{"-config=" + file}, io.Discard); err == nil || !strings.Contains(err.Error(), "prot") {
		t.Errorf("a typo in the config file: err = %v", err)
	}
}

func TestServeConfigErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--default-mode=audit"},
		{"--default-pod-mode=on"},
		{"--tls-min-version=1.1"},
		{"--timeout-seconds=40"},
		{"--failure-policy=Sometimes"},
		{"--shutdown-delay=soon"},
		{"--register-url=http://127.0.0.1:9443/validate"},
		{"--autoscaler", "--autoscaler-max-node-cpu=8"},
		{"--autoscaler", "--autoscaler-max-node-cpu=8", "--autoscaler-max-node-memory=lots"},
		{"--gc-heap-floor=lots"},
		{"--gc-heap-floor=-64Mi"},
	} {
		cfg, err := loadServeConfig(args, io.Discard)
		if err == nil {
			_, err = cfg.webhookConfig(logr.Discard())
		}
		if err == nil {
			_, err = cfg.gcHeapFloor()
		}
		if err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := loadServeConfig([]string{"extra"}, io.Discard); err == nil {
		t.Error("positional arguments accepted")
	}
}

func TestServeAutoscalerAndSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadServeConfig([]string{"--autoscaler", "--autoscaler-max-node-cpu=16", "--autoscaler-max-node-memory=64Gi",
		"--register-url=https://127.0.0.1:9443/validate", "--cert-dir=" + dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := cfg.webhookConfig(logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	n := wc.Engine.Autoscaler.MaxNode
	if n == nil || n.Status.Allocatable.Cpu().String() != "16" || n.Status.Allocatable.Pods().Value() != 110 {
		t.Errorf("max node = %+v", n)
	}
	if wc.Register == nil || !bytes.Contains(wc.Register.CABundle, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("register = %+v", wc.Register)
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Error(err)
	}
	// A second run reuses the pair.
	ca2, err := ensureSelfSigned(dir, "tls.crt", "tls.key", "127.0.0.1")
	if err != nil || !bytes.Equal(ca2, wc.Register.CABundle) {
		t.Errorf("second run: %v, same CA %v", err, bytes.Equal(ca2, wc.Register.CABundle))
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("2", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.V(2).Info("shown", "k", "v")
	log.V(3).Info("hidden")
	if !strings.Contains(buf.String(), `"msg":"shown"`) || strings.Contains(buf.String(), "hidden") {
		t.Errorf("log output: %s", buf.String())
	}
	for _, bad := range [][2]string{{"loud", "json"}, {"info", "xml"}} {
		if _, err := newLogger(bad[0], bad[1], io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestDispatch(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch(nil, &out); code != 2 || !strings.Contains(out.String(), "serve") {
		t.Errorf("no args: %d %s", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"frobnicate"}, &out); code != 2 || !strings.Contains(out.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %s", code, out.String())
	}
	if code := dispatch([]string{"help"}, io.Discard); code != 0 {
		t.Errorf("help: %d", code)
	}
}
