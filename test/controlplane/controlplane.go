package controlplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// Binary names looked up in the bin directory.
const (
	EtcdBinary              = "etcd"
	APIServerBinary         = "kube-apiserver"
	SchedulerBinary         = "kube-scheduler"
	ControllerManagerBinary = "kube-controller-manager"
)

// ServiceClusterIPRange is the apiserver's --service-cluster-ip-range.
const ServiceClusterIPRange = "10.96.0.0/16"

// Options configures Start. The zero value is a valid configuration.
type Options struct {
	// Dir holds PKI, etcd data, kubeconfigs and logs. Empty means a fresh
	// temporary directory, removed by Stop unless KeepDir. A caller-supplied
	// Dir is never removed; etcd data already in it is reused.
	Dir     string
	KeepDir bool
	// BinDir holds etcd, kube-apiserver, kube-scheduler and
	// kube-controller-manager. Empty means $FITGATE_BIN_DIR, else bin/ in the
	// repository root found by walking up from the working directory.
	BinDir string
	// StartTimeout bounds Start (default 2m) in addition to its context.
	StartTimeout time.Duration
	// StopTimeout is how long each component gets after SIGTERM before
	// SIGKILL (default 10s).
	StopTimeout time.Duration
	// Logf, if set, receives progress messages (e.g. t.Logf, log.Printf).
	Logf func(format string, args ...any)

	// Extra flags appended to each component's defaults; for scalar flags
	// the last occurrence wins, so these can also override defaults.
	EtcdFlags, APIServerFlags, SchedulerFlags, ControllerManagerFlags []string
}

// ControlPlane is a running local control plane. Create it with Start.
type ControlPlane struct {
	opts   Options
	dir    string
	ownDir bool // we created dir, so Stop removes it
	binDir string
	pki    *pki

	etcdPort, etcdPeerPort, apiPort, schedulerPort, controllerManagerPort int

	etcd, apiServer, scheduler, controllerManager *Component

	probe          *http.Client // trusts the CA, authenticates as admin
	kubeconfigPath string
	restConfig     *rest.Config
	client         kubernetes.Interface

	stopOnce sync.Once
	stopErr  error
}

// Start brings up etcd, kube-apiserver, kube-scheduler and
// kube-controller-manager and returns once the apiserver is ready (/readyz),
// the scheduler is ready (/readyz: informers synced, so it can bind) and the
// controller manager is healthy. ctx only bounds startup; the processes run
// until Stop.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, retErr error) {
	begin := time.Now()
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{opts: opts, binDir: binDir, dir: opts.Dir}
	if cp.dir == "" {
		if cp.dir, err = os.MkdirTemp("", "fitgate-controlplane-"); err != nil {
			return nil, err
		}
		cp.ownDir = true
	} else if err := os.MkdirAll(cp.dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = cp.Stop()
			retErr = fmt.Errorf("controlplane: %w", retErr)
		}
	}()
	if err := os.MkdirAll(cp.logDir(), 0o755); err != nil {
		return nil, err
	}

	if cp.pki, err = newPKI(filepath.Join(cp.dir, "pki")); err != nil {
		return nil, fmt.Errorf("generating PKI: %w", err)
	}
	cert, err := tls.X509KeyPair(cp.pki.admin.certPEM, cp.pki.admin.keyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cp.pki.caCert)
	cp.probe = &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
		DisableKeepAlives: true, // components restart; never reuse a dead connection
	}}

	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	cp.etcdPort, cp.etcdPeerPort, cp.apiPort, cp.schedulerPort, cp.controllerManagerPort =
		ports[0], ports[1], ports[2], ports[3], ports[4]
	cp.newComponents()

	// etcd and the apiserver must come up in order; the scheduler and the
	// controller manager only need the apiserver, so they start side by side.
	step := time.Now()
	if err := cp.etcd.Start(ctx); err != nil {
		return nil, err
	}
	opts.Logf("controlplane: etcd ready on %s in %v", cp.EtcdURL(), time.Since(step).Round(time.Millisecond))
	step = time.Now()
	if err := cp.apiServer.Start(ctx); err != nil {
		return nil, err
	}
	opts.Logf("controlplane: kube-apiserver ready on %s in %v", cp.APIServerURL(), time.Since(step).Round(time.Millisecond))

	if err := cp.writeKubeconfigs(); err != nil {
		return nil, err
	}
	step = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*Component{cp.scheduler, cp.controllerManager} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.Logf("controlplane: kube-scheduler and kube-controller-manager ready in %v; control plane up in %v (dir %s)",
		time.Since(step).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond), cp.dir)
	return cp, nil
}

