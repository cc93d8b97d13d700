// Command load measures fitgate's admission throughput (issue #9, item 5)
// and prints the result as one markdown table on stdout; progress goes to
// stderr.
//
//	make build && go run ./test/bench/load -bin-dir bin
//
// Setup: controlplane.Start (etcd, kube-apiserver, kube-scheduler,
// kube-controller-manager); the scheduler and the controller manager are
// stopped at once, so only etcd and the API server run while measuring. A
// synthetic cluster (test/synth, seed 1: 500 nodes, 3000 pods created bound
// with spec.nodeName, no ResourceQuotas) is loaded, and every namespace gets
// what the controller manager would add (the default ServiceAccount,
// kube-root-ca.crt) plus the ConfigMap the app pods refer to.
//
// Part 1, HTTPS admission throughput: `fitgate serve` runs as a child
// process on 127.0.0.1 with a serving certificate from the cluster CA, not
// registered. After /readyz and a smoke test (one review of each kind must
// be allowed without a warning), this process POSTs AdmissionReview v1
// CREATE requests of distinct bare Pods (and then a 3:1 mix with a
// 3-replica Deployment), whose objects are the API server's own dry-run
// output for a typical Deployment pod (labels, requests and limits, env,
// probes, sidecar, token volume, managedFields), over keep-alive HTTPS
// connections that verify the CA, from N workers with one connection each,
// for -warmup then -duration per level. A level's rate counts the requests
// that started and finished within the window; every response must be HTTP
// 200, an AdmissionReview v1 with the request's UID, allowed; anything else
// is an error, and errors fail the run.
//
// Part 2, pod creates through the API server: rounds of -creates bare pods
// (not bound, so judged against every node) created by -create-concurrency
// goroutines through client-go (no client-side rate limit), in three arms:
// without a webhook; with a no-op webhook served by this program and
// registered exactly as fitgate registers itself (it copies the request's
// uid into an allowed response and decodes nothing else, so it is the
// floor for any webhook: what the API server pays to call one); and with
// fitgate registered (`fitgate serve --register-url`). Both webhooks use
// failurePolicy Fail, so a broken webhook shows up as failed creates. The
// arms run in ABBA order (without, no-op, fitgate, fitgate, no-op,
// without), each round in a fresh namespace whose pods are deleted
// afterwards. Before the rounds with fitgate, a dry-run create of a pod
// no node can hold must be denied by validate.fitgate.dev (the webhook is
// called); after them it must be admitted again. fitgate's own counters
// must show one Pod decision per create, and the no-op webhook one call.
//
// The load generator, fitgate and the control plane share the machine's
// cores, which is the setup the issue asks for; the CPU columns show who
// used what.
//
// -profile DIR writes fitgate's CPU profiles (fitgate serve --pprof-addr)
// for each part-1 level and part-2 round with fitgate, and the API
// server's for each part-2 round. profile_test.go has an in-process
// benchmark of the same path:
//
//	go test ./test/bench/load -run '^$' -bench Admission -cpuprofile /tmp/cpu.out
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/fitgate/fitgate/test/controlplane"
)

// Targets from the issue.
const (
	targetRate     = 3000.0
	targetP99      = 5 * time.Millisecond
	targetRatioMin = 0.9
)

