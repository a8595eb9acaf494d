// Copyright: palloc authors. Test-only overlay, compiled into the runtime's own test binary.

// This file is added to package runtime by `go test -overlay` (palloc/goref/build.py). It
// exposes the page allocator state that export_test.go does not reach: summaries at every
// level, searchAddr, inUse, the scavenge index of a PageAlloc, grow/find/allocRange/update,
// non-forced scavenge, nextGen and the platform constants as the runtime sees them.
//
// Every name starts with "Palloc" so it cannot collide with an export of Go 1.21-1.27.
// It only uses internal names that exist, with the same meaning, in every version 1.21-1.27.

package runtime

import "unsafe"

// PallocConsts are the page allocator's constants, as this build of the runtime sees them.
type PallocConsts struct {
	PtrSize             uintptr
	HeapAddrBits        int
	ArenaBaseOffset     uintptr
	PageSize            uintptr
	LogPallocChunkPages int
	PallocChunkPages    int
	PallocChunkBytes    uintptr
	SummaryLevels       int
	SummaryLevelBits    int
	SummaryL0Bits       int
	LevelBits           []uint
	LevelShift          []uint
	LevelLogPages       []uint
	LogMaxPackedValue   int
	MaxPackedValue      int
	FreeChunkSum        uint64
	PallocChunksL1Bits  int
	PallocChunksL2Bits  int
	MinOffAddr          uintptr
	MaxOffAddr          uintptr
	ScavChunkHiOccPages int
	BaseChunkIdx        uintptr
	PhysPageSize        uintptr
	PhysHugePageSize    uintptr
	PageAlloc64Bit      int
}

// PallocConstants returns the page allocator's constants.
func PallocConstants() PallocConsts {
	c := PallocConsts{
		PtrSize:             unsafe.Sizeof(uintptr(0)),
		HeapAddrBits:        heapAddrBits,
		ArenaBaseOffset:     arenaBaseOffset,
		PageSize:            pageSize,
		LogPallocChunkPages: logPallocChunkPages,
		PallocChunkPages:    pallocChunkPages,
		PallocChunkBytes:    pallocChunkBytes,
		SummaryLevels:       summaryLevels,
		SummaryLevelBits:    summaryLevelBits,
		SummaryL0Bits:       summaryL0Bits,
		LogMaxPackedValue:   logMaxPackedValue,
		MaxPackedValue:      maxPackedValue,
		FreeChunkSum:        uint64(freeChunkSum),
		PallocChunksL1Bits:  pallocChunksL1Bits,
		PallocChunksL2Bits:  pallocChunksL2Bits,
		MinOffAddr:          minOffAddr.addr(),
		MaxOffAddr:          maxOffAddr.addr(),
		ScavChunkHiOccPages: int(scavChunkHiOccPages),
		BaseChunkIdx:        uintptr(BaseChunkIdx),
		PhysPageSize:        physPageSize,
		PhysHugePageSize:    physHugePageSize,
		PageAlloc64Bit:      pageAlloc64Bit,
	}
	c.LevelBits = append(c.LevelBits, levelBits[:]...)
	c.LevelShift = append(c.LevelShift, levelShift[:]...)
	c.LevelLogPages = append(c.LevelLogPages, levelLogPages[:]...)
	return c
}

// PallocChunkIndex returns chunkIndex(addr).
func PallocChunkIndex(addr uintptr) uintptr { return uintptr(chunkIndex(addr)) }

// PallocChunkBase returns chunkBase(ci).
func PallocChunkBase(ci uintptr) uintptr { return chunkBase(chunkIdx(ci)) }

// PallocMaxChunks returns the number of chunk indices the chunks array can address.
func PallocMaxChunks() uintptr { return 1 << (pallocChunksL1Bits + pallocChunksL2Bits) }

// NewPallocEmptyPageAlloc returns a test-mode allocator initialised like NewPageAlloc but
// with no chunks: nothing grown, searchAddr at maxSearchAddr. Release it with FreePageAlloc.
func NewPallocEmptyPageAlloc() *PageAlloc {
	p := new(pageAlloc)
	p.init(new(mutex), testSysStat, true)
	lockInit(p.mheapLock, lockRankMheap)
	return (*PageAlloc)(p)
}

