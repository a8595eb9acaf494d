// Copyright: palloc authors. Recording overlay, compiled into a real program's runtime.

// This file is added to package runtime by `palloc trace record` (palloc/goref/trace_record.py),
// with call sites in mheap.go, mgcscavenge.go, mgc.go, proc.go and malloc.go rewritten to call
// the pallocTraced* wrappers below. It records every call that changes or reads mheap_.pages,
// with its inputs and results, as fixed-size records (goref/TRACE.md) in a static buffer,
// written with write1 to the file descriptor $PALLOC_TRACE_FD names.
//
// It must not change what the allocator does: it never allocates (static buffer, no slices,
// maps, strings or closures that escape; palloc checks the compiled code has no call to the
// allocator), never calls the page allocator itself, and only reads its state. It runs with
// preemption off (acquirem) and a spin lock of its own around the buffer, so records from the
// lock-free callers (scavengeIndex.find, pageCache.alloc) keep their order.

package runtime

import (
	"internal/runtime/atomic"
	"unsafe"
)

const (
	pallocTrWords   = 10
	pallocTrRecords = 4096 // records per write
	pallocTrMagic   = 0x31525450_4F4C4C41
	pallocTrVersion = 1

	pallocTrHeader        = 1
	pallocTrArena         = 2
	pallocTrGrow          = 3
	pallocTrAlloc         = 4
	pallocTrFree          = 5
	pallocTrAllocToCache  = 6
	pallocTrFlush         = 7
	pallocTrFind          = 8
	pallocTrAllocRange    = 9
	pallocTrRandomPadding = 10
	pallocTrScavBegin     = 11
	pallocTrScavFind      = 12
	pallocTrScavTake      = 13
	pallocTrScavGive      = 14
	pallocTrScavEmpty     = 15
	pallocTrScavEnd       = 16
	pallocTrNextGen       = 17
	pallocTrEnableHuge    = 18
	pallocTrCacheAlloc    = 19
	pallocTrStateBegin    = 20
	pallocTrStateInUse    = 21
	pallocTrStateChunk    = 22
	pallocTrStateScav     = 23
	pallocTrStateSum      = 24
	pallocTrStateEnd      = 25
	pallocTrEnd           = 26
	pallocTrScavStep      = 27

	// Seeded broken recorders ($PALLOC_TRACE_TWIN), which replay must catch.
	pallocTrTwinDropFlush = 1 // page-cache flushes are not recorded
	pallocTrTwinDropFree  = 2 // frees are not recorded
)

var pallocTr struct {
	spin     atomic.Uint32
	scavID   atomic.Uint64
	fd       int32 // 0 not yet known (environment not read), -1 off, else the descriptor
	twin     int32
	stopped  bool
	n        int    // records in buf
	total    uint64 // records written or buffered, the header included
	ops      uint64 // locked operations since the last snapshot
	every    uint64 // snapshot every this many locked operations (0: only at exit)
	buf      [pallocTrRecords * pallocTrWords]uint64
}

func pallocTrLock() *m {
	mp := acquirem()
	for !pallocTr.spin.CompareAndSwap(0, 1) {
		procyield(10)
	}
	return mp
}

func pallocTrUnlock(mp *m) {
	pallocTr.spin.Store(0)
	releasem(mp)
}

func pallocTrParse(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	v := uint64(0)
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + uint64(s[i]-'0')
	}
	return v, true
}

// pallocTrResolve reads the environment once it exists; before that, records are buffered.
// goenvs allocates envs and then fills it (allocating each string), so it is complete only once
// its last entry is set.
func pallocTrResolve() {
	if pallocTr.fd != 0 || len(envs) == 0 || len(envs[len(envs)-1]) == 0 {
		return
	}
	fd, ok := pallocTrParse(gogetenv("PALLOC_TRACE_FD"))
	if !ok || fd == 0 || fd > 1<<20 {
		pallocTr.fd = -1
		pallocTr.stopped = true
		return
	}
	pallocTr.fd = int32(fd)
	if v, ok := pallocTrParse(gogetenv("PALLOC_TRACE_STATE_EVERY")); ok {
		pallocTr.every = v
	}
	switch gogetenv("PALLOC_TRACE_TWIN") {
	case "drop-flush":
		pallocTr.twin = pallocTrTwinDropFlush
	case "drop-free":
		pallocTr.twin = pallocTrTwinDropFree
	}
}