type config struct {
	binDir, fitgateBin  string
	fitgateFlags        []string
	seed                uint64
	nodes, pods         int
	duration, warmup    time.Duration
	levels              []int
	rates               []float64
	rateConns           int
	profileDir          string
	procs               int
	mix                 bool
	creates, createConc int
	rounds              int
	noop                bool
	parts               string
	timeout             time.Duration
	keep                bool
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&c.binDir, "bin-dir", "bin", "directory with etcd, kube-apiserver, kube-scheduler, kube-controller-manager (make tools) and fitgate (make build)")
	fs.StringVar(&c.fitgateBin, "fitgate", "", "the fitgate binary (default <bin-dir>/fitgate)")
	fitgateFlags := fs.String("fitgate-flags", "", "extra flags for every fitgate serve, space-separated (e.g. \"--gc-heap-floor=128Mi\")")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the synthetic cluster")
	fs.IntVar(&c.nodes, "nodes", 500, "nodes in the synthetic cluster")
	fs.IntVar(&c.pods, "pods", 3000, "bound pods in the synthetic cluster (created with spec.nodeName)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "part 1: measured window per concurrency level")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "part 1: unmeasured warm-up before each window")
	levels := fs.String("concurrency", "4,16,64", "part 1: comma-separated concurrency levels (connections = workers)")
	rates := fs.String("rates", "3000", "part 1: comma-separated open-loop rates (reviews/s on a fixed schedule, latency from when each was due); empty for none")
	fs.IntVar(&c.rateConns, "rate-connections", 16, "part 1: connections (= workers) of the open-loop levels")
	fs.IntVar(&c.procs, "procs", runtime.GOMAXPROCS(0), "GOMAXPROCS of this program (fitgate keeps the machine's): with fewer, the load generator competes less with fitgate for the shared cores")
	fs.StringVar(&c.profileDir, "profile", "", "write fitgate's CPU profile to this directory (fitgate serve --pprof-addr): part 1 over each level's window, part 2 over the first 4 s of each round with fitgate, and the API server's over every round")
	fs.BoolVar(&c.mix, "mix", true, "part 1: also run the Pod/Deployment mix at the best Pod level")
	fs.IntVar(&c.creates, "creates", 3000, "part 2: pods created per round")
	fs.IntVar(&c.createConc, "create-concurrency", 32, "part 2: concurrent creates")
	fs.IntVar(&c.rounds, "rounds", 2, "part 2: rounds of each arm (without a webhook, with the no-op webhook, with fitgate)")
	fs.BoolVar(&c.noop, "noop-webhook", true, "part 2: also run rounds with a no-op webhook registered the way fitgate is, to measure what any webhook costs")
	fs.StringVar(&c.parts, "parts", "1,2", "which parts to run: 1, 2 or 1,2")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&c.keep, "keep", false, "keep the state directory (control-plane and fitgate logs) and print its path")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.fitgateFlags = strings.Fields(*fitgateFlags)
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	var err error
	if c.levels, err = parseLevels(*levels); err != nil {
		errs = append(errs, fmt.Errorf("-concurrency: %w", err))
	}
	if c.rates, err = parseRates(*rates); err != nil {
		errs = append(errs, fmt.Errorf("-rates: %w", err))
	}
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(c.nodes >= 1 && c.nodes <= 5000, "-nodes %d: want 1..5000", c.nodes)
	check(c.pods >= 0 && c.pods <= 50000, "-pods %d: want 0..50000", c.pods)
	check(c.duration >= time.Second && c.duration <= 10*time.Minute, "-duration %v: want 1s..10m", c.duration)
	check(c.warmup >= 0 && c.warmup <= time.Minute, "-warmup %v: want 0..1m", c.warmup)
	check(c.creates >= 1 && c.creates <= 100000, "-creates %d: want 1..100000", c.creates)
	check(c.createConc >= 1 && c.createConc <= 1024, "-create-concurrency %d: want 1..1024", c.createConc)
	check(c.procs >= 1 && c.procs <= runtime.NumCPU(), "-procs %d: want 1..%d", c.procs, runtime.NumCPU())
	check(c.rateConns >= 1 && c.rateConns <= 1024, "-rate-connections %d: want 1..1024", c.rateConns)
	check(c.rounds >= 1 && c.rounds <= 10, "-rounds %d: want 1..10", c.rounds)
	check(c.timeout > 0, "-timeout %v: want more than 0", c.timeout)
	switch strings.ReplaceAll(c.parts, " ", "") {
	case "1", "2", "1,2", "2,1":
	default:
		errs = append(errs, fmt.Errorf("-parts %q: want 1, 2 or 1,2", c.parts))
	}
	if c.fitgateBin == "" {
		c.fitgateBin = filepath.Join(c.binDir, "fitgate")
	}
	for _, p := range []*string{&c.binDir, &c.fitgateBin} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	if fi, err := os.Stat(c.fitgateBin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("%s is not an executable fitgate binary: run `make build`", c.fitgateBin))
	}
	return c, errors.Join(errs...)
}

func (c config) part(p string) bool { return strings.Contains(c.parts, p) }

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(cfg.procs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	rep, err := run(ctx, cfg)
	cancel()
	stop()
	fmt.Print(rep.render())
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
	if problems := rep.problems(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "load: FAIL: %s\n", strings.Join(problems, "; "))
		os.Exit(1)
	}
}

var begin = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(begin).Seconds(), fmt.Sprintf(format, args...))
}

// report is everything measured, rendered at the end even after a failure.
type report struct {
	cfg     config
	setup   []string
	levels  []*levelResult
	paced   []*levelResult // open-loop levels
	best    *levelResult
	mix     *levelResult
	rounds  []roundResult
	creates createsSpec
}