// PallocNewPageAllocObject and PallocInit are NewPallocEmptyPageAlloc in two steps, so that a
// coverage helper counts the second (the allocator's code) and not the first (the helper's own
// heap allocating the pageAlloc).
func PallocNewPageAllocObject() *PageAlloc { return (*PageAlloc)(new(pageAlloc)) }

func (pp *PageAlloc) PallocInit() {
	p := (*pageAlloc)(pp)
	p.init(new(mutex), testSysStat, true)
	lockInit(p.mheapLock, lockRankMheap)
}

// pallocLocked runs f on the system stack with the allocator's lock held, as the exports do.
func (p *PageAlloc) pallocLocked(f func(pp *pageAlloc)) {
	pp := (*pageAlloc)(p)
	systemstack(func() {
		lock(pp.mheapLock)
		f(pp)
		unlock(pp.mheapLock)
	})
}

// PallocGrow calls grow(base, size).
func (p *PageAlloc) PallocGrow(base, size uintptr) {
	p.pallocLocked(func(pp *pageAlloc) { pp.grow(base, size) })
}

// PallocFind calls find(npages) and returns its (addr, searchAddr hint as an address).
func (p *PageAlloc) PallocFind(npages uintptr) (addr, hint uintptr) {
	p.pallocLocked(func(pp *pageAlloc) {
		var h offAddr
		addr, h = pp.find(npages)
		hint = h.addr()
	})
	return
}

// PallocAllocRange calls allocRange(base, npages) and returns the scavenged bytes.
func (p *PageAlloc) PallocAllocRange(base, npages uintptr) (scav uintptr) {
	p.pallocLocked(func(pp *pageAlloc) { scav = pp.allocRange(base, npages) })
	return
}

// PallocUpdate calls update(base, npages, contig, alloc).
func (p *PageAlloc) PallocUpdate(base, npages uintptr, contig, alloc bool) {
	p.pallocLocked(func(pp *pageAlloc) { pp.update(base, npages, contig, alloc) })
}

// PallocScavenge calls scavenge(nbytes, nil, force); the export Scavenge always forces.
func (p *PageAlloc) PallocScavenge(nbytes uintptr, force bool) (r uintptr) {
	pp := (*pageAlloc)(p)
	systemstack(func() { r = pp.scavenge(nbytes, nil, force) })
	return
}

// PallocNextGen calls scav.index.nextGen().
func (p *PageAlloc) PallocNextGen() {
	p.pallocLocked(func(pp *pageAlloc) { pp.scav.index.nextGen() })
}

// PallocSearchAddr returns searchAddr as an address.
func (p *PageAlloc) PallocSearchAddr() uintptr { return (*pageAlloc)(p).searchAddr.addr() }

// PallocSummaryMappedReady returns summaryMappedReady: the bytes of summary and scavenge
// index memory mapped Ready (on 32-bit, the whole reservation plus the index).
func (p *PageAlloc) PallocSummaryMappedReady() uintptr {
	return (*pageAlloc)(p).summaryMappedReady
}

// PallocInUse returns inUse's ranges as [base, limit) pairs and its totalBytes.
func (p *PageAlloc) PallocInUse() (ranges [][2]uintptr, totalBytes uintptr) {
	pp := (*pageAlloc)(p)
	for _, r := range pp.inUse.ranges {
		ranges = append(ranges, [2]uintptr{r.base.addr(), r.limit.addr()})
	}
	return ranges, pp.inUse.totalBytes
}

// PallocSummaryLen returns len and cap of summary[level].
func (p *PageAlloc) PallocSummaryLen(level int) (int, int) {
	s := (*pageAlloc)(p).summary[level]
	return len(s), cap(s)
}

