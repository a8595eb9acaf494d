// Copyright: palloc authors. Test-only overlay, compiled into the runtime's own test binary.

// This file is added to package runtime only for `palloc verify-change --workload` and
// `palloc workload` (goref/workload_replay.py), together with copies of mpagealloc.go and
// mpallocbits.go into which goref/search_cost.py inserts a pallocCostTick call at the top of
// every loop body of (*pageAlloc).find and of (*pallocBits).find1, findSmallN and findLargeN.
// The counts are the search's work: summary levels and entries examined, bitmap words examined.
//
// Only the goroutine that called PallocCostBegin is counted (the helper's own heap, which runs
// the same functions on other threads, is not); the functions it counts run on the system
// stack, so the goroutine is m.curg there.

package runtime

import "unsafe"

// The counters pallocCostTick adds to (goref/search_cost.py COUNTERS, same order).
const (
	pallocCostFind  = 0 // an iteration of a loop in (*pageAlloc).find
	pallocCostWords = 1 // an iteration of a loop in (*pallocBits).find1, findSmallN, findLargeN
	pallocCostN     = 2
)

var (
	pallocCostG     uintptr // the counted goroutine, 0 when counting is off
	pallocCostCount [pallocCostN]uint64
)

// pallocCostTick counts one unit of counter k if the counted goroutine is running.
func pallocCostTick(k int) {
	if pallocCostG != 0 && uintptr(unsafe.Pointer(getg().m.curg)) == pallocCostG {
		pallocCostCount[k]++
	}
}

// PallocCostBegin starts counting the calling goroutine's work.
func PallocCostBegin() { pallocCostG = uintptr(unsafe.Pointer(getg())) }

// PallocCostEnd stops counting.
func PallocCostEnd() { pallocCostG = 0 }

// PallocCostRead returns the counters.
func PallocCostRead() [pallocCostN]uint64 { return pallocCostCount }