func run(ctx context.Context, cfg config) (rep *report, retErr error) {
	rep = &report{cfg: cfg}
	logf("starting the control plane (binaries from %s) ...", cfg.binDir)
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: cfg.binDir, KeepDir: cfg.keep, Logf: logf})
	if err != nil {
		return rep, err
	}
	defer func() {
		logf("stopping the control plane ...")
		if err := cp.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
		if cfg.keep {
			logf("state and logs kept in %s", cp.Dir())
		}
	}()
	// Only etcd and the API server take part in what is measured: pods are
	// created bound (no scheduler) and the benchmark makes what the
	// controller manager would (ServiceAccounts, kube-root-ca.crt).
	// controlplane.Start always starts all four, so stop those two now,
	// rather than let them compete for the two cores.
	for _, c := range []*controlplane.Component{cp.Scheduler(), cp.ControllerManager()} {
		if err := c.Stop(); err != nil {
			return rep, fmt.Errorf("stopping %s: %w", c.Name(), err)
		}
	}
	logf("stopped kube-scheduler and kube-controller-manager: etcd and kube-apiserver remain")
	rc := cp.RESTConfig()
	rc.QPS, rc.Burst = 100000, 100000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return rep, err
	}

	// Before anything else runs (etcd and the API server are idle).
	logf("measuring how steadily this machine runs (5 s) ...")
	steady := measureSteadiness(5*time.Second, 50*time.Millisecond)
	rep.setup = append(rep.setup, "CPU steadiness before the run: "+steady.String()+".")
	logf("  %s", steady)

	logf("loading the synthetic cluster: %d nodes, %d bound pods (seed %d) ...", cfg.nodes, cfg.pods, cfg.seed)
	info, err := loadCluster(ctx, cp, client, cfg.seed, cfg.nodes, cfg.pods, logf)
	if err != nil {
		return rep, err
	}
	rep.setup = append(rep.setup, fmt.Sprintf(
		"Cluster: etcd + kube-apiserver %s (kube-scheduler and kube-controller-manager stopped after start-up; nothing else runs); "+
			"synthetic cluster seed %d: %d nodes (4 pools, 3 zones, GPU pool tainted), %d bound pods in %d namespaces, loaded in %v.",
		apiServerVersion(client), cfg.seed, info.nodes, info.pods, info.namespaces, info.took.Round(100*time.Millisecond)))
	const benchNS, probeNS = "load-bench", "load-probe"
	for _, ns := range []string{benchNS, probeNS} {
		if err := prepareNamespace(ctx, client, ns, nil); err != nil {
			return rep, err
		}
	}

	stateDir := filepath.Join(cp.Dir(), "logs")
	fgBase := fitgateOptions{bin: cfg.fitgateBin, kubeconfig: cp.KubeconfigPath(), dir: stateDir, extraArgs: cfg.fitgateFlags}
	apiPID, etcdPID := cp.APIServer().PID(), cp.Etcd().PID()

	if cfg.part("1") {
		if err := runPart1(ctx, cfg, cp, fgBase, benchNS, apiPID, etcdPID, rep); err != nil {
			return rep, err
		}
	}
	if cfg.part("2") {
		rep.creates = createsSpec{n: cfg.creates, conc: cfg.createConc, rounds: cfg.rounds, fitgate: fgBase, probeNamespace: probeNS,
			profileDir: cfg.profileDir, noop: cfg.noop}
		if cfg.profileDir != "" {
			if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
				return rep, err
			}
		}
		rounds, err := runCreates(ctx, cp, rep.creates, logf)
		rep.rounds = rounds
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func runPart1(ctx context.Context, cfg config, cp *controlplane.ControlPlane, o fitgateOptions, ns string, apiPID, etcdPID int, rep *report) error {
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1")
	if err != nil {
		return err
	}
	o.name, o.certPEM, o.keyPEM = "fitgate-unregistered", certPEM, keyPEM
	o.pprof = cfg.profileDir != ""
	if o.pprof {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}
	logf("part 1: starting fitgate serve (not registered) ...")
	t := time.Now()
	fg, err := startFitgate(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		logf("part 1: stopping fitgate ...")
		fg.stop()
	}()
	logf("part 1: fitgate ready (cache synced) in %v at %s", time.Since(t).Round(100*time.Millisecond), fg.url)
	podObj, depObj, err := apiServerObjects(ctx, cp.Client(), ns)
	if err != nil {
		return err
	}
	pods, mix, err := newScenarios(podObj, depObj)
	if err != nil {
		return err
	}
	if err := smokeTest(ctx, fg.url, cp.CACertPEM(), pods, mix); err != nil {
		return fmt.Errorf("%w (fitgate log %s)", err, fg.logPath)
	}
	seq := int64(0)
	level := func(sc scenario, conc int, rate float64) (*levelResult, error) {
		how := fmt.Sprintf("concurrency %d", conc)
		if rate > 0 {
			how = fmt.Sprintf("%.0f/s offered over %d connections", rate, conc)
		}
		logf("part 1: %s, %s: %v warm-up + %v measured ...", sc.name, how, cfg.warmup, cfg.duration)
		res, err := runLevel(ctx, fg.url, cp.CACertPEM(), fg, levelSpec{sc: sc, conc: conc, rate: rate, warmup: cfg.warmup,
			window: cfg.duration, seqBase: seq, apiPID: apiPID, etcdPID: etcdPID, profilePath: profilePath(cfg.profileDir, sc, conc, rate)})
		seq += 10_000_000
		if err != nil {
			return nil, err
		}
		logf("part 1:   %.0f reviews/s, p50 %s, p99 %s, %d errors, CPU fitgate/bench/apiserver/etcd %s",
			res.rate, fmtLatency(res.p50), fmtLatency(res.p99), res.errors, res.cpu)
		for e, n := range res.errSamples {
			logf("part 1:   error ×%d: %s", n, e)
		}
		if res.warnSample != "" {
			logf("part 1:   %d warnings, e.g. %s", res.warned, res.warnSample)
		}
		if exited, err := fg.exited(); exited {
			return res, fmt.Errorf("fitgate exited: %v (log %s)", err, fg.logPath)
		}
		return res, nil
	}
	for _, c := range cfg.levels {
		res, err := level(pods, c, 0)
		if res != nil {
			rep.levels = append(rep.levels, res)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range cfg.rates {
		res, err := level(pods, cfg.rateConns, r)
		if res != nil {
			rep.paced = append(rep.paced, res)
		}
		if err != nil {
			return err
		}
	}
	rep.best = bestLevel(rep.levels)
	if cfg.mix && rep.best != nil {
		res, err := level(mix, rep.best.conc, 0)
		rep.mix = res
		if err != nil {
			return err
		}
	}
	return nil
}

// profilePath is where a level's CPU profile goes, or "".
func profilePath(dir string, sc scenario, conc int, rate float64) string {
	if dir == "" {
		return ""
	}
	name := fmt.Sprintf("fitgate-%s-c%d", sc.kinds[0].name, conc)
	if len(sc.kinds) > 1 {
		name = fmt.Sprintf("fitgate-mix-c%d", conc)
	}
	if rate > 0 {
		name += fmt.Sprintf("-%.0fps", rate)
	}
	return filepath.Join(dir, name+".pprof")
}

// bestLevel is the level with the highest sustained rate.
func bestLevel(levels []*levelResult) *levelResult {
	var best *levelResult
	for _, l := range levels {
		if best == nil || l.rate > best.rate {
			best = l
		}
	}
	return best
}

// apiServerVersion is the API server's gitVersion, or "" if unknown.
func apiServerVersion(client kubernetes.Interface) string {
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return ""
	}
	return v.GitVersion
}

// machine describes the CPU, GOMAXPROCS and Go version.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			load = fmt.Sprintf(", load average at the end %s %s %s", f[0], f[1], f[2])
		}
	}
	return fmt.Sprintf("Machine: %s, %d CPUs, GOMAXPROCS %d (this process; fitgate %d), %s %s/%s%s.",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, load)
}