// PallocSummaryMapped returns the entry-index ranges [lo, hi) of summary[level] that are
// mapped. They are recomputed from inUse with sysGrow's own formulas (addrsToSummaryRange,
// blockAlignSummaryRange, then page alignment of the byte offsets), because sysGrow maps
// exactly that union over the grown ranges. On 32-bit page allocators every level is mapped
// whole at init.
func (p *PageAlloc) PallocSummaryMapped(level int) [][2]int {
	pp := (*pageAlloc)(p)
	capL := cap(pp.summary[level])
	if pageAlloc64Bit == 0 {
		return [][2]int{{0, capL}}
	}
	const sumBytes = unsafe.Sizeof(pallocSum(0))
	var out [][2]int
	for _, r := range pp.inUse.ranges {
		lo, hi := addrsToSummaryRange(level, r.base.addr(), r.limit.addr())
		lo, hi = blockAlignSummaryRange(level, lo, hi)
		blo := int(alignDown(uintptr(lo)*sumBytes, physPageSize) / sumBytes)
		bhi := int(alignUp(uintptr(hi)*sumBytes, physPageSize) / sumBytes)
		if bhi > capL {
			bhi = capL
		}
		if n := len(out); n > 0 && out[n-1][1] >= blo {
			if bhi > out[n-1][1] {
				out[n-1][1] = bhi
			}
			continue
		}
		out = append(out, [2]int{blo, bhi})
	}
	return out
}

// PallocSummaryLive merges its ranges as PallocSummaryMapped does, on purpose: the exported
// hooks stay one self-contained function each, as export_test.go's do.
// PallocSummaryLive returns the entry-index ranges [lo, hi) of summary[level] that cover
// inUse exactly (addrsToSummaryRange of each range, no alignment), merged.
func (p *PageAlloc) PallocSummaryLive(level int) [][2]int {
	pp := (*pageAlloc)(p)
	var out [][2]int
	for _, r := range pp.inUse.ranges {
		lo, hi := addrsToSummaryRange(level, r.base.addr(), r.limit.addr())
		if n := len(out); n > 0 && out[n-1][1] >= lo {
			if hi > out[n-1][1] {
				out[n-1][1] = hi
			}
			continue
		}
		out = append(out, [2]int{lo, hi})
	}
	return out
}

// PallocSummaryRead returns summary[level][lo:hi] as raw packed values, or ok=false
// (reading nothing) unless [lo, hi) lies inside one mapped range and inside len.
func (p *PageAlloc) PallocSummaryRead(level, lo, hi int) (vals []uint64, ok bool) {
	pp := (*pageAlloc)(p)
	if level < 0 || level >= summaryLevels || lo < 0 || hi < lo || hi > len(pp.summary[level]) {
		return nil, false
	}
	inside := lo == hi
	for _, m := range p.PallocSummaryMapped(level) {
		if m[0] <= lo && hi <= m[1] {
			inside = true
			break
		}
	}
	if !inside {
		return nil, false
	}
	vals = make([]uint64, 0, hi-lo)
	for _, s := range pp.summary[level][lo:hi] {
		vals = append(vals, uint64(s))
	}
	return vals, true
}

// PallocBounds returns start and end as chunk indices.
func (p *PageAlloc) PallocBounds() (uintptr, uintptr) {
	pp := (*pageAlloc)(p)
	return uintptr(pp.start), uintptr(pp.end)
}

// PallocChunkBits returns the alloc and scavenged bitmaps of chunk ci, or ok=false when
// its L2 block does not exist (or ci is beyond the chunks array).
func (p *PageAlloc) PallocChunkBits(ci uintptr) (alloc, scav []uint64, ok bool) {
	if ci >= PallocMaxChunks() {
		return nil, nil, false
	}
	d := (*pageAlloc)(p).tryChunkOf(chunkIdx(ci))
	if d == nil {
		return nil, nil, false
	}
	alloc = append(alloc, d.pallocBits[:]...)
	scav = append(scav, d.scavenged[:]...)
	return alloc, scav, true
}

// PallocScavIndexState is the scavenge index of a PageAlloc (not the standalone export).
type PallocScavIndexState struct {
	Gen                 uint32
	Min, Max            uintptr
	MinHeapIdx          uintptr
	SearchAddrBg        uintptr
	SearchAddrBgMarked  bool
	SearchAddrForce     uintptr
	SearchAddrForceMark bool
	FreeHWM             uintptr
	Len                 int
}

