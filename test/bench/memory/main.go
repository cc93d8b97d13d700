// Command memory measures the memory of `fitgate serve` holding a large
// synthetic cluster, next to a plain client-go informer caching full Pod
// and Node objects (issue #9, item 4).
//
//	go run ./test/bench/memory -fitgate bin/fitgate [-nodes 5000 -pods 150000 -seed 1]
//
// The cluster comes from the synth generator and is served by an in-process
// fake apiserver (test/bench/fakeapi) as JSON over loopback HTTP; the
// clients sync by watch-list, as from a real apiserver. Each program runs
// as a separate process, with GODEBUG=gctrace=1,gcpacertrace=1, against
// three clusters: empty (namespaces and quotas only), nodes only, and nodes
// plus pods. Once it is ready (/readyz) and has idled for -settle, the
// harness reads VmRSS and VmHWM from /proc/<pid>/status; then it makes the
// program run a GC cycle, by sending it watch bookmarks to decode (-gc
// provoke), or waits for the runtime's forced cycle (-gc wait: minutes),
// and takes the live heap from that cycle's trace: the heap it marked less
// what was allocated while it marked, which the GC marks whether or not it
// is garbage. Bytes per pod and per node are differences of live heaps
// between the three clusters.
//
// The plain informer (./plaininformer) is built like bin/fitgate
// (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"). Children run in their own
// process group with a parent-death signal and are killed on every exit
// path, Ctrl-C included.
//
// It prints a markdown table on stdout and progress on stderr.
package main

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fitgate/fitgate/test/bench/fakeapi"
	"github.com/fitgate/fitgate/test/synth"
)

const plainPkg = "github.com/fitgate/fitgate/test/bench/memory/plaininformer"

