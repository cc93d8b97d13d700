package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// ServerOptions configure the HTTPS webhook server and the plain-HTTP
// health and metrics servers.
type ServerOptions struct {
	// Host and Port the webhook listens on ("" means every address; the
	// port defaults to 9443).
	Host string
	Port int
	// CertDir holds CertName and KeyName (tls.crt and tls.key). The files
	// are reloaded when they change; the server waits for them to appear.
	CertDir, CertName, KeyName string
	// TLSMinVersion is tls.VersionTLS12 (the default) or tls.VersionTLS13.
	TLSMinVersion uint16
	// EnableHTTP2 serves h2 as well as HTTP/1.1. Off by default, as in
	// kubebuilder's scaffolding, against HTTP/2 stream-reset floods.
	EnableHTTP2 bool
	// HealthAddr serves /healthz and /readyz; MetricsAddr serves /metrics.
	// Empty disables either. ":0" picks a free port (see HealthAddr()).
	HealthAddr, MetricsAddr string
	// PprofAddr serves Go's profiler under /debug/pprof/. Empty, the
	// default, disables it: profiles expose the process's internals, so
	// bind it to loopback (or a port no Service exposes) when enabled.
	PprofAddr string
	// ShutdownDelay is how long /readyz fails before the listener closes,
	// so that endpoints stop sending new requests; in-flight requests are
	// then drained (for up to a minute).
	ShutdownDelay time.Duration
	// CertPollInterval is how often to look for the certificate files
	// before they first exist (default 1s).
	CertPollInterval time.Duration
	// CertWatchInterval is certwatcher's polling backstop to fsnotify
	// (default 10s).
	CertWatchInterval time.Duration
	Logger            logr.Logger
}

// Server serves the webhook, health and metrics, and shuts down gracefully.
type Server struct {
	opts     ServerOptions
	hook     http.Handler
	gatherer prometheus.Gatherer

	mu          sync.Mutex
	readyChecks map[string]healthz.Checker
	webhook     crwebhook.Server

	tlsLoaded   atomic.Bool
	started     atomic.Bool
	stopping    atomic.Bool
	healthAddr  atomic.Value // string
	metricsAddr atomic.Value // string
	pprofAddr   atomic.Value // string
	readyCh     chan struct{}
	readyOnce   sync.Once
}

// NewServer serves h at ValidatePath. gatherer backs /metrics (default:
// controller-runtime's registry, with its webhook request metrics).
func NewServer(opts ServerOptions, h admission.Handler, gatherer prometheus.Gatherer) *Server {
	if opts.Port == 0 {
		opts.Port = crwebhook.DefaultPort
	}
	if opts.CertName == "" {
		opts.CertName = "tls.crt"
	}
	if opts.KeyName == "" {
		opts.KeyName = "tls.key"
	}
	if opts.TLSMinVersion == 0 {
		opts.TLSMinVersion = tls.VersionTLS12
	}
	if opts.CertPollInterval == 0 {
		opts.CertPollInterval = time.Second
	}
	if opts.CertWatchInterval == 0 {
		opts.CertWatchInterval = 10 * time.Second
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if gatherer == nil {
		gatherer = crmetrics.Registry
	}
	return &Server{
		opts:        opts,
		hook:        reviewHandler(h),
		gatherer:    gatherer,
		readyChecks: map[string]healthz.Checker{},
		readyCh:     make(chan struct{}),
	}
}

// AddReadyCheck adds a readiness check, e.g. (*Cache).ReadyCheck. Call it
// before Run.
func (s *Server) AddReadyCheck(name string, check healthz.Checker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyChecks[name] = check
}

// StrongCipherSuites are the TLS 1.2 suites the webhook accepts: ECDHE with
// an AEAD only (Mozilla's "intermediate" profile). Go's defaults would also
// take the CBC-SHA1 suites, which scanners flag as weak. TLS 1.3 suites are
// not configurable and all strong.
var StrongCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ParseTLSVersion parses "1.2" or "1.3".
func ParseTLSVersion(v string) (uint16, error) {
	switch v {
	case "1.2", "":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q: want 1.2 or 1.3", v)
}

// HealthAddr is the address /healthz and /readyz listen on, once Run has
// started them.
func (s *Server) HealthAddr() string { v, _ := s.healthAddr.Load().(string); return v }

// MetricsAddr is the address /metrics listens on, once Run has started it.
func (s *Server) MetricsAddr() string { v, _ := s.metricsAddr.Load().(string); return v }

// PprofAddr is the address /debug/pprof/ listens on, once Run has started
// it.
func (s *Server) PprofAddr() string { v, _ := s.pprofAddr.Load().(string); return v }

// Ready returns a channel closed the first time every readiness check
// passes.
func (s *Server) Ready() <-chan struct{} { return s.readyCh }

// Run serves until ctx ends, then fails readiness, waits ShutdownDelay,
// drains in-flight requests and returns.
func (s *Server) Run(ctx context.Context) error {
	log := s.opts.Logger
	checks := s.checks()
	readyHandler := &healthz.Handler{Checks: checks}
	healthHandler := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}

	var aux []*http.Server
	serve := func(addr string, store *atomic.Value, mux *http.ServeMux) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		store.Store(ln.Addr().String())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		aux = append(aux, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "serving", "addr", addr)
			}
		}()
		return nil
	}
	hmux := http.NewServeMux()
	hmux.Handle("/healthz", http.StripPrefix("/healthz", healthHandler))
	hmux.Handle("/healthz/", http.StripPrefix("/healthz/", healthHandler))
	hmux.Handle("/readyz", http.StripPrefix("/readyz", readyHandler))
	hmux.Handle("/readyz/", http.StripPrefix("/readyz/", readyHandler))
	mmux := http.NewServeMux()
	mmux.Handle("/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	defer func() {
		for _, srv := range aux {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(c)
			cancel()
		}
	}()
	if err := serve(s.opts.HealthAddr, &s.healthAddr, hmux); err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	if err := serve(s.opts.MetricsAddr, &s.metricsAddr, mmux); err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	pmux := http.NewServeMux()
	pmux.HandleFunc("/debug/pprof/", pprof.Index)
	pmux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	pmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	pmux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	pmux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if err := serve(s.opts.PprofAddr, &s.pprofAddr, pmux); err != nil {
		return fmt.Errorf("pprof server: %w", err)
	}

	// The webhook's context ends ShutdownDelay after ctx, so that /readyz
	// fails first and endpoints stop routing here before the listener goes.
	serveCtx, cancelServe := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelServe()
	go func() {
		<-ctx.Done()
		s.stopping.Store(true)
		log.Info("shutting down: readiness now fails", "delay", s.opts.ShutdownDelay)
		select {
		case <-time.After(s.opts.ShutdownDelay):
		case <-serveCtx.Done():
		}
		cancelServe()
	}()
	go s.watchReady(serveCtx)

	cw, err := s.loadCertificate(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	go func() {
		if err := cw.Start(serveCtx); err != nil {
			log.Error(err, "certificate watcher stopped")
		}
	}()

	minVersion, http2 := s.opts.TLSMinVersion, s.opts.EnableHTTP2
	wh := crwebhook.NewServer(crwebhook.Options{
		Host: s.opts.Host, Port: s.opts.Port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = minVersion
			c.CipherSuites = StrongCipherSuites
			c.GetCertificate = cw.GetCertificate
			if !http2 {
				c.NextProtos = []string{"http/1.1"}
			}
		}},
	})
	wh.Register(ValidatePath, s.hook)
	s.mu.Lock()
	s.webhook = wh
	s.mu.Unlock()
	s.started.Store(true)
	log.Info("serving webhook", "host", s.opts.Host, "port", s.opts.Port, "path", ValidatePath)
	err = wh.Start(serveCtx)
	log.Info("webhook server stopped")
	return err
}