// problems are the reasons the run failed: error responses, unchecked
// admissions, or fitgate not called for every create.
func (r *report) problems() []string {
	var out []string
	all := append(append([]*levelResult(nil), r.levels...), r.paced...)
	if r.mix != nil {
		all = append(all, r.mix)
	}
	for _, l := range all {
		if l.errors > 0 {
			out = append(out, fmt.Sprintf("part 1 %s c=%d: %d error responses", l.scenario, l.conc, l.errors))
		}
		if l.unchecked > 0 {
			out = append(out, fmt.Sprintf("part 1 %s c=%d: %d reviews allowed unchecked", l.scenario, l.conc, l.unchecked))
		}
	}
	for _, rr := range r.rounds {
		if rr.errors > 0 {
			out = append(out, fmt.Sprintf("part 2 round %d: %d failed creates", rr.index, rr.errors))
		}
		if rr.arm == armFitgate && int(rr.decisions) != rr.n {
			out = append(out, fmt.Sprintf("part 2 round %d: fitgate counted %.0f Pod decisions for %d creates", rr.index, rr.decisions, rr.n))
		}
		if rr.arm == armNoop && int(rr.httpCount) != rr.n {
			out = append(out, fmt.Sprintf("part 2 round %d: the no-op webhook counted %.0f calls for %d creates", rr.index, rr.httpCount, rr.n))
		}
	}
	return out
}

