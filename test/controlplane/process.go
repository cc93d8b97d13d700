package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Component is one control-plane process (etcd, kube-apiserver, ...). It can
// be stopped and started again with the same arguments, ports and data, which
// is what apiserver/etcd restart tests need.
type Component struct {
	name    string
	bin     string
	args    func() []string             // evaluated on every start: ports may be re-picked
	ready   func(context.Context) error // nil when the process serves
	logPath string
	// reallocate, if set, picks new ports after the process failed to bind
	// (another process took a port between our probe and the child's bind).
	reallocate  func()
	stopTimeout time.Duration

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
	logOffset int64         // start of the current run in the log file
}

// errAddrInUse marks a start failure caused by a port taken by someone else.
var errAddrInUse = errors.New("address already in use")

// Name is the component's name, e.g. "kube-apiserver".
func (c *Component) Name() string { return c.name }

// LogPath is the file the component's stdout and stderr are appended to.
func (c *Component) LogPath() string { return c.logPath }

// Running reports whether the process has been started and not yet exited.
func (c *Component) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// PID of the running process, 0 if none.
func (c *Component) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Start launches the process and blocks until its readiness probe passes, the
// process exits, or ctx ends (1m if ctx has no deadline). On failure the
// process is stopped and the error carries the tail of its log.
func (c *Component) Start(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := c.startOnce(ctx)
		if err == nil || !errors.Is(err, errAddrInUse) || c.reallocate == nil || attempt == 3 {
			return err
		}
		c.reallocate()
	}
}

// Restart stops the process (SIGTERM, then SIGKILL) and starts it again.
func (c *Component) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start(ctx)
}

func (c *Component) startOnce(ctx context.Context) error {
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		return fmt.Errorf("%s: already started", c.name)
	}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	defer logFile.Close() // the child holds its own copy of the descriptor
	if fi, err := logFile.Stat(); err == nil {
		c.logOffset = fi.Size()
	}
	args := c.args()
	fmt.Fprintf(logFile, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), c.bin, strings.Join(args, " "))

	cmd := exec.Command(c.bin, args...)
	// An *os.File as Stdout/Stderr is handed to the child directly, so no
	// copying goroutine can block or lose output when we exit abruptly.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	done := make(chan struct{})
	c.cmd, c.done = cmd, done
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Unlock()

	for {
		select {
		case <-done:
			err := fmt.Errorf("%s exited during startup (%s)", c.name, cmd.ProcessState)
			tail := c.LogTail(40)
			c.reset()
			if strings.Contains(tail, "address already in use") {
				err = fmt.Errorf("%w: %w", err, errAddrInUse)
			}
			return fmt.Errorf("%w; last lines of %s:\n%s", err, c.logPath, tail)
		default:
		}
		probeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		probeErr := c.ready(probeCtx)
		cancel()
		if probeErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			tail := c.LogTail(40)
			_ = c.Stop()
			return fmt.Errorf("%s not ready: %w (last probe: %v); last lines of %s:\n%s", c.name, ctx.Err(), probeErr, c.logPath, tail)
		case <-done: // reported at the top of the loop
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Component) reset() {
	c.mu.Lock()
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
}

// Stop sends SIGTERM to the component's process group and SIGKILL after the
// stop timeout. Stopping a stopped component is a no-op.
func (c *Component) Stop() error {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid // Setpgid: the child leads its own group
	select {
	case <-done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(c.stopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	}
	// Anything the component forked itself goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	c.reset()
	return nil
}

// LogTail returns up to n last lines the current (or last) run of the
// component wrote to its log.
func (c *Component) LogTail(n int) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const maxBytes = 64 << 10
	start := c.logOffset
	if fi, err := f.Stat(); err == nil && fi.Size()-start > maxBytes {
		start = fi.Size() - maxBytes
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// spawnRequests feeds the one goroutine that starts every child process.
//
// Why: Pdeathsig fires when the *thread* that forked the child exits, not the
// process. The Go runtime may retire threads (e.g. when a goroutine that
// called runtime.LockOSThread ends), which would SIGKILL a healthy child in
// the middle of a test. Forking from a goroutine locked to a thread that
// never exits ties the children's lifetime to the test process only.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// StartChild starts cmd as the control plane starts its components: in its
// own process group, killed by the kernel when this process dies (on Linux),
// and forked from the thread that never exits. Tests and tools that run
// fitgate as a child start it this way too.
func StartChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = sysProcAttr()
	return spawn(cmd)
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for req := range spawnRequests {
				req.errc <- req.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}
