package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fitgate/fitgate/feasibility"
)

// Config is everything `fitgate serve` runs with.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Policy is the namespace policy (see DefaultPolicy).
	Policy Policy
	// Engine tunes the checks (known schedulers, autoscaler).
	Engine feasibility.Options
	// Server configures the listeners.
	Server ServerOptions
	// TimeoutSeconds is the webhook's timeout; the handler's budget stays
	// below it. Defaults to 5.
	TimeoutSeconds int32
	// Register, when set, installs a URL-mode ValidatingWebhookConfiguration
	// once the server is ready.
	Register *RegisterConfig
	// Registry receives fitgate's metrics; nil makes a new one with the Go
	// and process collectors. /metrics serves it together with
	// controller-runtime's registry.
	Registry *prometheus.Registry
	// ReadyChecks are added to /readyz next to the cache and TLS checks,
	// e.g. the certificate rotator's (certs.Rotator.ReadyCheck).
	ReadyChecks map[string]healthz.Checker
	Logger      logr.Logger
}

// RegisterConfig is a URL-mode self-registration, for local runs.
type RegisterConfig struct {
	Name          string
	URL           string
	CABundle      []byte
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// UnregisterOnExit deletes the configuration when Run returns.
	UnregisterOnExit bool
}

// BudgetFor is the handler's time budget for a webhook timeout: a second
// less, and never less than half of it.
func BudgetFor(timeoutSeconds int32) time.Duration {
	if timeoutSeconds <= 0 {
		timeoutSeconds = DefaultTimeoutSeconds
	}
	t := time.Duration(timeoutSeconds) * time.Second
	return max(t-time.Second, t/2)
}

// protobufConfig asks for built-in kinds as protobuf, as the control
// plane's own components do, unless the caller chose a content type: the
// cache watches every pod change in the cluster, and protobuf is several
// times cheaper than JSON for the API server to encode and for fitgate to
// decode.
func protobufConfig(cfg *rest.Config) *rest.Config {
	if cfg.ContentType != "" || cfg.AcceptContentTypes != "" {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return cfg
}

// Run serves the webhook until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	if err := cfg.Policy.Validate(); err != nil {
		return err
	}
	if cfg.RESTConfig == nil {
		return errors.New("no API server configuration")
	}
	client, err := kubernetes.NewForConfig(protobufConfig(cfg.RESTConfig))
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := NewMetrics()
	if err := metrics.Register(reg); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cache := NewCache(client, meta, CacheOptions{Metrics: metrics, Logger: log.WithName("cache")})
	if err := reg.Register(NewCacheSizeCollector(cache.Counts)); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := cache.Start(ctx); err != nil {
		return err
	}
	engine := cfg.Engine
	handler := &Handler{
		Source:    cache,
		Live:      &APILiveChecker{Client: meta},
		Policy:    cfg.Policy,
		Options:   &engine,
		Budget:    BudgetFor(cfg.TimeoutSeconds),
		Freshness: cache,
		Metrics:   metrics,
	}
	sopts := cfg.Server
	sopts.Logger = log.WithName("server")
	srv := NewServer(sopts, handler, prometheus.Gatherers{reg, crmetrics.Registry})
	srv.AddReadyCheck("cache", cache.ReadyCheck)
	for name, check := range cfg.ReadyChecks {
		srv.AddReadyCheck(name, check)
	}

	regErr := make(chan error, 1)
	if r := cfg.Register; r != nil {
		whc, err := NewWebhookConfiguration(WebhookConfigOptions{
			Name: r.Name, URL: r.URL, CABundle: r.CABundle, FailurePolicy: r.FailurePolicy,
			TimeoutSeconds: cfg.TimeoutSeconds, ExemptNamespaces: cfg.Policy.ExemptNamespaces,
		})
		if err != nil {
			return err
		}
		go func() {
			select {
			case <-srv.Ready():
			case <-ctx.Done():
				return
			}
			if err := ApplyWebhookConfiguration(ctx, client, whc); err != nil {
				if ctx.Err() != nil {
					return // shut down while registering: a graceful exit, not a failure
				}
				log.Error(err, "registering the webhook configuration", "name", whc.Name)
				regErr <- err
				cancel()
				return
			}
			log.Info("registered the webhook configuration", "name", whc.Name, "url", r.URL)
		}()
		if r.UnregisterOnExit {
			defer func() {
				c, stop := context.WithTimeout(context.Background(), 10*time.Second)
				defer stop()
				if err := DeleteWebhookConfiguration(c, client, whc.Name); err != nil {
					log.Error(err, "unregistering the webhook configuration", "name", whc.Name)
					return
				}
				log.Info("unregistered the webhook configuration", "name", whc.Name)
			}()
		}
	}
	err = srv.Run(ctx)
	select {
	case rerr := <-regErr:
		return errors.Join(err, rerr)
	default:
	}
	return err
}