func metOr(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r *report) render() string {
	var b strings.Builder
	b.WriteString("\n" + machine() + "\n")
	for _, s := range r.setup {
		b.WriteString(s + "\n")
	}
	var rows []row
	levelRow := func(l *levelResult) row {
		notes := fmt.Sprintf("%v window after %v warm-up; %d keep-alive conns; fitgate counted %.0f decisions / %.0f HTTP requests for %d sent",
			l.window, r.cfg.warmup, l.dials, l.decisions, l.httpCount, l.sent)
		if l.rate > 0 && l.fitgateCores > 0 {
			notes += fmt.Sprintf("; fitgate CPU %.0f µs/review", l.fitgateCores/l.rate*1e6)
		}
		if l.handlerMean > 0 {
			notes += fmt.Sprintf(", Handler.Handle mean %.0f µs", float64(l.handlerMean)/float64(time.Microsecond))
		}
		if l.liveLookups > 0 {
			notes += fmt.Sprintf("; %.0f live lookups", l.liveLookups)
		}
		if l.warned > 0 {
			notes += fmt.Sprintf("; %d warned (%d unchecked), e.g. %q", l.warned, l.unchecked, firstLine(l.warnSample))
		}
		for e, n := range l.errSamples {
			notes += fmt.Sprintf("; error ×%d: %s", n, firstLine(e))
		}
		scenario := l.scenario
		if l.offered > 0 {
			scenario = fmt.Sprintf("%s, %.0f/s offered (open loop)", l.scenario, l.offered)
			notes += "; latency from when each request was due"
		}
		return row{part: "1", scenario: scenario, conc: fmt.Sprint(l.conc), count: fmt.Sprint(l.measured),
			errors: fmt.Sprint(l.errors), rate: fmt.Sprintf("%.0f reviews/s", l.rate), p50: fmtLatency(l.p50), p99: fmtLatency(l.p99),
			cpu: l.cpu, notes: notes}
	}
	for _, l := range r.levels {
		rows = append(rows, levelRow(l))
	}
	for _, l := range r.paced {
		rows = append(rows, levelRow(l))
	}
	if r.mix != nil {
		rows = append(rows, levelRow(r.mix))
	}
	if b := r.best; b != nil {
		var met []string
		for _, l := range append(append([]*levelResult(nil), r.levels...), r.paced...) {
			kept := l.offered == 0 || l.rate >= 0.99*l.offered
			if l.rate >= targetRate && l.p99 <= targetP99 && kept && l.errors == 0 {
				if l.offered > 0 {
					met = append(met, fmt.Sprintf("%.0f/s offered", l.offered))
				} else {
					met = append(met, fmt.Sprintf("concurrency %d", l.conc))
				}
			}
		}
		verdict := fmt.Sprintf("target ≥ %.0f/s with p99 ≤ %v: %s", targetRate, targetP99, metOr(len(met) > 0))
		if len(met) > 0 {
			verdict += " (at " + strings.Join(met, ", ") + ")"
		}
		rows = append(rows, row{part: "1", scenario: "**best sustained, bare Pods**", conc: fmt.Sprint(b.conc),
			count: fmt.Sprint(b.measured), errors: fmt.Sprint(b.errors), rate: fmt.Sprintf("**%.0f reviews/s**", b.rate),
			p50: fmtLatency(b.p50), p99: "**" + fmtLatency(b.p99) + "**", cpu: b.cpu, notes: verdict})
	}
	// Part 2: rates and server-side means by arm.
	var rates, createMeans, webhookMeans [3][]float64
	for _, rr := range r.rounds {
		notes := fmt.Sprintf("namespace %s, %.1f s; apiserver's mean POST pods latency %s", rr.namespace, rr.elapsed.Seconds(), fmtLatency(rr.apiCreateMean))
		rates[rr.arm] = append(rates[rr.arm], rr.rate)
		createMeans[rr.arm] = append(createMeans[rr.arm], float64(rr.apiCreateMean))
		switch rr.arm {
		case armFitgate:
			webhookMeans[rr.arm] = append(webhookMeans[rr.arm], float64(rr.webhookMean))
			notes += fmt.Sprintf(", of which the fitgate webhook call %s (%.0f calls); fitgate counted %.0f Pod decisions, %.0f webhook HTTP requests",
				fmtLatency(rr.webhookMean), rr.webhookCalls, rr.decisions, rr.httpCount)
		case armNoop:
			webhookMeans[rr.arm] = append(webhookMeans[rr.arm], float64(rr.webhookMean))
			notes += fmt.Sprintf(", of which the no-op webhook call %s (%.0f calls); it counted %.0f requests (its CPU is in the bench column)",
				fmtLatency(rr.webhookMean), rr.webhookCalls, rr.httpCount)
		}
		if rr.warnings > 0 {
			notes += fmt.Sprintf("; %d warnings, e.g. %q", rr.warnings, firstLine(rr.warnSample))
		}
		keys := make([]string, 0, len(rr.errSamples))
		for e := range rr.errSamples {
			keys = append(keys, e)
		}
		sort.Strings(keys)
		for _, e := range keys {
			notes += fmt.Sprintf("; error ×%d: %s", rr.errSamples[e], e)
		}
		rows = append(rows, row{part: "2", scenario: fmt.Sprintf("pod creates via client-go, round %d, %s", rr.index, rr.arm),
			conc: fmt.Sprint(r.creates.conc), count: fmt.Sprint(rr.n), errors: fmt.Sprint(rr.errors),
			rate: fmt.Sprintf("%.0f creates/s", rr.rate), p50: fmtLatency(rr.p50), p99: fmtLatency(rr.p99), cpu: rr.cpu, notes: notes})
	}
	medianMs := func(xs []float64) string { return fmtLatency(time.Duration(median(xs))) }
	if len(rates[armFitgate]) > 0 && len(rates[armWithout]) > 0 {
		mw, mo := median(rates[armFitgate]), median(rates[armWithout])
		ratio := mw / mo
		rows = append(rows, row{part: "2", scenario: "**median with fitgate / median without**", conc: fmt.Sprint(r.creates.conc),
			rate: fmt.Sprintf("**%.2f**", ratio),
			notes: fmt.Sprintf("%.0f vs %.0f creates/s; target ≥ %.1f: %s. Server side (apiserver metrics, medians): POST pods %s with vs %s without; fitgate webhook call %s",
				mw, mo, targetRatioMin, metOr(ratio >= targetRatioMin),
				medianMs(createMeans[armFitgate]), medianMs(createMeans[armWithout]), medianMs(webhookMeans[armFitgate]))})
	}
	if len(rates[armNoop]) > 0 && len(rates[armWithout]) > 0 {
		mn, mo := median(rates[armNoop]), median(rates[armWithout])
		rows = append(rows, row{part: "2", scenario: "median no-op webhook / median without", conc: fmt.Sprint(r.creates.conc),
			rate: fmt.Sprintf("%.2f", mn/mo),
			notes: fmt.Sprintf("%.0f vs %.0f creates/s: what calling any webhook costs the API server here, the ceiling for fitgate's ratio. POST pods %s; webhook call %s",
				mn, mo, medianMs(createMeans[armNoop]), medianMs(webhookMeans[armNoop]))})
		if len(rates[armFitgate]) > 0 {
			mw := median(rates[armFitgate])
			rows = append(rows, row{part: "2", scenario: "median with fitgate / median no-op webhook", conc: fmt.Sprint(r.creates.conc),
				rate:  fmt.Sprintf("%.2f", mw/mn),
				notes: fmt.Sprintf("%.0f vs %.0f creates/s: fitgate's own share (decoding and checking the pod)", mw, mn)})
		}
	}
	if len(rows) == 0 {
		b.WriteString("(nothing measured)\n")
		return b.String()
	}
	b.WriteString("\n" + renderTable(rows))
	b.WriteString("\nCPU columns: cores used over the measured window (part 1) or the round (part 2), from /proc/<pid>/stat; " +
		"\"bench\" is this load generator. p50/p99 are nearest-rank percentiles of client-side latency (request sent until the response body was read).\n")
	return b.String()
}
