"""Seeded broken twins of the model, for checking that the differential fuzzer can fail.

A check that cannot fail is a defect (STYLE.md habit 10): `palloc fuzz --model-variant NAME` runs
the fuzzer against one of these instead of the faithful model, and tests/goref/test_fuzz.py
asserts each is caught (and shrunk) within the fuzzer's default budget.

Each variant is a PageAlloc subclass (Go 1.27 src/runtime/mpagealloc.go semantics with one
seeded mistake); `expected` says how the fuzzer should see it. Some reuse the broken allocators of
model/broken.py (the invariant twins), so the same mistake is caught by both layers.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from palloc.spec.errors import GoThrow
from palloc.model.mpagealloc import PageAlloc, chunk_base, chunk_index
from palloc.model.mranges import AddrRanges, OffAddr
from palloc.spec.constants import PAGE_SIZE


class FindOffByOne(PageAlloc):
    """find compares free runs with `> npages` instead of `>= npages`: an exact fit is missed.

    Net effect: the radix-tree search behaves as if one more page were asked for, so a run of
    exactly npages free pages found only by find (the slow path) is skipped.
    """

    def find(self, npages: int):
        return super().find(npages + 1)


class SearchAddrUpdateSkipped(PageAlloc):
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
    lg = p.log_max_packed_value
    m = p.max_packed_value - 1
    return (start & m) | ((61 & m) << lg) | ((cur & m) << (2 * lg))


class SummarizeShortcut61(PageAlloc):
    """Leaf summaries come from summarize() with its shortcut at most >= 61, not 62.

    The mutant n-summarize-shortcut-61: a chunk whose boundary-touching free runs are at most
    61 pages long and which holds a run of 62 free pages inside one word (1 0^62 1) gets max 61.
    Only adversarial bitmaps (goref/fuzz.py:Generator.adversarial_bits, shaped into a chunk by
    carve or NewPageAlloc) reach it.
    """

    def update(self, base, npages, contig, alloc):
        from palloc.model.mpagealloc import chunk_index, merge_summaries

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


class RangesFindSuccLessEqual(PageAlloc):
    """addrRanges.findSucc's linear scan uses lessEqual: contains(base of a range) is false.

    The allocator's own inUse never asks (only findAddrGreaterEqual, add and removeGreaterEqual
    call findSucc there, and their answers do not change), so only the standalone addrRanges
    verbs (goref/fuzz.py:Generator.addr_ranges) can catch it.
    """

    def init(self, test):
        super().init(test)
        self.in_use = FindSuccLessEqualRanges(self.p)


class ExactFitAtChunkEndThrows(PageAlloc):
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
class Variant:
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


def _variants() -> dict[str, Variant]:
    out = {
        "find-off-by-one": Variant("find-off-by-one", FindOffByOne, "result", FindOffByOne.__doc__.splitlines()[0]),
        "search-addr-update-skipped": Variant(
            "search-addr-update-skipped", SearchAddrUpdateSkipped, "state", SearchAddrUpdateSkipped.__doc__.splitlines()[0]
        ),
        "summarize-shortcut-61": Variant(
            "summarize-shortcut-61", SummarizeShortcut61, "state", SummarizeShortcut61.__doc__.splitlines()[0]),
        "ranges-findsucc-lessequal": Variant(
            "ranges-findsucc-lessequal", RangesFindSuccLessEqual, "result", RangesFindSuccLessEqual.__doc__.splitlines()[0]),
        "exact-fit-at-chunk-end": Variant(
            "exact-fit-at-chunk-end", ExactFitAtChunkEndThrows, "crash", ExactFitAtChunkEndThrows.__doc__.splitlines()[0]),
    }
    try:  # the invariant layer's broken allocators, where present (model/broken.py, H3)
        from palloc.model import broken as B

        for name, cls_name, kind in (
            ("b1-find-addr-plus-one", "FindReturnsAddrPlusOne", "state"),
            ("b2-alloc-to-cache-past-block", "AllocToCachePastBlock", "state"),
            ("free-skips-search-addr", "FreeSkipsSearchAddr", "state"),
            ("leaf-summary-off-by-one", "LeafSummaryOffByOne", "state"),
        ):
            cls = getattr(B, cls_name, None)
            if cls is not None:
                out[name] = Variant(name, cls, kind, (cls.__doc__ or name).strip().splitlines()[0])
    except ImportError:
        pass
    return out


VARIANTS = _variants()


def variant(name: str) -> Variant:
    """Returns the named broken model; raises KeyError listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(VARIANTS)}") from None