// pallocTrWrite writes the buffer out. Requires the spin lock.
func pallocTrWrite() {
	pallocTrResolve()
	if pallocTr.fd <= 0 {
		if pallocTr.fd == 0 && pallocTr.n == pallocTrRecords {
			pallocTr.stopped = true // the environment never came: the trace lacks its end, and says so
		}
		return
	}
	p := unsafe.Pointer(&pallocTr.buf[0])
	left := pallocTr.n * pallocTrWords * 8
	for left > 0 {
		k := write1(uintptr(pallocTr.fd), p, int32(left))
		if k <= 0 {
			pallocTr.stopped = true
			break
		}
		p = add(p, uintptr(k))
		left -= int(k)
	}
	pallocTr.n = 0
}

// pallocTrPut appends a record. Requires the spin lock.
func pallocTrPut(kind, aux uint64, w1, w2, w3, w4, w5, w6, w7, w8, w9 uint64) {
	if pallocTr.stopped {
		return
	}
	if pallocTr.fd == 0 {
		pallocTrResolve() // as soon as the environment exists: the twin and the snapshot spacing
	}
	if pallocTr.total == 0 {
		pallocTr.total = 1
		pallocTr.n = 1
		b := pallocTr.buf[:pallocTrWords]
		b[0] = pallocTrHeader
		b[1] = pallocTrMagic
		b[2] = pallocTrVersion
		b[3] = uint64(unsafe.Sizeof(uintptr(0)))
		b[4] = pageSize
		b[5] = uint64(physPageSize)
		b[6] = uint64(physHugePageSize)
		b[7] = heapArenaBytes
		b[8] = uint64(arenaBaseOffset)
		b[9] = uint64(getpid())<<32 | pallocTr.every&0xFFFFFFFF
	}
	if pallocTr.n == pallocTrRecords {
		pallocTrWrite()
		if pallocTr.stopped {
			return
		}
	}
	b := pallocTr.buf[pallocTr.n*pallocTrWords : (pallocTr.n+1)*pallocTrWords]
	b[0] = kind | aux<<8
	b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9] = w1, w2, w3, w4, w5, w6, w7, w8, w9
	pallocTr.n++
	pallocTr.total++
}

// pallocTrRec records a call that needs no heap lock.
func pallocTrRec(kind, aux, w1, w2, w3, w4, w5 uint64) {
	mp := pallocTrLock()
	pallocTrPut(kind, aux, w1, w2, w3, w4, w5, 0, 0, 0, 0)
	pallocTrUnlock(mp)
}

// pallocTrOp records a call made under mheap_.lock, and every `every` of them a snapshot.
func pallocTrOp(kind, w1, w2, w3 uint64) {
	mp := pallocTrLock()
	pallocTrPut(kind, 0, w1, w2, w3, 0, 0, 0, 0, 0, 0)
	pallocTr.ops++
	if pallocTr.every != 0 && pallocTr.ops >= pallocTr.every {
		pallocTr.ops = 0
		pallocTrState(false)
	}
	pallocTrUnlock(mp)
}

