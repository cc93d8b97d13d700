package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/certs"
	"github.com/fitgate/fitgate/feasibility"
	"github.com/fitgate/fitgate/webhook"
)

func init() {
	register("serve", "run the validating admission webhook", func(args []string) int {
		return runServe(args, os.Stderr)
	})
}

// serveConfig is what `fitgate serve` runs with. The YAML file given with
// --config uses the same names as the flags, in camelCase; flags given on
// the command line override it.
type serveConfig struct {
	Kubeconfig        string   `json:"kubeconfig,omitempty"`
	Host              string   `json:"bindAddress,omitempty"`
	Port              int      `json:"port,omitempty"`
	CertDir           string   `json:"certDir,omitempty"`
	CertName          string   `json:"certName,omitempty"`
	KeyName           string   `json:"keyName,omitempty"`
	TLSMinVersion     string   `json:"tlsMinVersion,omitempty"`
	HealthAddr        string   `json:"healthAddr,omitempty"`
	MetricsAddr       string   `json:"metricsAddr,omitempty"`
	PprofAddr         string   `json:"pprofAddr,omitempty"`
	DefaultMode       string   `json:"defaultMode,omitempty"`
	DefaultPodMode    string   `json:"defaultPodMode,omitempty"`
	ExemptNamespaces  []string `json:"exemptNamespaces,omitempty"`
	Namespace         string   `json:"namespace,omitempty"`
	KnownSchedulers   []string `json:"knownSchedulers,omitempty"`
	Autoscaler        bool     `json:"autoscaler,omitempty"`
	AutoscalerCPU     string   `json:"autoscalerMaxNodeCPU,omitempty"`
	AutoscalerMemory  string   `json:"autoscalerMaxNodeMemory,omitempty"`
	AutoscalerPods    int      `json:"autoscalerMaxNodePods,omitempty"`
	RegisterURL       string   `json:"registerURL,omitempty"`
	CAFile            string   `json:"caFile,omitempty"`
	UnregisterOnExit  bool     `json:"unregisterOnExit,omitempty"`
	WebhookConfigName string   `json:"webhookConfigName,omitempty"`
	FailurePolicy     string   `json:"failurePolicy,omitempty"`
	TimeoutSeconds    int      `json:"timeoutSeconds,omitempty"`
	ShutdownDelay     string   `json:"shutdownDelay,omitempty"`
	LogLevel          string   `json:"logLevel,omitempty"`
	GCHeapFloor       string   `json:"gcHeapFloor,omitempty"`
	LogFormat         string   `json:"logFormat,omitempty"`
	// Self-managed serving certificates (servecerts.go).
	CertSecret       string   `json:"certSecret,omitempty"`
	ServiceName      string   `json:"serviceName,omitempty"`
	CertExtraSANs    []string `json:"certExtraSANs,omitempty"`
	CertValidity     string   `json:"certValidity,omitempty"`
	CAValidity       string   `json:"caValidity,omitempty"`
	CertRotateBefore string   `json:"certRotateBefore,omitempty"`
}

func defaultServeConfig() serveConfig {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "fitgate"
	}
	return serveConfig{
		Port:              9443,
		CertDir:           "/tmp/k8s-webhook-server/serving-certs",
		CertName:          "tls.crt",
		KeyName:           "tls.key",
		TLSMinVersion:     "1.2",
		HealthAddr:        ":8081",
		MetricsAddr:       ":8080",
		DefaultMode:       string(webhook.DefaultWorkloadMode),
		DefaultPodMode:    string(webhook.DefaultPodMode),
		Namespace:         ns,
		KnownSchedulers:   []string{feasibility.DefaultSchedulerName},
		AutoscalerPods:    110,
		WebhookConfigName: webhook.DefaultConfigurationName,
		FailurePolicy:     string(admissionregistrationv1.Ignore),
		TimeoutSeconds:    int(webhook.DefaultTimeoutSeconds),
		ShutdownDelay:     "0s",
		LogLevel:          "info",
		GCHeapFloor:       "64Mi",
		LogFormat:         "json",
		ServiceName:       "fitgate",
		CertValidity:      certs.DefaultValidity.String(),
		CAValidity:        certs.DefaultCAValidity.String(),
		CertRotateBefore:  "0s",
	}
}

// commaList is a flag.Value for comma-separated lists.
type commaList struct{ p *[]string }

