package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fitgate/fitgate/test/controlplane"
)

// fitgateProc is the fitgate serve process under soak.
type fitgateProc struct {
	cmd                 *exec.Cmd
	done                chan struct{}
	err                 error
	url, health, metric string
	logPath             string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startFitgate runs fitgate serve on loopback with a serving certificate
// from the cluster CA, and waits until it is ready.
func startFitgate(ctx context.Context, cp *controlplane.ControlPlane, bin string) (*fitgateProc, error) {
	dir := filepath.Join(cp.Dir(), "fitgate")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := cp.IssueServingCert("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	f := &fitgateProc{
		url:     fmt.Sprintf("https://127.0.0.1:%d/validate", ports[0]),
		health:  fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		metric:  fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]),
		logPath: filepath.Join(cp.Dir(), "logs", "fitgate.log"),
		done:    make(chan struct{}),
	}
	logFile, err := os.Create(f.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	f.cmd = exec.Command(bin, "serve", "--kubeconfig", cp.KubeconfigPath(),
		"--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--cert-dir", dir,
		"--health-addr", "127.0.0.1:"+strconv.Itoa(ports[1]), "--metrics-addr", "127.0.0.1:"+strconv.Itoa(ports[2]),
		"--namespace", "fitgate-system", "--log-level", "warn")
	f.cmd.Stdout, f.cmd.Stderr = logFile, logFile
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { f.err = f.cmd.Wait(); close(f.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(f.health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return f, nil
			}
		}
		if exited, err := f.exited(); exited {
			return nil, fmt.Errorf("fitgate exited: %v (log %s)", err, f.logPath)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.stop()
			return nil, fmt.Errorf("fitgate not ready (log %s)", f.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fitgateProc) exited() (bool, error) {
	select {
	case <-f.done:
		return true, f.err
	default:
		return false, nil
	}
}

func (f *fitgateProc) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(90 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// sample is fitgate's resource use over a window.
type sample struct {
	// HeapAlloc is the smallest go_memstats_heap_alloc_bytes seen in the
	// window: the closest to the live heap right after a collection, so
	// that the phase of the GC cycle does not decide the comparison.
	HeapAlloc float64 `json:"heapAllocBytes"`
	// NextGC is go_memstats_next_gc_bytes, the heap goal the runtime set
	// from the live heap at the last collection (median).
	NextGC float64 `json:"nextGCBytes"`
	// Goroutines and OpenFDs are medians: in-flight requests come and go.
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"openFDs"`
}

func (s sample) String() string {
	return fmt.Sprintf("heap %.1f MiB (next GC %.1f MiB), %v goroutines, %v open fds",
		s.HeapAlloc/(1<<20), s.NextGC/(1<<20), s.Goroutines, s.OpenFDs)
}

// sample scrapes /metrics once a second over window.
func (f *fitgateProc) sample(ctx context.Context, window time.Duration) (sample, error) {
	var heap, next, gor, fds []float64
	end := time.Now().Add(window)
	for {
		m, err := scrape(f.metric)
		if err != nil {
			return sample{}, err
		}
		heap = append(heap, m["go_memstats_heap_alloc_bytes"])
		next = append(next, m["go_memstats_next_gc_bytes"])
		gor = append(gor, m["go_goroutines"])
		fds = append(fds, m["process_open_fds"])
		if !time.Now().Add(time.Second).Before(end) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return sample{HeapAlloc: slices.Min(heap), NextGC: median(next), Goroutines: median(gor), OpenFDs: median(fds)}, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// scrape reads the Prometheus text format: sample name (with labels) to
// value.
func scrape(url string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, s.Err()
}
