// Command soak is `make soak` (issue #8, Load and soak): fitgate serve, as
// a process, against a local control plane, under a fixed rate of
// AdmissionReview POSTs over HTTPS on loopback for a bounded time, while
// the cluster churns a little so that its informers keep working.
//
// It samples fitgate's own /metrics (go_memstats_heap_alloc_bytes,
// go_goroutines, process_open_fds) after the warm-up and at the end, and
// fails (exit 1) if any response was an error or any of the three grew by
// more than the tolerance (10%).
//
//	go run ./test/soak -duration 10m -rate 200 -fitgate bin/fitgate
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fitgate/fitgate/test/controlplane"
)

type options struct {
	duration, warmup, window time.Duration
	rate                     int
	tolerance                float64
	fitgate, report          string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send traffic, warm-up included")
	flag.DurationVar(&o.warmup, "warmup", time.Minute, "traffic before the baseline sample")
	flag.DurationVar(&o.window, "window", 10*time.Second, "each sample is taken over this window (1 s apart)")
	flag.IntVar(&o.rate, "rate", 200, "AdmissionReview POSTs per second")
	flag.Float64Var(&o.tolerance, "tolerance", 0.10, "allowed growth of heap, goroutines and open fds from the baseline")
	flag.StringVar(&o.fitgate, "fitgate", defaultBinary(), "the fitgate binary")
	flag.StringVar(&o.report, "report", "", "also write the result as JSON to this file")
	flag.Parse()
	if o.warmup+2*o.window >= o.duration {
		fmt.Fprintln(os.Stderr, "soak: -duration must exceed -warmup plus two sample windows")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	if o.report != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.report, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		}
	}
	if !res.Passed {
		os.Exit(1)
	}
}

func defaultBinary() string {
	if dir := os.Getenv("FITGATE_BIN_DIR"); dir != "" {
		return filepath.Join(dir, "fitgate")
	}
	return filepath.Join("bin", "fitgate")
}

func run(ctx context.Context, o options) (*result, error) {
	if _, err := os.Stat(o.fitgate); err != nil {
		return nil, fmt.Errorf("%s: %w (run `make build`)", o.fitgate, err)
	}
	fmt.Printf("soak: starting a control plane ...\n")
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		return nil, err
	}
	defer cp.Stop()
	cl, err := setUpCluster(ctx, cp)
	if err != nil {
		return nil, err
	}
	fg, err := startFitgate(ctx, cp, o.fitgate)
	if err != nil {
		return nil, err
	}
	defer fg.stop()
	fmt.Printf("soak: fitgate ready at %s; %v of traffic at %d/s (warm-up %v), log %s\n",
		fg.url, o.duration, o.rate, o.warmup, fg.logPath)

	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	gen, err := newGenerator(cp, fg.url, cl)
	if err != nil {
		return nil, err
	}
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); gen.run(loadCtx, o.rate) }()
	churnDone := make(chan struct{})
	go func() { defer close(churnDone); churn(loadCtx, cp, cl) }()

	res := &result{Options: fmt.Sprintf("duration %v, warm-up %v, rate %d/s, window %v", o.duration, o.warmup, o.rate, o.window),
		Tolerance: o.tolerance}
	start := time.Now()
	sleepUntil(loadCtx, start.Add(o.warmup))
	if res.Baseline, err = fg.sample(loadCtx, o.window); err != nil {
		return nil, fmt.Errorf("baseline sample: %w", err)
	}
	fmt.Printf("soak: baseline after warm-up: %s\n", res.Baseline)
	// Progress every minute until the final window.
	final := start.Add(o.duration - o.window - time.Second)
	for next := start.Add(o.warmup + time.Minute); next.Before(final) && loadCtx.Err() == nil; next = next.Add(time.Minute) {
		sleepUntil(loadCtx, next)
		if s, err := fg.sample(loadCtx, time.Second); err == nil {
			fmt.Printf("soak: +%v: %s; %s\n", time.Since(start).Round(time.Second), s, gen.stats.summary())
		}
	}
	sleepUntil(loadCtx, final)
	if res.End, err = fg.sample(loadCtx, o.window); err != nil {
		return nil, fmt.Errorf("final sample: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	<-loadDone
	<-churnDone
	res.finish(gen.stats, time.Since(start))
	if exited, err := fg.exited(); exited {
		res.Passed = false
		res.Problems = append(res.Problems, fmt.Sprintf("fitgate exited: %v", err))
	}
	return res, nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}