// StartForTest starts a control plane for one test (or benchmark), stops it
// in t.Cleanup, and fails the test with the reason if it cannot start.
func StartForTest(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	cp, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("cannot start the local control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the local control plane: %v", err)
		}
	})
	return cp
}

// Stop stops all components (controller manager and scheduler, then the
// apiserver, then etcd) and removes the directory if Start created it and
// KeepDir is false. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		for _, group := range [][]*Component{{cp.controllerManager, cp.scheduler}, {cp.apiServer}, {cp.etcd}} {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, c := range group {
				if c == nil {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.Stop(); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}
		if cp.ownDir && !cp.opts.KeepDir {
			if err := os.RemoveAll(cp.dir); err != nil {
				errs = append(errs, err)
			}
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// RESTConfig returns a copy of the admin (system:masters) client config.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// Client is an admin clientset.
func (cp *ControlPlane) Client() kubernetes.Interface { return cp.client }

// KubeconfigPath is an admin kubeconfig with all credentials embedded.
func (cp *ControlPlane) KubeconfigPath() string { return cp.kubeconfigPath }

// Dir is the directory holding PKI, etcd data, kubeconfigs and logs/.
func (cp *ControlPlane) Dir() string { return cp.dir }

// APIServerURL is https://127.0.0.1:<port>.
func (cp *ControlPlane) APIServerURL() string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cp.apiPort))
}

// EtcdURL is etcd's client URL (plain http on loopback).
func (cp *ControlPlane) EtcdURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cp.etcdPort))
}

// CACertPEM is the cluster CA. The apiserver serving certificate and all
// client certificates chain to it; use it as a webhook's caBundle together
// with IssueServingCert.
func (cp *ControlPlane) CACertPEM() []byte { return append([]byte(nil), cp.pki.caPEM...) }

// IssueServingCert returns a PEM serving certificate and key for hosts (IPs
// or DNS names), signed by the cluster CA.
func (cp *ControlPlane) IssueServingCert(hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("IssueServingCert: no hosts")
	}
	return cp.pki.IssueServingCert(hosts...)
}

// Components, for stopping/starting them individually.
func (cp *ControlPlane) Etcd() *Component              { return cp.etcd }
func (cp *ControlPlane) APIServer() *Component         { return cp.apiServer }
func (cp *ControlPlane) Scheduler() *Component         { return cp.scheduler }
func (cp *ControlPlane) ControllerManager() *Component { return cp.controllerManager }

// RestartAPIServer restarts kube-apiserver on the same port and waits for
// /readyz. Clients, the scheduler and the controller manager reconnect.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) error {
	return cp.apiServer.Restart(ctx)
}

// RestartEtcd restarts etcd on the same ports and data and waits until it
// serves and the apiserver is ready again.
func (cp *ControlPlane) RestartEtcd(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := cp.etcd.Restart(ctx); err != nil {
		return err
	}
	return wait(ctx, "kube-apiserver ready after etcd restart", func(ctx context.Context) error {
		return cp.get(ctx, cp.APIServerURL()+"/readyz")
	})
}

func (cp *ControlPlane) logDir() string { return filepath.Join(cp.dir, "logs") }

