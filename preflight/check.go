package preflight

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fitgate/fitgate/feasibility"
)

const checkUsage = `Usage: fitgate check -f FILE|DIR|- [flags]
       kubectl fitgate check -f FILE|DIR|- [flags]

Judges every workload in the manifests (Pods, Deployments, ReplicaSets,
StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers) against the
cluster, with the same engine and wording as the fitgate webhook, before
anything is applied:

  helm template my-release ./chart | fitgate check -f -

Cluster state comes from --state FILE (written by "fitgate snapshot", or the
output of "` + StateCommand + `",
optionally with Secrets and ConfigMaps), else from the current kubeconfig
context, read-only. Namespaces, Secrets, ConfigMaps, claims, classes, quotas
and the like in the manifests count as created first, as kubectl apply would
create them. Each workload is judged alone: workloads in the same manifests
do not consume each other's capacity.

Exit status: 0 every workload fits, 1 some workload is transient or permanent
(see --fail-on), 2 bad input: nothing was judged.

Flags:
`

// checkFlags are `fitgate check`'s flags.
type checkFlags struct {
	files     multiFlag
	state     string
	namespace string
	output    string
	failOn    string
	verbose   bool
	cluster   clusterFlags
	engine    engineFlags
}

func (f *checkFlags) bind(fs *flag.FlagSet) {
	for _, name := range []string{"f", "filename"} {
		fs.Var(&f.files, name, "manifest file, directory (every *.yaml, *.yml, *.json below it) or - for stdin; repeatable")
	}
	fs.StringVar(&f.state, "state", "", "cluster state file (see above; - for stdin) instead of the live cluster")
	for _, name := range []string{"n", "namespace"} {
		fs.StringVar(&f.namespace, name, "", "namespace of objects that name none (default: the context's namespace live, else default)")
	}
	for _, name := range []string{"o", "output"} {
		fs.StringVar(&f.output, name, "text", "output format: text or json")
	}
	fs.StringVar(&f.failOn, "fail-on", string(feasibility.Transient), "lowest verdict that exits 1: transient or permanent")
	for _, name := range []string{"v", "verbose"} {
		fs.BoolVar(&f.verbose, name, false, "also say which manifest objects are used as cluster state, and which are skipped")
	}
	f.cluster.bind(fs)
	f.engine.bind(fs)
}

// Check is `fitgate check`; it returns the exit status.
func (e Env) Check(args []string) int {
	fs := flag.NewFlagSet("fitgate check", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	var f checkFlags
	f.bind(fs)
	fs.Usage = func() {
		fmt.Fprint(e.Stderr, checkUsage)
		printFlags(e.Stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(e.Stderr, "fitgate check: "+format+"\n", a...)
		return ExitBadInput
	}
	opts, err := f.validate(fs)
	if err != nil {
		return fail("%v", err)
	}

	docs, err := ReadManifests(f.files, e.Stdin)
	if err != nil {
		for _, one := range unjoin(err) {
			fmt.Fprintf(e.Stderr, "fitgate check: %v\n", one)
		}
		return ExitBadInput
	}
	sources := strings.Join(f.files, ", ")
	if len(docs) == 0 {
		return fail("no objects found in %s: nothing to judge", sources)
	}
	if !hasWorkload(docs) {
		return fail("no workloads found among the %d %s in %s: nothing to judge (fitgate judges %s)",
			len(docs), plural(len(docs), "object"), sources, strings.Join(feasibility.SupportedKinds, ", "))
	}

	var st *State
	var notes []string
	ns := metav1.NamespaceDefault
	if f.state != "" {
		st, notes, err = ReadStateFile(f.state, e.Stdin)
	} else {
		var ctxNS string
		st, ctxNS, notes, err = e.list(f.cluster, false)
		if ctxNS != "" {
			ns = ctxNS
		}
	}
	for _, n := range notes {
		fmt.Fprintf(e.Stderr, "warning: %s\n", n)
	}
	if err != nil {
		return fail("%v", err)
	}
	if f.namespace != "" {
		ns = f.namespace
	}

	j, err := Judge(st, docs, ns, opts)
	if err != nil {
		return fail("%v", err)
	}
	for _, n := range j.Notes {
		fmt.Fprintln(e.Stderr, n)
	}
	if f.verbose {
		for _, n := range j.Verbose {
			fmt.Fprintln(e.Stderr, n)
		}
	}
	if f.output == "json" {
		err = WriteJSON(e.Stdout, j.Results)
	} else {
		err = WriteText(e.Stdout, j.Results)
	}
	if err != nil {
		return fail("writing the results: %v", err)
	}
	return ExitCode(j.Results, feasibility.Verdict(f.failOn))
}

// validate checks the flags that parse but may not make sense together.
func (f *checkFlags) validate(fs *flag.FlagSet) (*feasibility.Options, error) {
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: name manifests with -f", strings.Join(fs.Args(), " "))
	}
	if len(f.files) == 0 {
		return nil, errors.New("no manifests: give -f FILE, -f DIR or -f - (stdin)")
	}
	switch f.output {
	case "text", "json":
	default:
		return nil, fmt.Errorf("-o %q: want text or json", f.output)
	}
	switch feasibility.Verdict(f.failOn) {
	case feasibility.Transient, feasibility.Permanent:
	default:
		return nil, fmt.Errorf("--fail-on %q: want transient or permanent", f.failOn)
	}
	if f.state != "" && (f.cluster.kubeconfig != "" || f.cluster.context != "") {
		return nil, errors.New("--state and --kubeconfig/--context are exclusive: the state comes from one place")
	}
	if f.state == Stdin {
		for _, m := range f.files {
			if m == Stdin {
				return nil, errors.New("--state - and -f - cannot both read stdin")
			}
		}
	}
	return f.engine.options()
}

func hasWorkload(docs []feasibility.Document) bool {
	for _, d := range docs {
		if d.Object == nil {
			continue
		}
		if _, err := feasibility.WorkloadFromObject(d.Object); err == nil {
			return true
		}
	}
	return false
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
