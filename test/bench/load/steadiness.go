package main

import (
	"fmt"
	"slices"
	"time"
)

// steadiness is how evenly this machine runs one CPU-bound thread: the
// work done in each short window, compared with the median window. On a
// shared virtual machine the host's other tenants slow the vCPUs down in
// stretches of tens to hundreds of milliseconds, which shows no steal time
// but cuts every process's capacity at once; an open-loop level whose
// headroom is smaller than such a dip builds a queue. Reported beside the
// results, so that a run's tail can be read against its machine.
type steadiness struct {
	windows   int
	window    time.Duration
	slowShare float64 // share of windows below 80% of the median speed
	slowest   float64 // the slowest window's speed over the median
	p1        float64 // the 1st percentile speed over the median
}

// measureSteadiness spins one goroutine for d in windows of w.
func measureSteadiness(d, w time.Duration) steadiness {
	var rates []float64
	sink := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		start := time.Now()
		n := 0
		for time.Since(start) < w {
			for j := range 4096 {
				sink += j ^ n
			}
			n++
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
	}
	if sink == 42 {
		fmt.Print("") // keeps the loop
	}
	sorted := slices.Clone(rates)
	slices.Sort(sorted)
	med := sorted[len(sorted)/2]
	s := steadiness{windows: len(rates), window: w}
	if med <= 0 {
		return s
	}
	slow := 0
	for _, r := range rates {
		if r < 0.8*med {
			slow++
		}
	}
	s.slowShare = float64(slow) / float64(len(rates))
	s.slowest = sorted[0] / med
	s.p1 = sorted[len(sorted)/100] / med
	return s
}

func (s steadiness) String() string {
	if s.windows == 0 {
		return "not measured"
	}
	return fmt.Sprintf("one CPU-bound thread over %d windows of %v: %.0f%% of windows ran below 80%% of the median speed, the 1st percentile at %.0f%%, the slowest at %.0f%%",
		s.windows, s.window, 100*s.slowShare, 100*s.p1, 100*s.slowest)
}
