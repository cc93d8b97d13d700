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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fitgate/fitgate/test/controlplane"
)

// gcEvent is one GC cycle as GODEBUG=gctrace=1,gcpacertrace=1 reports it.
type gcEvent struct {
	num int
	// at is when the cycle started, since the child's runtime started.
	at time.Duration
	// From the gctrace line, in MiB (the runtime truncates them): the heap
	// at the start of the cycle, at its end, and the heap it marked (live,
	// with what was allocated during the cycle); goal is the cycle's heap
	// goal.
	start, end, live, goal int64
	forced                 bool
	// From the pacer's end-of-cycle line, in bytes, if it was seen: the
	// heap when the cycle was triggered and when marking ended.
	triggeredB, endB int64
	pacer            bool
}

// allocatedDuring is what the program allocated while the cycle marked, in
// bytes, and the uncertainty of that figure.
func (e gcEvent) allocatedDuring() (bytes, plusMinus float64) {
	switch {
	case e.pacer:
		return float64(e.endB - e.triggeredB), 0
	case e.end == e.start:
		// The pacer prints nothing when nothing was allocated during the
		// cycle (as in a forced cycle of an idle program).
		return 0, 0
	}
	return float64(e.end-e.start) * (1 << 20), 1 << 20
}

// gcLine matches the part of a gctrace line the harness reads, e.g.
// "gc 7 @2.113s 3%: 0.02+5.1+0.01 ms clock, ..., 40->41->20 MB, 41 MB goal, ..."
var gcLine = regexp.MustCompile(`gc (\d+) @([0-9.]+)s [0-9]+%.*?, (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// pacerEnd matches the pacer's end-of-cycle line, printed just before the
// cycle's gctrace line, e.g.
// "pacer: 25% CPU (25 exp.) for 1+2+3 B work (6 B exp.) in 4194304 B -> 4200000 B (∆goal ...".
var pacerEnd = regexp.MustCompile(`pacer: [0-9]+% CPU .* B work .* in (\d+) B -> (\d+) B`)

func parseGCLine(line string) (gcEvent, bool) {
	m := gcLine.FindStringSubmatch(line)
	if m == nil {
		return gcEvent{}, false
	}
	var ev gcEvent
	var err error
	ints := make([]int64, 0, 5)
	for _, s := range []string{m[1], m[3], m[4], m[5], m[6]} {
		n, e := strconv.ParseInt(s, 10, 64)
		err = errors.Join(err, e)
		ints = append(ints, n)
	}
	secs, e := strconv.ParseFloat(m[2], 64)
	if err = errors.Join(err, e); err != nil {
		return gcEvent{}, false
	}
	ev.num = int(ints[0])
	ev.at = time.Duration(secs * float64(time.Second))
	ev.start, ev.end, ev.live, ev.goal = ints[1], ints[2], ints[3], ints[4]
	ev.forced = strings.Contains(line, "(forced)")
	return ev, true
}

// parsePacerEnd returns the heap at the trigger and at the end of marking.
func parsePacerEnd(line string) (triggered, end int64, ok bool) {
	m := pacerEnd.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	t, err1 := strconv.ParseInt(m[1], 10, 64)
	e, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil || e < t {
		return 0, 0, false
	}
	return t, e, true
}

// child is a measured process: fitgate serve or the plain informer.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	logPath string
	done    chan struct{}
	waitErr error

	mu      sync.Mutex
	gcs     []gcEvent
	tail    []string // the last lines of its output, for errors
	readErr chan struct{}
}

// childEnv is the environment of a measured process: ours without
// settings that would change its memory behaviour, plus gctrace.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS", "KUBECONFIG":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GODEBUG=gctrace=1,gcpacertrace=1")
}

// startChild runs bin with args in its own process group, killed if we
// die, with its output in logPath and its gctrace lines parsed.
func startChild(name, bin string, args []string, logPath string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	c := &child{name: name, logPath: logPath, done: make(chan struct{}), readErr: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = childEnv()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	c.started = time.Now()
	if err := controlplane.StartChild(c.cmd); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pw.Close()
	live.add(c)
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	go func() {
		defer close(c.readErr)
		defer logFile.Close()
		defer pr.Close()
		c.read(io.TeeReader(pr, logFile))
	}()
	return c, nil
}

func (c *child) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var pacer struct {
		triggered, end int64
		ok             bool
	}
	for sc.Scan() {
		line := sc.Text()
		if t, e, ok := parsePacerEnd(line); ok {
			pacer.triggered, pacer.end, pacer.ok = t, e, true
			continue
		}
		if strings.HasPrefix(line, "pacer: ") {
			continue
		}
		ev, isGC := parseGCLine(line)
		c.mu.Lock()
		if isGC {
			if pacer.ok {
				ev.triggeredB, ev.endB, ev.pacer = pacer.triggered, pacer.end, true
			}
			pacer.ok = false
			c.gcs = append(c.gcs, ev)
		} else {
			c.tail = append(c.tail, line)
			if len(c.tail) > 20 {
				c.tail = c.tail[1:]
			}
		}
		c.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r) // a line too long for the scanner: keep the log whole
}

// lastGC is the last GC cycle the child reported, if any.
func (c *child) lastGC() (gcEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.gcs) == 0 {
		return gcEvent{}, false
	}
	return c.gcs[len(c.gcs)-1], true
}

// gcCount is how many GC cycles the child reported.
func (c *child) gcCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.gcs)
}

// exited reports whether the child has exited, with its exit status and
// the last lines of its output.
func (c *child) exited() error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("%s exited: %v; last output:\n  %s\n(log %s)", c.name, c.waitErr, strings.Join(c.tail, "\n  "), c.logPath)
	default:
		return nil
	}
}

// since is the child-relative time of now, comparable with gcEvent.at
// (the child's runtime starts a moment after c.started, so this is a
// little ahead: conservative for "started after").
func (c *child) since(t time.Time) time.Duration { return t.Sub(c.started) }

// kill kills the child's process group and waits for it.
func (c *child) kill() {
	if c == nil {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
	select {
	case <-c.readErr:
	case <-time.After(2 * time.Second):
	}
	live.remove(c)
}

// procStatus reads VmRSS and VmHWM (bytes) from /proc/<pid>/status.
func (c *child) procStatus() (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s's memory: %w", c.name, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: unexpected %q", c.cmd.Process.Pid, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %q: %w", c.cmd.Process.Pid, line, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", c.cmd.Process.Pid)
	}
	return rss, hwm, nil
}

// waitReady polls url until it answers 200, the child exits, or the
// timeout passes. It returns the last answer's body.
func (c *child) waitReady(ctx context.Context, url string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	for {
		if resp, err := client.Get(url); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if err := c.exited(); err != nil {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not ready after %v: %s (log %s)", c.name, timeout, last, c.logPath)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// liveChildren are the children not yet killed, for cleanup on exit.
type liveChildren struct {
	mu sync.Mutex
	m  map[*child]bool
}

var live = &liveChildren{m: map[*child]bool{}}

func (l *liveChildren) add(c *child) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[c] = true
}

func (l *liveChildren) remove(c *child) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, c)
}

// killAll kills every child still running.
func (l *liveChildren) killAll() {
	l.mu.Lock()
	var all []*child
	for c := range l.m {
		all = append(all, c)
	}
	l.mu.Unlock()
	for _, c := range all {
		c.kill()
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