// PallocScavIndex returns the allocator's scavenge index state.
func (p *PageAlloc) PallocScavIndex() PallocScavIndexState {
	s := &(*pageAlloc)(p).scav.index
	var st PallocScavIndexState
	st.Gen = s.gen
	st.Min, st.Max = s.min.Load(), s.max.Load()
	st.MinHeapIdx = s.minHeapIdx.Load()
	st.SearchAddrBg, st.SearchAddrBgMarked = s.searchAddrBg.Load()
	st.SearchAddrForce, st.SearchAddrForceMark = s.searchAddrForce.Load()
	st.FreeHWM = s.freeHWM.addr()
	st.Len = len(s.chunks)
	return st
}

// PallocScavChunk returns chunk ci's packed scavenge-index entry and its fields, or ok=false
// when ci is outside the mapped [min, max) of the index.
func (p *PageAlloc) PallocScavChunk(ci uintptr) (packed uint64, inUse, lastInUse uint16, gen uint32, flags uint8, ok bool) {
	s := &(*pageAlloc)(p).scav.index
	if ci < s.min.Load() || ci >= s.max.Load() || ci >= uintptr(len(s.chunks)) {
		return 0, 0, 0, 0, 0, false
	}
	packed = s.chunks[ci].value.Load()
	sc := unpackScavChunkData(packed)
	return packed, sc.inUse, sc.lastInUse, sc.gen, uint8(sc.scavChunkFlags), true
}

// PallocAddrRangesState returns the ranges as [base, limit) pairs and totalBytes.
func (a *AddrRanges) PallocAddrRangesState() (ranges [][2]uintptr, totalBytes uintptr) {
	for _, r := range a.addrRanges.ranges {
		ranges = append(ranges, [2]uintptr{r.base.addr(), r.limit.addr()})
	}
	return ranges, a.addrRanges.totalBytes
}

// PallocFindAddrGreaterEqual calls findAddrGreaterEqual(addr).
func (a *AddrRanges) PallocFindAddrGreaterEqual(addr uintptr) (uintptr, bool) {
	return a.addrRanges.findAddrGreaterEqual(addr)
}

// PallocContains calls contains(addr).
func (a *AddrRanges) PallocContains(addr uintptr) bool { return a.addrRanges.contains(addr) }

// PallocRemoveLast calls removeLast(nBytes) and returns the removed [base, limit).
func (a *AddrRanges) PallocRemoveLast(nBytes uintptr) (uintptr, uintptr) {
	r := a.addrRanges.removeLast(nBytes)
	return r.base.addr(), r.limit.addr()
}

// PallocRemoveGreaterEqual calls removeGreaterEqual(addr).
func (a *AddrRanges) PallocRemoveGreaterEqual(addr uintptr) { a.addrRanges.removeGreaterEqual(addr) }

// PallocCloneInto calls cloneInto(&b.addrRanges).
func (a *AddrRanges) PallocCloneInto(b *AddrRanges) { a.addrRanges.cloneInto(&b.addrRanges) }

// PallocPallocDataAllocRange calls pallocData.allocRange(i, n) on a chunk with the given
// bitmaps (which also clears the scavenged bits under the range) and returns the new bitmaps.
func PallocPallocDataAllocRange(alloc, scav []uint64, i, n uint) ([]uint64, []uint64) {
	var d pallocData
	copy(d.pallocBits[:], alloc)
	copy(d.scavenged[:], scav)
	d.allocRange(i, n)
	return append([]uint64(nil), d.pallocBits[:]...), append([]uint64(nil), d.scavenged[:]...)
}

// PallocSummaryAt returns summary[level][i], or ok=false unless i lies inside one of mapped
// (PallocSummaryMapped(level), computed once by the caller) and below len.
func (p *PageAlloc) PallocSummaryAt(level, i int, mapped [][2]int) (uint64, bool) {
	s := (*pageAlloc)(p).summary[level]
	if i < 0 || i >= len(s) {
		return 0, false
	}
	for _, m := range mapped {
		if m[0] <= i && i < m[1] {
			return uint64(s[i]), true
		}
	}
	return 0, false
}

