// Copyright: palloc authors. Test-only overlay, compiled into the runtime's own test binary.

// TestPallocStream replays a request stream (palloc's goref/workload_replay.py) natively on a
// real test-mode page allocator, in one run, and prints what happened as one JSON line
// "palloc-stream <json>" on stdout. It runs only with PALLOC_STREAM=1 and reads the stream on
// stdin: a header of four little-endian uint64s (magic "PALSTRM1", version 1, number of
// operations, snapshot interval), the heap limit in bytes as a fifth, then per operation a
// (verb, argument) pair of uint64s:
//
//	1 alloc(npages): on failure the heap grows as (*mheap).grow does, by
//	  alignUp(npages, pallocChunkPages) pages at its end, and the alloc is retried
//	2 free(id): frees the id-th alloc of the stream (ids count allocs from 0)
//	3 scavenge(nbytes): (*pageAlloc).scavenge(nbytes, nil, false)
//	4 nextGen: the scavenge index's next generation (a GC cycle)
//	5 scavenge(nbytes) with force true
//	6 cacheAlloc(npages): as (*mheap).allocSpan for a small span, through the P's page cache
//	  (one P): refilled by allocToCache when empty, and alloc as in 1 when it cannot serve
//	7 flush: the P's page cache flushed back to the allocator
//
// Every snapshot interval operations (and after the last) it records each chunk's allocated
// pages. The search's work is counted per alloc when the runtime was built with
// goref/search_cost.py's counters (palloc_cost_test.go); otherwise the counts are zero.

package runtime_test

import (
	pallocStrBinary "encoding/binary"
	"encoding/json"
	"fmt"
	pallocStrIO "io"
	pallocStrBits "math/bits"
	"os"
	. "runtime"
	"testing"
	"time"
)

const pallocStrMagic = 0x314d5254534c4150 // "PALSTRM1" read as a little-endian uint64

