"""The seeded broken variants, in one place: each must be caught, or its check is a defect.

Two kinds, both Go 1.27 src/runtime/mpagealloc.go semantics with one seeded mistake:

- invariant variants (InvariantVariant, INVARIANT_VARIANTS): a small scenario run on a broken
  PageAlloc subclass (a transcription slip, or a historical runtime bug: B1-B3 of spec/BUGS.md)
  or on the healthy PageAlloc followed by a seeded corruption; the named invariants of
  spec/invariants.py written next to it (`catches`) must reject the state, and the same scenario
  on the healthy PageAlloc must satisfy them all (tests/model/test_invariants.py asserts both).
  The expected verdict differs per platform class where summary memory is mapped eagerly
  (32-bit), so an unmapped read cannot happen there.
- model variants (ModelVariant, MODEL_VARIANTS): `palloc fuzz --model-variant NAME` runs the
  differential fuzzer against one instead of the faithful model; `expected` is the kind of the
  first divergence, and tests/goref/test_fuzz.py asserts each is caught and shrunk. Some reuse
  the invariant variants' allocators, so the same mistake is caught by both layers.

They live in goref/, above the model they break, so that model/ holds the runtime's mirror only.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from palloc.model.export import undefined_allowed
from palloc.model.mgcscavenge import ScavengeIndex
from palloc.model.mpagealloc import (PageAlloc, _off, chunk_base, chunk_index, chunk_page_index, merge_summaries,
                                     pack_palloc_sum, palloc_sum_unpack)
from palloc.model.mpagealloc_fast import FastPageAlloc  # the fuzzer's model, which the model variants break
from palloc.model.mpagecache import PageCache
from palloc.model.mranges import AddrRanges, OffAddr
from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE, PALLOC_SUM_BYTES
from palloc.spec.errors import GoThrow

__all__ = ["InvariantVariant", "INVARIANT_VARIANTS", "invariant_variant", "ModelVariant", "MODEL_VARIANTS",
           "model_variant"]


# --- deliberately broken allocators ---------------------------------------------------------------


class LeafSummaryOffByOne(PageAlloc):
    """update writes every single-chunk leaf with start one too large (a transcription slip)."""

    def update(self, base, npages, contig, alloc):
        super().update(base, npages, contig, alloc)
        p = self.p
        ci = chunk_index(p, base)
        leaf = self.summary[-1]
        s = leaf[ci]
        start, most, end = palloc_sum_unpack(p, s)
        if start < p.palloc_chunk_pages and not s >> 63:
            leaf[ci] = pack_palloc_sum(p, start + 1, most, end)


class FreeSkipsSearchAddr(PageAlloc):
    """free forgets to lower searchAddr to the freed base."""

    def free(self, base, npages):
        keep = self.search_addr
        super().free(base, npages)
        self.search_addr = keep


class FindReturnsAddrPlusOne(PageAlloc):
    """B1 (CL 216697): pallocBits.find returned (addr, addr+1) for npages == 1.

    The net effect on alloc: the new searchAddr is one page past the page just allocated, which
    leaves inUse when that page is the last of a chunk whose successor was never grown.
    """

    def alloc(self, npages):
        addr, scav = super().alloc(npages)
        if addr and npages == 1:
            cand = _off(self.p, addr + PAGE_SIZE)
            if self.search_addr.less_than(cand):
                self.search_addr = cand
        return addr, scav


class AllocToCachePastBlock(PageAlloc):
    """B2 (golang/go#38605): allocToCache set searchAddr = c.base + pageCachePages*pageSize."""

    def alloc_to_cache(self):
        c = super().alloc_to_cache()
        if c.cache:
            self.search_addr = _off(self.p, c.base + PAGE_SIZE * PAGE_CACHE_PAGES)
        return c


class FindWithoutFindMappedAddr(PageAlloc):
    """B3 (golang/go#40191): find returned firstFree.base as the hint without findMappedAddr."""

    def find_mapped_addr(self, addr):
        return addr


class AllocKeepsScavenged(PageAlloc):
    """allocRange forgets to clear the scavenged bits of the pages it allocates."""

    def alloc_range(self, base, npages):
        p = self.p
        last = base + (npages - 1) * PAGE_SIZE
        saved = {c: self.chunk_of(c).scavenged.v for c in range(chunk_index(p, base), chunk_index(p, last) + 1)}
        scav = super().alloc_range(base, npages)
        for c, v in saved.items():
            self.chunk_of(c).scavenged.v = v
        return scav


class GrowKeepsFirstStart(PageAlloc):
    """grow sets start only on the first growth, so a lower later growth is outside [start, end)."""

    def grow(self, base, size):
        first = self.start
        super().grow(base, size)
        if first:
            self.start = first


class AllocToCacheSkipsIndex(PageAlloc):
    """allocToCache forgets scav.index.alloc: the index undercounts the cached pages."""

    def alloc_to_cache(self):
        c = super().alloc_to_cache()
        if c.cache:
            ci = chunk_index(self.p, c.base)
            self.scav.index.load(ci).in_use -= c.cache.bit_count()
        return c


class AllocToCacheLeavesFree(PageAlloc):
    """allocToCache forgets allocPages64: the cached pages stay free in the bitmap."""

    def alloc_to_cache(self):
        c = super().alloc_to_cache()
        if c.cache:
            ci, cpi = chunk_index(self.p, c.base), chunk_page_index(self.p, c.base)
            self.chunk_of(ci).v &= ~(c.cache << cpi)
            self.update(c.base, PAGE_CACHE_PAGES, False, False)
            self.scav.index.load(ci).in_use -= c.cache.bit_count()
        return c


class _IndexFreeMarksPastLastPage(ScavengeIndex):
    __slots__ = ()

    def free(self, ci, page, npages):
        super().free(ci, page, npages)
        addr = chunk_base(self.p, ci) + (page + npages) * PAGE_SIZE
        a, _ = self.search_addr_force.load()
        if _off(self.p, a).less_than(_off(self.p, addr)):
            self.search_addr_force.store_marked(addr)


class ScavIndexFreeMarksPastLastPage(PageAlloc):
    """scavengeIndex.free marks the force cursor one page past the last page freed (as B2 did for searchAddr)."""

    @classmethod
    def make(cls, p, test=True, **host):
        pa = super().make(p, test, **host)
        pa.scav.index.__class__ = _IndexFreeMarksPastLastPage
        return pa


# --- scenarios ------------------------------------------------------------------------------------


def _base(p, k: int = 0) -> int:
    """Returns the address of chunk BaseChunkIdx + k (export_test.go:BaseChunkIdx)."""
    return chunk_base(p, p.base_chunk_idx + k)


def _grown(cls, p, *chunk_offsets: int) -> PageAlloc:
    pa = cls.make(p)
    for k in chunk_offsets:
        pa.grow(_base(p, k), p.palloc_chunk_bytes)
    return pa


def _boundary_chunks(p) -> tuple[int, int]:
    """Returns chunk offsets (A, B) as in TestPageAllocAlloc/DiscontiguousMappedSumBoundary.

    A's leaf summary is the last on a physical page of summary memory; B is O(TiB) away on
    64-bit, so the page after A's leaf is never mapped. 32-bit has too few chunks: B = A + 2.
    """
    sums_per_phys_page = p.phys_page_size // PALLOC_SUM_BYTES
    a = sums_per_phys_page - 1
    if p.is_64bit_page_alloc and p.heap_addr_bits > 40:
        return a, 0x100000
    return min(a, 64), min(a, 64) + 2


def _scn_alloc_some(cls, p):
    pa = _grown(cls, p, 0, 1)
    pa.alloc(3)
    pa.alloc(p.palloc_chunk_pages)
    return pa, []


def _scn_alloc_free(cls, p):
    pa = _grown(cls, p, 0)
    a, _ = pa.alloc(10)
    pa.alloc(1)
    pa.free(a, 10)
    return pa, []


def _scn_boundary_alloc1(cls, p):
    a, b = _boundary_chunks(p)
    pa = _grown(cls, p, a, b)
    pa.alloc(p.palloc_chunk_pages - 1)
    pa.alloc(1)  # the last page of chunk A
    return pa, []


def _scn_boundary_cache(cls, p):
    a, b = _boundary_chunks(p)
    pa = _grown(cls, p, a, b)
    pa.alloc(p.palloc_chunk_pages - PAGE_CACHE_PAGES) if p.palloc_chunk_pages > PAGE_CACHE_PAGES else None
    c = pa.alloc_to_cache()  # the last 64-page block of chunk A
    return pa, [c]


def _scn_free_last_page(cls, p):
    a, b = _boundary_chunks(p)
    pa = _grown(cls, p, a, b)
    pa.alloc(p.palloc_chunk_pages)  # all of chunk A
    pa.free(_base(p, a) + (p.palloc_chunk_pages - 1) * PAGE_SIZE, 1)
    return pa, []


def _scn_bad_search_addr(cls, p):
    """TestPageAllocAlloc/DiscontiguousBadSearchAddr: A, B (with a small offset) and C far apart.

    64-bit: chunkIdxBigJump = 0x100000, chunkIdxSmallOffset = 0x503 as in the runtime's test;
    elsewhere the jump is one level-1 summary entry and the offset 3 chunks.
    """
    n = p.palloc_chunk_pages
    if p.is_64bit_page_alloc and p.heap_addr_bits > 40:
        big, small = 0x100000, 0x503
    else:
        big, small = 1 << (p.level_shift[1] - p.level_shift[-1]), 3
    pa = _grown(cls, p, 0, big + small, 2 * big)
    pa.alloc_range(_base(p, 0), n - 1)  # A has one free page, its last
    pa.alloc_range(_base(p, big + small), n - 10)  # B has 9 free pages, not at its end
    pa.alloc_range(_base(p, big + small) + (n - 1) * PAGE_SIZE, 1)
    pa.alloc(1)  # A's last page: searchAddr at the end of A
    pa.alloc(10)  # does not fit in B: C, with a hint from the summaries
    return pa, []


def _scn_cache(cls, p):
    pa = _grown(cls, p, 0, 1)
    pa.alloc(5)
    c = pa.alloc_to_cache()
    c.alloc(2)
    return pa, [c]


def _scn_two_growths(cls, p):
    pa = _grown(cls, p, 4, 0)
    pa.alloc(1)
    return pa, []


def _scn_three_chunks(cls, p):
    pa = _grown(cls, p, 0, 1, 2)
    pa.alloc(p.palloc_chunk_pages + 1)  # all of chunk 0 and page 0 of chunk 1
    return pa, []


# --- seeded corruptions -------------------------------------------------------------------------


def _update_contig_non_uniform(pa, caches):
    """T-F5: update(contig=true, alloc=false) over chunks 0..2 although chunk 1 is not all free."""
    p = pa.p
    pa.update(_base(p, 0), 3 * p.palloc_chunk_pages, True, False)


def _stale_interior(pa, caches):
    """An interior summary entry above chunk 0 loses its free pages (as if update stopped early)."""
    p = pa.p
    l = len(pa.summary) - 2
    i = p.base_chunk_idx >> p.level_bits[-1]
    pa.summary[l][i] = 0


def _regrow(pa, caches):
    """T-F4: grow memory that is already grown (the runtime does not support it)."""
    with undefined_allowed(pa):
        pa.grow(_base(pa.p, 0), pa.p.palloc_chunk_bytes)


def _end_short(pa, caches):
    """end one chunk short of inUse."""
    pa.end -= 1


def _summary_outside_in_use(pa, caches):
    """A summary entry far above the heap claims free pages, so find would descend into unmapped memory."""
    p = pa.p
    l = 0 if p.level_bits[0] > 0 else 1  # mips: the root is a single entry, use level 1
    i = len(pa.summary[l]) - 1  # the last entry in bounds, whose children lie beyond the heap
    pa.summary[l][i] = p.free_chunk_sum


def _duplicate_cache(pa, caches):
    """The same page cache handed to two Ps."""
    c = caches[0]
    caches.append(PageCache(base=c.base, cache=c.cache, scav=c.scav))


@dataclasses.dataclass(frozen=True)
class InvariantVariant:
    """A seeded bug and the invariants that must catch it.

    scenario(cls, p) -> (pa, caches) runs on `cls` (the broken PageAlloc, or PageAlloc itself
    for a seeded corruption), then corrupt(pa, caches) is applied if given. catches are the
    invariants that must report it on every platform; catches_64 are added on 64-bit page
    allocators with a 48-bit address space (where summary memory is mapped on demand).
    """

    name: str
    catches: tuple[str, ...]
    scenario: Callable
    cls: type = PageAlloc
    corrupt: Callable | None = None
    catches_64: tuple[str, ...] = ()
    doc: str = ""

    def expected(self, p) -> set[str]:
        """Returns the invariants that must catch this variant on platform p."""
        extra = self.catches_64 if (p.is_64bit_page_alloc and p.heap_addr_bits > 40) else ()
        return set(self.catches) | set(extra)

    def build(self, p):
        """Returns (pa, caches): the broken state on platform p."""
        pa, caches = self.scenario(self.cls, p)
        caches = list(caches)
        if self.corrupt is not None:
            self.corrupt(pa, caches)
        return pa, caches

    def build_healthy(self, p):
        """Returns (pa, caches): the same scenario on the healthy PageAlloc, uncorrupted."""
        pa, caches = self.scenario(PageAlloc, p)
        return pa, list(caches)


# One row per variant: a table, its rows alike by design.
INVARIANT_VARIANTS: tuple[InvariantVariant, ...] = (
    InvariantVariant("leaf_summary_off_by_one", ("summaries_consistent",), _scn_alloc_some, cls=LeafSummaryOffByOne,
               doc=LeafSummaryOffByOne.__doc__),
    InvariantVariant("update_contig_non_uniform", ("summaries_consistent",), _scn_three_chunks,
               corrupt=_update_contig_non_uniform, doc=_update_contig_non_uniform.__doc__),
    InvariantVariant("stale_interior_summary", ("summaries_consistent",), _scn_alloc_some,
               corrupt=_stale_interior, doc=_stale_interior.__doc__),
    InvariantVariant("free_skips_search_addr", ("below_search_addr_allocated",), _scn_alloc_free, cls=FreeSkipsSearchAddr,
               doc=FreeSkipsSearchAddr.__doc__),
    InvariantVariant("b1_find_returns_addr_plus_one", ("search_addr_in_use",), _scn_boundary_alloc1,
               cls=FindReturnsAddrPlusOne, catches_64=("summary_reads_mapped",), doc=FindReturnsAddrPlusOne.__doc__),
    InvariantVariant("b2_alloc_to_cache_past_block", ("search_addr_in_use",), _scn_boundary_cache,
               cls=AllocToCachePastBlock, catches_64=("summary_reads_mapped",), doc=AllocToCachePastBlock.__doc__),
    InvariantVariant("b3_find_without_find_mapped_addr", ("search_addr_in_use",), _scn_bad_search_addr,
               cls=FindWithoutFindMappedAddr, catches_64=("summary_reads_mapped",), doc=FindWithoutFindMappedAddr.__doc__),
    InvariantVariant("alloc_keeps_scavenged", ("scavenged_implies_free",), _scn_alloc_some, cls=AllocKeepsScavenged,
               doc=AllocKeepsScavenged.__doc__),
    InvariantVariant("regrow_grown_memory", ("in_use_sorted_coalesced", "scavenged_implies_free"), _scn_alloc_some,
               corrupt=_regrow, doc=_regrow.__doc__),
    InvariantVariant("grow_keeps_first_start", ("bounds_cover_in_use",), _scn_two_growths, cls=GrowKeepsFirstStart,
               doc=GrowKeepsFirstStart.__doc__),
    InvariantVariant("end_short", ("bounds_cover_in_use",), _scn_alloc_some, corrupt=_end_short, doc=_end_short.__doc__),
    InvariantVariant("summary_outside_in_use", ("summary_reads_mapped", "summaries_consistent"), _scn_alloc_some,
               corrupt=_summary_outside_in_use, doc=_summary_outside_in_use.__doc__),
    InvariantVariant("alloc_to_cache_skips_index", ("scav_index_in_use_matches_bitmap",), _scn_cache,
               cls=AllocToCacheSkipsIndex, doc=AllocToCacheSkipsIndex.__doc__),
    InvariantVariant("scav_index_free_marks_past_last_page", ("scav_index_cursors_in_use",), _scn_free_last_page,
               cls=ScavIndexFreeMarksPastLastPage, doc=ScavIndexFreeMarksPastLastPage.__doc__),
    InvariantVariant("alloc_to_cache_leaves_free", ("page_cache_disjoint",), _scn_cache, cls=AllocToCacheLeavesFree,
               doc=AllocToCacheLeavesFree.__doc__),
    InvariantVariant("duplicate_cache", ("page_cache_disjoint",), _scn_cache, corrupt=_duplicate_cache,
               doc=_duplicate_cache.__doc__),
)


def invariant_variant(name: str) -> InvariantVariant:
    """Returns the invariant variant called name."""
    for t in INVARIANT_VARIANTS:
        if t.name == name:
            return t
    raise KeyError(name)


# --- model variants: the differential fuzzer must catch these ---------------------------------


class FindOffByOne(FastPageAlloc):
    """find compares free runs with `> npages` instead of `>= npages`: an exact fit is missed.

    Net effect: the radix-tree search behaves as if one more page were asked for, so a run of
    exactly npages free pages found only by find (the slow path) is skipped.
    """

    def find(self, npages: int):
        return super().find(npages + 1)


class SearchAddrUpdateSkipped(FastPageAlloc):
    """alloc never raises searchAddr to the search's candidate (the final update is skipped).

    Returned addresses stay right (searchAddr is only a hint), but the state differs at once.
    """

    def alloc(self, npages: int):
        keep = self.search_addr
        addr, scav = super().alloc(npages)
        if addr != 0:
            self.search_addr = keep
        return addr, scav


def summarize_shortcut_61(p, v: int) -> int:
    """Returns what summarize() gives for chunk bitmap v when its shortcut reads most >= 64-3.

    Go's first loop finds the free runs that touch a word boundary (start, end, and runs
    spanning words); the shortcut then skips the search for runs inside one word. A run inside
    one word is at most 62 pages, so the shortcut is right from most >= 62 on; at most == 61 it
    loses an inner run of 62 pages (a word 1 0^62 1).
    """
    from palloc.model.mpallocbits import PallocBits

    cp, m64 = p.palloc_chunk_pages, (1 << 64) - 1
    start, most, cur = None, 0, 0
    for i in range(cp // 64):
        x = (v >> (64 * i)) & m64
        if x == 0:
            cur += 64
            continue
        cur += (x & -x).bit_length() - 1
        if start is None:
            start = cur
        most = max(most, cur)
        cur = 64 - x.bit_length()
    good = PallocBits(p, v).summarize()
    if start is None or max(most, cur) != 61:
        return good
    return pack_palloc_sum(p, start, 61, cur)


class SummarizeShortcut61(FastPageAlloc):
    """Leaf summaries come from summarize() with its shortcut at most >= 61, not 62.

    The mutant n-summarize-shortcut-61: a chunk whose boundary-touching free runs are at most
    61 pages long and which holds a run of 62 free pages inside one word (1 0^62 1) gets max 61.
    Only adversarial bitmaps (goref/fuzz.py:Generator.adversarial_bits, shaped into a chunk by
    carve or NewPageAlloc) reach it.
    """

    def update(self, base, npages, contig, alloc):
        super().update(base, npages, contig, alloc)
        p = self.p
        leaf = self.summary[-1]
        lo = chunk_index(p, base)
        hi = chunk_index(p, base + npages * PAGE_SIZE - 1)
        for ci in range(lo, hi + 1):
            bad = summarize_shortcut_61(p, self.chunk_of(ci).v)
            if leaf[ci] == bad:
                continue
            leaf[ci] = bad
            for l in range(len(self.summary) - 2, -1, -1):  # re-merge the path to the root
                i = ci >> (p.level_shift[l] - p.level_shift[-1])
                a = i << p.level_bits[l + 1]
                self.summary[l][i] = merge_summaries(
                    p, self.summary[l + 1].values(a, a + (1 << p.level_bits[l + 1])), p.level_log_pages[l + 1])


class FindSuccLessEqualRanges(AddrRanges):
    """addrRanges whose findSucc scans its last candidates with lessEqual (mutant n-ranges-findsucc-lessequal)."""

    def find_succ(self, addr: int) -> int:
        o = OffAddr(self.p, addr)
        ranges = self.ranges
        bot, top = 0, len(ranges)
        while top - bot > 8:
            i = (bot + top) >> 1
            if ranges[i].contains(addr):
                return i + 1
            if o.less_than(ranges[i].base):
                top = i
            else:
                bot = i + 1
        for i in range(bot, top):
            if o.less_equal(ranges[i].base):  # the mistake: lessThan in Go
                return i
        return top


class RangesFindSuccLessEqual(FastPageAlloc):
    """addrRanges.findSucc's linear scan uses lessEqual: contains(base of a range) is false.

    The allocator's own inUse never asks (only findAddrGreaterEqual, add and removeGreaterEqual
    call findSucc there, and their answers do not change), so only the standalone addrRanges
    verbs (goref/fuzz.py:Generator.addr_ranges) can catch it.
    """

    def init(self, test):
        super().init(test)
        self.in_use = FindSuccLessEqualRanges(self.p)


class ExactFitAtChunkEndThrows(FastPageAlloc):
    """find throws "bad summary data" when its first fit of npages > 64 pages is a free run of
    exactly npages ending at a chunk's end (a findLargeN that rejects an exact fit there).

    Needs alloc or find with npages equal to a free run's length (goref/fuzz.py:Generator.exact_fit).
    """

    def find(self, npages):
        addr, hint = super().find(npages)
        if npages > 64 and addr:
            p = self.p
            ci = chunk_index(p, addr)
            first = (addr - chunk_base(p, ci)) // PAGE_SIZE
            if first > 0 and first + npages == p.palloc_chunk_pages and self.chunk_of(ci).v >> (first - 1) & 1:
                raise GoThrow("bad summary data")
        return addr, hint


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """A named broken model: its PageAlloc class and the kind of divergence expected."""

    name: str
    cls: type
    expected: str  # "result", "state" or "crash" (the first divergence's kind, typically)
    doc: str

    def factory(self) -> Callable:
        cls = self.cls

        def make(p, **host):
            return cls.make(p, test=True, **host)

        return make


def _model_variants() -> dict[str, ModelVariant]:
    out = {
        "find-off-by-one": ModelVariant("find-off-by-one", FindOffByOne, "result", FindOffByOne.__doc__.splitlines()[0]),
        "search-addr-update-skipped": ModelVariant(
            "search-addr-update-skipped", SearchAddrUpdateSkipped, "state", SearchAddrUpdateSkipped.__doc__.splitlines()[0]
        ),
        "summarize-shortcut-61": ModelVariant(
            "summarize-shortcut-61", SummarizeShortcut61, "state", SummarizeShortcut61.__doc__.splitlines()[0]),
        "ranges-findsucc-lessequal": ModelVariant(
            "ranges-findsucc-lessequal", RangesFindSuccLessEqual, "result", RangesFindSuccLessEqual.__doc__.splitlines()[0]),
        "exact-fit-at-chunk-end": ModelVariant(
            "exact-fit-at-chunk-end", ExactFitAtChunkEndThrows, "crash", ExactFitAtChunkEndThrows.__doc__.splitlines()[0]),
    }
    for name, cls, kind in (
        ("b1-find-addr-plus-one", FindReturnsAddrPlusOne, "state"),
        ("b2-alloc-to-cache-past-block", AllocToCachePastBlock, "state"),
        ("free-skips-search-addr", FreeSkipsSearchAddr, "state"),
        ("leaf-summary-off-by-one", LeafSummaryOffByOne, "state"),
    ):
        out[name] = ModelVariant(name, cls, kind, cls.__doc__.strip().splitlines()[0])
    return out


MODEL_VARIANTS = _model_variants()


def model_variant(name: str) -> ModelVariant:
    """Returns the named broken model; raises KeyError listing the known names."""
    try:
        return MODEL_VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(MODEL_VARIANTS)}") from None