func (c commaList) String() string {
	if c.p == nil {
		return ""
	}
	return strings.Join(*c.p, ",")
}

func (c commaList) Set(s string) error {
	*c.p = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*c.p = append(*c.p, part)
		}
	}
	return nil
}

func (c *serveConfig) bind(fs *flag.FlagSet) *string {
	configPath := fs.String("config", "", "YAML file with defaults for these flags (camelCase names); flags override it")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (default: in-cluster configuration, else $KUBECONFIG)")
	fs.StringVar(&c.Host, "bind-address", c.Host, "address the webhook listens on (default: all)")
	fs.StringVar(&c.Host, "host", c.Host, "alias of --bind-address")
	fs.IntVar(&c.Port, "port", c.Port, "port the webhook listens on")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "directory holding the serving certificate; reloaded when it changes")
	fs.StringVar(&c.CertName, "cert-name", c.CertName, "serving certificate file name in --cert-dir")
	fs.StringVar(&c.KeyName, "key-name", c.KeyName, "serving key file name in --cert-dir")
	fs.StringVar(&c.TLSMinVersion, "tls-min-version", c.TLSMinVersion, "minimum TLS version: 1.2 or 1.3")
	fs.StringVar(&c.HealthAddr, "health-addr", c.HealthAddr, "address of /healthz and /readyz (empty disables)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "address of /metrics (empty disables)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "address of Go's profiler, /debug/pprof/ (empty, the default, disables it; e.g. 127.0.0.1:6060)")
	fs.StringVar(&c.DefaultMode, "default-mode", c.DefaultMode, "mode for workloads in namespaces without the fitgate.dev/mode label: off, warn, enforce or strict")
	fs.StringVar(&c.DefaultPodMode, "default-pod-mode", c.DefaultPodMode, "mode for bare Pods in namespaces without the fitgate.dev/mode label")
	fs.Var(commaList{&c.ExemptNamespaces}, "exempt-namespaces", "comma-separated namespaces never judged (default kube-system,kube-node-lease and --namespace)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "fitgate's own namespace (default $POD_NAMESPACE, else fitgate)")
	fs.Var(commaList{&c.KnownSchedulers}, "known-schedulers", "comma-separated scheduler names that serve pods")
	fs.BoolVar(&c.Autoscaler, "autoscaler", c.Autoscaler, "the cluster has an autoscaler: failures a new node could fix are transient")
	fs.StringVar(&c.AutoscalerCPU, "autoscaler-max-node-cpu", c.AutoscalerCPU, "allocatable cpu of the largest node the autoscaler adds (empty: unknown)")
	fs.StringVar(&c.AutoscalerMemory, "autoscaler-max-node-memory", c.AutoscalerMemory, "allocatable memory of the largest node the autoscaler adds (empty: unknown)")
	fs.IntVar(&c.AutoscalerPods, "autoscaler-max-node-pods", c.AutoscalerPods, "pod capacity of the largest node the autoscaler adds")
	fs.StringVar(&c.RegisterURL, "register-url", c.RegisterURL, "register a URL-mode ValidatingWebhookConfiguration pointing at this URL (local runs), e.g. https://127.0.0.1:9443/validate")
	fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM CA for --register-url's caBundle (default: generate a self-signed CA and certificate in --cert-dir if it has none)")
	fs.BoolVar(&c.UnregisterOnExit, "unregister-on-exit", c.UnregisterOnExit, "delete the registered configuration on exit")
	fs.StringVar(&c.WebhookConfigName, "webhook-config-name", c.WebhookConfigName, "name of the registered ValidatingWebhookConfiguration")
	fs.StringVar(&c.FailurePolicy, "failure-policy", c.FailurePolicy, "failurePolicy of the registered configuration: Ignore or Fail")
	fs.IntVar(&c.TimeoutSeconds, "timeout-seconds", c.TimeoutSeconds, "timeoutSeconds of the registered configuration; the check's budget stays below it")
	fs.StringVar(&c.ShutdownDelay, "shutdown-delay", c.ShutdownDelay, "how long /readyz fails before the listener closes on shutdown")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn, error, or a verbosity number")
	fs.StringVar(&c.GCHeapFloor, "gc-heap-floor", c.GCHeapFloor, "let the Go heap grow to this size before collecting, however small the cache (a quantity; 0 leaves GOGC alone): "+
		"in a small cluster, collections several times a second under admission traffic would set the latency")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	fs.StringVar(&c.CertSecret, "cert-secret", c.CertSecret, "manage the serving certificate in this Secret of --namespace: issue a CA and a certificate for --service-name, "+
		"rotate them before expiry, write them to --cert-dir and inject the CA into --webhook-config-name (empty: read --cert-dir as given)")
	fs.StringVar(&c.ServiceName, "service-name", c.ServiceName, "the webhook's Service; with --cert-secret the certificate covers <service>.<namespace>.svc")
	fs.Var(commaList{&c.CertExtraSANs}, "cert-extra-sans", "comma-separated extra DNS names and IPs for the --cert-secret certificate")
	fs.StringVar(&c.CertValidity, "cert-validity", c.CertValidity, "lifetime of certificates issued with --cert-secret")
	fs.StringVar(&c.CAValidity, "ca-validity", c.CAValidity, "lifetime of CAs issued with --cert-secret")
	fs.StringVar(&c.CertRotateBefore, "cert-rotate-before", c.CertRotateBefore, "renew --cert-secret certificates this long before expiry (0: in the last third of their lifetime)")
	return configPath
}