func TestPallocStream(t *testing.T) {
	if os.Getenv("PALLOC_STREAM") != "1" {
		t.Skip("palloc's stream replay: runs only with PALLOC_STREAM=1")
	}
	data, err := pallocStrIO.ReadAll(os.Stdin)
	if err != nil {
		t.Fatalf("palloc stream: reading stdin: %v", err)
	}
	res, err := pallocStrRun(data)
	if err != nil {
		t.Fatalf("palloc stream: %v", err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("palloc stream: encoding: %v", err)
	}
	os.Stdout.WriteString("palloc-stream ")
	os.Stdout.Write(b)
	os.Stdout.WriteString("\n")
}

type pallocStrResult struct {
	Addrs     []uint64    `json:"addrs"`     // per alloc, its address
	Scav      []uint64    `json:"scav"`      // per alloc, the scavenged bytes it reused
	CostFind  []uint64    `json:"cost_find"` // per alloc, loop iterations of (*pageAlloc).find
	CostWords []uint64    `json:"cost_words"`
	Grows     [][3]uint64 `json:"grows"`    // [operation index, base, size]
	Refills   [][3]uint64 `json:"refills"`  // [operation index, base, cache bits] of each allocToCache
	Released  []uint64    `json:"released"` // per scavenge, the bytes released
	Snaps     [][]uint64  `json:"snaps"`    // [operation index, allocated pages of each chunk from the first]
	FirstCI   uint64      `json:"first_ci"`
	Chunks    [][]uint64  `json:"chunks"`  // at the end, per chunk from FirstCI: alloc words then scav words
	Host      [2]uint64   `json:"host"`    // physPageSize, physHugePageSize
	Failed    uint64      `json:"failed"`  // allocs that failed even after growing (op index + 1 of the first)
	Elapsed   int64       `json:"elapsed"` // ns in the loop, snapshots included
}

func pallocStrRun(data []byte) (*pallocStrResult, error) {
	le := pallocStrBinary.LittleEndian
	if len(data) < 40 || le.Uint64(data) != pallocStrMagic || le.Uint64(data[8:]) != 1 {
		return nil, fmt.Errorf("not a version-1 stream")
	}
	nops, every, limit := le.Uint64(data[16:]), le.Uint64(data[24:]), uintptr(le.Uint64(data[32:]))
	body := data[40:]
	if uint64(len(body)) != 16*nops {
		return nil, fmt.Errorf("stream holds %d bytes of operations, want %d", len(body), 16*nops)
	}
	c := PallocConstants()
	chunkPages := uintptr(c.PallocChunkPages)
	base := PallocChunkBase(c.BaseChunkIdx)
	firstCI := PallocChunkIndex(base)
	end := base
	nallocs := 0
	for k := uint64(0); k < nops; k++ {
		if v := le.Uint64(body[16*k:]); v == 1 || v == 6 {
			nallocs++
		}
	}
	r := &pallocStrResult{
		Addrs: make([]uint64, 0, nallocs), Scav: make([]uint64, 0, nallocs), CostFind: make([]uint64, 0, nallocs),
		CostWords: make([]uint64, 0, nallocs), Grows: [][3]uint64{}, Refills: [][3]uint64{}, Released: []uint64{},
		Snaps: [][]uint64{},
		FirstCI: uint64(firstCI), Host: [2]uint64{uint64(PhysPageSize), uint64(PhysHugePageSize)},
	}
	npagesOf := make([]uintptr, 0, nallocs)
	p := NewPallocEmptyPageAlloc()
	defer func() {
		if end != base { // FreePageAlloc faults on an allocator that never grew (FINDINGS.md F26)
			FreePageAlloc(p)
		}
	}()
	snap := func(k uint64) {
		s := []uint64{k}
		for ci := firstCI; ci < PallocChunkIndex(end-1)+1 && end != base; ci++ {
			a, _, _ := p.PallocChunkBits(ci)
			n := 0
			for _, w := range a {
				n += pallocStrBits.OnesCount64(w)
			}
			s = append(s, uint64(n))
		}
		r.Snaps = append(r.Snaps, s)
	}
	counted := func(f func()) {
		before := PallocCostRead()
		PallocCostBegin()
		f()
		PallocCostEnd()
		after := PallocCostRead()
		r.CostFind[len(r.CostFind)-1] += after[0] - before[0]
		r.CostWords[len(r.CostWords)-1] += after[1] - before[1]
	}
	alloc := func(n uintptr) (a, sc uintptr) {
		counted(func() { a, sc = p.Alloc(n) })
		return
	}
	var pc PageCache // the one P's page cache; empty
	// allocGrow allocates n pages, growing the heap once if the alloc fails.
	allocGrow := func(k uint64, n uintptr) (uintptr, uintptr, error) {
		a, sc := alloc(n)
		if a == 0 {
			// (*mheap).grow: ask := alignUp(npage, pallocChunkPages) * pageSize.
			ask := (n + chunkPages - 1) / chunkPages * chunkPages * PageSize
			if end-base+ask > limit {
				return 0, 0, fmt.Errorf("operation %d: the heap would grow past its limit of %d bytes", k, limit)
			}
			p.PallocGrow(end, ask)
			r.Grows = append(r.Grows, [3]uint64{k, uint64(end), uint64(ask)})
			end += ask
			a, sc = alloc(n)
			if a == 0 && r.Failed == 0 {
				r.Failed = k + 1
			}
		}
		return a, sc, nil
	}
	t0 := time.Now()
	for k := uint64(0); k < nops; k++ {
		verb, arg := le.Uint64(body[16*k:]), le.Uint64(body[16*k+8:])
		switch verb {
		case 1, 6:
			n := uintptr(arg)
			r.CostFind, r.CostWords = append(r.CostFind, 0), append(r.CostWords, 0)
			var a, sc uintptr
			if verb == 6 {
				if pc.Empty() {
					counted(func() { pc = p.AllocToCache() })
					if !pc.Empty() {
						r.Refills = append(r.Refills, [3]uint64{k, uint64(pc.Base()), pc.Cache()})
					}
				}
				a, sc = pc.Alloc(n)
			}
			if a == 0 {
				var err error
				if a, sc, err = allocGrow(k, n); err != nil {
					return nil, err
				}
			}
			r.Addrs, r.Scav = append(r.Addrs, uint64(a)), append(r.Scav, uint64(sc))
			npagesOf = append(npagesOf, n)
		case 7:
			pc.Flush(p)
		case 2:
			if arg >= uint64(len(r.Addrs)) {
				return nil, fmt.Errorf("operation %d: free of alloc %d, which has not happened", k, arg)
			}
			if a := uintptr(r.Addrs[arg]); a != 0 {
				p.Free(a, npagesOf[arg])
			}
		case 3:
			r.Released = append(r.Released, uint64(p.PallocScavenge(uintptr(arg), false)))
		case 4:
			p.PallocNextGen()
		case 5:
			r.Released = append(r.Released, uint64(p.PallocScavenge(uintptr(arg), true)))
		default:
			return nil, fmt.Errorf("operation %d: unknown verb %d", k, verb)
		}
		if every > 0 && (k+1)%every == 0 {
			snap(k + 1)
		}
	}
	if every == 0 || nops%every != 0 {
		snap(nops)
	}
	r.Elapsed = time.Since(t0).Nanoseconds()
	for ci := firstCI; end != base && ci < PallocChunkIndex(end-1)+1; ci++ {
		a, s, _ := p.PallocChunkBits(ci)
		r.Chunks = append(r.Chunks, append(append([]uint64{}, a...), s...))
	}
	return r, nil
}