func (cp *ControlPlane) newComponents() {
	pki := cp.pki
	etcdData := filepath.Join(cp.dir, "etcd")
	_, statErr := os.Stat(etcdData)
	freshEtcd := os.IsNotExist(statErr)
	newComponent := func(name, bin string, args func() []string, ready func(context.Context) error, realloc func()) *Component {
		return &Component{
			name: name, bin: filepath.Join(cp.binDir, bin), args: args, ready: ready, reallocate: realloc,
			logPath: filepath.Join(cp.logDir(), name+".log"), stopTimeout: cp.opts.StopTimeout,
		}
	}
	loopback := func(scheme string, port int) string {
		return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	repick := func(ports ...*int) func() {
		return func() {
			if p, err := freePorts(len(ports)); err == nil {
				for i := range ports {
					*ports[i] = p[i]
				}
			}
		}
	}
	tlsFlags := func(port int) []string {
		return []string{
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
		}
	}

	cp.etcd = newComponent("etcd", EtcdBinary, func() []string {
		peer := loopback("http", cp.etcdPeerPort)
		return append([]string{
			"--name=fitgate",
			"--data-dir=" + etcdData,
			"--listen-client-urls=" + cp.EtcdURL(),
			"--advertise-client-urls=" + cp.EtcdURL(),
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=fitgate=" + peer,
			"--unsafe-no-fsync=true", // test data: durability is not worth the fsync latency
			"--log-level=warn",
		}, cp.opts.EtcdFlags...)
	}, func(ctx context.Context) error {
		return cp.get(ctx, cp.EtcdURL()+"/health")
	}, func() {
		if freshEtcd { // never half-initialised with the old peer URL
			_ = os.RemoveAll(etcdData)
		}
		repick(&cp.etcdPort, &cp.etcdPeerPort)()
	})
	// On SIGTERM etcd waits ~7s (its request timeout) for open gRPC watch
	// streams, i.e. the apiserver's, before closing them. Killing it after 2s
	// loses nothing: with --unsafe-no-fsync acknowledged writes are already in
	// the page cache, which outlives the process.
	cp.etcd.stopTimeout = min(cp.etcd.stopTimeout, 2*time.Second)

	cp.apiServer = newComponent("kube-apiserver", APIServerBinary, func() []string {
		return append(append(tlsFlags(cp.apiPort),
			"--etcd-servers="+cp.EtcdURL(),
			// No kubelet advertises itself; the Service "kubernetes" endpoints
			// reconciler would otherwise refuse a loopback advertise address.
			"--advertise-address=127.0.0.1",
			"--endpoint-reconciler-type=none",
			"--client-ca-file="+pki.caCertFile,
			// Aggregation layer / request-header authentication (see pki.go).
			"--requestheader-client-ca-file="+pki.caCertFile,
			"--requestheader-allowed-names="+FrontProxyClientName,
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file="+pki.frontProxyCert,
			"--proxy-client-key-file="+pki.frontProxyKey,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--service-cluster-ip-range="+ServiceClusterIPRange,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file="+pki.saPublic,
			"--service-account-signing-key-file="+pki.saPrivate,
			"--cert-dir="+filepath.Join(cp.dir, "apiserver"), // keep it out of /var/run/kubernetes
			// On SIGTERM, http.Server.Shutdown otherwise waits up to
			// --request-timeout (60s) for open watches (scheduler, controller
			// manager, test informers); with this it answers 429 Retry-After to
			// new requests, drains the rest and gives watches 2s.
			"--shutdown-send-retry-after=true",
		), cp.opts.APIServerFlags...)
	}, func(ctx context.Context) error {
		return cp.get(ctx, cp.APIServerURL()+"/readyz")
	}, repick(&cp.apiPort))

	// The scheduler and the controller manager use one kubeconfig both for
	// the apiserver and for delegated authn/authz of their secure port.
	// Leader election is off: one instance, and it would only delay startup.
	componentFlags := func(kubeconfig string, port int) []string {
		return append(tlsFlags(port),
			"--kubeconfig="+kubeconfig,
			"--authentication-kubeconfig="+kubeconfig,
			"--authorization-kubeconfig="+kubeconfig,
			"--client-ca-file="+pki.caCertFile,
			"--leader-elect=false",
		)
	}
	cp.scheduler = newComponent("kube-scheduler", SchedulerBinary, func() []string {
		return append(componentFlags(cp.kubeconfigFile("kube-scheduler"), cp.schedulerPort), cp.opts.SchedulerFlags...)
	}, func(ctx context.Context) error {
		// /readyz includes the informer-sync check, i.e. the scheduler can bind.
		return cp.get(ctx, loopback("https", cp.schedulerPort)+"/readyz")
	}, repick(&cp.schedulerPort))

	cp.controllerManager = newComponent("kube-controller-manager", ControllerManagerBinary, func() []string {
		// The admin identity, not system:kube-controller-manager with
		// --use-service-account-credentials: minting a token per controller
		// delayed the first controllers (and thus every namespace's default
		// ServiceAccount) by ~5s on a 2-core machine.
		return append(append(componentFlags(cp.kubeconfigFile("admin"), cp.controllerManagerPort),
			// Fake Nodes have no kubelet to renew leases: the node-lifecycle
			// controller would mark them NotReady/unreachable and taint them.
			"--controllers=*,-node-lifecycle-controller",
			"--service-account-private-key-file="+pki.saPrivate,
			"--root-ca-file="+pki.caCertFile,
			"--cluster-signing-cert-file="+pki.caCertFile,
			"--cluster-signing-key-file="+pki.caKeyFile,
			"--cluster-name=fitgate",
		), cp.opts.ControllerManagerFlags...)
	}, func(ctx context.Context) error {
		if err := cp.get(ctx, loopback("https", cp.controllerManagerPort)+"/healthz"); err != nil {
			return err
		}
		// Healthy is not yet working: wait until the serviceaccount controller
		// has run, since pods cannot be created in a namespace before then.
		_, err := cp.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	}, repick(&cp.controllerManagerPort))
}

func (cp *ControlPlane) kubeconfigFile(user string) string {
	return filepath.Join(cp.dir, user+".kubeconfig")
}

// writeKubeconfigs writes admin.kubeconfig (KubeconfigPath, also used by the
// controller manager) and kube-scheduler.kubeconfig, and builds the admin
// REST config and client.
func (cp *ControlPlane) writeKubeconfigs() error {
	for user, cc := range map[string]clientCert{
		"admin":          cp.pki.admin,
		"kube-scheduler": cp.pki.scheduler,
	} {
		data, err := kubeconfig(cp.APIServerURL(), cp.pki.caPEM, user, cc)
		if err != nil {
			return err
		}
		if err := os.WriteFile(cp.kubeconfigFile(user), data, 0o600); err != nil {
			return err
		}
	}
	cp.kubeconfigPath = cp.kubeconfigFile("admin")
	cp.restConfig = &rest.Config{
		Host: cp.APIServerURL(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: cp.pki.caPEM, CertData: cp.pki.admin.certPEM, KeyData: cp.pki.admin.keyPEM,
		},
		// Tests create many objects quickly; client-side throttling only slows them.
		QPS: 200, Burst: 400,
	}
	var err error
	cp.client, err = kubernetes.NewForConfig(cp.restConfig)
	return err
}

// kubeconfig renders a v1 kubeconfig with all credentials embedded. It is
// written by hand rather than with client-go's clientcmd, which would pull
// github.com/spf13/pflag into the root module for four YAML keys.
func kubeconfig(server string, caPEM []byte, user string, cc clientCert) ([]byte, error) {
	type m = map[string]any
	return yaml.Marshal(m{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []m{{"name": "fitgate", "cluster": m{
			"server":                     server,
			"certificate-authority-data": caPEM, // []byte marshals as base64, as kubeconfig expects
		}}},
		"users": []m{{"name": user, "user": m{
			"client-certificate-data": cc.certPEM,
			"client-key-data":         cc.keyPEM,
		}}},
		"contexts":        []m{{"name": "fitgate", "context": m{"cluster": "fitgate", "user": user}}},
		"current-context": "fitgate",
	})
}

// get succeeds when url answers 200.
func (cp *ControlPlane) get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := cp.probe.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// wait polls cond every 100ms until it returns nil or ctx ends.
func wait(ctx context.Context, what string, cond func(context.Context) error) error {
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free loopback ports. All listeners are held
// until every port is chosen so the same port is not returned twice; another
// process may still grab one before the component binds, which Component
// handles by re-picking ports ("address already in use").
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// findBinDir resolves the directory holding the control-plane binaries and
// checks that all of them are there.
func findBinDir(dir string) (string, error) {
	source := "Options.BinDir"
	if dir == "" {
		dir, source = os.Getenv("FITGATE_BIN_DIR"), "$FITGATE_BIN_DIR"
	}
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return "", fmt.Errorf("controlplane: cannot locate the control-plane binaries (set Options.BinDir or FITGATE_BIN_DIR, or run from inside the repository): %w", err)
		}
		dir, source = filepath.Join(root, "bin"), "repository bin/"
	}
	var missing []string
	for _, name := range []string{EtcdBinary, APIServerBinary, SchedulerBinary, ControllerManagerBinary} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("controlplane: missing %s in %s (from %s); run `make tools` to build the control-plane binaries",
			strings.Join(missing, ", "), dir, source)
	}
	return dir, nil
}

// repoRoot walks up from the working directory to the go.mod of module
// github.com/fitgate/fitgate (skipping nested modules such as hack/tools).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if modulePath(filepath.Join(dir, "go.mod")) == "github.com/fitgate/fitgate" {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod of github.com/fitgate/fitgate above %s", wd)
		}
	}
}

func modulePath(goMod string) string {
	f, err := os.Open(goMod)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
