"""The page allocator's invariants as named predicates, in one place.

Each predicate formalises a comment of the Go 1.27.3 runtime (quoted in its docstring, with the
file and field or function) about `pageAlloc` (src/runtime/mpagealloc.go and friends). The names
are stable: spec/SPEC.md §5 defines them, and the proofs (proofs/), the stateful tests and the
differential fuzzer use the same names.

Every predicate takes the PageAlloc and returns a list of Violation (empty when it holds). A
violation reads like a debugger's output, with chunk indices, page ranges, addresses and unpacked
summaries, never raw bitmaps:

    summaries_consistent: chunk 0x200c003 pages [17, 20): summary says free (start=20), bitmap allocated

Cost: every predicate is linear in the grown chunks (a few ms per chunk), cheap enough to run
after every step on small heaps. For big heaps pass `touched`, the chunk indices an operation may
have changed; the per-chunk checks then visit only those chunks (and their ancestors in the
summary tree), while the O(|inUse|) checks always run. Include in `touched` every chunk whose
bitmap changed and every chunk searchAddr moved across.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from typing import Callable, Iterable

from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE

__all__ = [
    "INVARIANTS",
    "InvariantViolation",
    "Violation",
    "assert_invariants",
    "below_search_addr_allocated",
    "bounds_cover_in_use",
    "check_all",
    "holds_per_step",
    "in_use_sorted_coalesced",
    "page_cache_disjoint",
    "scav_index_cursors_in_use",
    "scav_index_in_use_matches_bitmap",
    "scavenged_implies_free",
    "search_addr_in_use",
    "summaries_consistent",
    "summary_reads_mapped",
]


@dataclasses.dataclass(frozen=True)
class Violation:
    """One way a state breaks a named invariant: where (chunk, pages, entry) and what is wrong."""

    invariant: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.where}: {self.detail}"


class InvariantViolation(AssertionError):
    """Raised by assert_invariants; the message lists every violation, one a line."""

    def __init__(self, violations: list[Violation], context: str = ""):
        self.violations = violations
        head = f"{len(violations)} invariant violation(s)" + (f" after {context}" if context else "")
        lines = [str(v) for v in violations[:20]]
        if len(violations) > 20:
            lines.append(f"... and {len(violations) - 20} more")
        super().__init__("\n  ".join([head] + lines))


# --- helpers: reading the state without faulting ------------------------------------------------


def _runs(mask: int) -> list[tuple[int, int]]:
    """Returns the maximal runs [a, b) of set bits of mask, lowest first."""
    out = []
    i = 0
    while mask >> i:
        low = mask >> i
        a = i + ((low & -low).bit_length() - 1)
        rest = ~(mask >> a)
        b = a + ((rest & -rest).bit_length() - 1)
        out.append((a, b))
        i = b
    return out


def _summarize_runs(alloc: int, n: int) -> tuple[int, int, int]:
    """Returns (start, max, end) of an n-page alloc bitmap from its maximal runs of free pages:
    start is the run at page 0, end the run reaching page n, max the longest.

    The definition of pallocBits.summarize, not its code; tests compare it with the bit-by-bit
    mpallocbits.summarize_slow_unpacked (export_test.go SummarizeSlow).
    """
    runs = _runs(~alloc & ((1 << n) - 1))
    if not runs:
        return 0, 0, 0
    start = runs[0][1] if runs[0][0] == 0 else 0
    end = n - runs[-1][0] if runs[-1][1] == n else 0
    return start, max(b - a for a, b in runs), end


def _fmt_runs(mask: int, limit: int = 4) -> str:
    rs = _runs(mask)
    s = ", ".join(f"[{a}, {b})" for a, b in rs[:limit])
    return s + (f" and {len(rs) - limit} more" if len(rs) > limit else "")


def _off(p, a: int) -> int:
    return (a - p.arena_base_offset) & p.uintptr_mask


def _chunk_index(p, a: int) -> int:
    return _off(p, a) >> p.log_palloc_chunk_bytes


def _chunk_base(p, ci: int) -> int:
    return (ci * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask


def _unpack(p, s: int) -> tuple[int, int, int]:
    """Returns (start, max, end) of a packed pallocSum (mpagealloc.go:pallocSum.unpack)."""
    if s & (1 << 63):
        m = p.max_packed_value
        return m, m, m
    lg, m = p.log_max_packed_value, p.max_packed_value - 1
    return s & m, (s >> lg) & m, (s >> (2 * lg)) & m


def _fmt_sum(p, s: int) -> str:
    a, b, c = _unpack(p, s)
    return f"(start={a}, max={b}, end={c})"


def _in_use_spans(pa) -> list[tuple[int, int]]:
    """Returns the chunk index range [lo, hi) of every inUse range, in offset order.

    lo is chunkIndex(base) and hi - lo is the range's size in whole chunks (AddrRange.size),
    read from the offsets OffAddr caches.
    """
    lg = pa.p.log_palloc_chunk_bytes
    out = []
    for r in pa.in_use.ranges:
        b, l = r.base._o, r.limit._o
        lo = b >> lg
        out.append((lo, lo + ((l - b) >> lg) if b < l else lo))
    return out


def _in_use_chunks(pa) -> list[int]:
    """Returns the chunk indices of every grown chunk, in offset order."""
    out: list[int] = []
    for lo, hi in _in_use_spans(pa):
        out.extend(range(lo, hi))
    return out


def _chunks(pa, touched: Iterable[int] | None) -> list[int]:
    """Returns the grown chunks to check: all of them, or those of touched that are grown,
    ascending."""
    if touched is None:
        return _in_use_chunks(pa)
    spans = _in_use_spans(pa)
    out = []
    for c in sorted(set(touched)):
        for lo, hi in spans:
            if lo <= c < hi:
                out.append(c)
                break
    return out


def _bitmaps(pa, ci: int) -> tuple[int, int] | None:
    """Returns (alloc bits, scavenged bits) of chunk ci as ints, or None if its L2 block is nil."""
    d = pa.try_chunk_of(ci)
    if d is None:
        return None
    return d.v, d.scavenged.v


def _sum(pa, l: int, i: int) -> int:
    """Returns summary[l][i] as stored (0 when never written), without a mapping check."""
    return pa.summary[l].vals.get(i, 0)


def _ancestor(p, ci: int, l: int) -> int:
    """Returns the index at level l of the summary entry covering chunk ci."""
    return ci >> (p.level_shift[l] - p.level_shift[-1])


# _merge's results by (log_max_packed_value, log_pages, children).
_MERGED: dict[tuple, int] = {}


def _merge(p, children, log_pages: int) -> int:
    """Returns the summary of 8 concatenated children: the definition, state by state.

    A readable twin of mpagealloc.go:mergeSummaries written here so the invariant does not trust
    the code it checks: walk the children keeping the free run that reaches the top so far.
    """
    n = 1 << log_pages
    total = n * len(children)
    start = most = run = 0
    leading = True  # every child so far entirely free
    for s in children:
        cs, cm, ce = _unpack(p, s)
        if cs == n:  # entirely free child
            run += n
            if leading:
                start += n
            most = max(most, run)
            continue
        most = max(most, run + cs, cm)
        if leading:
            start += cs
            leading = False
        run = ce
    end = run
    most = max(most, end)
    if most == p.max_packed_value:
        return 1 << 63
    if start == total:
        end = most = start
    m = p.max_packed_value - 1
    lg = p.log_max_packed_value
    return (start & m) | ((most & m) << lg) | ((end & m) << (2 * lg))


# --- the invariants -------------------------------------------------------------------------------


def summaries_consistent(pa, *, touched: Iterable[int] | None = None,
                         checked: list[int] | None = None, **_) -> list[Violation]:
    """Checks that every summary describes the pages below it.

    Every grown chunk's leaf summary equals summarize() of its alloc bitmap (computed here from
    the bitmap's maximal free runs, not by the model's summarize), every interior entry above a grown chunk equals the merge of its 8 children, and no
    leaf outside inUse claims a free page.

    Formalises mpagealloc.go:pageAlloc.summary, "Radix tree of summaries", and the contract of
    mpagealloc.go:update: "update updates heap metadata. It must be called each time the bitmap
    is updated." mpagealloc.go:pallocSum: "pallocSum is a packed summary type which packs three
    numbers: start, max, and end into a single 8-byte value. Each of these values are a summary
    of a bitmap".
    """
    name, p = "summaries_consistent", pa.p
    out: list[Violation] = []
    leaf = len(pa.summary) - 1
    chunks = _chunks(pa, touched) if checked is None else checked
    n = p.palloc_chunk_pages
    for ci in chunks:
        bm = _bitmaps(pa, ci)
        if bm is None:
            out.append(Violation(name, f"chunk {ci:#x}", "grown but its L2 block of pageAlloc.chunks is nil"))
            continue
        alloc = bm[0]
        stored = _sum(pa, leaf, ci)
        ws, wm, we = _summarize_runs(alloc, n)
        ss, sm, se = _unpack(p, stored)
        if (ss, sm, se) == (ws, wm, we):
            continue
        where = f"chunk {ci:#x}"
        said = False
        if ss > ws:
            bad = alloc & ((1 << ss) - 1)
            out.append(Violation(name, f"{where} pages {_fmt_runs(bad)}", f"summary says free (start={ss}), bitmap allocated"))
            said = True
        elif ss < ws:
            out.append(Violation(name, f"{where} pages [{ss}, {ws})", f"summary says allocated (start={ss}), bitmap free"))
            said = True
        if se > we:
            bad = alloc & (((1 << se) - 1) << (n - se))
            out.append(Violation(name, f"{where} pages {_fmt_runs(bad)}", f"summary says free (end={se}), bitmap allocated"))
            said = True
        elif se < we:
            out.append(Violation(name, f"{where} pages [{n - we}, {n - se})", f"summary says allocated (end={se}), bitmap free"))
            said = True
        if sm != wm or not said:
            out.append(Violation(name, f"{where} leaf summary", f"stored {_fmt_sum(p, stored)}, bitmap gives (start={ws}, max={wm}, end={we})"))
    # Leaves outside inUse must read 0 (no free page in memory that was never grown).
    if touched is None:
        grown = set(chunks)
        for ci, v in sorted(pa.summary[leaf].vals.items()):
            if v and ci not in grown:
                out.append(Violation(name, f"chunk {ci:#x} (not grown)", f"leaf summary {_fmt_sum(p, v)} claims free pages in memory never grown"))
    # Interior levels: the ancestors of the checked chunks (all stored entries when untouched).
    for l in range(leaf - 1, -1, -1):
        idx = {_ancestor(p, ci, l) for ci in chunks}
        if touched is None:
            idx |= {i for i, v in pa.summary[l].vals.items() if v}
        bits, log_pages = p.level_bits[l + 1], p.level_log_pages[l + 1]
        get = pa.summary[l + 1].vals.get
        for i in sorted(idx):
            kids = tuple(get(j, 0) for j in range(i << bits, (i + 1) << bits))
            key = (p.log_max_packed_value, log_pages, kids)
            want = _MERGED.get(key)
            if want is None:  # _merge is pure: the same children always merge the same way
                if len(_MERGED) >= 1 << 16:
                    _MERGED.clear()
                want = _MERGED[key] = _merge(p, kids, log_pages)
            got = _sum(pa, l, i)
            if got != want:
                base = (((i << p.level_shift[l]) + p.arena_base_offset) & p.uintptr_mask)
                out.append(Violation(
                    name, f"summary[{l}][{i:#x}] (pages from {base:#x})",
                    f"stored {_fmt_sum(p, got)}, its children merge to {_fmt_sum(p, want)}"))
    return out


def search_addr_in_use(pa, **_) -> list[Violation]:
    """Checks that searchAddr lies in inUse or is maxSearchAddr().

    Formalises mpagealloc.go:pageAlloc.searchAddr: "It must never point to any memory that is
    not contained in inUse, i.e. inUse.contains(searchAddr.addr()) must always be true. The one
    exception to this rule is that it may take on the value of maxOffAddr to indicate that the
    heap is exhausted."
    """
    p = pa.p
    a = pa.search_addr.addr()
    if a == p.max_off_addr or pa.in_use.contains(a):
        return []
    rs = ", ".join(f"[{r.base.addr():#x}, {r.limit.addr():#x})" for r in pa.in_use.ranges[:4]) or "none"
    return [Violation("search_addr_in_use", f"searchAddr {a:#x} (chunk {_chunk_index(p, a):#x})",
                      f"not in inUse (ranges {rs}) and not maxSearchAddr {p.max_off_addr:#x}")]


def below_search_addr_allocated(pa, *, touched: Iterable[int] | None = None,
                                checked: list[int] | None = None, **_) -> list[Violation]:
    """Checks that every grown page below searchAddr (offset order) is allocated.

    Formalises mpagealloc.go:pageAlloc.searchAddr: "We guarantee that all valid heap addresses
    below this value are allocated and not worth searching." (searchAddr itself may be
    allocated: it is a lower bound, not a free page.)
    """
    p = pa.p
    out = []
    s = _off(p, pa.search_addr.addr())
    n = p.palloc_chunk_pages
    for ci in _chunks(pa, touched) if checked is None else checked:
        cb = ci << p.log_palloc_chunk_bytes  # offset address of the chunk
        if cb >= s:
            continue
        below = min(n, (s - cb) // PAGE_SIZE)
        bm = _bitmaps(pa, ci)
        if bm is None:
            continue
        free = ~bm[0] & ((1 << below) - 1)
        if free:
            out.append(Violation("below_search_addr_allocated", f"chunk {ci:#x} pages {_fmt_runs(free)}",
                                 f"free, but below searchAddr {pa.search_addr.addr():#x}"))
    return out


def scavenged_implies_free(pa, *, touched: Iterable[int] | None = None, padding=None,
                           checked: list[int] | None = None, **_) -> list[Violation]:
    """Checks that no grown page is both scavenged and allocated.

    Formalises export_test.go:CheckScavengedBitsCleared ("If a used bit and scavenged bit are
    both set, that's an error, and could indicate a larger problem, or an accounting problem")
    and mpallocbits.go:pallocData.allocRange ("Clear the scavenged bits when we alloc the
    range"). Go 1.26+ markRandomPaddingPages breaks it on purpose: pass those pages as
    `padding`, a mapping chunk index -> bitmask of exempt pages.
    """
    out = []
    padding = padding or {}
    for ci in _chunks(pa, touched) if checked is None else checked:
        bm = _bitmaps(pa, ci)
        if bm is None:
            continue
        both = bm[0] & bm[1] & ~padding.get(ci, 0)
        if both:
            out.append(Violation("scavenged_implies_free", f"chunk {ci:#x} pages {_fmt_runs(both)}",
                                 "scavenged but allocated"))
    return out


def in_use_sorted_coalesced(pa, **_) -> list[Violation]:
    """Checks that inUse is sorted, coalesced, chunk-aligned, and totalBytes is its size.

    Formalises mranges.go:addrRanges.ranges, "ranges is a slice of ranges sorted by base.", the
    type's comment "The ranges are coalesced eagerly to reduce the number ranges it holds.", and
    totalBytes: "totalBytes is the total amount of address space in bytes counted by this
    addrRanges." (pageAlloc.grow only ever adds chunk-aligned ranges.)
    """
    p = pa.p
    name = "in_use_sorted_coalesced"
    out = []
    total = 0
    prev = None
    cb = p.palloc_chunk_bytes
    for k, r in enumerate(pa.in_use.ranges):
        b, l = _off(p, r.base.addr()), _off(p, r.limit.addr())
        where = f"inUse[{k}] = [{r.base.addr():#x}, {r.limit.addr():#x})"
        if not b < l:
            out.append(Violation(name, where, "empty or inverted range"))
        if b % cb or l % cb:
            out.append(Violation(name, where, "not aligned to pallocChunkBytes"))
        if prev is not None:
            if b < prev:
                out.append(Violation(name, where, "overlaps or precedes the previous range"))
            elif b == prev:
                out.append(Violation(name, where, "touches the previous range (should be coalesced)"))
        prev = l
        total += max(0, l - b)
    if total != pa.in_use.total_bytes:
        out.append(Violation(name, "inUse.totalBytes", f"{pa.in_use.total_bytes:#x}, but the ranges add up to {total:#x}"))
    return out


def bounds_cover_in_use(pa, **_) -> list[Violation]:
    """Checks that [start, end) is exactly the chunk span of inUse (start == 0 when empty).

    Formalises mpagealloc.go:pageAlloc.start/end ("start and end represent the chunk indices
    which pageAlloc knows about") and grow, which sets start on the first growth and widens
    both after. (The field comment's "It assumes chunks in the range [start, end) are currently
    ready to use" is false for a discontiguous heap: spec/SPEC.md T-F3.)
    """
    p = pa.p
    rs = pa.in_use.ranges
    if not rs:
        want = (0, 0)
    else:
        want = (_chunk_index(p, rs[0].base.addr()), _chunk_index(p, rs[-1].limit.addr()))
    got = (pa.start, pa.end)
    if got == want:
        return []
    return [Violation("bounds_cover_in_use", "start, end",
                      f"[{got[0]:#x}, {got[1]:#x}), but inUse spans chunks [{want[0]:#x}, {want[1]:#x})")]


def summary_reads_mapped(pa, *, touched: Iterable[int] | None = None,
                         checked: list[int] | None = None, **_) -> list[Violation]:
    """Checks that every summary entry the allocator may read is mapped and below len.

    Those are: the whole root level once anything is grown (find scans it); the 8 children of
    every non-zero interior entry (find descends into it); the leaf of chunkIndex(searchAddr)
    when that chunk is below end (alloc's and allocToCache's fast paths read it); and the leaf
    and ancestors of every grown chunk (update writes them).

    Formalises mpagealloc.go:pageAlloc.summary: "To iterate over a summary level, use inUse to
    determine which ranges are currently available. Otherwise one might try to access memory
    which is only Reserved which may result in a hard fault." Historical bugs B1-B3
    (CL 216697, golang/go#38605, #40191) broke it and showed up only as such faults.
    """
    p = pa.p
    name = "summary_reads_mapped"
    out = []
    leaf = len(pa.summary) - 1

    def readable(l: int, i: int) -> str | None:
        lv = pa.summary[l]
        if not 0 <= i < lv.len:
            return f"index out of range with length {lv.len:#x}"
        if not lv.is_mapped(i):
            return "on an unmapped page of summary memory"
        return None

    if pa.in_use.ranges:
        root = 1 << p.level_bits[0]
        for i in (0, root - 1):
            why = readable(0, i)
            if why:
                out.append(Violation(name, f"summary[0][{i:#x}] (root)", why))
    a = pa.search_addr.addr()
    ci = _chunk_index(p, a)
    if a != p.max_off_addr and ci < pa.end:
        why = readable(leaf, ci)
        if why:
            out.append(Violation(name, f"summary[{leaf}][{ci:#x}] (leaf of searchAddr {a:#x})",
                                 f"{why}: alloc's fast path reads it"))
    for l in range(leaf):
        bits = p.level_bits[l + 1]
        for i, v in sorted(pa.summary[l].vals.items()):
            if not v:
                continue
            lo, hi = i << bits, ((i + 1) << bits) - 1
            why = readable(l + 1, lo) or readable(l + 1, hi)
            if why:
                out.append(Violation(name, f"summary[{l + 1}][{lo:#x}:{hi + 1:#x}] (children of summary[{l}][{i:#x}] = {_fmt_sum(p, v)})",
                                     f"{why}: find descends into them"))
    for c in _chunks(pa, touched) if checked is None else checked:
        for l in range(leaf, -1, -1):
            i = _ancestor(p, c, l)
            why = readable(l, i)
            if why:
                out.append(Violation(name, f"summary[{l}][{i:#x}] (covering grown chunk {c:#x})", f"{why}: update writes it"))
                break
    return out


def scav_index_in_use_matches_bitmap(pa, *, touched: Iterable[int] | None = None,
                                     checked: list[int] | None = None, **_) -> list[Violation]:
    """Checks that the scavenge index counts exactly the allocated pages of every grown chunk.

    Also: no flag bits beyond those of the Go version (1.21 has NoHugePage), lastInUse within
    the chunk, and a full chunk is marked empty.

    Formalises mgcscavenge.go:scavChunkData.inUse: "inUse indicates how many pages in this chunk
    are currently allocated.", and scavChunkData.alloc, which on `sc.inUse == pallocChunkPages`
    calls setEmpty: "There's nothing for the scavenger to take from here."
    """
    p = pa.p
    name = "scav_index_in_use_matches_bitmap"
    out = []
    n = p.palloc_chunk_pages
    allowed = 0b11 if p.scav_index_has_no_huge_page_flag else 0b01
    for ci in _chunks(pa, touched) if checked is None else checked:
        bm = _bitmaps(pa, ci)
        if bm is None:
            continue
        sc = _scav_chunk_data(pa, ci)
        pop = bm[0].bit_count()
        where = f"chunk {ci:#x}"
        if sc.in_use != pop:
            out.append(Violation(name, where, f"scavenge index says {sc.in_use} pages in use, bitmap has {pop} allocated"))
        flags = _flags(sc)
        if flags & ~allowed:
            out.append(Violation(name, where, f"flag bits {flags:#x} beyond those of Go {p.go_version} ({allowed:#x})"))
        if sc.last_in_use > n:
            out.append(Violation(name, where, f"lastInUse {sc.last_in_use} exceeds pallocChunkPages {n}"))
        if sc.in_use == n and flags & 1:
            out.append(Violation(name, where, "chunk full but marked as having free pages (HasFree)"))
    return out


def scav_index_cursors_in_use(pa, **_) -> list[Violation]:
    """Checks that the scavenge index's cursors and bounds point into the heap.

    Each cursor (searchAddrBg, searchAddrForce; marked or not) and freeHWM is minOffAddr
    ("cleared", nothing to scavenge) or an address in inUse; minHeapIdx equals start; on 64-bit
    the mapped window [min, max) of the index covers [start, end).

    Formalises mgcscavenge.go:scavengeIndex: "searchAddr* is always inclusive and should be the
    base address of the highest runtime page available for scavenging", "freeHWM is the highest
    address (in offset address space) that was freed this generation", "[min, max) represents the
    range of chunks that is safe to access (i.e. will not cause a fault). As an optimization
    minHeapIdx represents the true minimum chunk that has been mapped". (Its claim "abs(searchAddr)
    is always guaranteed to be >= min and < max" is false for a cleared cursor: spec/SPEC.md T-F10.)
    """
    p = pa.p
    name = "scav_index_cursors_in_use"
    idx = pa.scav.index
    out = []
    lo = p.min_off_addr
    for label, cur in (("searchAddrBg", idx.search_addr_bg), ("searchAddrForce", idx.search_addr_force)):
        a, marked = cur.load()
        if a == lo and not marked:
            continue
        if not pa.in_use.contains(a):
            m = " (marked)" if marked else ""
            out.append(Violation(name, f"scav.index.{label} {a:#x}{m} (chunk {_chunk_index(p, a):#x})",
                                 "neither cleared (minOffAddr) nor in inUse"))
    h = idx.free_hwm.addr()
    if h != lo and not pa.in_use.contains(h):
        out.append(Violation(name, f"scav.index.freeHWM {h:#x}", "neither minOffAddr nor in inUse"))
    if idx.min_heap_idx != pa.start:
        out.append(Violation(name, "scav.index.minHeapIdx", f"{idx.min_heap_idx:#x}, but the lowest grown chunk is start = {pa.start:#x}"))
    if p.is_64bit_page_alloc and pa.start and not (idx.min <= pa.start and pa.end <= idx.max):
        out.append(Violation(name, "scav.index [min, max)", f"[{idx.min:#x}, {idx.max:#x}) does not cover the heap's chunks [{pa.start:#x}, {pa.end:#x})"))
    return out


_NO_SCAV_CHUNK_DATA = None


def _scav_chunk_data(pa, ci: int):
    """Returns the unpacked scavChunkData of chunk ci (mgcscavenge.go:atomicScavChunkData.load),
    the model's own object (not to be modified), or a zero one if never written."""
    global _NO_SCAV_CHUNK_DATA
    sc = pa.scav.index.chunks.get(ci)
    if sc is None:
        if _NO_SCAV_CHUNK_DATA is None:
            _NO_SCAV_CHUNK_DATA = type(pa.scav.index.peek(ci))()
        sc = _NO_SCAV_CHUNK_DATA
    return sc


def _flags(sc) -> int:
    f = getattr(sc, "scav_chunk_flags", None)
    if f is None:
        f = getattr(sc, "flags", 0)
    return int(f)


def page_cache_disjoint(pa, *, caches=(), **_) -> list[Violation]:
    """Checks that every live page cache owns allocated, grown pages that no other cache owns.

    Each non-empty cache's base is 64-page aligned and grown; each page whose cache bit is set
    is allocated in the bitmap with its scavenged bit clear (the cache's scav word carries it);
    no page is in two caches.

    Formalises mpagecache.go:pageCache ("a per-p cache of pages the allocator can allocate from
    without a lock ... a pageCachePages*pageSize chunk of memory with 0 or more free pages in
    it") and allocToCache, which marks the cached pages allocated: "Set the page bits as
    allocated and clear the scavenged bits".
    """
    p = pa.p
    name = "page_cache_disjoint"
    out = []
    owner: dict[int, int] = {}  # page number -> index of the cache holding it
    for k, c in enumerate(caches):
        if c.cache == 0:
            continue
        where = f"cache {k} (base {c.base:#x})"
        off = _off(p, c.base)
        if off % (PAGE_CACHE_PAGES * PAGE_SIZE):
            out.append(Violation(name, where, "base not aligned to 64 pages"))
            continue
        if not pa.in_use.contains(c.base):
            out.append(Violation(name, where, "base not in inUse"))
            continue
        ci = off >> p.log_palloc_chunk_bytes
        pi = (off >> 13) % p.palloc_chunk_pages
        bm = _bitmaps(pa, ci)
        if bm is None:
            out.append(Violation(name, where, "chunk's L2 block is nil"))
            continue
        alloc = (bm[0] >> pi) & ((1 << PAGE_CACHE_PAGES) - 1)
        scav = (bm[1] >> pi) & ((1 << PAGE_CACHE_PAGES) - 1)
        free_in_bitmap = c.cache & ~alloc
        if free_in_bitmap:
            out.append(Violation(name, f"{where} chunk {ci:#x} pages {_fmt_runs(free_in_bitmap << pi)}",
                                 "held by the cache but free in the bitmap (double allocation possible)"))
        if c.cache & scav:
            out.append(Violation(name, f"{where} chunk {ci:#x} pages {_fmt_runs((c.cache & scav) << pi)}",
                                 "held by the cache but still scavenged in the bitmap"))
        for i in range(PAGE_CACHE_PAGES):
            if c.cache >> i & 1:
                pn = (off >> 13) + i
                if pn in owner:
                    out.append(Violation(name, f"page {c.base + i * PAGE_SIZE:#x}", f"in cache {owner[pn]} and cache {k}"))
                else:
                    owner[pn] = k
    return out


INVARIANTS: dict[str, Callable[..., list[Violation]]] = {
    f.__name__: f
    for f in (
        summaries_consistent,
        search_addr_in_use,
        below_search_addr_allocated,
        scavenged_implies_free,
        in_use_sorted_coalesced,
        bounds_cover_in_use,
        summary_reads_mapped,
        scav_index_in_use_matches_bitmap,
        scav_index_cursors_in_use,
        page_cache_disjoint,
    )
}


# The invariants cheap enough to check after every operation on the chunks it touched (the
# differential fuzzer's digest lockstep runs the others periodically): holds_per_step screens them.
PER_STEP = ("search_addr_in_use", "below_search_addr_allocated", "scavenged_implies_free",
            "scav_index_in_use_matches_bitmap", "scav_index_cursors_in_use")


def holds_per_step(pa, touched: Iterable[int] | None = None) -> bool:
    """Reports whether every invariant of PER_STEP holds (on the grown chunks of touched, or on
    every grown chunk), as check_all(pa, touched=touched, only=PER_STEP) == [] would, in one pass
    and without wording any violation. False: run check_all to learn which and where.

    inUse is read once: when its ranges are sorted and disjoint (always, unless the allocator is
    broken), inUse.contains and the grown chunks are bisections of their offsets; otherwise it
    asks check_all. The five predicates are its readable twins (tests compare the two on every
    broken variant and along fuzz campaigns).
    """
    p = pa.p
    lg = p.log_palloc_chunk_bytes
    bases, limits, los, his = [], [], [], []
    prev = -1
    for r in pa.in_use.ranges:
        b, l = r.base._o, r.limit._o
        if not prev <= b < l:  # not sorted and disjoint: find_succ's bisection is not a scan
            return check_all(pa, touched=touched, only=PER_STEP) == []
        prev = l
        bases.append(b)
        limits.append(l)
        lo = b >> lg
        los.append(lo)
        his.append(lo + ((l - b) >> lg))
    abo, mask = p.arena_base_offset, p.uintptr_mask

    def contains(a: int) -> bool:  # AddrRanges.contains on sorted, disjoint ranges
        o = (a - abo) & mask
        k = bisect_right(bases, o) - 1
        return k >= 0 and o < limits[k]

    a = pa.search_addr.addr()
    if a != p.max_off_addr and not contains(a):  # search_addr_in_use
        return False
    idx = pa.scav.index  # scav_index_cursors_in_use
    lo = p.min_off_addr
    for cur in (idx.search_addr_bg, idx.search_addr_force):
        c, marked = cur.load()
        if (c != lo or marked) and not contains(c):
            return False
    h = idx.free_hwm.addr()
    if h != lo and not contains(h):
        return False
    if idx.min_heap_idx != pa.start:
        return False
    if p.is_64bit_page_alloc and pa.start and not (idx.min <= pa.start and pa.end <= idx.max):
        return False
    if touched is None:
        chunks = [c for lo_, hi_ in zip(los, his) for c in range(lo_, hi_)]
    else:  # _chunks: the grown ones, ascending (the spans are sorted and disjoint too)
        chunks = []
        for c in sorted(set(touched)):
            k = bisect_right(los, c) - 1
            if k >= 0 and c < his[k]:
                chunks.append(c)
    s = (a - abo) & mask
    n = p.palloc_chunk_pages
    allowed = 0b11 if p.scav_index_has_no_huge_page_flag else 0b01
    words = idx.chunks
    try_chunk_of = pa.try_chunk_of
    for ci in chunks:
        d = try_chunk_of(ci)
        if d is None:
            continue
        alloc = d.v
        if alloc & d.scavenged.v:  # scavenged_implies_free
            return False
        cb = ci << lg
        if cb < s and ~alloc & ((1 << min(n, (s - cb) // PAGE_SIZE)) - 1):  # below_search_addr_allocated
            return False
        sc = words.get(ci)  # scav_index_in_use_matches_bitmap
        if sc is None:
            if alloc:
                return False
            continue
        flags = _flags(sc)
        if sc.in_use != alloc.bit_count() or flags & ~allowed or sc.last_in_use > n or (sc.in_use == n and flags & 1):
            return False
    return True


_SELECTED: dict[frozenset, tuple] = {}


def _selected(only: Iterable[str] | None) -> tuple:
    """Returns the predicates named in only (all when None), in INVARIANTS order."""
    if only is None:
        return tuple(INVARIANTS.values())
    key = only if isinstance(only, frozenset) else frozenset(only)
    fs = _SELECTED.get(key)
    if fs is None:
        fs = _SELECTED[key] = tuple(f for name, f in INVARIANTS.items() if name in key)
    return fs


def check_all(pa, *, touched: Iterable[int] | None = None, caches=(), padding=None,
              only: Iterable[str] | None = None) -> list[Violation]:
    """Runs every invariant (or those named in `only`) and returns all their violations.

    The grown chunks to visit (`_chunks(pa, touched)`) are computed once and handed to every
    per-chunk predicate as `checked`.
    """
    touched = None if touched is None else list(touched)
    checked = _chunks(pa, touched)
    out: list[Violation] = []
    for f in _selected(only):
        vs = f(pa, touched=touched, caches=caches, padding=padding, checked=checked)
        if vs:
            out.extend(vs)
    return out


def assert_invariants(pa, context: str = "", **kw) -> None:
    """Raises InvariantViolation listing every violation of check_all(pa, **kw), if any."""
    vs = check_all(pa, **kw)
    if vs:
        raise InvariantViolation(vs, context)
