package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The Go collector runs when the heap has grown by GOGC percent (100) over
// what the last cycle found live. fitgate's live heap is its cache, so in a
// small cluster it is a few MiB, and under admission traffic (tens of KiB
// of garbage per review) the collector would run several times a second,
// each time taking CPU from the reviews waiting on it: on two cores, GC
// cycles set the p99. heapFloor keeps the heap goal at or above a floor by
// raising the GC percent while the live heap is small, and leaves it as
// configured once the live heap is large enough that GOGC alone reaches
// the floor (a 5,000-node cluster's cache is already larger than the
// default floor). The memory it lets the heap use is bounded by the floor.
type heapFloor struct {
	floor   uint64 // bytes
	base    int    // the GC percent configured (GOGC), kept as a minimum
	set     int    // the GC percent last set
	stopped atomic.Bool
	samples []metrics.Sample
}

// startHeapFloor keeps the heap goal at floor bytes or more until the
// returned stop is called. It does nothing when floor is 0 or the
// collector is off (GOGC=off).
func startHeapFloor(floor uint64) (stop func()) {
	f := &heapFloor{floor: floor, samples: []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/globals:bytes"}, {Name: "/gc/scan/stack:bytes"}}}
	metrics.Read(f.samples)
	f.base = int(f.samples[0].Value.Uint64())
	if floor == 0 || f.samples[0].Value.Kind() != metrics.KindUint64 || f.base <= 0 {
		return func() {}
	}
	f.set = f.base
	f.adjust()
	f.arm()
	return func() {
		if !f.stopped.Swap(true) {
			debug.SetGCPercent(f.base)
		}
	}
}

// sentinel is garbage made to learn when a GC cycle has run: its cleanup
// runs after the cycle that found it unreachable. It holds a pointer and is
// larger than the tiny allocator's 16 bytes, so that it is an object of its
// own and its cleanup is not held up by a neighbour.
type sentinel struct {
	_ *int
	_ [3]uintptr
}

// arm sets the GC percent anew after the next cycle, and so after every
// cycle: the goal follows the live heap as the cache grows or shrinks,
// never a second late (a tick could let a goal computed for an empty cache
// stand while the initial sync fills it).
func (f *heapFloor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *heapFloor) {
		if f.stopped.Load() {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

func (f *heapFloor) adjust() {
	metrics.Read(f.samples)
	live, roots := f.samples[1].Value.Uint64(), f.samples[2].Value.Uint64()+f.samples[3].Value.Uint64()
	if p := gcPercentFor(live, roots, f.floor, f.base); p != f.set {
		debug.SetGCPercent(p)
		f.set = p
	}
}

// gcPercentFor is the GC percent that puts the heap goal at floor or
// above, and never below base. The runtime's goal is live + (live + roots)
// × percent/100, roots being the globals and goroutine stacks it scans.
// With nothing live yet (no cycle has run) it is base.
func gcPercentFor(live, roots, floor uint64, base int) int {
	if live == 0 || live >= floor {
		return base
	}
	// The smallest percent p with (live+roots)*p >= (floor-live)*100.
	scanned := live + roots
	p := ((floor-live)*100 + scanned - 1) / scanned
	if p > 1<<20 { // a live heap of bytes: no need to be exact
		p = 1 << 20
	}
	return max(base, int(p))
}