// configFlag finds --config in args before they are parsed, so that the
// file can supply the defaults the flags then override.
func configFlag(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

// loadServeConfig applies defaults, then the --config file, then flags.
func loadServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	cfg := defaultServeConfig()
	if path := configFlag(args); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, err
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	fs := flag.NewFlagSet("fitgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.bind(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if cfg.ExemptNamespaces == nil {
		cfg.ExemptNamespaces = webhook.DefaultPolicy(cfg.Namespace).ExemptNamespaces
	}
	return cfg, nil
}

// webhookConfig turns the flags into webhook.Config.
func (c serveConfig) webhookConfig(log logr.Logger) (webhook.Config, error) {
	var out webhook.Config
	def, err := webhook.ParseMode(c.DefaultMode)
	if err != nil {
		return out, fmt.Errorf("--default-mode: %w", err)
	}
	podDef, err := webhook.ParseMode(c.DefaultPodMode)
	if err != nil {
		return out, fmt.Errorf("--default-pod-mode: %w", err)
	}
	out.Policy = webhook.Policy{DefaultMode: def, DefaultPodMode: podDef, ExemptNamespaces: c.ExemptNamespaces}
	tlsMin, err := webhook.ParseTLSVersion(c.TLSMinVersion)
	if err != nil {
		return out, fmt.Errorf("--tls-min-version: %w", err)
	}
	delay, err := time.ParseDuration(c.ShutdownDelay)
	if err != nil {
		return out, fmt.Errorf("--shutdown-delay: %w", err)
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 30 {
		return out, fmt.Errorf("--timeout-seconds %d: want 1..30", c.TimeoutSeconds)
	}
	out.TimeoutSeconds = int32(c.TimeoutSeconds)
	out.Server = webhook.ServerOptions{
		Host: c.Host, Port: c.Port, CertDir: c.CertDir, CertName: c.CertName, KeyName: c.KeyName,
		TLSMinVersion: tlsMin, HealthAddr: c.HealthAddr, MetricsAddr: c.MetricsAddr, PprofAddr: c.PprofAddr, ShutdownDelay: delay,
	}
	out.Engine.KnownSchedulers = c.KnownSchedulers
	if c.Autoscaler {
		a := &feasibility.AutoscalerOptions{}
		if c.AutoscalerCPU != "" || c.AutoscalerMemory != "" {
			if c.AutoscalerCPU == "" || c.AutoscalerMemory == "" {
				return out, errors.New("--autoscaler-max-node-cpu and --autoscaler-max-node-memory go together")
			}
			alloc := v1.ResourceList{v1.ResourcePods: *resource.NewQuantity(int64(c.AutoscalerPods), resource.DecimalSI)}
			for name, s := range map[v1.ResourceName]string{v1.ResourceCPU: c.AutoscalerCPU, v1.ResourceMemory: c.AutoscalerMemory} {
				q, err := resource.ParseQuantity(s)
				if err != nil {
					return out, fmt.Errorf("--autoscaler-max-node-%s: %w", name, err)
				}
				alloc[name] = q
			}
			a.MaxNode = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "autoscaler-max-node"},
				Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc.DeepCopy()}}
		}
		out.Engine.Autoscaler = a
	}
	fp := admissionregistrationv1.FailurePolicyType(c.FailurePolicy)
	if fp != admissionregistrationv1.Ignore && fp != admissionregistrationv1.Fail {
		return out, fmt.Errorf("--failure-policy %q: want Ignore or Fail", c.FailurePolicy)
	}
	if c.RegisterURL != "" {
		if c.CertSecret != "" {
			// The rotator injects its CA into a configuration that must
			// already exist, and registration waits for readiness, which
			// waits for the injection.
			return out, errors.New("--register-url and --cert-secret are exclusive: with --cert-secret, create the configuration first (the chart does) and fitgate injects its CA")
		}
		u, err := url.Parse(c.RegisterURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return out, fmt.Errorf("--register-url %q: want an https URL", c.RegisterURL)
		}
		var ca []byte
		if c.CAFile != "" {
			if ca, err = os.ReadFile(c.CAFile); err != nil {
				return out, fmt.Errorf("--ca-file: %w", err)
			}
		} else {
			if ca, err = ensureSelfSigned(c.CertDir, c.CertName, c.KeyName, u.Hostname()); err != nil {
				return out, fmt.Errorf("self-signed certificate: %w", err)
			}
			log.Info("using a self-signed certificate", "dir", c.CertDir, "host", u.Hostname())
		}
		out.Register = &webhook.RegisterConfig{Name: c.WebhookConfigName, URL: c.RegisterURL, CABundle: ca,
			FailurePolicy: fp, UnregisterOnExit: c.UnregisterOnExit}
	}
	return out, nil
}

