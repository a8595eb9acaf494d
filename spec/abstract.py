"""The abstract page allocator: free pages as a set, address-ordered first fit.

This is the layer above the radix-tree mirror of src/runtime/mpagealloc.go (Go 1.21-1.27; the
allocation algorithms did not change across those versions). It states *what* the runtime's
pageAlloc computes, with none of the summaries, hints or bitmaps that make it fast:

* grown: the page ranges passed to grow; free and scavenged: sets of page numbers inside them;
* alloc(n): the lowest run of n free pages in offset-address order (mranges.go:offAddr), or 0;
* free(base, n): give the pages back (their scavenged state is unchanged);
* alloc_to_cache(): the 64-page-aligned block holding the lowest free page;
* scavenge: relational only (which pages are released depends on the scavenge index's policy).

See spec/SPEC.md §6. Pages are numbered in the offset address space, `pn = off(addr) // pageSize`,
so ordinary integer order is the runtime's offAddr order on every platform (amd64 included).
spec/refinement.py relates a PageAlloc to this state after every operation.
"""

from __future__ import annotations

import dataclasses

from palloc.spec.errors import UndefinedBehaviour
from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE

__all__ = ["AbstractPageAlloc", "AbstractState", "abstract_cache_alloc", "first_fit", "scavenge_postcondition"]


@dataclasses.dataclass(frozen=True)
class AbstractState:
    """A value of the abstract allocator: grown ranges, free pages and scavenged pages.

    grown is a sorted tuple of half-open (base_pn, limit_pn) page-number ranges, coalesced;
    free and scavenged are frozensets of page numbers inside them.
    """

    grown: tuple[tuple[int, int], ...]
    free: frozenset[int]
    scavenged: frozenset[int]


def _coalesce(ranges) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for b, l in sorted(ranges):
        if out and b <= out[-1][1]:
            out[-1][1] = max(out[-1][1], l)
        else:
            out.append([b, l])
    return tuple((b, l) for b, l in out)


def first_fit(free, npages: int) -> int | None:
    """Returns the lowest page number starting npages contiguous pages of the set free, or None."""
    run_start, run, prev = None, 0, None
    for pn in sorted(free):
        if prev is not None and pn == prev + 1:
            run += 1
        else:
            run_start, run = pn, 1
        prev = pn
        if run >= npages:
            return run_start
    return None