type options struct {
	fitgate, plain    string
	nodes, pods       int
	seed              uint64
	settle            time.Duration
	syncTimeout       time.Duration
	gcTimeout         time.Duration
	padBytes, batch   int
	gcMode            string
	peers             []string
	keep              bool
	dir               string
	moduleRoot        string
	start             time.Time
	fitgateStaleSince string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var progress io.Writer = os.Stderr
var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(progress, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func run(args []string, stdout, stderr io.Writer) int {
	progress = stderr
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "memory: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer live.killAll() // whatever happens, no child outlives us
	if err := measureAll(ctx, o, stdout); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		fmt.Fprintf(stderr, "memory: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{start: time.Now()}
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.fitgate, "fitgate", "bin/fitgate", "the fitgate binary to measure (build it with make build)")
	fs.StringVar(&o.plain, "plaininformer", "", "a prebuilt plain informer binary (default: build "+plainPkg+")")
	fs.IntVar(&o.nodes, "nodes", 5000, "nodes in the synthetic cluster")
	fs.IntVar(&o.pods, "pods", 150000, "pods in the synthetic cluster")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "idle time after sync before memory is read")
	fs.DurationVar(&o.syncTimeout, "sync-timeout", 3*time.Minute, "how long a program may take to become ready")
	fs.DurationVar(&o.gcTimeout, "gc-timeout", 0, "how long to wait for the GC the live heap is read from (default 2m with -gc provoke, 4m with -gc wait)")
	fs.StringVar(&o.gcMode, "gc", "provoke", "provoke: make each program collect garbage at once with padded watch bookmarks; "+
		"wait: wait for the runtime's forced GC (2 to 3 minutes after the last one, while idle: slow, for checking)")
	fs.IntVar(&o.padBytes, "bookmark-bytes", 0, "padding of each bookmark sent to provoke a GC")
	fs.IntVar(&o.batch, "bookmark-batch", 4096, "bookmarks sent between checks for a GC")
	peers := fs.String("peers", "fitgate,plain", "programs to measure: fitgate, plain, or both")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (kubeconfigs, certificates, logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch {
	case o.nodes < 1 || o.nodes > 1_000_000:
		return nil, fmt.Errorf("-nodes %d: want 1..1000000", o.nodes)
	case o.pods < 1 || o.pods > 10_000_000:
		return nil, fmt.Errorf("-pods %d: want 1..10000000", o.pods)
	case o.settle < 0:
		return nil, fmt.Errorf("-settle %v: want a non-negative duration", o.settle)
	case o.syncTimeout <= 0 || o.gcTimeout < 0:
		return nil, errors.New("-sync-timeout must be positive, -gc-timeout not negative")
	case o.gcMode != "provoke" && o.gcMode != "wait":
		return nil, fmt.Errorf("-gc %q: want provoke or wait", o.gcMode)
	case o.padBytes < 0 || o.padBytes > 16<<20:
		return nil, fmt.Errorf("-bookmark-bytes %d: want 0..16777216", o.padBytes)
	case o.batch < 1 || o.batch > 100000:
		return nil, fmt.Errorf("-bookmark-batch %d: want 1..100000", o.batch)
	}
	for _, p := range strings.Split(*peers, ",") {
		switch p = strings.TrimSpace(p); p {
		case "fitgate", "plain":
			o.peers = append(o.peers, p)
		case "":
		default:
			return nil, fmt.Errorf("-peers: unknown program %q: want fitgate and/or plain", p)
		}
	}
	if len(o.peers) == 0 {
		return nil, errors.New("-peers: nothing to measure")
	}
	if o.gcTimeout == 0 {
		o.gcTimeout = 2 * time.Minute
		if o.gcMode == "wait" {
			// Forced after 2 minutes without a cycle, by a monitor that
			// checks at least every minute when the program is idle.
			o.gcTimeout = 4 * time.Minute
		}
	}
	if o.wants("fitgate") {
		if err := checkExecutable(o.fitgate); err != nil {
			return nil, fmt.Errorf("-fitgate: %w (build it with make build)", err)
		}
	}
	if o.plain != "" {
		if err := checkExecutable(o.plain); err != nil {
			return nil, fmt.Errorf("-plaininformer: %w", err)
		}
	}
	o.moduleRoot = findModuleRoot()
	return o, nil
}

func (o *options) wants(p string) bool {
	for _, q := range o.peers {
		if q == p {
			return true
		}
	}
	return false
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// findModuleRoot is the directory of fitgate's go.mod above the working
// directory, or "" if there is none.
func findModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/fitgate/fitgate\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// newestSource is the newest non-test .go file of fitgate outside test/
// and hack/, to warn when the binary is older.
func newestSource(root string) (string, time.Time) {
	var newest string
	var at time.Time
	if root == "" {
		return "", at
	}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "test" || rel == "hack" || rel == "bin" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(at) {
			newest, at = rel, info.ModTime()
		}
		return nil
	})
	return newest, at
}

// cluster is one of the three clusters each program is measured on.
type cluster struct {
	name        string
	c           *synth.Cluster
	nodes, pods int
	what        string
}

func measureAll(ctx context.Context, o *options, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "fitgate-memory-")
	if err != nil {
		return err
	}
	o.dir = dir
	failed := true
	defer func() {
		if o.keep || failed {
			logf("work directory kept: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	var peers []*peer
	if o.wants("fitgate") {
		bin, err := filepath.Abs(o.fitgate)
		if err != nil {
			return err
		}
		o.fitgate = bin
		if src, at := newestSource(o.moduleRoot); src != "" {
			if st, err := os.Stat(bin); err == nil && at.After(st.ModTime()) {
				o.fitgateStaleSince = fmt.Sprintf("%s is older than %s (modified %s): rebuild it with make build",
					o.fitgate, src, at.Format(time.TimeOnly))
				logf("WARNING: %s", o.fitgateStaleSince)
			}
		}
		peers = append(peers, fitgatePeer(bin))
	}
	if o.wants("plain") {
		bin := o.plain
		if bin == "" {
			if bin, err = buildPlain(ctx, o); err != nil {
				return err
			}
		}
		peers = append(peers, plainPeer(bin))
	}

	logf("generating the cluster: %d nodes, %d pods, seed %d", o.nodes, o.pods, o.seed)
	full := synth.Generate(synth.Config{Seed: o.seed, Nodes: o.nodes, Pods: o.pods})
	if len(full.Nodes) != o.nodes || len(full.Pods) != o.pods {
		return fmt.Errorf("the generator made %d nodes and %d pods, want %d and %d", len(full.Nodes), len(full.Pods), o.nodes, o.pods)
	}
	base := synth.Cluster{Namespaces: full.Namespaces, Quotas: full.Quotas}
	withNodes := base
	withNodes.Nodes = full.Nodes
	clusters := []cluster{
		{name: "empty", c: &base, what: fmt.Sprintf("%d namespaces, %d quotas", len(base.Namespaces), len(base.Quotas))},
		{name: "nodes", c: &withNodes, nodes: o.nodes, what: fmt.Sprintf("+ %d nodes", o.nodes)},
		{name: "full", c: full, nodes: o.nodes, pods: o.pods, what: fmt.Sprintf("+ %d nodes + %d pods", o.nodes, o.pods)},
	}

	var results [][]*result
	for _, p := range peers {
		var row []*result
		for _, cl := range clusters {
			r, err := measure(ctx, o, p, cl)
			if err != nil {
				return fmt.Errorf("%s, %s cluster: %w", p.name, cl.name, err)
			}
			row = append(row, r)
		}
		results = append(results, row)
	}
	report(stdout, o, peers, clusters, results)
	failed = false
	return nil
}

// buildPlain builds the plain informer the way `make build` builds fitgate.
func buildPlain(ctx context.Context, o *options) (string, error) {
	out := filepath.Join(o.dir, "plaininformer")
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	logf("building the plain informer (%s)", plainPkg)
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildvcs=false", "-trimpath", "-ldflags", "-s -w", "-o", out, plainPkg)
	cmd.Dir = o.moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plain informer (run from fitgate's repository, or pass -plaininformer): %v\n%s", err, msg)
	}
	return out, nil
}

// result is one program's memory on one cluster.
type result struct {
	syncTime   time.Duration
	rss, hwm   int64
	rssAfterGC int64
	gc         gcEvent
	gcCycles   int
	bookmarks  int64 // sent to provoke the GC
	provokeFor time.Duration
	note       string
}

// live is the live heap in bytes, and its uncertainty: the heap the GC
// cycle marked, less what was allocated while it ran. Objects allocated
// during a cycle are marked whether or not anything still refers to them,
// and while the harness provokes a cycle the program allocates nothing but
// the bookmarks' garbage; an idle program allocates next to nothing. The
// marked heap is printed in whole MiB, rounded down: this takes the middle
// of that MiB.
func (r *result) live() (bytes, plusMinus float64) {
	alloc, u := r.gc.allocatedDuring()
	return max(0, float64(r.gc.live)*(1<<20)+(1<<19)-alloc), (1 << 19) + u
}

func measure(ctx context.Context, o *options, p *peer, cl cluster) (*result, error) {
	tag := fmt.Sprintf("%s/%s", p.name, cl.name)
	runDir := filepath.Join(o.dir, strings.ReplaceAll(p.name, " ", "-")+"-"+cl.name)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}
	srv, err := fakeapi.New(cl.c, fakeapi.Options{Logf: func(f string, a ...any) { logf("%s: %s", tag, fmt.Sprintf(f, a...)) }})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	kubeconfig := filepath.Join(runDir, "kubeconfig")
	if err := srv.WriteKubeconfig(kubeconfig); err != nil {
		return nil, err
	}
	args, readyURL, err := p.prepare(runDir, kubeconfig)
	if err != nil {
		return nil, err
	}
	logf("%s: starting against the %s", tag, srv)
	c, err := startChild(p.name, p.bin, args, filepath.Join(runDir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer c.kill()
	r := &result{}
	body, err := c.waitReady(ctx, readyURL, o.syncTimeout)
	if err != nil {
		if u := srv.Unserved(); len(u) > 0 {
			err = fmt.Errorf("%w\nrequests the fake apiserver could not serve:\n  %s", err, strings.Join(u, "\n  "))
		}
		return nil, err
	}
	r.syncTime = time.Since(c.started)
	pods, nodes, ok, err := p.counts(body)
	switch {
	case err != nil:
		r.note = fmt.Sprintf("could not read its object counts: %v", err)
	case !ok:
		r.note = "does not report its object counts"
	case pods != cl.pods || nodes != cl.nodes:
		r.note = fmt.Sprintf("caches %d pods and %d nodes, want %d and %d", pods, nodes, cl.pods, cl.nodes)
	}
	if r.note != "" {
		logf("%s: WARNING: %s", tag, r.note)
	}
	logf("%s: ready after %.1fs (%d pods, %d nodes cached; requests: %s); settling %v", tag, r.syncTime.Seconds(), pods, nodes, requestSummary(srv), o.settle)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.settle):
	}
	if err := c.exited(); err != nil {
		return nil, err
	}
	if r.rss, r.hwm, err = c.procStatus(); err != nil {
		return nil, err
	}
	if err := provokeGC(ctx, o, srv, c, r); err != nil {
		return nil, err
	}
	if r.rssAfterGC, _, err = c.procStatus(); err != nil {
		return nil, err
	}
	r.gcCycles = c.gcCount()
	logf("%s: RSS %s, peak %s; live heap %s (GC #%d at %.1fs: %d->%d->%d MB, goal %d MB, after %d bookmarks and %.1fs); RSS after it %s",
		tag, mib(r.rss), mib(r.hwm), r.liveMiBString(), r.gc.num, r.gc.at.Seconds(), r.gc.start, r.gc.end, r.gc.live, r.gc.goal,
		r.bookmarks, r.provokeFor.Seconds(), mib(r.rssAfterGC))
	if u := srv.Unserved(); len(u) > 0 {
		logf("%s: requests the fake apiserver could not serve:\n  %s", tag, strings.Join(u, "\n  "))
	}
	return r, nil
}

// provokeGC waits for a GC cycle that starts after the call and records
// the last such cycle. With -gc provoke it makes the child collect garbage
// by decoding bookmarks; with -gc wait it leaves the child idle until the
// runtime forces a collection (two minutes after the last one).
func provokeGC(ctx context.Context, o *options, srv *fakeapi.Server, c *child, r *result) error {
	from := time.Now()
	after := c.since(from)
	resource := ""
	for _, kind := range []string{"pods", "nodes"} {
		if srv.Watches(kind) > 0 {
			resource = kind
			break
		}
	}
	if resource == "" && o.gcMode == "provoke" {
		return fmt.Errorf("%s has no open pod or node watch to send bookmarks down", c.name)
	}
	qualifies := func() (gcEvent, bool) {
		ev, ok := c.lastGC()
		return ev, ok && ev.at >= after
	}
	for {
		if _, ok := qualifies(); ok {
			break
		}
		if err := c.exited(); err != nil {
			return err
		}
		if time.Since(from) > o.gcTimeout {
			return fmt.Errorf("%s did not collect garbage within %v (-gc %s, %d bookmarks sent; log %s)", c.name, o.gcTimeout, o.gcMode, r.bookmarks, c.logPath)
		}
		if o.gcMode == "wait" {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		n, err := srv.SendBookmarks(ctx, resource, o.batch, o.padBytes)
		if err != nil {
			if e := c.exited(); e != nil {
				return e
			}
			return fmt.Errorf("sending bookmarks: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%s closed its %s watch", c.name, resource)
		}
		r.bookmarks += int64(n * o.batch)
	}
	r.provokeFor = time.Since(from)
	// Bookmarks still in flight may set off another cycle, which would do
	// as well: take the last one.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(500 * time.Millisecond):
	}
	ev, ok := qualifies()
	if !ok {
		return errors.New("lost the GC cycle") // cannot happen: cycles only add up
	}
	r.gc = ev
	return nil
}

// requestSummary counts the requests the fake served by verb, e.g.
// "watchlist ×14".
func requestSummary(srv *fakeapi.Server) string {
	byVerb := map[string]int{}
	for k, n := range srv.Requests() {
		verb, _, _ := strings.Cut(k, " ")
		byVerb[verb] += n
	}
	var parts []string
	for verb, n := range byVerb {
		parts = append(parts, fmt.Sprintf("%s ×%d", verb, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func (r *result) liveMiBString() string {
	b, u := r.live()
	return fmt.Sprintf("%.1f ± %.1f MiB", b/(1<<20), u/(1<<20))
}

// thousands formats n with commas.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// perObject is the heap cost per object between two runs, and its
// uncertainty.
type perObject struct{ bytes, plusMinus float64 }

func costPer(more, less *result, n int) perObject {
	a, ua := more.live()
	b, ub := less.live()
	return perObject{(a - b) / float64(n), (ua + ub) / float64(n)}
}

func (p perObject) String() string {
	return fmt.Sprintf("%s ± %s", thousands(int64(math.Round(p.bytes))), thousands(int64(math.Ceil(p.plusMinus))))
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f×", a/b)
}

func report(w io.Writer, o *options, peers []*peer, clusters []cluster, results [][]*result) {
	type row struct {
		live, rss, hwm float64
		pod, node      perObject
	}
	rows := make([]row, len(peers))
	for i, rs := range results {
		empty, nodes, full := rs[0], rs[1], rs[2]
		live, _ := full.live()
		rows[i] = row{live, float64(full.rss), float64(full.hwm),
			costPer(full, nodes, o.pods), costPer(nodes, empty, o.nodes)}
	}
	fmt.Fprintf(w, "\n### Memory at %s nodes / %s pods\n\n", thousands(int64(o.nodes)), thousands(int64(o.pods)))
	fmt.Fprintln(w, "| program | live heap after GC | RSS | peak RSS | bytes per cached pod | bytes per cached node |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	names := map[string]string{"fitgate serve": "`fitgate serve`", "plain informer": "plain informer (full Pods + Nodes)"}
	for i, p := range peers {
		r := rows[i]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", names[p.name], results[i][2].liveMiBString(), mib(int64(r.rss)), mib(int64(r.hwm)), r.pod, r.node)
	}
	if len(peers) == 2 {
		f, pl := rows[0], rows[1]
		fmt.Fprintf(w, "| plain / fitgate | %s | %s | %s | %s | %s |\n", ratio(pl.live, f.live), ratio(pl.rss, f.rss), ratio(pl.hwm, f.hwm),
			ratio(pl.pod.bytes, f.pod.bytes), ratio(pl.node.bytes, f.node.bytes))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Cache fed by a fake apiserver (test/bench/fakeapi, in the harness process) streaming the synth generator's objects "+
		"(seed %d, %s) as JSON over loopback HTTP by watch-list (ADDED events, then the initial-events-end bookmark); no real apiserver or etcd. "+
		"Each program is a separate process; the plain informer is a client-go SharedInformerFactory with Pod (fitgate's field selector, namespace index) and Node informers, no transform.\n",
		o.seed, clusters[2].what)
	how := fmt.Sprintf("a cycle provoked after sync and %v of idle by making the program decode watch bookmarks (%s of padding each)", o.settle, thousands(int64(o.padBytes))+" B")
	if o.gcMode == "wait" {
		how = fmt.Sprintf("the runtime's forced cycle, after sync, %v of idle and up to 3 minutes more", o.settle)
	}
	fmt.Fprintf(w, "- Live heap: from the child's GODEBUG=gctrace=1,gcpacertrace=1 output for %s: the heap that cycle marked (gctrace, whole MiB rounded down) "+
		"less what was allocated while it marked (pacer trace, bytes), which the GC counts as marked whether or not it is garbage. "+
		"RSS and peak RSS: VmRSS and VmHWM from /proc/<pid>/status after the idle, before that cycle. "+
		"Bytes per pod: (live heap with nodes + pods − with nodes only) / pods; per node: (nodes only − empty) / nodes. "+
		"± is the trace's rounding only: repeated runs, and -gc provoke against -gc wait (the runtime's forced GC of the idle program), have differed by up to about 3 MiB.\n", how)
	fmt.Fprintf(w, "- Machine: %s; harness %s.\n", machine(), runtime.Version())
	if o.wants("fitgate") {
		fmt.Fprintf(w, "- fitgate binary: %s.\n", describeBinary(o.fitgate))
		if o.fitgateStaleSince != "" {
			fmt.Fprintf(w, "- WARNING: %s.\n", o.fitgateStaleSince)
		}
	}
	fmt.Fprintln(w, "- Runs (sync = start to ready):")
	for i, p := range peers {
		for j, cl := range clusters {
			r := results[i][j]
			note := ""
			if r.note != "" {
				note = "; WARNING: " + r.note
			}
			alloc, _ := r.gc.allocatedDuring()
			fmt.Fprintf(w, "  - %s, %s cluster (%s): sync %.1fs, RSS %s, peak %s; live heap %s (GC #%d at %.1fs: %d->%d->%d MB, goal %d MB, %.1f MiB allocated while marking); RSS after that GC %s%s\n",
				p.name, cl.name, cl.what, r.syncTime.Seconds(), mib(r.rss), mib(r.hwm), r.liveMiBString(), r.gc.num, r.gc.at.Seconds(),
				r.gc.start, r.gc.end, r.gc.live, r.gc.goal, alloc/(1<<20), mib(r.rssAfterGC), note)
		}
	}
	if o.wants("fitgate") {
		f := rows[0]
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "NOT met"
		}
		fmt.Fprintf(w, "- Targets (issue #9): ≤ 300 B per cached pod: %s B, %s; whole cluster in ≤ 150 MiB RSS: %s, %s",
			thousands(int64(f.pod.bytes+0.5)), verdict(f.pod.bytes <= 300), mib(int64(f.rss)), verdict(f.rss <= 150<<20))
		if len(peers) == 2 {
			pl := rows[1]
			fmt.Fprintf(w, "; ≥ 10× leaner than the plain informer: live heap %s, bytes per pod %s, %s",
				ratio(pl.live, f.live), ratio(pl.pod.bytes, f.pod.bytes), verdict(pl.live >= 10*f.live && pl.pod.bytes >= 10*f.pod.bytes))
		}
		fmt.Fprintln(w, ".")
	}
}

// machine describes the CPU, cores, memory, kernel and load.
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
	parts := []string{model, fmt.Sprintf("%d cores", runtime.NumCPU())}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				var kb int64
				fmt.Sscan(f[1], &kb)
				parts = append(parts, fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20)))
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, runtime.GOOS+" "+strings.TrimSpace(string(data)))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			parts = append(parts, "load average "+strings.Join(f[:3], " ")+" at the end")
		}
	}
	return strings.Join(parts, ", ")
}

// describeBinary names a binary's Go version, size, time and hash.
func describeBinary(path string) string {
	var parts []string
	if bi, err := buildinfo.ReadFile(path); err == nil {
		parts = append(parts, "built with "+bi.GoVersion)
	}
	if st, err := os.Stat(path); err == nil {
		parts = append(parts, fmt.Sprintf("%.1f MB, modified %s", float64(st.Size())/1e6, st.ModTime().Format("2006-01-02 15:04:05")))
	}
	if f, err := os.Open(path); err == nil {
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			parts = append(parts, "sha256 "+hex.EncodeToString(h.Sum(nil))[:12])
		}
		f.Close()
	}
	return path + " (" + strings.Join(parts, ", ") + ")"
}
