"""The fast layer of model/mpagealloc.py: the page allocator's hot paths, fused and on integers.

Not a mirror of any Go file. FastPageAlloc computes exactly what PageAlloc (the transcription
of src/runtime/mpagealloc.go, Go 1.27.3) computes and raises what it raises, at the same point
and with the same state left behind; tests/model/test_fast_paths.py runs both on random
operation sequences and compares results and state after every step. The fuzzer (goref/) and
`palloc bench` run this layer; a reader of the model never has to.

What it does differently, each for speed only:
- offAddr comparisons are integer comparisons of offsets (addr - arenaBaseOffset), and the
  platform constants are copied into tuples (`_hot`, `_levels`, `_walk`);
- find skips runs of zero summaries (up to 16384 at the root on 48-bit platforms) through
  FastSummaryLevel.scan, which still reads, and faults on, every entry Go reads, and scans a
  small block on integers (_scan_block);
- written summary entries are read straight from the sparse store, since len and the mapping
  only ever grow;
- alloc and free fuse allocRange/free, the scavenge index and the leaf update for a run inside
  one chunk (FastPallocData.alloc_range_summarize / free_summarize);
- update's walk derives a parent from its old value when only a child's max (start and end
  held) changed, while the levels' shared write tally shows every interior entry is the merge
  of its children (_update_up);
- a pallocSum's fields are unpacked inline in _scan_block, merge_summaries_fast and _update_up
  rather than by palloc_sum_unpack: a Python call and a tuple per summary cost more than the
  arithmetic, which Cython compiles to C integers (mpagealloc_fast.pxd).
Beyond the step-by-step tests, CrossHair checks merge_summaries_fast and FastPallocData.summarize
against the mirror (proofs/contracts.py: "could not refute", not a proof); translation
validation reads Go, not Python, so it ties the runtime to the mirror's encodings
(proofs/thm_runtime.py), not to this layer. Installed, this module is compiled by Cython (setup.py).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import chain

from palloc.model.mgcscavenge_fast import FastScavengeIndex
from palloc.model.mpagealloc import (
    PALLOC_SUM_ALL_FREE,
    ChunkBlock,
    PageAlloc,
    SummaryLevel,
    _partial_overlap,
    max_search_addr,
    palloc_sum_unpack,
)
from palloc.model.mpallocbits import PallocData
from palloc.model.mpallocbits_fast import FastPallocData
from palloc.model.mranges import OffAddr
from palloc.spec.constants import PAGE_SHIFT, PAGE_SIZE, PALLOC_SUM_BYTES, Platform
from palloc.spec.errors import GoFault, GoThrow

__all__ = ["FastChunkBlock", "FastPageAlloc", "FastSummaryLevel", "merge_summaries_fast"]


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


def merge_summaries_fast(p: Platform, sums, log_max_pages_per_sum: int) -> int:
    """Returns merge_summaries(p, sums, log_max_pages_per_sum), in two passes: start first (it grows
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
        x = y  # a summary, never None (x is a uint64 where Cython compiles this: mpagealloc_fast.pxd)
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



class FastSummaryLevel(SummaryLevel):
    """A SummaryLevel that counts the writes made to it and scans long runs of zeros sparsely.

    `tally` counts writes through level[i] = v and put, and pages remapped over entries; the
    levels of one FastPageAlloc share it, which tells its own summary updates from other writes.
    """

    __slots__ = ("_keys", "tally")

    def __init__(self, level: int, cap: int, phys_page_size: int, all_mapped: bool = False):
        super().__init__(level, cap, phys_page_size, all_mapped)
        self._keys: tuple[int, list[int]] = (0, [])  # (len(vals), sorted(vals)) when last sorted
        self.tally = [0]

    @classmethod
    def of(cls, level: SummaryLevel, tally: list[int]) -> "FastSummaryLevel":
        """Returns a FastSummaryLevel holding level's state, counting its writes in tally."""
        f = cls(level.level, level.cap, PALLOC_SUM_BYTES << level.log_sums_per_page, level.all_mapped)
        f.len, f.vals, f.mapped, f.tally = level.len, dict(level.vals), set(level.mapped), tally
        return f

    def map_bytes(self, lo: int, hi: int) -> None:
        shift = self.log_sums_per_page + 3  # log2(phys_page_size)
        self.tally[0] += sum(1 for page in range(lo >> shift, (hi + (1 << shift) - 1) >> shift) if page in self.mapped)
        super().map_bytes(lo, hi)
        self._keys = (-1, [])  # keys may have been popped: len(vals) alone no longer tells

    def __setitem__(self, i: int, v: int) -> None:
        super().__setitem__(i, v)
        self.tally[0] += 1

    def put(self, i: int, v: int) -> None:
        super().put(i, v)
        self.tally[0] += 1

    def scan(self, lo: int, hi: int):
        """Yields (index, value) of the nonzero entries of [lo, hi) in order, reading each entry.

        A zero entry is skipped, but reading it first faults if its page is unmapped, so a
        consumer that stops early has read exactly the entries Go's loop would have read.
        A long range over few written entries (the root level, 2^14 entries on 64-bit) is
        walked by written index and by page (scan_sparse); scan_slow is its readable twin.
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
        """Returns SummaryLevel.values(lo, hi), reading the mapping once per page."""
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



class FastChunkBlock(ChunkBlock):
    """A ChunkBlock of FastPallocData."""

    __slots__ = ()

    def __missing__(self, l2: int) -> PallocData:
        if not 0 <= l2 < (1 << self.p.palloc_chunks_l2_bits):
            raise GoFault(f"chunks L2 index {l2:#x} out of range")
        d = self[l2] = FastPallocData(self.p)
        return d


class FastPageAlloc(PageAlloc):
    """PageAlloc with the fast layer's find, alloc, free and update (and its chunk bitmaps,
    summary levels and scavenge index)."""

    chunk_block_type = FastChunkBlock

    def __init__(self, p: Platform, phys_page_size: int | None = None, phys_huge_page_size: int | None = None):
        super().__init__(p, phys_page_size, phys_huge_page_size)
        self.scav.index = FastScavengeIndex(p, self.phys_page_size)
        # Every interior summary entry equals the merge of its children while the levels' shared
        # write tally equals _trusted: only update writes then (see _update_up).
        self._tally = [0]
        self._trusted = 0
        # Hot-path copies of platform constants (the runtime's are compile-time constants).
        self._mask = p.uintptr_mask
        self._abo = p.arena_base_offset
        self._log_chunk_bytes = p.log_palloc_chunk_bytes
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
        # one chunk, unless a subclass replaced a step: then every step is called as the
        # runtime calls it.
        cls = type(self)
        self._fused = cls.alloc_range is PageAlloc.alloc_range and cls.update is FastPageAlloc.update

    def init(self, test: bool) -> None:
        super().init(test)
        self.summary = [FastSummaryLevel.of(level, self._tally) for level in self.summary]
        self._trusted = self._tally[0]  # fresh memory: all zero, and merge(zeros) is zero

    def try_chunk_of(self, ci: int) -> PallocData | None:
        l2 = self.chunks.get(ci >> self._l1_shift)
        if l2 is None:
            return None
        return l2[ci & self._l2_mask]

    def chunk_of(self, ci: int) -> PallocData:
        l2 = self.chunks.get(ci >> self._l1_shift)
        if l2 is None:
            raise GoFault(f"chunkOf({ci:#x}): nil L2 block of pageAlloc.chunks (nil pointer dereference)")
        return l2[ci & self._l2_mask]

    def update(self, base: int, npages: int, contig: bool, alloc: bool) -> None:
        """Updates the summaries after the bitmap of [base, base+npages*pageSize) changed.

        contig promises that the range was allocated (alloc) or freed as a whole, so chunks
        strictly inside it are set to 0 or freeChunkSum without looking at their bitmaps.
        Returns at once if a single chunk's leaf summary did not change; the upward walk stops
        at the first level where no summary changed.

        PageAlloc.update, faster: a range inside one chunk (nearly every call) lies under one
        entry of every level, so the walk visits exactly that entry per level (_update_up);
        other ranges take _update_span.
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
        """Updates the summaries for a range over more than one chunk: PageAlloc.update, except that
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
                s = merge_summaries_fast(p, children, clog)
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
        max_field, se_fields = self._max_field, self._start_end_fields
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
                s = merge_summaries_fast(p, children, clog)
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
        """Returns PageAlloc.find_mapped_addr(addr), without the search when the one inUse range holds addr."""
        if self.arenas is not None and not self.test and (addr._o >> self.log_heap_arena_bytes) in self.arenas:
            return addr
        ranges = self.in_use.ranges
        if len(ranges) == 1 and ranges[0].base._o <= addr._o < ranges[0].limit._o:
            return addr  # findAddrGreaterEqual's answer when the one range contains addr
        return PageAlloc.find_mapped_addr(self, addr)

    def find(self, npages: int) -> tuple[int, OffAddr]:
        """Returns what PageAlloc.find returns, raising what it raises: the same radix-tree search
        on integers, skipping runs of zero summaries (SummaryLevel.scan, which still reads, and
        faults on, every entry Go reads) and calling foundFree only for each level's first
        nonzero entry (windows are aligned powers of two, so each nests in firstFree or is
        disjoint from it: SPEC T12).

        Requires: npages > 0.
        """
        if npages <= 0:
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
                # are disjoint and foundFree does nothing (PageAlloc.find calls it every time).
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
            # The level's end as PageAlloc.find's, repeated on purpose (the lines above differ).
            if l == 0:
                return 0, max_search_addr(p)
            raise GoThrow(
                "bad summary data",
                f"summary[{l - 1}][{last_sum_idx:#x}] = {palloc_sum_unpack(p, last_sum)}, level {l}, npages {npages}",
            )

        ci = i
        blk = self.chunks.get(ci >> l1_shift)  # chunkOf(ci), inlined
        chunk = blk[ci & l2_mask] if blk is not None else self.chunk_of(ci)
        j, search_idx = chunk.find_run(npages, 0) if npages > 1 else chunk.find(npages, 0)
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
        """Returns PageAlloc.alloc(npages), with allocRange, the scavenge index and update's
        one-chunk path fused for a run inside one chunk (alloc_range_summarize, _update_up).

        Requires: npages > 0.
        """
        if npages <= 0:
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
                j, search_idx = chunk.find_run(npages, cpi) if npages > 1 else chunk.find(npages, cpi)
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
            # allocRange(addr, npages) of a run inside chunk i, with update's one-chunk path.
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
            scav = self.alloc_range(addr, npages)
        # if p.searchAddr.lessThan(searchAddr) (offset order)
        if self.search_addr._o < (cand - abo) & mask:
            self.search_addr = OffAddr(self.p, cand)
        return addr, scav

    def free(self, base: int, npages: int) -> None:
        """Returns PageAlloc.free(base, npages), fused like alloc for a run inside one chunk.

        Requires: npages > 0 and every page in the range allocated and inside inUse
        (UndefinedBehaviour otherwise; the runtime may throw "allocated pages below zero?").
        """
        lcb, abo, mask, cp, l1_shift, l2_mask, _, _ = self._hot
        limit = (base + npages * PAGE_SIZE - 1) & mask
        bot = (base - abo) & mask
        sc = bot >> lcb
        if self._fused and sc == ((limit - abo) & mask) >> lcb:
            # free1/free of a run inside chunk sc, with update's one-chunk path.
            si = (base >> PAGE_SHIFT) & (cp - 1)  # chunkPageIndex(base)
            blk = self.chunks.get(sc >> l1_shift)  # chunkOf(sc), inlined
            chunk = blk.get(sc & l2_mask) if blk is not None else None  # not materialised yet: None
            # _require_pages(base, npages, allocated=True) passes at once for an allocated run
            # inside the one inUse range; otherwise it decides (and words the failure).
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
            # The leaf update of alloc's fused path, repeated on purpose: one call fewer each.
            leaf = self.summary[-1]
            x = leaf.vals.get(sc)
            if x is None:
                x = leaf[sc]  # checked read: faults beyond len or on an unmapped page
            if x != y:
                leaf.vals[sc] = y
                self._update_up(bot, x, y)
            return
        self._require_pages(base, npages, allocated=True)
        if bot < self.search_addr._o:  # offAddr{base}.lessThan(p.searchAddr)
            self.search_addr = OffAddr(self.p, base)
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