// --- translation validation (palloc/proofs/tv.py): call one pure function by name ------------

// PallocTVCall calls the runtime function fn (Go's name, methods as Recv.method) on arguments
// flattened into words, and returns its results and then the final value behind each pointer
// argument (the receiver first), flattened the same way: parameters in order, the receiver
// first; an array element by element; a struct field by field (scavChunkData: inUse, lastInUse,
// gen, flags; pallocData: its pallocBits words, then its scavenged words; pageCache: base,
// cache, scav; addrRange: base, limit); a bool as 0 or 1; an int as its bits in a uint (no sign
// extension, so a word means the same on 32-bit platforms). ok is false for an unknown fn or a
// wrong number of words. It exists in every Go version 1.21-1.27 (the functions it names do).
func PallocTVCall(fn string, a []uint64) (out []uint64, ok bool) {
	n := 0
	take := func() uint64 {
		if n >= len(a) {
			ok = false
			return 0
		}
		n++
		return a[n-1]
	}
	bits := func() (b pageBits) {
		for i := range b {
			b[i] = take()
		}
		return
	}
	put := func(xs ...uint64) { out = append(out, xs...) }
	putBits := func(b *pageBits) { put(b[:]...) }
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	scav := func() scavChunkData {
		return scavChunkData{inUse: uint16(take()), lastInUse: uint16(take()), gen: uint32(take()),
			scavChunkFlags: scavChunkFlags(take())}
	}
	putScav := func(sc scavChunkData) {
		put(uint64(sc.inUse), uint64(sc.lastInUse), uint64(sc.gen), uint64(sc.scavChunkFlags))
	}
	rng := func() addrRange { return addrRange{offAddr{uintptr(take())}, offAddr{uintptr(take())}} }
	putRange := func(r addrRange) { put(uint64(r.base.a), uint64(r.limit.a)) }
	cache := func() pageCache { return pageCache{base: uintptr(take()), cache: take(), scav: take()} }
	putCache := func(c *pageCache) { put(uint64(c.base), c.cache, c.scav) }
	ok = true
	switch fn {
	case "packPallocSum":
		put(uint64(packPallocSum(uint(take()), uint(take()), uint(take()))))
	case "pallocSum.start":
		put(uint64(pallocSum(take()).start()))
	case "pallocSum.max":
		put(uint64(pallocSum(take()).max()))
	case "pallocSum.end":
		put(uint64(pallocSum(take()).end()))
	case "pallocSum.unpack":
		s, m, e := pallocSum(take()).unpack()
		put(uint64(s), uint64(m), uint64(e))
	case "mergeSummaries":
		sums := make([]pallocSum, 8)
		for i := range sums {
			sums[i] = pallocSum(take())
		}
		put(uint64(mergeSummaries(sums, uint(take()))))
	case "chunkIndex":
		put(uint64(chunkIndex(uintptr(take()))))
	case "chunkBase":
		put(uint64(chunkBase(chunkIdx(take()))))
	case "chunkPageIndex":
		put(uint64(chunkPageIndex(uintptr(take()))))
	case "chunkIdx.l1":
		put(uint64(chunkIdx(take()).l1()))
	case "chunkIdx.l2":
		put(uint64(chunkIdx(take()).l2()))
	case "offAddrToLevelIndex":
		l := int(take())
		put(uint64(uint(offAddrToLevelIndex(l, offAddr{uintptr(take())}))))
	case "levelIndexToOffAddr":
		l := int(take())
		put(uint64(levelIndexToOffAddr(l, int(take())).a))
	case "addrsToSummaryRange":
		l := int(take())
		lo, hi := addrsToSummaryRange(l, uintptr(take()), uintptr(take()))
		put(uint64(uint(lo)), uint64(uint(hi)))
	case "blockAlignSummaryRange":
		l := int(take())
		lo, hi := blockAlignSummaryRange(l, int(take()), int(take()))
		put(uint64(uint(lo)), uint64(uint(hi)))
	case "offAddr.add":
		l := offAddr{uintptr(take())}
		put(uint64(l.add(uintptr(take())).a))
	case "offAddr.sub":
		l := offAddr{uintptr(take())}
		put(uint64(l.sub(uintptr(take())).a))
	case "offAddr.diff":
		l := offAddr{uintptr(take())}
		put(uint64(l.diff(offAddr{uintptr(take())})))
	case "offAddr.lessThan":
		l := offAddr{uintptr(take())}
		put(b2u(l.lessThan(offAddr{uintptr(take())})))
	case "offAddr.lessEqual":
		l := offAddr{uintptr(take())}
		put(b2u(l.lessEqual(offAddr{uintptr(take())})))
	case "offAddr.equal":
		l := offAddr{uintptr(take())}
		put(b2u(l.equal(offAddr{uintptr(take())})))
	case "offAddr.addr":
		put(uint64(offAddr{uintptr(take())}.addr()))
	case "makeAddrRange":
		b := uintptr(take())
		putRange(makeAddrRange(b, uintptr(take())))
	case "addrRange.size":
		put(uint64(rng().size()))
	case "addrRange.contains":
		r := rng()
		put(b2u(r.contains(uintptr(take()))))
	case "addrRange.subtract":
		r := rng()
		putRange(r.subtract(rng()))
	case "addrRange.removeGreaterEqual":
		r := rng()
		putRange(r.removeGreaterEqual(uintptr(take())))
	case "addrRange.takeFromFront", "addrRange.takeFromBack":
		r := rng()
		ln, al := uintptr(take()), uint8(take())
		var x uintptr
		var got bool
		if fn == "addrRange.takeFromFront" {
			x, got = r.takeFromFront(ln, al)
		} else {
			x, got = r.takeFromBack(ln, al)
		}
		put(uint64(x), b2u(got))
		putRange(r)
	case "pageBits.get", "pageBits.block64", "pageBits.set", "pageBits.clear", "pallocBits.free1",
		"pallocBits.pages64", "pallocBits.find1":
		b := bits()
		i := uint(take())
		switch fn {
		case "pageBits.get":
			put(uint64(b.get(i)))
		case "pageBits.block64":
			put(b.block64(i))
		case "pageBits.set":
			b.set(i)
		case "pageBits.clear":
			b.clear(i)
		case "pallocBits.free1":
			(*pallocBits)(&b).free1(i)
		case "pallocBits.pages64":
			put((*pallocBits)(&b).pages64(i))
		case "pallocBits.find1":
			put(uint64((*pallocBits)(&b).find1(i)))
		}
		putBits(&b)
	case "pageBits.setRange", "pageBits.clearRange", "pageBits.popcntRange", "pallocBits.allocRange",
		"pallocBits.free":
		b := bits()
		i, k := uint(take()), uint(take())
		switch fn {
		case "pageBits.setRange":
			b.setRange(i, k)
		case "pageBits.clearRange":
			b.clearRange(i, k)
		case "pageBits.popcntRange":
			put(uint64(b.popcntRange(i, k)))
		case "pallocBits.allocRange":
			(*pallocBits)(&b).allocRange(i, k)
		case "pallocBits.free":
			(*pallocBits)(&b).free(i, k)
		}
		putBits(&b)
	case "pageBits.setAll", "pageBits.clearAll", "pallocBits.allocAll", "pallocBits.freeAll":
		b := bits()
		switch fn {
		case "pageBits.setAll":
			b.setAll()
		case "pageBits.clearAll":
			b.clearAll()
		case "pallocBits.allocAll":
			(*pallocBits)(&b).allocAll()
		case "pallocBits.freeAll":
			(*pallocBits)(&b).freeAll()
		}
		putBits(&b)
	case "pageBits.setBlock64", "pageBits.clearBlock64", "pallocBits.allocPages64":
		b := bits()
		i, v := uint(take()), take()
		switch fn {
		case "pageBits.setBlock64":
			b.setBlock64(i, v)
		case "pageBits.clearBlock64":
			b.clearBlock64(i, v)
		case "pallocBits.allocPages64":
			(*pallocBits)(&b).allocPages64(i, v)
		}
		putBits(&b)
	case "pallocBits.summarize":
		b := bits()
		put(uint64((*pallocBits)(&b).summarize()))
		putBits(&b)
	case "pallocBits.find", "pallocBits.findSmallN", "pallocBits.findLargeN":
		b := bits()
		np, si := uintptr(take()), uint(take())
		var x, y uint
		switch fn {
		case "pallocBits.find":
			x, y = (*pallocBits)(&b).find(np, si)
		case "pallocBits.findSmallN":
			x, y = (*pallocBits)(&b).findSmallN(np, si)
		case "pallocBits.findLargeN":
			x, y = (*pallocBits)(&b).findLargeN(np, si)
		}
		put(uint64(x), uint64(y))
		putBits(&b)
	case "findBitRange64":
		c := take()
		put(uint64(findBitRange64(c, uint(take()))))
	case "pallocData.allocRange", "pallocData.allocAll", "pallocData.findScavengeCandidate":
		var m pallocData
		m.pallocBits = pallocBits(bits())
		m.scavenged = bits()
		switch fn {
		case "pallocData.allocRange":
			i := uint(take())
			m.allocRange(i, uint(take()))
		case "pallocData.allocAll":
			m.allocAll()
		case "pallocData.findScavengeCandidate":
			si := uint(take())
			mn := uintptr(take())
			st, sz := m.findScavengeCandidate(si, mn, uintptr(take()))
			put(uint64(st), uint64(sz))
		}
		put(m.pallocBits[:]...)
		putBits(&m.scavenged)
	case "fillAligned":
		x := take()
		put(fillAligned(x, uint(take())))
	case "unpackScavChunkData":
		putScav(unpackScavChunkData(take()))
	case "scavChunkData.pack":
		put(scav().pack())
	case "scavChunkData.shouldScavenge":
		sc := scav()
		g := uint32(take())
		put(b2u(sc.shouldScavenge(g, take() != 0)))
	case "scavChunkData.alloc", "scavChunkData.free":
		sc := scav()
		np, g := uint(take()), uint32(take())
		if fn == "scavChunkData.alloc" {
			sc.alloc(np, g)
		} else {
			sc.free(np, g)
		}
		putScav(sc)
	case "scavChunkFlags.isEmpty", "scavChunkFlags.setEmpty", "scavChunkFlags.setNonEmpty":
		f := scavChunkFlags(take())
		switch fn {
		case "scavChunkFlags.isEmpty":
			put(b2u(f.isEmpty()))
		case "scavChunkFlags.setEmpty":
			f.setEmpty()
		case "scavChunkFlags.setNonEmpty":
			f.setNonEmpty()
		}
		put(uint64(f))
	case "pageCache.empty", "pageCache.alloc", "pageCache.allocN":
		c := cache()
		switch fn {
		case "pageCache.empty":
			put(b2u(c.empty()))
		case "pageCache.alloc", "pageCache.allocN":
			var x, y uintptr
			if fn == "pageCache.alloc" {
				x, y = c.alloc(uintptr(take()))
			} else {
				x, y = c.allocN(uintptr(take()))
			}
			put(uint64(x), uint64(y))
		}
		putCache(&c)
	default:
		return nil, false
	}
	if n != len(a) {
		return nil, false
	}
	return out, ok
}

// PallocWithoutPreemption runs f with this goroutine's M locked (acquirem): nothing preempts it,
// so with one P nothing else runs until f returns (a coverage helper counts f alone). A Go panic
// in f is then fatal ("panic holding locks").
func PallocWithoutPreemption(f func()) {
	mp := acquirem()
	f()
	releasem(mp)
}

// PallocCoverCounters returns the coverage counters of this binary (built with `go test -cover
// -covermode=count -coverpkg=runtime`), or nil when it was built without. Every function that
// has run owns three header words (its number of counters, package and function ids) followed
// by its counters, as internal/coverage/cfile reads them.
func PallocCoverCounters() []uint32 {
	d := &firstmoduledata
	if d.covctrs == d.ecovctrs {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(d.covctrs)), (d.ecovctrs-d.covctrs)/unsafe.Sizeof(uint32(0)))
}