// gcHeapFloor is --gc-heap-floor in bytes.
func (c serveConfig) gcHeapFloor() (uint64, error) {
	q, err := resource.ParseQuantity(c.GCHeapFloor)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("--gc-heap-floor %q: want a size such as 64Mi, or 0", c.GCHeapFloor)
	}
	return uint64(q.Value()), nil
}

// restConfig loads --kubeconfig, else the in-cluster configuration, else
// $KUBECONFIG.
func (c serveConfig) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case c.Kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	default:
		cfg, err = rest.InClusterConfig()
		if err != nil && os.Getenv("KUBECONFIG") != "" {
			cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
		}
	}
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "fitgate"
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// newLogger builds the structured logger for --log-level and --log-format.
func newLogger(level, format string, w io.Writer) (logr.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		n, err := strconv.Atoi(level)
		if err != nil || n < 0 {
			return logr.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn, error or a verbosity number", level)
		}
		lvl = slog.Level(-n) // logr's V(n) is slog level -n
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json", "":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q: want json or text", format)
	}
	return logr.FromSlogHandler(h), nil
}

func runServe(args []string, stderr io.Writer) int {
	cfg, err := loadServeConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fitgate serve: %v\n", err)
		return 2
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "fitgate serve: %v\n", err)
		return 2
	}
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("client-go"))
	wcfg, err := cfg.webhookConfig(log)
	if err != nil {
		fmt.Fprintf(stderr, "fitgate serve: %v\n", err)
		return 2
	}
	floor, err := cfg.gcHeapFloor()
	if err != nil {
		fmt.Fprintf(stderr, "fitgate serve: %v\n", err)
		return 2
	}
	if wcfg.RESTConfig, err = cfg.restConfig(); err != nil {
		fmt.Fprintf(stderr, "fitgate serve: API server configuration: %v\n", err)
		return 1
	}
	wcfg.Logger = log
	rot, err := cfg.rotator(wcfg.RESTConfig, log)
	if err != nil {
		fmt.Fprintf(stderr, "fitgate serve: %v\n", err)
		return 2
	}
	stopFloor := startHeapFloor(floor)
	defer stopFloor()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("starting fitgate", "defaultMode", wcfg.Policy.DefaultMode, "defaultPodMode", wcfg.Policy.DefaultPodMode,
		"exemptNamespaces", wcfg.Policy.ExemptNamespaces, "port", cfg.Port, "certSecret", cfg.CertSecret)
	if err := runWithRotator(ctx, wcfg, rot); err != nil {
		log.Error(err, "fitgate serve failed")
		return 1
	}
	return 0
}
