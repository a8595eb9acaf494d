"""The page allocator: radix tree of summaries over per-chunk bitmaps.

Mirrors src/runtime/mpagealloc.go of Go 1.27.3 (identical in 1.21.13 - 1.27.3 apart from
markRandomPaddingPages, 1.26+) function by function, in Go's order and under Go's names; the
platform-dependent sysInit/sysGrow live in model/mpagealloc_64bit.py and
model/mpagealloc_32bit.py, allocToCache in model/mpagecache.py and scavenge/scavengeOne in
model/mgcscavenge.py, as in the runtime. This is the model's definition; the fuzzer and
`palloc bench` run the fast layer, model/mpagealloc_fast.py, which tests/model/test_fast_paths.py
holds to it step by step.

Go's uintptr arithmetic wraps modulo 2^(8*ptrSize); every address computation here is masked
with the platform's uintptr_mask. Constants come from a palloc.spec.constants.Platform `p`,
which every module-level function takes first.

What the model adds to the runtime, so that a crash is a verdict rather than silence:
- summary memory is tracked per physical page exactly as sysInit/sysGrow map it; reading or
  writing an entry whose page was never mapped raises GoFault, as does an index >= len (a
  bounds panic) or a slice beyond cap (SummaryLevel);
- a nil L2 block of `chunks` dereferenced raises GoFault;
- inputs the runtime leaves undefined raise UndefinedBehaviour from the `_require_*` guards at
  the end of PageAlloc (palloc.model.export.undefined_allowed runs the bare transcription).
"""

from __future__ import annotations

from palloc.spec.errors import GoFault, GoThrow, UndefinedBehaviour
from palloc.model.gomath import align_down, align_up
from palloc.model.mpagecache import PageAllocCache
from palloc.model.mgcscavenge import PageAllocScavenge, ScavengeIndex
from palloc.model.mpallocbits import PallocData
from palloc.model.mranges import AddrRanges, OffAddr, make_addr_range, max_off_addr, min_off_addr
from palloc.spec.constants import PAGE_SHIFT, PAGE_SIZE, PALLOC_SUM_BYTES, Platform

PALLOC_SUM_ALL_FREE = 1 << 63  # the packed value meaning start = max = end = maxPackedValue


# --- mpagealloc.go: index arithmetic ------------------------------------------------------------


def max_search_addr(p: Platform) -> OffAddr:
    """Returns the maximum searchAddr value, which indicates that the heap has no free space."""
    return max_off_addr(p)


def chunk_index(p: Platform, addr: int) -> int:
    """Returns the global index of the palloc chunk containing addr: (addr - arenaBaseOffset) / pallocChunkBytes."""
    return ((addr - p.arena_base_offset) & p.uintptr_mask) >> p.log_palloc_chunk_bytes


def chunk_base(p: Platform, ci: int) -> int:
    """Returns the base address of the palloc chunk at index ci."""
    return ((ci << p.log_palloc_chunk_bytes) + p.arena_base_offset) & p.uintptr_mask


def chunk_page_index(p: Platform, addr: int) -> int:
    """Returns the index of the page containing addr relative to its chunk (raw address, not offset)."""
    return (addr % p.palloc_chunk_bytes) // PAGE_SIZE


def chunk_idx_l1(p: Platform, ci: int) -> int:
    """Returns chunkIdx.l1(): the index into the first level of pageAlloc.chunks (0 without an L1)."""
    if p.palloc_chunks_l1_bits == 0:
        return 0
    return ci >> p.palloc_chunks_l1_shift


def chunk_idx_l2(p: Platform, ci: int) -> int:
    """Returns chunkIdx.l2(): the index into the second level of pageAlloc.chunks."""
    if p.palloc_chunks_l1_bits == 0:
        return ci
    return ci & ((1 << p.palloc_chunks_l2_bits) - 1)


def off_addr_to_level_index(p: Platform, level: int, addr: OffAddr) -> int:
    """Returns the index into summary[level] containing the offset address addr."""
    return ((addr.addr() - p.arena_base_offset) & p.uintptr_mask) >> p.level_shift[level]


def level_index_to_off_addr(p: Platform, level: int, idx: int) -> OffAddr:
    """Returns the offset address of the first byte covered by summary[level][idx]."""
    return _off(p, ((idx << p.level_shift[level]) + p.arena_base_offset) & p.uintptr_mask)


def addrs_to_summary_range(p: Platform, level: int, base: int, limit: int) -> tuple[int, int]:
    """Returns the half-open range [lo, hi) of summary[level] entries covering [base, limit).

    limit is made inclusive before the shift, so a limit on a summary boundary does not count
    the next summary; (limit-1) wraps like Go's uintptr when limit is 0.
    """
    m, abo, shift = p.uintptr_mask, p.arena_base_offset, p.level_shift[level]
    lo = ((base - abo) & m) >> shift
    hi = (((limit - 1 - abo) & m) >> shift) + 1
    return lo, hi


def block_align_summary_range(p: Platform, level: int, lo: int, hi: int) -> tuple[int, int]:
    """Aligns lo down and hi up to the level's block width, 1 << levelBits[level]."""
    e = 1 << p.level_bits[level]
    return align_down(lo, e), align_up(hi, e)


def _partial_overlap(off: int, size: int, base: int, bound: int, abo: int, mask: int) -> GoThrow:
    """Returns find's foundFree throw; off, base and bound are offsets (addr - arenaBaseOffset)."""
    return GoThrow(
        "range partially overlaps",
        f"addr = {(off + abo) & mask:#x}, size = {size:#x}, base = {(base + abo) & mask:#x}, bound = {(bound + abo) & mask:#x}",
    )


