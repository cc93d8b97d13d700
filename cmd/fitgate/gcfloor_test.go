package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, roots, floor uint64
		base, want         int
	}{
		{live: 0, floor: 64 * mib, base: 100, want: 100},                        // no cycle yet
		{live: 8 * mib, floor: 64 * mib, base: 100, want: 700},                  // 8 + 8 × 7 = 64 MiB
		{live: 8 * mib, roots: 8 * mib, floor: 64 * mib, base: 100, want: 350},  // roots count: 8 + 16 × 3.5
		{live: 9 * mib, floor: 64 * mib, base: 100, want: 612},                  // rounded up: 9 + 9 × 6.12 ≥ 64
		{live: 40 * mib, roots: 2 * mib, floor: 64 * mib, base: 100, want: 100}, // GOGC alone reaches 82 MiB
		{live: 54 * mib, floor: 64 * mib, base: 100, want: 100},                 // the 5,000-node cache
		{live: 200 * mib, floor: 64 * mib, base: 100, want: 100},                // over the floor
		{live: 8 * mib, floor: 64 * mib, base: 1000, want: 1000},                // a larger GOGC is kept
		{live: 8 * mib, floor: 64 * mib, base: 50, want: 700},                   // a smaller one is raised
		{live: 1, floor: 64 * mib, base: 100, want: 1 << 20},                    // capped
	} {
		got := gcPercentFor(c.live, c.roots, c.floor, c.base)
		if got != c.want {
			t.Errorf("gcPercentFor(%d, %d, %d, %d) = %d, want %d", c.live, c.roots, c.floor, c.base, got, c.want)
		}
		// The goal reaches the floor, and one percent less would not.
		goal := func(p int) uint64 { return c.live + (c.live+c.roots)*uint64(p)/100 }
		if c.live > 0 && c.live < c.floor && got < 1<<20 && got > c.base && (goal(got) < c.floor || goal(got-1) >= c.floor) {
			t.Errorf("gcPercentFor(%d, %d, %d, %d) = %d is not the smallest percent reaching the floor", c.live, c.roots, c.floor, c.base, got)
		}
	}
}

// TestHeapFloorFollowsCycles: after a GC cycle the percent is set for the
// live heap then, and stop restores what was configured.
func TestHeapFloorFollowsCycles(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	read := func() (percent, live, roots uint64) {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/globals:bytes"}, {Name: "/gc/scan/stack:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64() + s[3].Value.Uint64()
	}
	const floor = 1 << 30 // far above this test's heap
	stop := startHeapFloor(floor)
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC() // the cleanup runs after the cycle, on another goroutine
		time.Sleep(10 * time.Millisecond)
		percent, live, roots := read()
		if want := gcPercentFor(live, roots, floor, 100); percent == uint64(want) && percent > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d with %d bytes live, want %d", percent, live, gcPercentFor(live, roots, floor, 100))
		}
	}
	stop()
	if percent, _, _ := read(); percent != 100 {
		t.Errorf("after stop, GC percent %d, want 100", percent)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if percent, _, _ := read(); percent != 100 {
		t.Errorf("a cycle after stop set the GC percent to %d", percent)
	}
	if stop := startHeapFloor(0); stop == nil {
		t.Error("no stop for a disabled floor")
	}
}