class AbstractPageAlloc:
    """The abstract allocator of one platform (page size, arenaBaseOffset and uintptr width).

    Addresses in and out are raw uintptr values, as the runtime's; internally every page is a
    page number in the offset address space.
    """

    def __init__(self, p):
        self.p = p
        self.grown: list[tuple[int, int]] = []
        self.free_set: set[int] = set()  # page numbers of free grown pages
        self.scav_set: set[int] = set()  # page numbers of scavenged grown pages

    # --- address <-> page number ------------------------------------------------------------

    def pn(self, addr: int) -> int:
        """Returns the page number of addr in the offset address space."""
        return ((addr - self.p.arena_base_offset) & self.p.uintptr_mask) // PAGE_SIZE

    def addr(self, pn: int) -> int:
        """Returns the raw address of page number pn."""
        return (pn * PAGE_SIZE + self.p.arena_base_offset) & self.p.uintptr_mask

    def is_grown(self, pn: int) -> bool:
        """Reports whether page pn lies in a grown range."""
        return any(b <= pn < l for b, l in self.grown)

    def state(self) -> AbstractState:
        """Returns the current abstract state as an immutable value."""
        return AbstractState(_coalesce(self.grown), frozenset(self.free_set), frozenset(self.scav_set))

    def copy(self) -> "AbstractPageAlloc":
        """Returns an independent copy."""
        c = AbstractPageAlloc(self.p)
        c.grown = list(self.grown)
        c.free_set = set(self.free_set)
        c.scav_set = set(self.scav_set)
        return c

    # --- operations ---------------------------------------------------------------------------

    def grow(self, base: int, size: int) -> None:
        """Adds [base, base+size) to the heap: every page free and scavenged.

        Requires: base and size chunk-aligned, size > 0, the range disjoint from the grown ranges.
        """
        cb = self.p.palloc_chunk_bytes
        if size <= 0 or base % cb or size % cb:
            raise UndefinedBehaviour(f"grow({base:#x}, {size:#x}): not a non-empty chunk-aligned range")
        lo = self.pn(base)
        hi = lo + size // PAGE_SIZE
        if any(b < hi and lo < l for b, l in self.grown):
            raise UndefinedBehaviour(f"grow({base:#x}, {size:#x}): overlaps memory already grown")
        self.grown = list(_coalesce(self.grown + [(lo, hi)]))
        pages = range(lo, hi)
        self.free_set.update(pages)
        self.scav_set.update(pages)

    def find_first_fit(self, npages: int) -> int | None:
        """Returns the lowest page number starting npages contiguous free pages, or None."""
        return first_fit(self.free_set, npages)

    def alloc(self, npages: int) -> tuple[int, int]:
        """Allocates the lowest run of npages free pages; returns (addr, scavenged bytes).

        Returns (0, 0) when no run of npages free pages exists, and changes nothing then.

        Requires: npages > 0.
        """
        if npages <= 0:
            raise UndefinedBehaviour(f"alloc({npages}): npages must be positive")
        s = self.find_first_fit(npages)
        if s is None:
            return 0, 0
        pages = set(range(s, s + npages))
        scav = len(pages & self.scav_set)
        self.free_set -= pages
        self.scav_set -= pages
        return self.addr(s), scav * PAGE_SIZE

    def alloc_range(self, base: int, npages: int) -> int:
        """Allocates exactly [base, base+npages*pageSize); returns the scavenged bytes it held.

        Requires: npages > 0 and every page of the range grown and free.
        """
        s = self.pn(base)
        pages = set(range(s, s + npages))
        if npages <= 0 or not pages <= self.free_set:
            raise UndefinedBehaviour(f"alloc_range({base:#x}, {npages}): pages not all free")
        scav = len(pages & self.scav_set)
        self.free_set -= pages
        self.scav_set -= pages
        return scav * PAGE_SIZE

    def free(self, base: int, npages: int) -> None:
        """Frees [base, base+npages*pageSize); their scavenged state is unchanged.

        Requires: npages > 0 and every page of the range grown and allocated.
        """
        s = self.pn(base)
        pages = set(range(s, s + npages))
        if npages <= 0 or any(not self.is_grown(q) for q in pages) or pages & self.free_set:
            raise UndefinedBehaviour(f"free({base:#x}, {npages}): pages not all grown and allocated")
        self.free_set |= pages

    def alloc_to_cache(self) -> tuple[int, int, int]:
        """Takes the 64-page-aligned block holding the lowest free page; returns (base, cache, scav).

        cache has bit i set for each page base+i that was free (now owned by the cache); scav is
        the block's whole scavenged word, unmasked, as mpagecache.go:allocToCache reads it.
        Returns (0, 0, 0), the empty cache, when no page is free.
        """
        if not self.free_set:
            return 0, 0, 0
        f = min(self.free_set)
        # Blocks are 64-aligned in the chunk, and chunks are aligned in offset space.
        b = f - f % PAGE_CACHE_PAGES
        cache = scav = 0
        for i in range(PAGE_CACHE_PAGES):
            if b + i in self.free_set:
                cache |= 1 << i
            if b + i in self.scav_set:
                scav |= 1 << i
        taken = {b + i for i in range(PAGE_CACHE_PAGES) if cache >> i & 1}
        self.free_set -= taken
        self.scav_set -= taken
        return self.addr(b), cache, scav

    def flush(self, base: int, cache: int, scav: int) -> None:
        """Returns a page cache's free pages and re-marks its scavenged pages.

        Requires: every page of cache grown and allocated (owned by the cache).
        """
        if cache == 0:
            return
        b = self.pn(base)
        for i in range(PAGE_CACHE_PAGES):
            if cache >> i & 1:
                if b + i in self.free_set or not self.is_grown(b + i):
                    raise UndefinedBehaviour(f"flush: page {self.addr(b + i):#x} not allocated")
                self.free_set.add(b + i)
            if scav >> i & 1:
                self.scav_set.add(b + i)


def abstract_cache_alloc(base: int, cache: int, scav: int, npages: int) -> tuple[int, int, int, int]:
    """Allocates npages from a page cache by first fit; returns (addr, scav bytes, cache', scav').

    The lowest i such that bits [i, i+npages) of cache are all set; (0, 0, cache, scav) when
    the cache holds no such run. Requires: npages > 0.
    """
    if npages <= 0:
        raise UndefinedBehaviour(f"pageCache.alloc({npages}): npages must be positive")
    mask = (1 << npages) - 1
    for i in range(PAGE_CACHE_PAGES - npages + 1):
        if (cache >> i) & mask == mask:
            m = mask << i
            return base + i * PAGE_SIZE, bin(scav & m).count("1") * PAGE_SIZE, cache & ~m, scav & ~m
    return 0, 0, cache, scav


def scavenge_postcondition(before: AbstractState, after: AbstractState, released: int) -> list[str]:
    """Returns what is wrong with a scavenge from before to after that reported `released` bytes.

    A scavenge leaves the grown ranges and the free set unchanged, only adds scavenged pages,
    adds only pages that were free and unscavenged, and reports exactly what it added.
    """
    errs = []
    if after.grown != before.grown:
        errs.append("scavenge changed the grown ranges")
    if after.free != before.free:
        errs.append(f"scavenge changed the free set (±{len(after.free ^ before.free)} pages)")
    lost = before.scavenged - after.scavenged
    if lost:
        errs.append(f"scavenge un-scavenged {len(lost)} pages (first page number {min(lost):#x})")
    new = after.scavenged - before.scavenged
    if new - before.free:
        errs.append(f"scavenge released {len(new - before.free)} pages that were not free")
    if released != len(new) * PAGE_SIZE:
        errs.append(f"scavenge returned {released} bytes but released {len(new)} pages ({len(new) * PAGE_SIZE} bytes)")
    return errs
