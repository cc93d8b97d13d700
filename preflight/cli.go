package preflight

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fitgate/fitgate/feasibility"
)

// Env is what the commands run with: the standard streams and the way to
// reach a cluster, which tests replace.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Connect returns read-only clients for a kubeconfig ("" for the
	// default loading rules: $KUBECONFIG, ~/.kube/config, in-cluster) and
	// context ("" for the current one), and the context's namespace.
	Connect func(kubeconfig, context string) (kubernetes.Interface, metadata.Interface, string, error)
}

// DefaultEnv is the process's streams and kubeconfig.
func DefaultEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Connect: Connect}
}

// Connect builds clients from a kubeconfig, as kubectl does.
func Connect(kubeconfig, kubeContext string) (kubernetes.Interface, metadata.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, nil, "", err
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, nil, "", err
	}
	rc.UserAgent = "fitgate-check"
	rc.QPS, rc.Burst = 50, 100 // a handful of lists, all at once
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, "", err
	}
	md, err := metadata.NewForConfig(rc)
	if err != nil {
		return nil, nil, "", err
	}
	return cs, md, ns, nil
}

// clusterFlags are the flags that reach a cluster, shared by both commands.
type clusterFlags struct {
	kubeconfig, context string
	timeout             time.Duration
}

func (c *clusterFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")
	fs.StringVar(&c.context, "context", "", "kubeconfig context (default: the current one)")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "how long listing the cluster may take")
}

// list connects and lists the cluster state.
func (e Env) list(c clusterFlags, strict bool) (*State, string, []string, error) {
	connect := e.Connect
	if connect == nil {
		connect = Connect
	}
	cs, md, ns, err := connect(c.kubeconfig, c.context)
	if err != nil {
		return nil, "", nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, warnings, err := ListCluster(ctx, cs, md, strict)
	return st, ns, warnings, err
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// engineFlags tune the engine as `fitgate serve`'s flags of the same names do.
type engineFlags struct {
	schedulers      string
	autoscaler      bool
	asCPU, asMemory string
	asPods          int
}

func (f *engineFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.schedulers, "known-schedulers", feasibility.DefaultSchedulerName, "comma-separated scheduler names that serve pods")
	fs.BoolVar(&f.autoscaler, "autoscaler", false, "the cluster has an autoscaler: failures a new node could fix are transient")
	fs.StringVar(&f.asCPU, "autoscaler-max-node-cpu", "", "allocatable cpu of the largest node the autoscaler adds (empty: unknown)")
	fs.StringVar(&f.asMemory, "autoscaler-max-node-memory", "", "allocatable memory of the largest node the autoscaler adds (empty: unknown)")
	fs.IntVar(&f.asPods, "autoscaler-max-node-pods", 110, "pod capacity of the largest node the autoscaler adds")
}

func (f *engineFlags) options() (*feasibility.Options, error) {
	opts := &feasibility.Options{}
	for _, s := range strings.Split(f.schedulers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			opts.KnownSchedulers = append(opts.KnownSchedulers, s)
		}
	}
	if !f.autoscaler {
		if f.asCPU != "" || f.asMemory != "" {
			return nil, errors.New("--autoscaler-max-node-cpu and -memory need --autoscaler")
		}
		return opts, nil
	}
	opts.Autoscaler = &feasibility.AutoscalerOptions{}
	if f.asCPU == "" && f.asMemory == "" {
		return opts, nil
	}
	if f.asCPU == "" || f.asMemory == "" {
		return nil, errors.New("--autoscaler-max-node-cpu and --autoscaler-max-node-memory go together")
	}
	alloc := v1.ResourceList{v1.ResourcePods: *resource.NewQuantity(int64(f.asPods), resource.DecimalSI)}
	for name, s := range map[v1.ResourceName]string{v1.ResourceCPU: f.asCPU, v1.ResourceMemory: f.asMemory} {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("--autoscaler-max-node-%s: %w", name, err)
		}
		alloc[name] = q
	}
	opts.Autoscaler.MaxNode = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "autoscaler-max-node"},
		Status: v1.NodeStatus{Allocatable: alloc, Capacity: alloc.DeepCopy()}}
	return opts, nil
}

// Snapshot is `fitgate snapshot`: it writes the live cluster state to
// stdout (or -o FILE) for `fitgate check --state`.
func (e Env) Snapshot(args []string) int {
	fs := flag.NewFlagSet("fitgate snapshot", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	var c clusterFlags
	c.bind(fs)
	var out string
	for _, name := range []string{"o", "output"} {
		fs.StringVar(&out, name, "", "file to write instead of stdout")
	}
	fs.Usage = func() {
		fmt.Fprintf(e.Stderr, "Usage: fitgate snapshot [flags] > state.yaml\n\n"+
			"Writes the cluster state `fitgate check --state` reads, read-only: nodes, bound pods, namespaces,\n"+
			"claims, volumes, storage classes, CSI nodes, quotas, limit ranges, priority and runtime classes,\n"+
			"service accounts, and the names of Secrets and ConfigMaps (never their data).\n\nFlags:\n")
		printFlags(e.Stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "fitgate snapshot: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return ExitBadInput
	}
	st, _, warnings, err := e.list(c, true)
	for _, w := range warnings {
		fmt.Fprintf(e.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "fitgate snapshot: %v\n", err)
		return 1
	}
	if out == "" || out == "-" {
		err = WriteState(e.Stdout, st)
	} else {
		err = writeStateFile(out, st)
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "fitgate snapshot: %v\n", err)
		return 1
	}
	return 0
}

func writeStateFile(path string, st *State) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteState(f, st); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// usageExit is 0 for -h, else ExitBadInput; the flag package has printed
// the error and the usage.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return ExitBadInput
}

// shortFlags are the one-letter aliases of long flags, as in kubectl.
var shortFlags = map[string]string{"f": "filename", "n": "namespace", "o": "output", "v": "verbose"}

// printFlags prints a flag set's flags kubectl-style, an alias and its
// long name on one line ("-f, --filename").
func printFlags(w io.Writer, fs *flag.FlagSet) {
	short := map[string]string{}
	for s, l := range shortFlags {
		short[l] = s
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, alias := shortFlags[f.Name]; alias && fs.Lookup(shortFlags[f.Name]) != nil {
			return
		}
		name := "--" + f.Name
		if s, ok := short[f.Name]; ok {
			name = "-" + s + ", " + name
		}
		typ, usage := flag.UnquoteUsage(f)
		if typ != "" {
			name += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  %s\n      %s\n", name, usage)
	})
}
