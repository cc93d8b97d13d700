package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fitgate/fitgate/test/controlplane"
)

// fitgateOptions say how to run `fitgate serve`.
type fitgateOptions struct {
	bin, kubeconfig string
	dir             string // state: cert dir and log
	name            string // for the log file name
	// certPEM and keyPEM, if set, are written to dir as the serving pair;
	// otherwise (with register) fitgate generates a CA and a certificate.
	certPEM, keyPEM []byte
	// register: --register-url with failurePolicy Fail, unregistered on exit.
	register       bool
	webhookCfgName string
	// pprof: serve Go's profiler on loopback (--pprof-addr).
	pprof bool
	// extraArgs go last on fitgate serve's command line (-fitgate-flags).
	extraArgs []string
}

// fitgateProc is a running `fitgate serve` child.
type fitgateProc struct {
	cmd                    *exec.Cmd
	done                   chan struct{}
	waitErr                error
	url, ready, metricsURL string
	pprofURL               string // "" unless started with pprof
	certDir, logPath       string
	stopOnce               sync.Once
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startFitgate runs fitgate serve on loopback and waits for /readyz, which
// includes its cache having synced. On failure the process is stopped.
func startFitgate(ctx context.Context, o fitgateOptions) (_ *fitgateProc, retErr error) {
	certDir := filepath.Join(o.dir, o.name+"-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	if o.certPEM != nil {
		for name, data := range map[string][]byte{"tls.crt": o.certPEM, "tls.key": o.keyPEM} {
			if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
				return nil, err
			}
		}
	}
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	f := &fitgateProc{
		url:        fmt.Sprintf("https://127.0.0.1:%d/validate", ports[0]),
		ready:      fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]),
		certDir:    certDir,
		logPath:    filepath.Join(o.dir, o.name+".log"),
		done:       make(chan struct{}),
	}
	args := []string{"serve", "--kubeconfig", o.kubeconfig,
		"--bind-address", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--cert-dir", certDir,
		"--health-addr", "127.0.0.1:" + strconv.Itoa(ports[1]), "--metrics-addr", "127.0.0.1:" + strconv.Itoa(ports[2]),
		"--namespace", "fitgate-system", "--log-level", "warn"}
	if o.pprof {
		f.pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", ports[3])
		args = append(args, "--pprof-addr", "127.0.0.1:"+strconv.Itoa(ports[3]))
	}
	if o.register {
		args = append(args, "--register-url", f.url, "--failure-policy", "Fail", "--unregister-on-exit",
			"--webhook-config-name", o.webhookCfgName)
	}
	args = append(args, o.extraArgs...)
	logFile, err := os.Create(f.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	f.cmd = exec.Command(o.bin, args...)
	f.cmd.Stdout, f.cmd.Stderr = logFile, logFile
	// Its own process group, so that a Ctrl-C in the terminal reaches only
	// this program, which then stops fitgate in order; killed with us in
	// any case.
	if err := controlplane.StartChild(f.cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.bin, err)
	}
	go func() { f.waitErr = f.cmd.Wait(); close(f.done) }()
	defer func() {
		if retErr != nil {
			f.stop()
		}
	}()

	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := probe.Get(f.ready); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return f, nil
			}
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("fitgate exited before it was ready (%v); last lines of %s:\n%s", f.waitErr, f.logPath, tail(f.logPath, 20))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fitgate not ready within 90s; last lines of %s:\n%s", f.logPath, tail(f.logPath, 20))
		}
	}
}

// pid of the fitgate process.
func (f *fitgateProc) pid() int { return f.cmd.Process.Pid }

// exited reports whether fitgate has exited, and how.
func (f *fitgateProc) exited() (bool, error) {
	select {
	case <-f.done:
		return true, f.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM (fitgate drains and, when registered, deletes its
// configuration) and SIGKILLs the group after 20 s. Safe to call twice.
func (f *fitgateProc) stop() {
	f.stopOnce.Do(func() {
		pgid := f.cmd.Process.Pid
		select {
		case <-f.done:
		default:
			_ = syscall.Kill(pgid, syscall.SIGTERM)
			select {
			case <-f.done:
			case <-time.After(20 * time.Second):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-f.done
			}
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // anything left in its group
	})
}

// metric sums the samples of a metric from fitgate's /metrics whose labels
// contain every one of labels (e.g. `kind="Pod"`).
func (f *fitgateProc) metric(name string, labels ...string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(f.metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", f.metricsURL, resp.Status)
	}
	return sumMetric(resp.Body, name, labels...)
}

// sumMetric sums, in Prometheus text format, the samples of name whose
// label set contains every one of labels.
func sumMetric(r io.Reader, name string, labels ...string) (float64, error) {
	var sum float64
	found := false
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbls string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with name
		}
		ok := true
		for _, l := range labels {
			if !containsLabel(lbls, l) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	if !found && len(labels) == 0 {
		return 0, fmt.Errorf("no metric %s", name)
	}
	return sum, nil
}

// containsLabel: label (k="v") is one of the comma-separated pairs in
// lbls. Label values here never contain commas.
func containsLabel(lbls, label string) bool {
	for _, p := range strings.Split(lbls, ",") {
		if p == label {
			return true
		}
	}
	return false
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuSeconds is the user+system CPU time a process has used so far, from
// /proc/<pid>/stat (0 means this process).
func cpuSeconds(pid int) (float64, error) {
	p := "/proc/self/stat"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("unexpected " + p)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, errors.New("unexpected " + p)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected " + p)
	}
	const userHZ = 100 // USER_HZ, 100 on every Linux architecture Go supports
	return (utime + stime) / userHZ, nil
}

// cpuMeter measures the cores several processes use over a window.
type cpuMeter struct {
	pids  []int // 0 is this process; -1 means not running (reported as –)
	start []float64
	t0    time.Time
}

func newCPUMeter(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]float64, len(pids)), t0: time.Now()}
	for i, p := range pids {
		if p >= 0 {
			m.start[i], _ = cpuSeconds(p)
		}
	}
	return m
}

// cores is the cores process i has used since newCPUMeter (0 if unknown).
func (m *cpuMeter) cores(i int) float64 {
	el := time.Since(m.t0).Seconds()
	if i >= len(m.pids) || m.pids[i] < 0 || el <= 0 {
		return 0
	}
	now, err := cpuSeconds(m.pids[i])
	if err != nil {
		return 0
	}
	return (now - m.start[i]) / el
}

// String reports cores used per process since newCPUMeter.
func (m *cpuMeter) String() string {
	el := time.Since(m.t0).Seconds()
	parts := make([]string, len(m.pids))
	for i, p := range m.pids {
		if p < 0 || el <= 0 {
			parts[i] = "–"
			continue
		}
		now, err := cpuSeconds(p)
		if err != nil {
			parts[i] = "?"
			continue
		}
		parts[i] = fmt.Sprintf("%.2f", (now-m.start[i])/el)
	}
	return strings.Join(parts, " / ")
}
