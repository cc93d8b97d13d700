package controlplane

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func shComponent(t *testing.T, script *string) *Component {
	return &Component{
		name: "sh", bin: "/bin/sh", logPath: filepath.Join(t.TempDir(), "sh.log"), stopTimeout: time.Second,
		args:  func() []string { return []string{"-c", *script} },
		ready: func(context.Context) error { return nil },
	}
}

func TestComponentRetriesOnAddressInUse(t *testing.T) {
	script := "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1"
	c := shComponent(t, &script)
	reallocated := 0
	c.reallocate = func() { reallocated++; script = "exec sleep 30" }
	// The probe must not pass before the first attempt has exited.
	c.ready = func(context.Context) error {
		if reallocated == 0 {
			return context.DeadlineExceeded
		}
		return nil
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if reallocated != 1 || !c.Running() {
		t.Fatalf("reallocated=%d running=%v", reallocated, c.Running())
	}
	if err := c.Stop(); err != nil || c.Running() {
		t.Fatalf("Stop: %v, running=%v", err, c.Running())
	}
}

func TestComponentStartupFailureShowsLog(t *testing.T) {
	script := "echo 'Error: unknown flag: --bogus' >&2; exit 1"
	c := shComponent(t, &script)
	c.ready = func(context.Context) error { return context.DeadlineExceeded }
	err := c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unknown flag: --bogus") || !strings.Contains(err.Error(), "exited during startup") {
		t.Fatalf("error = %v", err)
	}
}

func TestComponentStopEscalatesToSIGKILL(t *testing.T) {
	script := "trap '' TERM; while :; do sleep 0.1; done"
	c := shComponent(t, &script)
	c.stopTimeout = 300 * time.Millisecond
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the shell install its trap
	begin := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond || d > 5*time.Second || c.Running() {
		t.Fatalf("stopped after %v, running=%v", d, c.Running())
	}
}