// loadCertificate waits until the serving pair exists and loads it into a
// certwatcher that reloads it whenever it changes on disk.
func (s *Server) loadCertificate(ctx context.Context) (*certwatcher.CertWatcher, error) {
	certPath := filepath.Join(s.opts.CertDir, s.opts.CertName)
	keyPath := filepath.Join(s.opts.CertDir, s.opts.KeyName)
	logged := false
	for {
		_, errC := os.Stat(certPath)
		_, errK := os.Stat(keyPath)
		if errC == nil && errK == nil {
			cw, err := certwatcher.New(certPath, keyPath)
			if err == nil {
				s.tlsLoaded.Store(true)
				s.opts.Logger.Info("serving certificate loaded", "cert", certPath)
				return cw.WithWatchInterval(s.opts.CertWatchInterval), nil
			}
			if !logged {
				s.opts.Logger.Error(err, "serving certificate not usable yet; retrying", "cert", certPath)
				logged = true
			}
		} else if !logged {
			s.opts.Logger.Info("waiting for the serving certificate", "cert", certPath, "key", keyPath)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.opts.CertPollInterval):
		}
	}
}

// checks are the readiness checks: TLS loaded, the webhook listening, not
// shutting down, plus those added with AddReadyCheck (the cache).
func (s *Server) checks() map[string]healthz.Checker {
	s.mu.Lock()
	defer s.mu.Unlock()
	checks := map[string]healthz.Checker{
		"tls": func(*http.Request) error {
			if !s.tlsLoaded.Load() {
				return fmt.Errorf("serving certificate not loaded from %s", s.opts.CertDir)
			}
			return nil
		},
		"webhook": func(r *http.Request) error {
			s.mu.Lock()
			wh := s.webhook
			s.mu.Unlock()
			if wh == nil {
				return errors.New("webhook server not started")
			}
			return wh.StartedChecker()(r)
		},
		"shutdown": func(*http.Request) error {
			if s.stopping.Load() {
				return errors.New("shutting down")
			}
			return nil
		},
	}
	for name, c := range s.readyChecks {
		checks[name] = c
	}
	return checks
}

// IsReady runs every readiness check.
func (s *Server) IsReady() error {
	req, _ := http.NewRequest(http.MethodGet, "/readyz", nil)
	var errs []error
	for name, c := range s.checks() {
		if err := c(req); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) watchReady(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if s.IsReady() == nil {
			s.readyOnce.Do(func() { close(s.readyCh) })
			s.opts.Logger.Info("ready")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