func pallocTrBool(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// pallocTrState records the whole allocator state. Requires mheap_.lock and the spin lock.
func pallocTrState(final bool) {
	p := &mheap_.pages
	s := &p.scav.index
	bg, bgm := s.searchAddrBg.Load()
	fo, fom := s.searchAddrForce.Load()
	pallocTrPut(pallocTrStateBegin, pallocTrBool(bgm)|pallocTrBool(fom)<<1|pallocTrBool(final)<<2,
		uint64(p.searchAddr.addr()), uint64(p.start), uint64(p.end), uint64(bg), uint64(fo),
		uint64(s.freeHWM.addr()), uint64(s.minHeapIdx.Load()), uint64(s.gen), uint64(len(p.inUse.ranges)))
	for _, r := range p.inUse.ranges {
		pallocTrPut(pallocTrStateInUse, 0, uint64(r.base.addr()), uint64(r.limit.addr()), 0, 0, 0, 0, 0, 0, 0)
	}
	for _, r := range p.inUse.ranges {
		for ci := chunkIndex(r.base.addr()); ci <= chunkIndex(r.limit.addr()-1); ci++ {
			c := p.tryChunkOf(ci)
			if c == nil {
				continue
			}
			sc := uint64(0)
			if uintptr(ci) >= s.min.Load() && uintptr(ci) < s.max.Load() {
				sc = s.chunks[ci].load().pack()
			}
			a := &c.pallocBits
			pallocTrPut(pallocTrStateChunk, uint64(ci), a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], sc)
			v := &c.scavenged
			pallocTrPut(pallocTrStateScav, uint64(ci), v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 0)
		}
	}
	for l := 0; l < len(p.summary); l++ {
		for _, r := range p.inUse.ranges {
			lo, hi := addrsToSummaryRange(l, r.base.addr(), r.limit.addr())
			for i := lo; i < hi; i += 7 {
				var e [7]uint64
				k := 0
				for ; k < 7 && i+k < hi; k++ {
					e[k] = uint64(p.summary[l][i+k])
				}
				pallocTrPut(pallocTrStateSum, uint64(l), uint64(i), uint64(k), e[0], e[1], e[2], e[3], e[4], e[5], e[6])
			}
		}
	}
	pallocTrPut(pallocTrStateEnd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

// pallocTraceExit records the final state and the end record, writes everything and stops.
func pallocTraceExit() {
	systemstack(func() {
		lock(&mheap_.lock)
		mp := pallocTrLock()
		if !pallocTr.stopped {
			pallocTrState(true)
			pallocTrPut(pallocTrEnd, 0, pallocTr.total, 0, 0, 0, 0, 0, 0, 0, 0)
			pallocTrWrite()
			pallocTr.stopped = true
		}
		pallocTrUnlock(mp)
		unlock(&mheap_.lock)
	})
}

// --- the wrappers the rewritten call sites call ---------------------------------------------

func pallocTracedGrow(p *pageAlloc, base, size uintptr) {
	p.grow(base, size)
	pallocTrOp(pallocTrGrow, uint64(base), uint64(size), 0)
}

func pallocTracedAlloc(p *pageAlloc, npages uintptr) (uintptr, uintptr) {
	base, scav := p.alloc(npages)
	pallocTrOp(pallocTrAlloc, uint64(npages), uint64(base), uint64(scav))
	return base, scav
}

func pallocTracedFree(p *pageAlloc, base, npages uintptr) {
	p.free(base, npages)
	if pallocTr.twin == pallocTrTwinDropFree {
		return
	}
	pallocTrOp(pallocTrFree, uint64(base), uint64(npages), 0)
}

func pallocTracedFind(p *pageAlloc, npages uintptr) (uintptr, offAddr) {
	base, sa := p.find(npages)
	pallocTrOp(pallocTrFind, uint64(npages), uint64(base), uint64(sa.addr()))
	return base, sa
}

func pallocTracedAllocRange(p *pageAlloc, base, npages uintptr) uintptr {
	scav := p.allocRange(base, npages)
	pallocTrOp(pallocTrAllocRange, uint64(base), uint64(npages), uint64(scav))
	return scav
}

func pallocTracedMarkRandomPaddingPages(p *pageAlloc, base, npages uintptr) {
	p.markRandomPaddingPages(base, npages)
	pallocTrOp(pallocTrRandomPadding, uint64(base), uint64(npages), 0)
}

func pallocTracedAllocToCache(p *pageAlloc) pageCache {
	c := p.allocToCache()
	pallocTrOp(pallocTrAllocToCache, uint64(c.base), c.cache, c.scav)
	return c
}

func pallocTracedFlush(c *pageCache, p *pageAlloc) {
	base, cache, scav := c.base, c.cache, c.scav
	c.flush(p)
	if base == 0 && cache == 0 || pallocTr.twin == pallocTrTwinDropFlush {
		return // flush of an empty cache changes nothing
	}
	pallocTrOp(pallocTrFlush, uint64(base), cache, scav)
}

func pallocTracedCacheAlloc(c *pageCache, npages uintptr) (uintptr, uintptr) {
	base, scav := c.alloc(npages)
	if base != 0 {
		pallocTrRec(pallocTrCacheAlloc, 0, uint64(npages), uint64(base), uint64(scav), 0, 0)
	}
	return base, scav
}

// pallocTracedScavenge is (*pageAlloc).scavenge (mgcscavenge.go) with each step recorded under
// the call's id: the index's find, and what scavengeOne returned.
func pallocTracedScavenge(p *pageAlloc, nbytes uintptr, shouldStop func() bool, force bool) uintptr {
	id := pallocTr.scavID.Add(1)
	pallocTrRec(pallocTrScavBegin, id, uint64(nbytes), pallocTrBool(force), 0, 0, 0)
	released := uintptr(0)
	for released < nbytes {
		ci, pageIdx := p.scav.index.find(force)
		pallocTrRec(pallocTrScavFind, id, pallocTrBool(force), uint64(ci), uint64(pageIdx), 0, 0)
		if ci == 0 {
			break
		}
		var r uintptr
		systemstack(func() {
			r = p.scavengeOne(ci, pageIdx, nbytes-released)
		})
		released += r
		pallocTrRec(pallocTrScavStep, id, uint64(ci), uint64(r), 0, 0, 0)
		if shouldStop != nil && shouldStop() {
			break
		}
	}
	pallocTrRec(pallocTrScavEnd, id, uint64(released), 0, 0, 0, 0)
	return released
}

// The hooks inside scavengeOne's two locked sections (mheap_.lock held).
func pallocTraceScavTake(p *pageAlloc, ci chunkIdx, searchIdx uint, max uintptr, base, npages uint) {
	if p == &mheap_.pages {
		mp := pallocTrLock()
		pallocTrPut(pallocTrScavTake, 0, uint64(ci), uint64(searchIdx), uint64(max), uint64(base), uint64(npages), 0, 0, 0, 0)
		pallocTrUnlock(mp)
	}
}

func pallocTraceScavGive(p *pageAlloc, ci chunkIdx, base, npages uint) {
	if p == &mheap_.pages {
		pallocTrOp(pallocTrScavGive, uint64(ci), uint64(base), uint64(npages))
	}
}

func pallocTraceScavEmpty(p *pageAlloc, ci chunkIdx, searchIdx uint, max uintptr) {
	if p == &mheap_.pages {
		mp := pallocTrLock()
		pallocTrPut(pallocTrScavEmpty, 0, uint64(ci), uint64(searchIdx), uint64(max), 0, 0, 0, 0, 0, 0)
		pallocTrUnlock(mp)
	}
}

func pallocTraceNextGen() {
	pallocTrRec(pallocTrNextGen, 0, 0, 0, 0, 0, 0)
}

func pallocTraceEnableHuge() {
	pallocTrRec(pallocTrEnableHuge, 0, 0, 0, 0, 0, 0)
}

func pallocTraceArena(ri arenaIdx) {
	pallocTrRec(pallocTrArena, 0, uint64(ri), uint64(arenaBase(ri)), heapArenaBytes, 0, 0)
}