def _off(p: Platform, a: int) -> OffAddr:
    """Returns offAddr{a}."""
    return OffAddr(p, a)


# --- not in Go: the memory behind pageAlloc.summary and pageAlloc.chunks, as the runtime maps it ---


class SummaryLevel:
    """One level of pageAlloc.summary: a reserved array of `cap` pallocSums, `len` in bounds.

    Entries are stored sparsely (`vals`); which physical pages of the level's reservation are
    mapped is tracked in `mapped` (page numbers, granularity phys_page_size), or `all_mapped`
    when the whole reservation is mapped at init (32-bit). Mapped but never written entries read
    0, as fresh mmap'd memory does.

    Access like Go: `level[i]` is an index expression (GoFault if i >= len, or if i's page is not
    mapped); `at(i)`/`put(i, v)` access an element of a slice taken with `check_slice(lo, hi)`,
    which Go bounds by cap, not len; only the mapping is checked per element.
    """

    __slots__ = ("level", "cap", "len", "vals", "mapped", "all_mapped", "log_sums_per_page")

    def __init__(self, level: int, cap: int, phys_page_size: int, all_mapped: bool = False):
        self.level = level
        self.cap = cap
        self.len = 0
        self.vals: dict[int, int] = {}
        self.mapped: set[int] = set()
        self.all_mapped = all_mapped
        self.log_sums_per_page = (phys_page_size // PALLOC_SUM_BYTES).bit_length() - 1

    def __len__(self) -> int:
        return self.len

    def is_mapped(self, i: int) -> bool:
        """Reports whether entry i lies on a mapped physical page of summary memory."""
        return self.all_mapped or (i >> self.log_sums_per_page) in self.mapped

    def map_bytes(self, lo: int, hi: int) -> None:
        """Maps the byte range [lo, hi) of the level's reservation (sysMap + sysUsed).

        Mapping fresh memory over a page that is already mapped zeroes it, as mmap(MAP_FIXED)
        does: the summaries on it are lost (sysGrow must never remap, hence its subtract).
        """
        shift = self.log_sums_per_page + 3  # log2(phys_page_size)
        pages = range(lo >> shift, (hi + (1 << shift) - 1) >> shift)
        per_page = 1 << self.log_sums_per_page
        for page in pages:
            if page in self.mapped:
                for i in range(page * per_page, (page + 1) * per_page):
                    self.vals.pop(i, None)
        self.mapped.update(pages)

    def mapped_bytes(self) -> int:
        """Returns how many bytes of this level's reservation are mapped."""
        page = PALLOC_SUM_BYTES << self.log_sums_per_page
        if self.all_mapped:
            return self.cap * PALLOC_SUM_BYTES
        return len(self.mapped) * page

    def _fault(self, i: int, why: str) -> GoFault:
        return GoFault(f"summary[{self.level}][{i:#x}]: {why}")

    def __getitem__(self, i: int) -> int:
        v = self.vals.get(i)
        if v is not None:  # written entries are in bounds and mapped: len and maps only grow
            return v
        if not 0 <= i < self.len:
            raise self._fault(i, f"index out of range with length {self.len:#x}")
        if not self.is_mapped(i):
            raise self._fault(i, "read of unmapped summary memory (segmentation fault)")
        return 0

    def __setitem__(self, i: int, v: int) -> None:
        if i not in self.vals:
            if not 0 <= i < self.len:
                raise self._fault(i, f"index out of range with length {self.len:#x}")
            if not self.is_mapped(i):
                raise self._fault(i, "write to unmapped summary memory (segmentation fault)")
        self.vals[i] = v

    def check_slice(self, lo: int, hi: int) -> None:
        """Checks Go's slice expression s[lo:hi], which is bounded by cap (GoFault otherwise)."""
        if not 0 <= lo <= hi <= self.cap:
            raise self._fault(lo, f"slice bounds [{lo:#x}:{hi:#x}] out of range with capacity {self.cap:#x}")

    def at(self, i: int) -> int:
        """Reads element i of a slice already checked by check_slice: only the mapping matters."""
        v = self.vals.get(i)
        if v is not None:
            return v
        if not self.is_mapped(i):
            raise self._fault(i, "read of unmapped summary memory (segmentation fault)")
        return 0

    def put(self, i: int, v: int) -> None:
        """Writes element i of a slice already checked by check_slice."""
        if i not in self.vals and not self.is_mapped(i):
            raise self._fault(i, "write to unmapped summary memory (segmentation fault)")
        self.vals[i] = v

    def values(self, lo: int, hi: int) -> list[int]:
        """Returns the elements of the slice s[lo:hi], reading every one of them in order.

        Raises GoFault at the first element (in order) on an unmapped page.
        """
        self.check_slice(lo, hi)
        return [self.at(i) for i in range(lo, hi)]


class ChunkBlock(dict):
    """One L2 block of pageAlloc.chunks: 1 << pallocChunksL2Bits pallocData, zeroed.

    Materialised per chunk on first access (a never-touched pallocData is all zero, exactly
    what sysAlloc'd memory holds), so a sparse heap costs memory per chunk used, not per block.
    """

    __slots__ = ("p",)

    def __init__(self, p: Platform):
        super().__init__()
        self.p = p

    def __missing__(self, l2: int) -> PallocData:
        if not 0 <= l2 < (1 << self.p.palloc_chunks_l2_bits):
            raise GoFault(f"chunks L2 index {l2:#x} out of range")
        d = self[l2] = PallocData(self.p)
        return d


class PageAllocScav:
    """pageAlloc.scav: the scavenge index (the released-bytes counters are statistics, not modelled)."""

    __slots__ = ("index",)

    def __init__(self, p: Platform, phys_page_size: int | None = None):
        self.index = ScavengeIndex(p, phys_page_size)


# --- mpagealloc.go: pageAlloc ---------------------------------------------------------------


class PageAlloc(PageAllocCache, PageAllocScavenge):
    """The page allocator (Go's pageAlloc); construct, then call init(test) as the runtime does.

    Fields are the runtime's: summary (one SummaryLevel per level), chunks (l1 -> ChunkBlock),
    search_addr (OffAddr), start/end (chunk indices, [start, end)), in_use (AddrRanges),
    scav (.index ScavengeIndex), summary_mapped_ready, chunk_huge_pages, test. The model adds p
    (the Platform), phys_page_size and phys_huge_page_size (the host's, which the runtime reads
    from the OS), and arenas for the real heap's mode.
    """

    chunk_block_type = ChunkBlock  # what grow allocates as an L2 block of chunks

    def __init__(
        self,
        p: Platform,
        phys_page_size: int | None = None,
        phys_huge_page_size: int | None = None,
    ):
        self.p = p
        self.phys_page_size = p.phys_page_size if phys_page_size is None else phys_page_size
        self.phys_huge_page_size = (
            p.effective_phys_huge_page_size if phys_huge_page_size is None else phys_huge_page_size
        )
        self.summary: list[SummaryLevel] = []
        self.chunks: dict[int, ChunkBlock] = {}
        self.search_addr: OffAddr = _off(p, 0)
        self.start = 0
        self.end = 0
        self.in_use = AddrRanges(p)
        self.scav = PageAllocScav(p, self.phys_page_size)
        self.summary_mapped_ready = 0
        self.chunk_huge_pages = False
        self.test = False
        # The real heap's mode (not test): the arena indices registered in mheap_.arenas, with
        # log2(heapArenaBytes). None is test mode, where findMappedAddr always consults inUse.
        self.arenas: set[int] | None = None
        self.log_heap_arena_bytes = 0

    @classmethod
    def make(cls, p: Platform, test: bool = True, **host) -> "PageAlloc":
        """Returns a new, initialised page allocator (new(pageAlloc) followed by init(test))."""
        pa = cls(p, **host)
        pa.init(test)
        return pa

    def init(self, test: bool) -> None:
        """Initialises the allocator: empty heap, searchAddr = maxSearchAddr().

        Throws "root level max pages doesn't fit in summary" if the root level's page count
        cannot be packed (the Platform refuses such configurations already).
        """
        p = self.p
        if p.level_log_pages[0] > p.log_max_packed_value:
            raise GoThrow("root level max pages doesn't fit in summary")

        # Start with an empty inUse.
        self.in_use = AddrRanges(p)

        # Use the platform-specific sysInit (mpagealloc_64bit.py, mpagealloc_32bit.py).
        self.sys_init(test)

        # Start with the searchAddr in a state indicating there's no free memory.
        self.search_addr = max_search_addr(p)

        # Set the scavenge index's memory (its mapped bytes are summary_mapped_ready's).
        self.summary_mapped_ready += self.scav.index.init(test)

        # Set if we're in a test.
        self.test = test

    def sys_init(self, test: bool) -> None:
        """Reserves (64-bit) or maps (32-bit) the summary levels; see mpagealloc_{64,32}bit.py."""
        if self.p.is_64bit_page_alloc:
            from palloc.model import mpagealloc_64bit as sysimpl
        else:
            from palloc.model import mpagealloc_32bit as sysimpl
        sysimpl.sys_init(self, test)

    def sys_grow(self, base: int, limit: int) -> None:
        """Extends summary lens and maps summary memory for [base, limit); see mpagealloc_{64,32}bit.py."""
        if self.p.is_64bit_page_alloc:
            from palloc.model import mpagealloc_64bit as sysimpl
        else:
            from palloc.model import mpagealloc_32bit as sysimpl
        sysimpl.sys_grow(self, base, limit)

    def try_chunk_of(self, ci: int) -> PallocData | None:
        """Returns the bitmap data for chunk ci, or None if its L2 block was never allocated."""
        l2 = self.chunks.get(chunk_idx_l1(self.p, ci))
        if l2 is None:
            return None
        return l2[chunk_idx_l2(self.p, ci)]

    def chunk_of(self, ci: int) -> PallocData:
        """Returns the chunk at the given chunk index; GoFault (nil dereference) if its L2 block is nil."""
        l2 = self.chunks.get(chunk_idx_l1(self.p, ci))
        if l2 is None:
            raise GoFault(f"chunkOf({ci:#x}): nil L2 block of pageAlloc.chunks (nil pointer dereference)")
        return l2[chunk_idx_l2(self.p, ci)]

    def grow(self, base: int, size: int) -> None:
        """Sets up the metadata for the address range [base, base+size): free and fully scavenged.

        Requires: base and size chunk-aligned, size > 0, the range inside the heap address
        space and below its top (limit must not wrap), not overlapping inUse, neither chunk 0
        nor the zero page (UndefinedBehaviour otherwise).
        """
        self._require_growable(base, size)
        p = self.p
        # Round up to chunks, since we can't deal with increments smaller
        # than chunks. Also, sysGrow expects aligned values.
        limit = align_up((base + size) & p.uintptr_mask, p.palloc_chunk_bytes) & p.uintptr_mask
        base = align_down(base, p.palloc_chunk_bytes)

        # Grow the summary levels in a system-dependent manner.
        # We just update a bunch of additional metadata here.
        self.sys_grow(base, limit)

        # Grow the scavenge index.
        self.summary_mapped_ready += self.scav.index.grow(base, limit)

        # Update p.start and p.end.
        # If no growth happened yet, start == 0. This is generally
        # safe since the zero page is unmapped.
        first_growth = self.start == 0
        start, end = chunk_index(p, base), chunk_index(p, limit)
        if first_growth or start < self.start:
            self.start = start
        if end > self.end:
            self.end = end
        # Note that [base, limit) will never overlap with any existing
        # range inUse because grow only ever adds never-used memory
        # regions to the page allocator.
        self.in_use.add(make_addr_range(p, base, limit))

        # A grow operation is a lot like a free operation, so if our
        # chunk ends up below p.searchAddr, update p.searchAddr to the
        # new address, just like in free.
        b = _off(p, base)
        if b.less_than(self.search_addr):
            self.search_addr = b

        # Add entries into chunks, which is sparse, if needed. Then,
        # initialize the bitmap.
        #
        # Newly-grown memory is always considered scavenged.
        # Check if the chunk's L2 block is nil, and if so allocate it
        # (sysAlloc; the huge-page advice outside test mode is not modelled).
        for c in range(chunk_index(p, base), chunk_index(p, limit)):
            if self.chunks.get(chunk_idx_l1(p, c)) is None:
                self.chunks[chunk_idx_l1(p, c)] = self.chunk_block_type(p)
            self.chunk_of(c).scavenged.set_range(0, p.palloc_chunk_pages)

        # Update summaries accordingly. The grow acts like a free, so
        # we need to ensure this newly-free memory is visible in the
        # summaries.
        self.update(base, size // PAGE_SIZE, True, False)

    def enable_chunk_huge_pages(self) -> None:
        """Enables huge pages for chunk bitmap mappings; only the flag is modelled (idempotent)."""
        self.chunk_huge_pages = True

    def update(self, base: int, npages: int, contig: bool, alloc: bool) -> None:
        """Updates the summaries after the bitmap of [base, base+npages*pageSize) changed.

        contig promises that the range was allocated (alloc) or freed as a whole, so chunks
        strictly inside it are set to 0 or freeChunkSum without looking at their bitmaps.
        Returns at once if a single chunk's leaf summary did not change; the upward walk stops
        at the first level where no summary changed.
        """
        p = self.p
        # base, limit, start, and end are inclusive.
        limit = (base + npages * PAGE_SIZE - 1) & p.uintptr_mask
        sc, ec = chunk_index(p, base), chunk_index(p, limit)

        # Handle updating the lowest level first.
        leaf = self.summary[len(self.summary) - 1]
        if sc == ec:
            # Fast path: the allocation doesn't span more than one chunk,
            # so update this one and if the summary didn't change, return.
            x = leaf[sc]
            y = self.chunk_of(sc).summarize()
            if x == y:
                return
            leaf[sc] = y
        elif contig:
            # Slow contiguous path: the allocation spans more than one chunk
            # and at least one summary is guaranteed to change.
            summary = leaf
            summary[sc] = self.chunk_of(sc).summarize()

            # Update the summaries in between, which are
            # either totally allocated or freed.
            leaf.check_slice(sc + 1, ec)  # whole := p.summary[len(p.summary)-1][sc+1 : ec]
            for i in range(sc + 1, ec):
                leaf.put(i, 0 if alloc else p.free_chunk_sum)

            # Update the last summary.
            summary[ec] = self.chunk_of(ec).summarize()
        else:
            # Slow general path: the allocation spans more than one chunk
            # and at least one summary is guaranteed to change.
            #
            # We can't assume a contiguous allocation happened, so walk over
            # every chunk in the range and manually recompute the summary.
            summary = leaf
            for c in range(sc, ec + 1):
                summary[c] = self.chunk_of(c).summarize()

        # Walk up the radix tree and update the summaries appropriately.
        changed = True
        l = len(self.summary) - 2
        while l >= 0 and changed:
            changed = False

            # Update summaries at level l from summaries at level l+1.
            log_entries_per_block = p.level_bits[l + 1]
            log_max_pages = p.level_log_pages[l + 1]

            # lo and hi describe all the parts of the level we need to look at.
            lo, hi = addrs_to_summary_range(p, l, base, limit + 1)

            # Iterate over each block, updating the corresponding summary in the less-granular level.
            for i in range(lo, hi):
                children = self.summary[l + 1].values(i << log_entries_per_block, (i + 1) << log_entries_per_block)
                s = merge_summaries(p, children, log_max_pages)
                old = self.summary[l][i]
                if old != s:
                    changed = True
                    self.summary[l][i] = s
            l -= 1

    def alloc_range(self, base: int, npages: int) -> int:
        """Marks the range of memory [base, base+npages*pageSize) as allocated and updates the
        summaries; returns the bytes of the range that were scavenged. Does not touch searchAddr.

        Requires: npages > 0, the range inside inUse and free; not checked, as in Go (the
        fuzzer's alloc_range verb checks its own input: goref/model_side.py).
        """
        p = self.p
        limit = (base + npages * PAGE_SIZE - 1) & p.uintptr_mask
        sc, ec = chunk_index(p, base), chunk_index(p, limit)
        si, ei = chunk_page_index(p, base), chunk_page_index(p, limit)
        cp = p.palloc_chunk_pages

        scav = 0
        if sc == ec:
            # The range doesn't cross any chunk boundaries.
            chunk = self.chunk_of(sc)
            scav += chunk.scavenged.popcnt_range(si, ei + 1 - si)
            chunk.alloc_range(si, ei + 1 - si)
            self.scav.index.alloc(sc, ei + 1 - si)
        else:
            # The range crosses at least one chunk boundary.
            chunk = self.chunk_of(sc)
            scav += chunk.scavenged.popcnt_range(si, cp - si)
            chunk.alloc_range(si, cp - si)
            self.scav.index.alloc(sc, cp - si)
            for c in range(sc + 1, ec):
                chunk = self.chunk_of(c)
                scav += chunk.scavenged.popcnt_range(0, cp)
                chunk.alloc_all()
                self.scav.index.alloc(c, cp)
            chunk = self.chunk_of(ec)
            scav += chunk.scavenged.popcnt_range(0, ei + 1)
            chunk.alloc_range(0, ei + 1)
            self.scav.index.alloc(ec, ei + 1)
        self.update(base, npages, True, True)
        return scav * PAGE_SIZE

    def find_mapped_addr(self, addr: OffAddr) -> OffAddr:
        """Returns the smallest mapped offAddr that is >= addr; maxOffAddr if there is none.

        In the real heap (arenas is not None, test False) an address inside an arena registered
        in mheap_.arenas is returned as it is; otherwise, and always in test mode, inUse decides.
        """
        # If we're not in a test, validate first by checking mheap_.arenas.
        # This is a fast path which is only safe to use outside of testing.
        ai = addr._o >> self.log_heap_arena_bytes  # arenaIndex(addr.addr())
        if self.test or self.arenas is None or ai not in self.arenas:
            v_addr, ok = self.in_use.find_addr_greater_equal(addr.addr())
            if ok:
                return _off(self.p, v_addr)
            # The candidate search address is greater than any
            # known address, which means we definitely have no
            # free memory left.
            return max_off_addr(self.p)
        return addr

    def find(self, npages: int) -> tuple[int, OffAddr]:
        """Searches for the first (address-ordered) contiguous free region of npages in size and
        returns a base address for that region.

        It uses p.searchAddr to prune its search and assumes that no palloc chunks below
        chunkIndex(p.searchAddr) contain any free memory at all.

        Also returns a candidate searchAddr: firstFree.base, the base of the narrowest summary
        window known to hold the first free page (the page itself only when the search ends
        inside a chunk's bitmap), made mapped by find_mapped_addr. Returns (0,
        maxSearchAddr()) when there is no such run, in which case the candidate must be ignored.
        Throws "bad summary data" when a summary promised space its children do not have,
        "range partially overlaps" when the first-free window is inconsistent.

        Requires: npages > 0.
        """
        self._require_npages(npages)
        p = self.p
        mask, abo = p.uintptr_mask, p.arena_base_offset
        i = 0
        first_free = [min_off_addr(p), _off(p, p.max_off_addr)]  # base, bound (inclusive)

        def found_free(addr: OffAddr, size: int) -> None:
            base, bound = first_free
            if base.less_equal(addr) and addr.add(size - 1).less_equal(bound):
                first_free[:] = [addr, addr.add(size - 1)]
            elif not (addr.add(size - 1).less_than(base) or bound.less_than(addr)):
                raise _partial_overlap(addr._o, size, base._o, bound._o, abo, mask)

        last_sum, last_sum_idx = 0, -1
        for l in range(len(self.summary)):
            entries_per_block = 1 << p.level_bits[l]
            log_max_pages = p.level_log_pages[l]
            i <<= p.level_bits[l]
            entries = self.summary[l]
            entries.check_slice(i, i + entries_per_block)  # entries := p.summary[l][i : i+entriesPerBlock]
            j0 = 0
            search_idx = off_addr_to_level_index(p, l, self.search_addr)
            if search_idx & ~(entries_per_block - 1) == i:
                j0 = search_idx & (entries_per_block - 1)
            base = size = 0
            descend = False
            for j in range(j0, entries_per_block):
                s = entries.at(i + j)
                if s == 0:
                    size = 0
                    continue
                found_free(level_index_to_off_addr(p, l, i + j), (1 << log_max_pages) * PAGE_SIZE)
                start = palloc_sum_start(p, s)
                if size + start >= npages:
                    if size == 0:
                        base = j << log_max_pages
                    size += start
                    break
                if palloc_sum_max(p, s) >= npages:
                    i += j
                    last_sum_idx, last_sum = i, s
                    descend = True
                    break
                if size == 0 or start < 1 << log_max_pages:
                    size = palloc_sum_end(p, s)
                    base = ((j + 1) << log_max_pages) - size
                    continue
                size += 1 << log_max_pages
            if descend:
                continue
            if size >= npages:
                addr = level_index_to_off_addr(p, l, i).add(base * PAGE_SIZE).addr()
                return addr, self.find_mapped_addr(first_free[0])
            if l == 0:
                return 0, max_search_addr(p)
            raise GoThrow(
                "bad summary data",
                f"summary[{l - 1}][{last_sum_idx:#x}] = {palloc_sum_unpack(p, last_sum)}, level {l}, npages {npages}",
            )
        ci = i
        j, search_idx = self.chunk_of(ci).find(npages, 0)
        if j == mask:
            raise GoThrow("bad summary data", f"summary[leaf][{i:#x}] = {palloc_sum_unpack(p, self.summary[-1][i])}")
        addr = chunk_base(p, ci) + j * PAGE_SIZE
        search_addr = chunk_base(p, ci) + search_idx * PAGE_SIZE
        found_free(_off(p, search_addr), (chunk_base(p, ci + 1) - search_addr) & mask)
        return addr, self.find_mapped_addr(first_free[0])


    def alloc(self, npages: int) -> tuple[int, int]:
        """Allocates npages worth of memory from the page heap, returning the base address for
        the allocation and the amount of scavenged memory in bytes contained in the region
        [base address, base address + npages*pageSize).

        Returns (0, 0) on failure, in which case the scavenged bytes must be ignored.

        Requires: npages > 0.
        """
        self._require_npages(npages)
        p = self.p
        # If the searchAddr refers to a region which has a higher address than
        # any known chunk, then we know we're out of memory.
        if chunk_index(p, self.search_addr.addr()) >= self.end:
            return 0, 0

        # If npages has a chance of fitting in the chunk where the searchAddr is,
        # search it directly.
        search_addr = min_off_addr(p)
        found = False
        if p.palloc_chunk_pages - chunk_page_index(p, self.search_addr.addr()) >= npages:
            # npages is guaranteed to be no greater than pallocChunkPages here.
            i = chunk_index(p, self.search_addr.addr())
            max_ = palloc_sum_max(p, self.summary[len(self.summary) - 1][i])
            if max_ >= npages:
                j, search_idx = self.chunk_of(i).find(npages, chunk_page_index(p, self.search_addr.addr()))
                if j == p.uintptr_mask:
                    raise GoThrow(
                        "bad summary data",
                        f"max = {max_}, npages = {npages}, searchIdx = {chunk_page_index(p, self.search_addr.addr())}",
                    )
                addr = chunk_base(p, i) + j * PAGE_SIZE
                search_addr = _off(p, chunk_base(p, i) + search_idx * PAGE_SIZE)
                found = True  # goto Found
        if not found:
            # We failed to use a searchAddr for one reason or another, so try
            # the slow path.
            addr, search_addr = self.find(npages)
            if addr == 0:
                if npages == 1:
                    # We failed to find a single free page, the smallest unit
                    # of allocation. This means we know the heap is completely
                    # exhausted. Otherwise, the heap still might have free
                    # space in it, just not enough contiguous space to
                    # accommodate npages.
                    self.search_addr = max_search_addr(p)
                return 0, 0
        # Found:
        # Go ahead and actually mark the bits now that we have an address.
        scav = self.alloc_range(addr, npages)

        # If we found a higher searchAddr, we know that all the
        # heap memory before that searchAddr in an offset address space is
        # allocated, so bump p.searchAddr up to the new one.
        if self.search_addr.less_than(search_addr):
            self.search_addr = search_addr
        return addr, scav

    def free(self, base: int, npages: int) -> None:
        """Returns npages worth of memory starting at base back to the page heap.

        Requires: npages > 0 and every page in the range allocated and inside inUse
        (UndefinedBehaviour otherwise; the runtime may throw "allocated pages below zero?").
        """
        self._require_pages(base, npages, allocated=True)
        p = self.p
        # If we're freeing pages below the p.searchAddr, update searchAddr.
        b = _off(p, base)
        if b.less_than(self.search_addr):
            self.search_addr = b
        limit = (base + npages * PAGE_SIZE - 1) & p.uintptr_mask
        cp = p.palloc_chunk_pages
        if npages == 1:
            # Fast path: we're clearing a single bit, and we know exactly
            # where it is, so mark it directly.
            i = chunk_index(p, base)
            pi = chunk_page_index(p, base)
            self.chunk_of(i).free1(pi)
            self.scav.index.free(i, pi, 1)
        else:
            # Slow path: we're clearing more bits so we may need to iterate.
            sc, ec = chunk_index(p, base), chunk_index(p, limit)
            si, ei = chunk_page_index(p, base), chunk_page_index(p, limit)

            if sc == ec:
                # The range doesn't cross any chunk boundaries.
                self.chunk_of(sc).free(si, ei + 1 - si)
                self.scav.index.free(sc, si, ei + 1 - si)
            else:
                # The range crosses at least one chunk boundary.
                self.chunk_of(sc).free(si, cp - si)
                self.scav.index.free(sc, si, cp - si)
                for c in range(sc + 1, ec):
                    self.chunk_of(c).free_all()
                    self.scav.index.free(c, 0, cp)
                self.chunk_of(ec).free(0, ei + 1)
                self.scav.index.free(ec, 0, ei + 1)
        self.update(base, npages, True, False)

    def mark_random_padding_pages(self, base: int, npages: int) -> None:
        """Marks [base, base+npages*pageSize) both allocated and scavenged (Go 1.26+).

        Requires: npages > 0, the range inside inUse and free.
        """
        self._require_pages(base, npages, allocated=False)
        p = self.p
        cp = p.palloc_chunk_pages
        index = self.scav.index
        limit = (base + npages * PAGE_SIZE - 1) & p.uintptr_mask
        sc, ec = chunk_index(p, base), chunk_index(p, limit)
        si, ei = chunk_page_index(p, base), chunk_page_index(p, limit)
        if sc == ec:
            chunk = self.chunk_of(sc)
            chunk.alloc_range(si, ei + 1 - si)
            index.alloc(sc, ei + 1 - si)
            chunk.scavenged.set_range(si, ei + 1 - si)
        else:
            chunk = self.chunk_of(sc)
            chunk.alloc_range(si, cp - si)
            index.alloc(sc, cp - si)
            chunk.scavenged.set_range(si, cp - si)
            for c in range(sc + 1, ec):
                chunk = self.chunk_of(c)
                chunk.alloc_all()
                index.alloc(c, cp)
                chunk.scavenged.set_all()
            chunk = self.chunk_of(ec)
            chunk.alloc_range(0, ei + 1)
            index.alloc(ec, ei + 1)
            chunk.scavenged.set_range(0, ei + 1)
        self.update(base, npages, True, True)

    # --- not in Go: guards against inputs the runtime leaves undefined ------------------------

    def _off_of(self, a: int) -> int:
        return (a - self.p.arena_base_offset) & self.p.uintptr_mask

    def _require_npages(self, npages: int) -> None:
        if npages <= 0:
            raise UndefinedBehaviour(f"npages = {npages}: the runtime never asks for zero pages")

    def _require_growable(self, base: int, size: int) -> None:
        p = self.p
        cb = p.palloc_chunk_bytes
        if size <= 0:
            raise UndefinedBehaviour(f"grow({base:#x}, {size:#x}): size must be positive")
        if base % cb or size % cb:
            raise UndefinedBehaviour(
                f"grow({base:#x}, {size:#x}): base and size must be multiples of pallocChunkBytes "
                "(mheap.grow always passes whole chunks; summaries would miss the last chunk)"
            )
        lo = self._off_of(base)
        if lo + size >= (1 << p.heap_addr_bits):
            # Reaching the very top makes limit wrap (to 0 on 32-bit); mheap never grows there
            # since linearAlloc chops the top arena off (golang/go#35954).
            raise UndefinedBehaviour(
                f"grow({base:#x}, {size:#x}): range reaches the top of the heap address space (golang/go#35954)"
            )
        if lo >> p.log_palloc_chunk_bytes == 0:
            raise UndefinedBehaviour(f"grow({base:#x}, {size:#x}): chunk 0 is never mapped (start == 0 means no growth)")
        if lo <= self._off_of(0) < lo + size:
            raise UndefinedBehaviour(
                f"grow({base:#x}, {size:#x}): the zero page is never mapped (alloc returns 0 for failure)"
            )
        k = self._first_in_use_range_above(lo)
        if k < len(self.in_use.ranges) and self._off_of(self.in_use.ranges[k].base.a) < lo + size:
            r = self.in_use.ranges[k]
            raise UndefinedBehaviour(
                f"grow({base:#x}, {size:#x}): overlaps inUse range "
                f"[{r.base.addr():#x}, {r.limit.addr():#x}); grow only adds never-used memory"
            )

    def _require_pages(self, base: int, npages: int, allocated: bool) -> None:
        """Requires [base, base+npages*pageSize) page-aligned, in inUse, and all allocated or all free."""
        if npages <= 0:
            self._require_npages(npages)
        if base % PAGE_SIZE:
            raise UndefinedBehaviour(f"base {base:#x} is not page-aligned")
        p = self.p
        mask, abo, lcb = p.uintptr_mask, p.arena_base_offset, p.log_palloc_chunk_bytes
        first = (base - abo) & mask
        last = first + ((npages - 1) << PAGE_SHIFT)
        ranges = self.in_use.ranges
        if len(ranges) == 1:
            r = ranges[0]  # the usual heap: skip the search
            inside = r.base._o <= first and last < r.limit._o
        else:
            inside = last <= mask and self._in_one_in_use_range(first, last)
        if not inside:
            raise UndefinedBehaviour(f"[{base:#x}, +{npages} pages) is not inside one inUse range (never grown)")
        cp = p.palloc_chunk_pages
        sc, ec = first >> lcb, last >> lcb
        si, ei = (first >> PAGE_SHIFT) & (cp - 1), (last >> PAGE_SHIFT) & (cp - 1)
        if sc == ec:  # one chunk, and it holds: return without building the per-chunk counts
            d = self.try_chunk_of(sc)
            if d is not None:
                m = ((1 << (ei + 1 - si)) - 1) << si
                v = d.v & m
                if (v == m) if allocated else not v:
                    return
        for c in range(sc, ec + 1):
            lo = si if c == sc else 0
            hi = ei + 1 if c == ec else cp
            n = ((self.chunk_of(c).v >> lo) & ((1 << (hi - lo)) - 1)).bit_count()
            if allocated and n != hi - lo:
                if self._free_underflows_in_use(sc, ec, si, ei):
                    raise UndefinedBehaviour(
                        f"free of free pages: chunk {c:#x} pages [{lo}, {hi}) has {hi - lo - n} free, and the "
                        "scavenge index's count of allocated pages would drop below zero",
                        throw="allocated pages below zero?",
                    )
                raise UndefinedBehaviour(
                    f"free of free pages: chunk {c:#x} pages [{lo}, {hi}) has {hi - lo - n} free "
                    "(the runtime does not check: it frees them and its counts go wrong)"
                )
            if not allocated and n != 0:
                raise UndefinedBehaviour(
                    f"allocation of allocated pages: chunk {c:#x} pages [{lo}, {hi}) has {n} allocated"
                )

    def _free_underflows_in_use(self, sc: int, ec: int, si: int, ei: int) -> bool:
        """Reports whether freeing pages si of chunk sc to ei of chunk ec takes more pages from some
        chunk than the scavenge index counts as allocated there: the runtime checks that, and
        throws "allocated pages below zero?" (scavChunkData.free), however much it freed before."""
        chunks, cp = self.scav.index.chunks, self.p.palloc_chunk_pages
        for c in range(sc, ec + 1):
            d = chunks.get(c)
            if (d.in_use if d is not None else 0) < (ei + 1 if c == ec else cp) - (si if c == sc else 0):
                return True
        return False

    def _first_in_use_range_above(self, off: int) -> int:
        """Returns the index of the first inUse range whose limit is above offset off (binary search)."""
        ranges = self.in_use.ranges
        abo, mask = self.p.arena_base_offset, self.p.uintptr_mask
        lo, hi = 0, len(ranges)
        while lo < hi:
            mid = (lo + hi) >> 1
            if (ranges[mid].limit.a - abo) & mask <= off:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _in_one_in_use_range(self, first: int, last: int) -> bool:
        """Reports whether one inUse range holds the offsets first and last."""
        ranges = self.in_use.ranges
        k = self._first_in_use_range_above(first)
        if k == len(ranges):
            return False
        r = ranges[k]
        abo, mask = self.p.arena_base_offset, self.p.uintptr_mask
        return (r.base.a - abo) & mask <= first and last < (r.limit.a - abo) & mask


# --- mpagealloc.go: pallocSum ----------------------------------------------------------------------------


def pack_palloc_sum(p: Platform, start: int, max_: int, end: int) -> int:
    """Packs (start, max, end) into a pallocSum.

    If max == maxPackedValue the result is 1<<63 whatever start and end are (they must then
    equal maxPackedValue too); otherwise each field is masked to logMaxPackedValue bits.
    """
    mpv = p.max_packed_value
    if max_ == mpv:
        return PALLOC_SUM_ALL_FREE
    m, lg = mpv - 1, p.log_max_packed_value
    return (start & m) | ((max_ & m) << lg) | ((end & m) << (2 * lg))


def palloc_sum_start(p: Platform, s: int) -> int:
    """Returns the start field of a packed sum (maxPackedValue if bit 63 is set)."""
    if s & PALLOC_SUM_ALL_FREE:
        return p.max_packed_value
    return s & (p.max_packed_value - 1)


def palloc_sum_max(p: Platform, s: int) -> int:
    """Returns the max field of a packed sum (maxPackedValue if bit 63 is set)."""
    if s & PALLOC_SUM_ALL_FREE:
        return p.max_packed_value
    return (s >> p.log_max_packed_value) & (p.max_packed_value - 1)


def palloc_sum_end(p: Platform, s: int) -> int:
    """Returns the end field of a packed sum (maxPackedValue if bit 63 is set)."""
    if s & PALLOC_SUM_ALL_FREE:
        return p.max_packed_value
    return (s >> (2 * p.log_max_packed_value)) & (p.max_packed_value - 1)


def palloc_sum_unpack(p: Platform, s: int) -> tuple[int, int, int]:
    """Returns (start, max, end) of a packed sum."""
    mpv = p.max_packed_value
    if s & PALLOC_SUM_ALL_FREE:
        return mpv, mpv, mpv
    m, lg = mpv - 1, p.log_max_packed_value
    return s & m, (s >> lg) & m, (s >> (2 * lg)) & m


def merge_summaries(p: Platform, sums, log_max_pages_per_sum: int) -> int:
    """Merges a contiguous slice of pallocSums, each covering 1 << log_max_pages_per_sum pages,
    into one pallocSum.

    Requires: len(sums) >= 1.
    """
    # Merge the summaries in sums into one.
    #
    # We do this by keeping a running summary representing the merged
    # summaries of sums[:i] in start, most, and end.
    start, most, end = palloc_sum_unpack(p, sums[0])
    for i in range(1, len(sums)):
        # Merge in sums[i].
        si, mi, ei = palloc_sum_unpack(p, sums[i])

        # Merge in sums[i].start only if the running summary is
        # completely free, otherwise this summary's start
        # plays no role in the combined sum.
        if start == i << log_max_pages_per_sum:
            start += si

        # Recompute the max value of the running sum by looking
        # across the boundary between the running sum and sums[i]
        # and at the max sums[i], taking the greatest of those two
        # and the max of the running sum.
        most = max(most, end + si, mi)

        # Merge in end by checking if this new summary is totally
        # free. If it is, then we want to extend the running sum's
        # end by the new summary. If not, then we have some alloc'd
        # pages in there and we just want to take the end value in
        # sums[i].
        if ei == 1 << log_max_pages_per_sum:
            end += 1 << log_max_pages_per_sum
        else:
            end = ei
    return pack_palloc_sum(p, start, most, end)


def merge_summaries_slow(p: Platform, sums, log_max_pages_per_sum: int) -> int:
    """Returns the summary of the concatenation of the runs each summary stands for.

    The readable twin of merge_summaries, from the definition: each summary is expanded to a
    canonical run list (free start run, allocated page, interior max run if it is longer than
    both ends, allocated page, free end run), the lists are concatenated, and the summary is read
    off directly.

    Requires: every sum is the summary of some bitmap of 1 << log_max_pages_per_sum pages.
    """
    n = 1 << log_max_pages_per_sum
    runs: list[tuple[bool, int]] = []  # (free, length), adjacent entries may share a kind
    for s in sums:
        start, most, end = palloc_sum_unpack(p, s)
        if start == n:
            runs.append((True, n))
            continue
        interior = most if most > max(start, end) else 0
        gap = n - start - end - interior  # allocated pages, at least 1 (2 if interior)
        runs.append((True, start))
        if interior:
            left = 1
            runs += [(False, left), (True, interior), (False, gap - left)]
        else:
            runs.append((False, gap))
        runs.append((True, end))
    # Coalesce and read off start, max, end.
    merged: list[list] = []
    for free, length in runs:
        if length == 0:
            continue
        if merged and merged[-1][0] == free:
            merged[-1][1] += length
        else:
            merged.append([free, length])
    total = n * len(sums)
    free_runs = [length for free, length in merged if free]
    if merged == [[True, total]]:
        start = most = end = total
    else:
        start = merged[0][1] if merged and merged[0][0] else 0
        end = merged[-1][1] if merged and merged[-1][0] else 0
        most = max(free_runs, default=0)
    return pack_palloc_sum(p, start, most, end)
