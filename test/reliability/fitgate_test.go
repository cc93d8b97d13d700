package reliability

// fitgate as a separate process: started, stopped with SIGTERM (graceful
// shutdown) and started again on the same ports, so that the registered
// URL stays valid across restarts.

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

// fitgateProc is one fitgate serve process, restartable.
type fitgateProc struct {
	bin, kubeconfig, certDir, logPath string
	port, healthPort, metricsPort     int
	args                              []string // extra flags

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, once done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newFitgateProc(bin, kubeconfig, certDir, logPath string, args ...string) (*fitgateProc, error) {
	f := &fitgateProc{bin: bin, kubeconfig: kubeconfig, certDir: certDir, logPath: logPath, args: args}
	for _, p := range []*int{&f.port, &f.healthPort, &f.metricsPort} {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// URL is the webhook's URL, for the configuration.
func (f *fitgateProc) URL() string { return fmt.Sprintf("https://127.0.0.1:%d/validate", f.port) }

// Start launches the process; it does not wait for readiness.
func (f *fitgateProc) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd != nil {
		return errors.New("fitgate already running")
	}
	logFile, err := os.OpenFile(f.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := append([]string{"serve",
		"--kubeconfig", f.kubeconfig,
		"--host", "127.0.0.1", "--port", strconv.Itoa(f.port),
		"--cert-dir", f.certDir,
		"--health-addr", "127.0.0.1:" + strconv.Itoa(f.healthPort),
		"--metrics-addr", "127.0.0.1:" + strconv.Itoa(f.metricsPort),
		"--namespace", fitgateNamespace,
		"--log-format", "text",
	}, f.args...)
	fmt.Fprintf(logFile, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), f.bin, strings.Join(args, " "))
	cmd := exec.Command(f.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := controlplane.StartChild(cmd); err != nil {
		return err
	}
	done := make(chan struct{})
	f.cmd, f.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
		close(done)
	}()
	return nil
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 90 s,
// past the server's one-minute drain). It returns how long the exit took.
func (f *fitgateProc) Stop() (time.Duration, error) {
	f.mu.Lock()
	cmd, done := f.cmd, f.done
	f.mu.Unlock()
	if cmd == nil {
		return 0, nil
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-done:
		f.mu.Lock()
		err = f.err
		f.mu.Unlock()
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = errors.New("fitgate did not exit within 90s of SIGTERM; killed")
	}
	f.mu.Lock()
	f.cmd, f.done = nil, nil
	f.mu.Unlock()
	return time.Since(start), err
}

// Exited reports whether a started process has exited, and how.
func (f *fitgateProc) Exited() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		return false, nil
	}
	select {
	case <-f.done:
		return true, f.err
	default:
		return false, nil
	}
}

// Ready reports whether /readyz answers 200.
func (f *fitgateProc) Ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", f.healthPort))
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits until /readyz passes, the process exits, or ctx ends.
func (f *fitgateProc) WaitReady(ctx context.Context) error {
	for {
		if f.Ready() {
			return nil
		}
		if exited, err := f.Exited(); exited {
			return fmt.Errorf("fitgate exited before it was ready (%v); log %s:\n%s", err, f.logPath, f.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fitgate not ready: %w; log %s:\n%s", ctx.Err(), f.logPath, f.LogTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Metrics scrapes /metrics: every sample, keyed by name and labels as
// written ("go_goroutines", `fitgate_cache_objects{kind="Node"}`).
func (f *fitgateProc) Metrics() (map[string]float64, error) {
	return scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.metricsPort))
}

// scrape reads a Prometheus text exposition; no dependency needed for the
// handful of samples the tests read.
func scrape(url string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, s.Err()
}

// LogTail is the last n lines of the process's log.
func (f *fitgateProc) LogTail(n int) string {
	data, err := os.ReadFile(f.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeServingCert writes a serving pair for 127.0.0.1 from the cluster CA
// into dir, readable by its owner only.
func writeServingCert(dir string) error {
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
