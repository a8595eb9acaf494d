"""The page allocator: radix tree of summaries over per-chunk bitmaps.

Mirrors src/runtime/mpagealloc.go of Go 1.27.3 (identical in 1.21.13 - 1.27.3 apart from
markRandomPaddingPages, 1.26+) line by line; the platform-dependent sysInit/sysGrow live in
model/mpagealloc_64bit.py and model/mpagealloc_32bit.py, allocToCache in model/mpagecache.py
and scavenge/scavengeOne in model/mgcscavenge.py, as in the runtime.

Go's uintptr arithmetic wraps modulo 2^(8*ptrSize); every address computation here is masked
with the platform's uintptr_mask. Constants come from a palloc.spec.constants.Platform `p`,
which every module-level function takes first.

What the model adds to the runtime, so that a crash is a verdict rather than silence:
- summary memory is tracked per physical page exactly as sysInit/sysGrow map it; reading or
  writing an entry whose page was never mapped raises GoFault, as does an index >= len (a
  bounds panic) or a slice beyond cap;
- a nil L2 block of `chunks` dereferenced raises GoFault;
- inputs the runtime leaves undefined raise UndefinedBehaviour from the `_require_*` guards
  (switch them off with `guard_undefined = False` to run the bare transcription).

Where the transcription departs from a literal reading it is for speed only and keeps Go's
observable behaviour: offAddr comparisons on hot paths are integer comparisons of offsets
(addr - arenaBaseOffset); find skips runs of zero summaries (up to 16384 at the root on 48-bit
platforms) through SummaryLevel.scan, which still reads, and faults on, every entry Go reads;
written summary entries are read straight from the sparse store, since len and the mapping
only ever grow; alloc and free fuse allocRange/free, the scavenge index and the leaf update
for a run inside one chunk; update's walk derives a parent from its old value when only a
child's max (start held) changed, while a write tally shows every interior entry is the merge
of its children. Each has its readable twin (alloc_range, update_slow, find_slow,
find_mapped_addr_slow) and tests/model/test_fast_paths.py compares them step by step.
`palloc bench` measures the result. Installed, this module is compiled by Cython (setup.py);
mpagealloc.pxd gives merge_summaries and find's _scan_block C integers there.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import chain

from palloc.spec.errors import GoFault, GoThrow, UndefinedBehaviour
from palloc.model.gomath import align_down, align_up
from palloc.model.mpagecache import PageAllocCache
from palloc.model.mgcscavenge import PageAllocScavenge, ScavengeIndex
from palloc.model.mpallocbits import PallocData
from palloc.model.mranges import AddrRanges, OffAddr, make_addr_range, min_off_addr
from palloc.spec.constants import PAGE_SHIFT, PAGE_SIZE, PALLOC_SUM_BYTES, Platform

PALLOC_SUM_ALL_FREE = 1 << 63  # the packed value meaning start = max = end = maxPackedValue


# --- index arithmetic ---------------------------------------------------------------------


def max_search_addr(p: Platform) -> OffAddr:
    """Returns the maximum searchAddr value (maxOffAddr), which means the heap has no free space."""
    return _off(p, p.max_off_addr)


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


class ChunkIdx(int):
    """A global chunk index (Go's chunkIdx); plain ints are accepted everywhere in the model."""

    def l1(self, p: Platform) -> int:
        """Returns the index into the first level of pageAlloc.chunks."""
        return chunk_idx_l1(p, self)

    def l2(self, p: Platform) -> int:
        """Returns the index into the second level of pageAlloc.chunks."""
        return chunk_idx_l2(p, self)


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


# What _scan_block stopped at.
_SCAN_UNWRITTEN, _SCAN_FOUND, _SCAN_DESCEND, _SCAN_END = 0, 1, 2, 3


def _scan_block(get, k: int, hi: int, i: int, npages: int, size: int, base: int, log_max_pages: int,
                fm: int, lg: int) -> tuple[int, int, int, int, int]:
    """find's loop over the entries k..hi-1 of a small block (the block starts at entry i),
    carrying the free run (size, base) in: Go's loop body, on integers.

    Returns (what, k, size, base, first): first is the first nonzero entry met (-1 if none),
    which the caller hands to foundFree; what is
      _SCAN_UNWRITTEN: entry k was never written (None): the caller reads it checked (0 or a
                       fault) and goes on from k+1 with size 0;
      _SCAN_FOUND:     npages free pages start base pages into the block;
      _SCAN_DESCEND:   entry k's max is at least npages: descend into it;
      _SCAN_END:       the block ended (k = hi) with the run (size, base).

    Requires: npages below 2^62 (find clamps it: no run of pages is that long).
    """
    first = -1
    mpv, lg2 = fm + 1, lg + lg
    while k < hi:
        v = get(k)
        if not v:
            if v is None:
                return _SCAN_UNWRITTEN, k, size, base, first
            size = 0
            k += 1
            continue
        if first < 0:
            first = k
        s = v
        # sum.start(), sum.max(), sum.end(), inlined.
        if s >> 63:
            start = most = end = mpv
        else:
            start, most, end = s & fm, (s >> lg) & fm, (s >> lg2) & fm
        if size + start >= npages:
            # The run straddles the boundary (or starts here).
            if size == 0:
                base = (k - i) << log_max_pages
            return _SCAN_FOUND, k, size, base, first
        if most >= npages:
            return _SCAN_DESCEND, k, size, base, first
        if size == 0 or start < 1 << log_max_pages:
            size = end
            base = ((k - i + 1) << log_max_pages) - size
        else:
            size += 1 << log_max_pages
        k += 1
    return _SCAN_END, k, size, base, first


def _off(p: Platform, a: int) -> OffAddr:
    """Returns offAddr{a}; the one place the model builds an OffAddr."""
    return OffAddr(p, a)


# --- pallocSum ----------------------------------------------------------------------------


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
    """Merges consecutive summaries, each covering 1 << log_max_pages_per_sum pages, into one.

    Computes what Go's loop (merge_summaries_go) computes, in two passes: start first (it grows
    only while every summary so far is completely free, so the pass usually stops at once), then
    most and end in one loop that does not unpack zero summaries (a zero leaves start, raises most
    to end and resets end, which is what the general step does).

    An entry may be None, an unwritten summary on a mapped page, which reads as 0.

    Requires: len(sums) >= 1.
    """
    mpv = p.max_packed_value
    m, lg = mpv - 1, p.log_max_packed_value
    lg2 = lg + lg
    full = 1 << log_max_pages_per_sum
    # start: if start == i<<logMaxPagesPerSum { start += si }, for i = 1, 2, ...
    x = sums[0] or 0
    start = mpv if x >> 63 else x & m
    i = 1
    while start == i << log_max_pages_per_sum and i < len(sums):
        x = sums[i] or 0
        start += mpv if x >> 63 else x & m
        i += 1
    x = sums[0] or 0
    if x >> 63:
        most = end = mpv
    else:
        most, end = (x >> lg) & m, (x >> lg2) & m
    for y in sums[1:]:
        if not y:  # 0 or None
            if end > most:
                most = end
            end = 0
            continue
        x = y  # a summary, never None (x is a uint64 where Cython compiles this: mpagealloc.pxd)
        if x >> 63:
            si = mi = ei = mpv
        else:
            si, mi, ei = x & m, (x >> lg) & m, (x >> lg2) & m
        # most = max(most, end+si, mi)
        if end + si > most:
            most = end + si
        if mi > most:
            most = mi
        end = end + full if ei == full else ei
    if most == mpv:
        return PALLOC_SUM_ALL_FREE
    return (start & m) | ((most & m) << lg) | ((end & m) << lg2)


def merge_summaries_go(p: Platform, sums, log_max_pages_per_sum: int) -> int:
    """Transcribes Go's mergeSummaries loop as written; the twin merge_summaries must equal on any input.

    Requires: len(sums) >= 1.
    """
    start, most, end = palloc_sum_unpack(p, sums[0])
    for i in range(1, len(sums)):
        si, mi, ei = palloc_sum_unpack(p, sums[i])
        if start == i << log_max_pages_per_sum:
            start += si
        most = max(most, end + si, mi)
        if ei == 1 << log_max_pages_per_sum:
            end += 1 << log_max_pages_per_sum
        else:
            end = ei
    return pack_palloc_sum(p, start, most, end)


def merge_summaries_slow(p: Platform, sums, log_max_pages_per_sum: int) -> int:
    """Returns the summary of the concatenation of the runs each summary stands for.

    The slow twin of merge_summaries: each summary is expanded to a canonical run list
    (free start run, allocated page, interior max run if it is longer than both ends, allocated
    page, free end run), the lists are concatenated, and the summary is read off directly.

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


# --- summary memory ------------------------------------------------------------------------


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

    __slots__ = ("level", "cap", "len", "vals", "mapped", "all_mapped", "log_sums_per_page", "_keys", "tally")

    def __init__(self, level: int, cap: int, phys_page_size: int, all_mapped: bool = False):
        self.level = level
        self.cap = cap
        self.len = 0
        self.vals: dict[int, int] = {}
        self.mapped: set[int] = set()
        self.all_mapped = all_mapped
        self.log_sums_per_page = (phys_page_size // PALLOC_SUM_BYTES).bit_length() - 1
        self._keys: tuple[int, list[int]] = (0, [])  # (len(vals), sorted(vals)) when last sorted
        # Counts writes through level[i] = v and put, and pages remapped over entries (shared by
        # the levels of one PageAlloc, which tells its own summary updates from other writes).
        self.tally = [0]

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
                self.tally[0] += 1
        self.mapped.update(pages)
        self._keys = (-1, [])  # keys may have been popped: len(vals) alone no longer tells

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
        self.tally[0] += 1

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
        self.tally[0] += 1

    def scan(self, lo: int, hi: int):
        """Yields (index, value) of the nonzero entries of [lo, hi) in order, reading each entry.

        A zero entry is skipped, but reading it first faults if its page is unmapped, so a
        consumer that stops early has read exactly the entries Go's loop would have read.
        A long range over few written entries (the root level, 2^14 entries on 64-bit) is
        walked by written index and by page (scan_sparse); scan_slow is the per-entry twin.
        """
        if hi - lo > 64 and len(self.vals) * 8 < hi - lo:
            return self.scan_sparse(lo, hi)
        return self.scan_slow(lo, hi)

    def sorted_keys(self) -> list[int]:
        """Returns the written indices in order (cached: entries are only added, except by map_bytes)."""
        n, keys = self._keys
        if n != len(self.vals):
            keys = sorted(self.vals)
            self._keys = (len(keys), keys)
        return keys

    def _check_gap(self, a: int, b: int) -> None:
        """Reads the unwritten entries [a, b) (zeros): faults at the first on an unmapped page."""
        if self.all_mapped or a >= b:
            return
        shift, mapped = self.log_sums_per_page, self.mapped
        for page in range(a >> shift, ((b - 1) >> shift) + 1):
            if page not in mapped:
                raise self._fault(max(a, page << shift), "read of unmapped summary memory (segmentation fault)")

    def scan_sparse(self, lo: int, hi: int):
        """Yields what scan_slow(lo, hi) yields, visiting written entries and the pages between them."""
        keys, vals = self.sorted_keys(), self.vals
        nxt = lo
        for x in range(bisect_left(keys, lo), len(keys)):
            k = keys[x]
            if k >= hi:
                break
            self._check_gap(nxt, k)
            nxt = k + 1
            v = vals[k]
            if v:
                yield k, v
        self._check_gap(nxt, hi)

    def scan_slow(self, lo: int, hi: int):
        """Yields what scan(lo, hi) yields, reading entry by entry as Go's loop does."""
        get = self.vals.get
        all_mapped, mapped, shift = self.all_mapped, self.mapped, self.log_sums_per_page
        checked = -1
        for i in range(lo, hi):
            v = get(i)
            if v:
                yield i, v
            elif v is None and not all_mapped:
                page = i >> shift
                if page != checked:
                    if page not in mapped:
                        raise self._fault(i, "read of unmapped summary memory (segmentation fault)")
                    checked = page

    def one_mapped_page(self, lo: int, hi: int) -> bool:
        """Reports whether entries [lo, hi) (hi > lo) all lie on one mapped page (so reading them cannot fault)."""
        shift = self.log_sums_per_page
        return self.all_mapped or (lo >> shift == (hi - 1) >> shift and lo >> shift in self.mapped)

    def values(self, lo: int, hi: int) -> list[int]:
        """Returns the elements of the slice s[lo:hi], reading every one of them in order.

        Raises GoFault at the first element (in order) on an unmapped page.
        """
        self.check_slice(lo, hi)
        get = self.vals.get
        out = list(map(get, range(lo, hi)))
        if None in out:
            if self.one_mapped_page(lo, hi):
                return [0 if v is None else v for v in out]  # no fault possible
            # Unwritten entries read 0 if their page is mapped; written ones are mapped.
            checked = -1
            shift = self.log_sums_per_page
            for k, v in enumerate(out):
                if v is None:
                    page = (lo + k) >> shift
                    if page != checked:
                        if not (self.all_mapped or page in self.mapped):
                            raise self._fault(lo + k, "read of unmapped summary memory (segmentation fault)")
                        checked = page
                    out[k] = 0
        return out


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
    """pageAlloc.scav: the scavenge index and the scavenger's released-bytes counters."""

    __slots__ = ("index", "released_bg", "released_eager")

    def __init__(self, p: Platform, phys_page_size: int | None = None):
        self.index = ScavengeIndex(p, phys_page_size)
        self.released_bg = 0
        self.released_eager = 0


# --- pageAlloc -----------------------------------------------------------------------------


class PageAlloc(PageAllocCache, PageAllocScavenge):
    """The page allocator (Go's pageAlloc); construct, then call init(test) as the runtime does.

    Fields are the runtime's: summary (one SummaryLevel per level), chunks (l1 -> ChunkBlock),
    search_addr (OffAddr), start/end (chunk indices, [start, end)), in_use (AddrRanges),
    scav (.index ScavengeIndex), summary_mapped_ready, chunk_huge_pages, test. The model adds p
    (the Platform), phys_page_size and phys_huge_page_size (the host's, which the runtime reads
    from the OS) and guard_undefined.
    """

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
        self.guard_undefined = True
        # The real heap's mode (not test): the arena indices registered in mheap_.arenas, with
        # log2(heapArenaBytes). None is test mode, where findMappedAddr always consults inUse.
        self.arenas: set[int] | None = None
        self.log_heap_arena_bytes = 0
        self._found: tuple[int, int] | None = None  # the run alloc is about to pass to alloc_range
        # Every interior summary entry equals the merge of its children while the levels' shared
        # write tally equals _trusted: only update writes then (see _update_up).
        self._tally = [0]
        self._trusted = 0
        # Hot-path copies of platform constants (the runtime's are compile-time constants).
        self._mask = p.uintptr_mask
        self._abo = p.arena_base_offset
        self._log_chunk_bytes = p.log_palloc_chunk_bytes
        self._chunk_bytes = p.palloc_chunk_bytes
        self._chunk_pages = p.palloc_chunk_pages
        self._l1_shift = p.palloc_chunks_l1_shift if p.palloc_chunks_l1_bits else p.ptr_bits
        self._l2_mask = (1 << p.palloc_chunks_l2_bits) - 1
        self._free_chunk_sum = p.free_chunk_sum
        # Per summary level (sysInit makes p.summary_levels of them), for find: levelBits,
        # entries per block, levelLogPages, levelShift, bytes an entry covers.
        self._levels = tuple(
            (p.level_bits[l], 1 << p.level_bits[l], p.level_log_pages[l], p.level_shift[l],
             (1 << p.level_log_pages[l]) * PAGE_SIZE)
            for l in range(p.summary_levels)
        )
        # update's upward walk, leaf parent first: level, levelShift, and the child level's
        # levelBits and levelLogPages.
        self._walk = tuple(
            (l, p.level_shift[l], p.level_bits[l + 1], p.level_log_pages[l + 1])
            for l in range(p.summary_levels - 2, -1, -1)
        )
        self._walks = tuple(self._walk[k:] for k in range(len(self._walk) + 1))  # the walk from its k'th level
        lg = p.log_max_packed_value
        # alloc's and free's hot-path constants, in one tuple.
        self._hot = (self._log_chunk_bytes, self._abo, self._mask, self._chunk_pages, self._l1_shift,
                     self._l2_mask, lg, p.max_packed_value - 1)
        self._max_off = (p.max_off_addr - self._abo) & self._mask  # maxOffAddr, as an offset
        self._max_field = (p.max_packed_value - 1) << lg  # a packed sum's max field
        self._start_end_fields = (p.max_packed_value - 1) | ((p.max_packed_value - 1) << (lg + lg))
        # alloc and free fuse allocRange/free, the scavenge index and update for a run inside
        # one chunk, unless a subclass replaced a step (the broken twins do): then every step
        # is called as the runtime calls it.
        cls = type(self)
        self._fused = cls.alloc_range is PageAlloc.alloc_range and cls.update is PageAlloc.update

    @classmethod
    def make(cls, p: Platform, test: bool = True, **host) -> "PageAlloc":
        """Returns a new, initialised page allocator (new(pageAlloc) followed by init(test))."""
        pa = cls(p, **host)
        pa.init(test)
        return pa

    # --- init and growth ----------------------------------------------------------------

    def init(self, test: bool) -> None:
        """Initialises the allocator: empty heap, searchAddr = maxSearchAddr().

        Throws "root level max pages doesn't fit in summary" if the root level's page count
        cannot be packed (the Platform refuses such configurations already).
        """
        p = self.p
        if p.level_log_pages[0] > p.log_max_packed_value:
            raise GoThrow("root level max pages doesn't fit in summary")
        self.in_use = AddrRanges(p)
        self.sys_init(test)
        for level in self.summary:
            level.tally = self._tally
        self._trusted = self._tally[0]  # fresh memory: all zero, and merge(zeros) is zero
        self.search_addr = max_search_addr(p)
        self.summary_mapped_ready += self.scav.index.init(test)
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
        l2 = self.chunks.get(ci >> self._l1_shift)
        if l2 is None:
            return None
        return l2[ci & self._l2_mask]

    def chunk_of(self, ci: int) -> PallocData:
        """Returns the bitmap data for chunk ci; GoFault (nil dereference) if its L2 block is nil."""
        l2 = self.chunks.get(ci >> self._l1_shift)
        if l2 is None:
            raise GoFault(f"chunkOf({ci:#x}): nil L2 block of pageAlloc.chunks (nil pointer dereference)")
        return l2[ci & self._l2_mask]

    def grow(self, base: int, size: int) -> None:
        """Sets up the metadata for [base, base+size): free and fully scavenged.

        Requires: base and size chunk-aligned, size > 0, the range inside the heap address
        space and below its top (limit must not wrap), not overlapping inUse, neither chunk 0
        nor the zero page (UndefinedBehaviour otherwise).
        """
        if self.guard_undefined:
            self._require_growable(base, size)
        p, mask = self.p, self._mask
        limit = align_up((base + size) & mask, self._chunk_bytes) & mask
        base = align_down(base, self._chunk_bytes)

        self.sys_grow(base, limit)
        self.summary_mapped_ready += self.scav.index.grow(base, limit)

        first_growth = self.start == 0
        start, end = chunk_index(p, base), chunk_index(p, limit)
        if first_growth or start < self.start:
            self.start = start
        if end > self.end:
            self.end = end
        self.in_use.add(make_addr_range(p, base, limit))

        b = _off(p, base)
        if b.less_than(self.search_addr):
            self.search_addr = b

        for c in range(chunk_index(p, base), chunk_index(p, limit)):
            l1 = c >> self._l1_shift
            if self.chunks.get(l1) is None:
                # sysAlloc of an L2 block; huge-page advice (non-test) is not modelled.
                self.chunks[l1] = ChunkBlock(p)
            self.chunk_of(c).scavenged.set_range(0, self._chunk_pages)

        self.update(base, size // PAGE_SIZE, True, False)

    def enable_chunk_huge_pages(self) -> None:
        """Enables huge pages for chunk bitmap mappings; only the flag is modelled (idempotent)."""
        self.chunk_huge_pages = True

    # --- summaries ----------------------------------------------------------------------

    def update(self, base: int, npages: int, contig: bool, alloc: bool) -> None:
        """Updates the summaries after the bitmap of [base, base+npages*pageSize) changed.

        contig promises that the range was allocated (alloc) or freed as a whole, so chunks
        strictly inside it are set to 0 or freeChunkSum without looking at their bitmaps.
        Returns at once if a single chunk's leaf summary did not change; the upward walk stops
        at the first level where no summary changed.

        A range inside one chunk (nearly every call) lies under one entry of every level, so
        the walk visits exactly that entry per level (_update_up); other ranges take
        _update_span. update_slow is the readable transcription of Go's update, and
        tests/model/test_fast_paths.py holds this one to it step by step.
        """
        mask, abo, lcb = self._mask, self._abo, self._log_chunk_bytes
        bot = (base - abo) & mask
        sc = bot >> lcb
        if sc != ((base + npages * PAGE_SIZE - 1 - abo) & mask) >> lcb:
            # The leaves are written through level[i] = v; every interior entry is the merge of
            # its children again when the walk returns (see _update_up), not when it faults.
            trusted = self._tally[0] == self._trusted and self.summary[-1].tally is self._tally
            try:
                self._update_span(base, npages, contig, alloc, trusted)
            except BaseException:
                self._trusted = -1
                raise
            if trusted:
                self._trusted = self._tally[0]
            return
        summary = self.summary
        leaf = summary[-1]
        x = leaf.vals.get(sc)
        if x is None:
            x = leaf[sc]  # checked read: faults beyond len or on an unmapped page
        blk = self.chunks.get(sc >> self._l1_shift)  # chunkOf(sc), inlined
        y = (blk[sc & self._l2_mask] if blk is not None else self.chunk_of(sc)).summarize()
        if x == y:
            return
        leaf.vals[sc] = y  # the read above proved sc in bounds and mapped
        self._update_up(bot, x, y)

    def _update_span(self, base: int, npages: int, contig: bool, alloc: bool, trusted: bool) -> None:
        """Updates the summaries for a range over more than one chunk: update_slow, except that
        from the first level where the range lies under one entry, the walk is _update_up's.

        trusted says every interior entry was the merge of its children before the leaves
        were written.
        """
        p, mask = self.p, self._mask
        summary = self.summary
        limit = (base + npages * PAGE_SIZE - 1) & mask
        lcb, abo = self._log_chunk_bytes, self._abo
        sc, ec = ((base - abo) & mask) >> lcb, ((limit - abo) & mask) >> lcb
        leaf = summary[-1]
        if contig:
            leaf[sc] = self.chunk_of(sc).summarize()
            leaf.check_slice(sc + 1, ec)  # whole := summary[sc+1 : ec]
            v = 0 if alloc else self._free_chunk_sum
            for i in range(sc + 1, ec):
                leaf.put(i, v)
            leaf[ec] = self.chunk_of(ec).summarize()
        else:
            for c in range(sc, ec + 1):
                leaf[c] = self.chunk_of(c).summarize()

        top = (limit - abo) & mask  # the last byte's offset
        bot = (base - abo) & mask
        for k, (l, shift, cbits, clog) in enumerate(self._walk):
            # lo, hi := addrsToSummaryRange(l, base, limit+1), inlined.
            lo, hi = bot >> shift, (top >> shift) + 1
            child, cur = summary[l + 1], summary[l]
            cget, vals = child.vals.get, cur.vals
            changed = False
            for i in range(lo, hi):
                a, b = i << cbits, (i + 1) << cbits
                children = list(map(cget, range(a, b)))
                if None in children:  # some never written: read them checked (0 or a fault)
                    children = child.values(a, b)
                s = merge_summaries(p, children, clog)
                old = vals.get(i)
                if old is None:
                    old = cur[i]
                if old != s:
                    changed = True
                    vals[i] = s  # the read above proved i in bounds and mapped
            if not changed:
                return
            if hi - lo == 1:  # one entry changed, from old to s: one entry per level above
                return self._update_up(bot, old, s, self._walks[k + 1], trusted)

    def _update_up(self, bot: int, x: int, y: int, walk=None, trusted=None) -> None:
        """Walks update's levels above the leaf for a range inside one chunk at offset bot,
        after its leaf summary changed from x to y.

        Such a range lies under one entry of every level, so each level merges that entry's
        children; the walk stops at the first level whose entry did not change (Go's `changed`).

        While every interior entry is the merge of its children (the tally check), a child
        whose start and end did not change moves only the max of the merge, which is
        max(R, child max) with R independent of that child: the parent is unchanged if the
        child's old max was below the parent's and its new one is not above, and is the
        parent with its max replaced if the new max is above; otherwise it is merged. A
        fault on the way leaves parents stale, so it ends the trust.
        """
        p = self.p
        summary = self.summary
        if walk is None:
            walk = self._walk
            trusted = self._tally[0] == self._trusted and summary[-1].tally is self._tally
        if not walk:
            return
        child = summary[walk[0][0] + 1]
        max_field, se_fields, lg = self._max_field, self._start_end_fields, p.log_max_packed_value
        try:
            for l, shift, cbits, clog in walk:
                # lo, hi := addrsToSummaryRange(l, base, limit+1) is the one entry i, i+1.
                i = bot >> shift
                cur = summary[l]
                vals = cur.vals
                old = vals.get(i)
                if trusted and old is not None and not (x ^ y) & se_fields and not (x | y | old) >> 63:
                    mx, my, mo = x & max_field, y & max_field, old & max_field
                    if my > mo:
                        y = (old & ~max_field) | my
                        vals[i] = y
                        x = old
                        child = cur
                        continue
                    if mx < mo:
                        return
                a = i << cbits
                b = a + (1 << cbits)
                children = list(map(child.vals.get, range(a, b)))
                if None in children:  # some never written: read them checked (0 or a fault)
                    lsp = child.log_sums_per_page
                    # values(a, b), unless the block lies on one mapped page: then no read faults
                    # and merge_summaries reads the unwritten entries (None) as 0.
                    if not (b <= child.cap and (child.all_mapped or (a >> lsp == (b - 1) >> lsp and a >> lsp in child.mapped))):
                        children = child.values(a, b)
                s = merge_summaries(p, children, clog)
                if old is None:
                    old = cur[i]
                if old == s:
                    return
                vals[i] = s  # the read above proved i in bounds and mapped
                x, y = old, s
                child = cur
        except BaseException:
            self._trusted = -1
            raise

    def update_slow(self, base: int, npages: int, contig: bool, alloc: bool) -> None:
        """Updates the summaries after the bitmap of [base, base+npages*pageSize) changed.

        The readable twin of update: one loop for every shape of range, as Go writes it.

        contig promises that the range was allocated (alloc) or freed as a whole, so chunks
        strictly inside it are set to 0 or freeChunkSum without looking at their bitmaps.
        Returns at once if a single chunk's leaf summary did not change; the upward walk stops
        at the first level where no summary changed.
        """
        p, mask = self.p, self._mask
        summary = self.summary
        limit = (base + npages * PAGE_SIZE - 1) & mask
        lcb, abo = self._log_chunk_bytes, self._abo
        sc, ec = ((base - abo) & mask) >> lcb, ((limit - abo) & mask) >> lcb
        leaf = summary[-1]

        if sc == ec:
            x = leaf.vals.get(sc)
            if x is None:
                x = leaf[sc]  # checked read: faults beyond len or on an unmapped page
            y = self.chunk_of(sc).summarize()
            if x == y:
                return
            leaf.vals[sc] = y  # the read above proved sc in bounds and mapped
        elif contig:
            leaf[sc] = self.chunk_of(sc).summarize()
            leaf.check_slice(sc + 1, ec)  # whole := summary[sc+1 : ec]
            v = 0 if alloc else self._free_chunk_sum
            for i in range(sc + 1, ec):
                leaf.put(i, v)
            leaf[ec] = self.chunk_of(ec).summarize()
        else:
            for c in range(sc, ec + 1):
                leaf[c] = self.chunk_of(c).summarize()

        changed = True
        level_bits, level_log_pages, level_shift = p.level_bits, p.level_log_pages, p.level_shift
        top = (limit + 1 - abo) & mask
        bot = (base - abo) & mask
        l = len(summary) - 2
        while l >= 0 and changed:
            changed = False
            log_entries_per_block = level_bits[l + 1]
            log_max_pages = level_log_pages[l + 1]
            # lo, hi := addrsToSummaryRange(l, base, limit+1), inlined.
            shift = level_shift[l]
            lo, hi = bot >> shift, (((top - 1) & mask) >> shift) + 1
            child, cur = summary[l + 1], summary[l]
            cget, vals = child.vals.get, cur.vals
            for i in range(lo, hi):
                a, b = i << log_entries_per_block, (i + 1) << log_entries_per_block
                children = [cget(k) for k in range(a, b)]
                if None in children:  # some never written: read them checked (0 or a fault)
                    children = child.values(a, b)
                s = merge_summaries(p, children, log_max_pages)
                old = vals.get(i)
                if old is None:
                    old = cur[i]
                if old != s:
                    changed = True
                    vals[i] = s  # the read above proved i in bounds and mapped
            l -= 1

    # --- allocation ---------------------------------------------------------------------

    def alloc_range(self, base: int, npages: int) -> int:
        """Marks [base, base+npages*pageSize) allocated and updates the summaries.

        Returns the bytes of the range that were scavenged. Does not touch searchAddr.

        Requires: npages > 0, the range inside inUse and free (UndefinedBehaviour otherwise).
        """
        if self.guard_undefined and (base, npages) != self._found:
            self._require_pages(base, npages, allocated=False)
        self._found = None
        cp, mask, abo, lcb = self._chunk_pages, self._mask, self._abo, self._log_chunk_bytes
        limit = (base + npages * PAGE_SIZE - 1) & mask
        # chunkIndex and chunkPageIndex of base and limit, inlined.
        sc, ec = ((base - abo) & mask) >> lcb, ((limit - abo) & mask) >> lcb
        si, ei = (base >> PAGE_SHIFT) & (cp - 1), (limit >> PAGE_SHIFT) & (cp - 1)
        index = self.scav.index

        scav = 0
        if sc == ec:
            blk = self.chunks.get(sc >> self._l1_shift)  # chunkOf(sc), inlined
            chunk = blk[sc & self._l2_mask] if blk is not None else self.chunk_of(sc)
            scav += chunk.scavenged.popcnt_range(si, ei + 1 - si)
            chunk.alloc_range(si, ei + 1 - si)
            index.alloc(sc, ei + 1 - si)
        else:
            chunk = self.chunk_of(sc)
            scav += chunk.scavenged.popcnt_range(si, cp - si)
            chunk.alloc_range(si, cp - si)
            index.alloc(sc, cp - si)
            for c in range(sc + 1, ec):
                chunk = self.chunk_of(c)
                scav += chunk.scavenged.popcnt_range(0, cp)
                chunk.alloc_all()
                index.alloc(c, cp)
            chunk = self.chunk_of(ec)
            scav += chunk.scavenged.popcnt_range(0, ei + 1)
            chunk.alloc_range(0, ei + 1)
            index.alloc(ec, ei + 1)
        self.update(base, npages, True, True)
        return scav * PAGE_SIZE

    def _alloc_span_fused(self, base: int, npages: int) -> int:
        """alloc_range of a run over several chunks, found by alloc's own search (no guard).

        The end chunks take the fused step (alloc_range_summarize), which leaves each chunk's
        summary memoised, so update's summarize() of them is a lookup rather than a diff of
        the bitmaps; the chunks between are allocated whole, as alloc_range does.
        """
        cp, mask, abo, lcb = self._chunk_pages, self._mask, self._abo, self._log_chunk_bytes
        limit = (base + npages * PAGE_SIZE - 1) & mask
        sc, ec = ((base - abo) & mask) >> lcb, ((limit - abo) & mask) >> lcb
        si, ei = (base >> PAGE_SHIFT) & (cp - 1), (limit >> PAGE_SHIFT) & (cp - 1)
        index = self.scav.index
        scav = self.chunk_of(sc).alloc_range_summarize(si, cp - si)[0]
        index.alloc(sc, cp - si)
        for c in range(sc + 1, ec):
            chunk = self.chunk_of(c)
            scav += chunk.scavenged.popcnt_range(0, cp)
            chunk.alloc_all()
            index.alloc(c, cp)
        scav += self.chunk_of(ec).alloc_range_summarize(0, ei + 1)[0]
        index.alloc(ec, ei + 1)
        self.update(base, npages, True, True)
        return scav * PAGE_SIZE

    def find_mapped_addr(self, addr: OffAddr) -> OffAddr:
        """Returns the smallest mapped offAddr >= addr, or maxOffAddr if there is none.

        In the real heap (arenas is not None, test False) an address inside an arena registered
        in mheap_.arenas is returned as it is; otherwise, and always in test mode, inUse decides.
        """
        if self.arenas is not None and not self.test and (addr._o >> self.log_heap_arena_bytes) in self.arenas:
            return addr
        ranges = self.in_use.ranges
        if len(ranges) == 1 and ranges[0].base._o <= addr._o < ranges[0].limit._o:
            return addr  # findAddrGreaterEqual's answer when the one range contains addr
        return self.find_mapped_addr_slow(addr)

    def find_mapped_addr_slow(self, addr: OffAddr) -> OffAddr:
        """Returns find_mapped_addr(addr), always by inUse.findAddrGreaterEqual as Go writes it."""
        v_addr, ok = self.in_use.find_addr_greater_equal(addr.addr())
        if ok:
            return _off(self.p, v_addr)
        return max_search_addr(self.p)

    def find_slow(self, npages: int) -> tuple[int, OffAddr]:
        """Returns what find returns, raising what it raises: Go's find transcribed as written.

        The readable twin of find (which skips zero runs, reads small blocks lazily and keeps
        offsets instead of offAddrs): every entry from j0 on is read in order with a checked
        read, and firstFree is a pair of OffAddrs narrowed by foundFree.

        Requires: npages > 0.
        """
        if self.guard_undefined:
            self._require_npages(npages)
        p = self.p
        mask, abo = self._mask, self._abo
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

    def find(self, npages: int) -> tuple[int, OffAddr]:
        """Finds the first (address-ordered) run of npages free pages by a radix-tree search.

        Returns its base address and a candidate searchAddr: firstFree.base, the base of the
        narrowest summary window known to hold the first free page (the page itself only when
        the search ends inside a chunk's bitmap), made mapped by find_mapped_addr. Returns
        (0, maxSearchAddr()) when there is no such run, in which case the candidate must be
        ignored. Throws "bad summary data" when a summary
        promised space its children do not have, "range partially overlaps" when the
        first-free window is inconsistent.

        Requires: npages > 0.
        """
        if npages <= 0 and self.guard_undefined:
            self._require_npages(npages)
        p = self.p
        lcb, abo, mask, _, l1_shift, l2_mask, lg, fm = self._hot
        i = 0
        # firstFree: inclusive bounds [base, bound], kept as offsets (addr - arenaBaseOffset),
        # so offAddr.lessThan/lessEqual are plain integer comparisons.
        ff_base, ff_bound = 0, self._max_off
        search_off = self.search_addr._o
        last_sum, last_sum_idx = 0, -1
        n_clamped = npages if npages < 1 << 62 else 1 << 62  # _scan_block's bound: no run is that long
        summary = self.summary
        for l, (lbits, entries_per_block, log_max_pages, shift, window) in enumerate(self._levels):
            i <<= lbits
            entries = summary[l]
            hi = i + entries_per_block
            if hi > entries.cap:  # i >= 0 always
                entries.check_slice(i, hi)  # entries := p.summary[l][i : i+entriesPerBlock]

            # j0: offAddrToLevelIndex(l, p.searchAddr) if that lies in this block; as lo = i+j0.
            lo = search_off >> shift
            if not i <= lo < hi:
                lo = i

            base = size = 0
            get = entries.vals.get
            first = -1  # the level's first nonzero entry, for foundFree
            if entries_per_block <= 64:
                # A small block is read entry by entry, as Go does (_scan_block); an unwritten
                # entry (None) is read checked, as 0 or a fault.
                k = lo
                while True:
                    what, k, size, base, f = _scan_block(get, k, hi, i, n_clamped, size, base, log_max_pages, fm, lg)
                    if first < 0:
                        first = f
                    if what != _SCAN_UNWRITTEN:
                        break
                    entries.at(k)  # reads 0, or faults on an unmapped page
                    size = 0
                    k += 1
            else:
                # A long block (the root on 64-bit) visits its nonzero entries through scan,
                # which reads, and faults on, the zeros in between; a zero only resets size, so
                # a gap before an entry does. Each entry takes the small block's step.
                s = get(lo)
                # A written entry at j0 (the usual root) is read before the scan starts, which
                # then usually never does.
                seq = chain(((lo, s),), entries.scan(lo + 1, hi)) if s else entries.scan(lo, hi)
                nxt, what = lo, _SCAN_END
                for k, _ in seq:
                    if k > nxt:
                        size = 0
                    nxt = k + 1
                    what, k, size, base, f = _scan_block(get, k, k + 1, i, n_clamped, size, base, log_max_pages, fm, lg)
                    if first < 0:
                        first = f
                    if what != _SCAN_END:
                        break
                if what == _SCAN_END and nxt < hi:
                    size = 0
            if first >= 0:
                # foundFree(levelIndexToOffAddr(l, i+j), window), on offsets, for the level's
                # first nonzero entry only: windows are aligned powers of two, so each nests
                # in firstFree or is disjoint from it (SPEC T12), and after the first the rest
                # are disjoint and foundFree does nothing (find_slow calls it every time).
                off = (first << shift) & mask
                last = (off + window - 1) & mask
                if ff_base <= off and last <= ff_bound:
                    ff_base, ff_bound = off, last
                elif not (last < ff_base or ff_bound < off):
                    raise _partial_overlap(off, window, ff_base, ff_bound, abo, mask)
            if what == _SCAN_DESCEND:
                i = k  # i += j: descend into this entry
                last_sum_idx, last_sum = i, get(k)
                continue
            if what == _SCAN_FOUND or size >= npages:
                # levelIndexToOffAddr(l, i).add(base*pageSize).addr()
                addr = ((i << shift) + abo + base * PAGE_SIZE) & mask
                return addr, self.find_mapped_addr(OffAddr(p, ff_base + abo))
            if l == 0:
                return 0, max_search_addr(p)
            raise GoThrow(
                "bad summary data",
                f"summary[{l - 1}][{last_sum_idx:#x}] = {palloc_sum_unpack(p, last_sum)}, level {l}, npages {npages}",
            )

        ci = i
        blk = self.chunks.get(ci >> l1_shift)  # chunkOf(ci), inlined
        chunk = blk[ci & l2_mask] if blk is not None else self.chunk_of(ci)
        j, search_idx = chunk._find_run(npages, 0) if npages > 1 else chunk.find(npages, 0)
        if j == mask:
            raise GoThrow("bad summary data", f"summary[leaf][{i:#x}] = {palloc_sum_unpack(p, self.summary[-1][i])}")
        cb = ((ci << lcb) + abo) & mask  # chunkBase(ci)
        addr = cb + j * PAGE_SIZE
        search_addr = cb + search_idx * PAGE_SIZE
        off, size = (search_addr - abo) & mask, ((((ci + 1) << lcb) + abo) - search_addr) & mask
        last = (off + size - 1) & mask
        if ff_base <= off and last <= ff_bound:  # foundFree(offAddr{searchAddr}, ...)
            ff_base, ff_bound = off, last
        elif not (last < ff_base or ff_bound < off):
            raise _partial_overlap(off, size, ff_base, ff_bound, abo, mask)
        return addr, self.find_mapped_addr(OffAddr(p, ff_base + abo))

    def alloc(self, npages: int) -> tuple[int, int]:
        """Allocates npages; returns (base address, scavenged bytes in the range).

        Returns (0, 0) on failure. Tries the chunk at searchAddr first (fast path), then find.
        Raises searchAddr to the search's candidate, never past it.

        Requires: npages > 0.
        """
        if npages <= 0 and self.guard_undefined:
            self._require_npages(npages)
        lcb, abo, mask, cp, l1_shift, l2_mask, lg, fm = self._hot
        search_addr = self.search_addr
        i = search_addr._o >> lcb
        if i >= self.end:
            return 0, 0

        # The candidate searchAddr is kept as a raw address until it is stored.
        cand = -1
        cpi = (search_addr._a >> PAGE_SHIFT) & (cp - 1)  # chunkPageIndex(searchAddr)
        leaf = self.summary[-1]
        if cp - cpi >= npages:
            s = leaf.vals.get(i)
            if s is None:
                s = leaf[i]  # checked read: faults beyond len or on an unmapped page
            # max := s.max(), inlined (a leaf never has bit 63 set, but keep Go's test)
            max_ = fm + 1 if s >> 63 else (s >> lg) & fm
            if max_ >= npages:
                blk = self.chunks.get(i >> l1_shift)  # chunkOf(i), inlined
                chunk = blk[i & l2_mask] if blk is not None else self.chunk_of(i)
                # chunk.find(npages, cpi), its dispatch inlined.
                j, search_idx = chunk._find_run(npages, cpi) if npages > 1 else chunk.find(npages, cpi)
                if j == mask:
                    raise GoThrow("bad summary data", f"max = {max_}, npages = {npages}, searchIdx = {cpi}")
                cb = ((i << lcb) + abo) & mask
                addr = cb + (j << PAGE_SHIFT)
                cand = cb + (search_idx << PAGE_SHIFT)
                x = s  # the leaf summary update starts from
        if cand < 0:
            addr, search_addr = self.find(npages)
            if addr == 0:
                if npages == 1:
                    self.search_addr = max_search_addr(self.p)
                return 0, 0
            cand = search_addr._a
            off = (addr - abo) & mask
            i = off >> lcb
            j = (addr >> PAGE_SHIFT) & (cp - 1)  # chunkPageIndex(addr)
            chunk = x = None
        else:
            off = (addr - abo) & mask

        if self._fused and j + npages <= cp:
            # allocRange(addr, npages) of a run inside chunk i, with update's one-chunk path;
            # alloc_range and update are the readable steps (tests/model/test_fast_paths.py).
            if chunk is None:
                blk = self.chunks.get(i >> l1_shift)  # chunkOf(i), inlined
                chunk = blk[i & l2_mask] if blk is not None else self.chunk_of(i)
            pages, y = chunk.alloc_range_summarize(j, npages)
            self.scav.index.alloc(i, npages)
            if x is None:
                x = leaf.vals.get(i)
                if x is None:
                    x = leaf[i]  # checked read: faults beyond len or on an unmapped page
            if x != y:
                leaf.vals[i] = y
                self._update_up(off, x, y)
            scav = pages * PAGE_SIZE
        elif self._fused:
            scav = self._alloc_span_fused(addr, npages)
        else:
            self._found = (addr, npages)  # alloc_range needs no input guard for its own search's result
            scav = self.alloc_range(addr, npages)
        # if p.searchAddr.lessThan(searchAddr) (offset order)
        if self.search_addr._o < (cand - abo) & mask:
            self.search_addr = OffAddr(self.p, cand)
        return addr, scav

    def free(self, base: int, npages: int) -> None:
        """Returns [base, base+npages*pageSize) to the heap; scavenged bits are left alone.

        Requires: npages > 0 and every page in the range allocated and inside inUse
        (UndefinedBehaviour otherwise; the runtime may throw "allocated pages below zero?").
        """
        lcb, abo, mask, cp, l1_shift, l2_mask, _, _ = self._hot
        limit = (base + npages * PAGE_SIZE - 1) & mask
        bot = (base - abo) & mask
        sc = bot >> lcb
        if self._fused and sc == ((limit - abo) & mask) >> lcb:
            # free1/free of a run inside chunk sc, with update's one-chunk path; the branches
            # below and update are the readable steps (tests/model/test_fast_paths.py).
            si = (base >> PAGE_SHIFT) & (cp - 1)  # chunkPageIndex(base)
            blk = self.chunks.get(sc >> l1_shift)  # chunkOf(sc), inlined
            chunk = blk.get(sc & l2_mask) if blk is not None else None  # not materialised yet: None
            if self.guard_undefined:
                # _require_pages(base, npages, allocated=True) passes at once for an allocated
                # run inside the one inUse range; otherwise it decides (and words the failure).
                ranges = self.in_use.ranges
                if (npages <= 0 or chunk is None or base & (PAGE_SIZE - 1) or len(ranges) != 1
                        or not ranges[0].base._o <= bot
                        or not bot + ((npages - 1) << PAGE_SHIFT) < ranges[0].limit._o
                        or npages > cp or (m := chunk.g.low[npages] << si) & chunk.v != m):
                    self._require_pages(base, npages, allocated=True)
            if bot < self.search_addr._o:  # offAddr{base}.lessThan(p.searchAddr)
                self.search_addr = OffAddr(self.p, base)
            if chunk is None:
                chunk = self.chunk_of(sc)  # materialises it, or faults on a nil L2 block
            y = chunk.free_summarize(si, npages)
            self.scav.index.free(sc, si, npages)
            leaf = self.summary[-1]
            x = leaf.vals.get(sc)
            if x is None:
                x = leaf[sc]  # checked read: faults beyond len or on an unmapped page
            if x != y:
                leaf.vals[sc] = y
                self._update_up(bot, x, y)
            return
        if self.guard_undefined:
            self._require_pages(base, npages, allocated=True)
        if bot < self.search_addr._o:  # offAddr{base}.lessThan(p.searchAddr)
            self.search_addr = _off(self.p, base)
        index = self.scav.index
        if npages == 1:
            i = ((base - abo) & mask) >> lcb  # chunkIndex(base)
            pi = (base >> PAGE_SHIFT) & (cp - 1)  # chunkPageIndex(base)
            blk = self.chunks.get(i >> self._l1_shift)  # chunkOf(i), inlined
            (blk[i & self._l2_mask] if blk is not None else self.chunk_of(i)).free1(pi)
            index.free(i, pi, 1)
        else:
            sc, ec = ((base - abo) & mask) >> lcb, ((limit - abo) & mask) >> lcb
            si, ei = (base >> PAGE_SHIFT) & (cp - 1), (limit >> PAGE_SHIFT) & (cp - 1)
            if sc == ec:
                blk = self.chunks.get(sc >> self._l1_shift)  # chunkOf(sc), inlined
                (blk[sc & self._l2_mask] if blk is not None else self.chunk_of(sc)).free(si, ei + 1 - si)
                index.free(sc, si, ei + 1 - si)
            else:
                # The end chunks' fused step (free_summarize) when fused, as alloc's span: it
                # leaves their summaries memoised for update.
                free_end = "free_summarize" if self._fused else "free"
                getattr(self.chunk_of(sc), free_end)(si, cp - si)
                index.free(sc, si, cp - si)
                for c in range(sc + 1, ec):
                    self.chunk_of(c).free_all()
                    index.free(c, 0, cp)
                getattr(self.chunk_of(ec), free_end)(0, ei + 1)
                index.free(ec, 0, ei + 1)
        self.update(base, npages, True, False)

    def mark_random_padding_pages(self, base: int, npages: int) -> None:
        """Marks [base, base+npages*pageSize) both allocated and scavenged (Go 1.26+).

        Requires: npages > 0, the range inside inUse and free.
        """
        if self.guard_undefined:
            self._require_pages(base, npages, allocated=False)
        p = self.p
        cp = self._chunk_pages
        index = self.scav.index
        limit = (base + npages * PAGE_SIZE - 1) & self._mask
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

    # --- guards: inputs the runtime leaves undefined ------------------------------------

    def _off_of(self, a: int) -> int:
        return (a - self._abo) & self._mask

    def _require_npages(self, npages: int) -> None:
        if npages <= 0:
            raise UndefinedBehaviour(f"npages = {npages}: the runtime never asks for zero pages")

    def _require_growable(self, base: int, size: int) -> None:
        p, cb = self.p, self._chunk_bytes
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
        if lo >> self._log_chunk_bytes == 0:
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
        mask, abo, lcb = self._mask, self._abo, self._log_chunk_bytes
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
        cp = self._chunk_pages
        sc, ec = first >> lcb, last >> lcb
        si, ei = (first >> PAGE_SHIFT) & (cp - 1), (last >> PAGE_SHIFT) & (cp - 1)
        if sc == ec:  # one chunk, and it holds: return without building the per-chunk counts
            blk = self.chunks.get(sc >> self._l1_shift)
            if blk is not None:
                m = ((1 << (ei + 1 - si)) - 1) << si
                v = blk[sc & self._l2_mask].v & m
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
        chunks, cp = self.scav.index.chunks, self._chunk_pages
        for c in range(sc, ec + 1):
            d = chunks.get(c)
            if (d.in_use if d is not None else 0) < (ei + 1 if c == ec else cp) - (si if c == sc else 0):
                return True
        return False

    def _first_in_use_range_above(self, off: int) -> int:
        """Returns the index of the first inUse range whose limit is above offset off (binary search)."""
        ranges = self.in_use.ranges
        abo, mask = self._abo, self._mask
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
        abo, mask = self._abo, self._mask
        return (r.base.a - abo) & mask <= first and last < (r.limit.a - abo) & mask
