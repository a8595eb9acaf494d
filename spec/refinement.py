"""The refinement of the abstract allocator by the radix-tree mirror, checked step by step.

Relates model/mpagealloc.py (the mirror of src/runtime/mpagealloc.go, Go 1.21-1.27) to
spec/abstract.py (spec/SPEC.md §6):

* abstract_of(pa) is the abstraction function: the grown ranges of pa.inUse, the pages whose
  alloc bit is 0, and the pages whose scavenged bit is 1, all as page numbers in the offset
  address space;
* Refinement runs every operation on a PageAlloc and on an AbstractPageAlloc side by side and
  raises RefinementError unless the results are equal and abstract_of(pa after) equals the
  abstract state after (scavenge is checked against its relational postcondition).

A failure says which layer disagrees and where, as chunk page ranges:

    alloc(5) -> radix tree 0x3000002000, abstract 0x3000000000
    chunk 0x200c000 pages [1, 4): radix tree allocated, abstract free
"""

from __future__ import annotations

from palloc.spec.abstract import AbstractPageAlloc, AbstractState, abstract_cache_alloc, scavenge_postcondition
from palloc.spec.constants import PAGE_SIZE

__all__ = ["Refinement", "RefinementError", "abstract_of", "describe_diff"]


class RefinementError(AssertionError):
    """The radix tree and the abstract allocator disagree on a result or on the state."""


def abstract_of(pa) -> AbstractState:
    """Returns the abstract state (grown, free, scavenged) that PageAlloc pa represents.

    Reads the bitmaps of every chunk in pa.in_use; a grown chunk whose L2 block is nil counts as
    all allocated and unscavenged (the runtime would fault on it; summaries_consistent reports it).
    """
    p = pa.p
    abo, mask = p.arena_base_offset, p.uintptr_mask
    n = p.palloc_chunk_pages
    grown, free, scav = [], set(), set()
    for r in pa.in_use.ranges:
        lo = ((r.base.addr() - abo) & mask) // PAGE_SIZE
        hi = lo + r.size() // PAGE_SIZE
        grown.append((lo, hi))
        for first in range(lo, hi, n):
            d = pa.try_chunk_of(first // n)
            if d is None:
                continue
            a, s = d.v, d.scavenged.v
            for i in range(n):
                if not a >> i & 1:
                    free.add(first + i)
                if s >> i & 1:
                    scav.add(first + i)
    return AbstractState(tuple(sorted(grown)), frozenset(free), frozenset(scav))


def _mask_runs(pns: set[int], p) -> list[str]:
    """Returns 'chunk C pages [a, b)' strings for a set of page numbers, grouped by chunk."""
    n = p.palloc_chunk_pages
    out = []
    run_start = prev = None
    for pn in sorted(pns) + [None]:
        if pn is not None and prev is not None and pn == prev + 1 and pn // n == prev // n:
            prev = pn
            continue
        if run_start is not None:
            out.append(f"chunk {run_start // n:#x} pages [{run_start % n}, {prev % n + 1})")
        run_start = prev = pn
    return out


def describe_diff(p, got: AbstractState, want: AbstractState, left: str = "radix tree",
                  right: str = "abstract", limit: int = 8) -> list[str]:
    """Returns debugger-style lines saying where two abstract states differ (empty if equal)."""
    lines = []
    if got.grown != want.grown:
        def fmt(g):
            return ", ".join(f"pages [{a:#x}, {b:#x})" for a, b in g) or "nothing"
        lines.append(f"grown: {left} {fmt(got.grown)}; {right} {fmt(want.grown)}")
    for what, a, b in (("free", got.free, want.free), ("scavenged", got.scavenged, want.scavenged)):
        neg = "allocated" if what == "free" else "unscavenged"
        for s in _mask_runs(a - b, p)[:limit]:
            lines.append(f"{s}: {left} {what}, {right} {neg}")
        for s in _mask_runs(b - a, p)[:limit]:
            lines.append(f"{s}: {left} {neg}, {right} {what}")
    return lines


class Refinement:
    """A PageAlloc and an AbstractPageAlloc driven in lockstep, checked after every operation.

    Page caches live outside both allocators, as each P's pcache does: alloc_to_cache returns an
    index into `caches`, a list of (PageCache, abstract (base, cache, scav)) pairs.
    """

    def __init__(self, p, pa, check_state: bool = True):
        self.p = p
        self.pa = pa  # the model's PageAlloc (made by the caller: spec never imports model)
        self.ab = AbstractPageAlloc(p)
        self.caches: list[tuple[object, tuple[int, int, int]]] = []
        self.check_state = check_state
        self.log: list[str] = []  # the operations so far, as code

    # --- the check ------------------------------------------------------------------------------

    def _fail(self, what: str, lines: list[str]) -> None:
        hist = "; ".join(self.log[-12:])
        raise RefinementError("\n  ".join([what] + lines + [f"after: {hist}"]))

    def _check(self, op: str, got, want) -> None:
        self.log.append(op)
        if got != want:
            self._fail(f"{op} -> radix tree {_fmt(got)}, abstract {_fmt(want)}", [])
        if self.check_state:
            self.check_states(op)

    def check_states(self, op: str = "state") -> None:
        """Raises RefinementError unless abstract_of(pa) equals the abstract state."""
        got, want = abstract_of(self.pa), self.ab.state()
        if got != want:
            self._fail(f"{op}: states differ", describe_diff(self.p, got, want))

    # --- the operations -------------------------------------------------------------------------

    def grow(self, base: int, size: int) -> None:
        """Grows both by [base, base+size)."""
        self.pa.grow(base, size)
        self.ab.grow(base, size)
        self._check(f"grow({base:#x}, {size:#x})", None, None)

    def alloc(self, npages: int) -> tuple[int, int]:
        """Allocates npages on both; returns the radix tree's (addr, scav)."""
        got = self.pa.alloc(npages)
        want = self.ab.alloc(npages)
        self._check(f"alloc({npages})", got, want)
        return got

    def free(self, base: int, npages: int) -> None:
        """Frees [base, base+npages*pageSize) on both."""
        self.pa.free(base, npages)
        self.ab.free(base, npages)
        self._check(f"free({base:#x}, {npages})", None, None)

    def alloc_to_cache(self) -> int:
        """Takes a page cache on both; returns its index in `caches`."""
        c = self.pa.alloc_to_cache()
        want = self.ab.alloc_to_cache()
        self.caches.append((c, want))
        self._check("alloc_to_cache()", (c.base, c.cache, c.scav), want)
        return len(self.caches) - 1

    def cache_alloc(self, k: int, npages: int) -> tuple[int, int]:
        """Allocates npages from page cache k on both sides; returns the radix tree's result."""
        c, (b, cache, scav) = self.caches[k]
        got = c.alloc(npages)
        addr, sb, cache2, scav2 = abstract_cache_alloc(b, cache, scav, npages)
        self.caches[k] = (c, (b, cache2, scav2))
        self._check(f"caches[{k}].alloc({npages})", (got, c.cache, c.scav), ((addr, sb) if addr else (0, 0), cache2, scav2))
        return got

    def flush(self, k: int) -> None:
        """Flushes page cache k back into both allocators and forgets it."""
        c, (b, cache, scav) = self.caches.pop(k)
        c.flush(self.pa)
        self.ab.flush(b, cache, scav)
        self._check(f"caches[{k}].flush()", None, None)

    def scavenge(self, nbytes: int, force: bool = True) -> int:
        """Scavenges on the radix tree and checks the abstract postcondition; returns the bytes."""
        before = self.ab.state()
        released = self.pa.scavenge(nbytes, None, force)
        after = abstract_of(self.pa)
        op = f"scavenge({nbytes:#x}, force={force})"
        self.log.append(op)
        errs = scavenge_postcondition(before, after, released)
        if errs:
            self._fail(f"{op} -> {released}", errs)
        # The abstract scavenge is relational: adopt the pages the radix tree chose.
        self.ab.scav_set = set(after.scavenged)
        return released

    def next_gen(self) -> None:
        """Starts a new scavenger generation (abstractly a no-op)."""
        self.pa.scav.index.next_gen()
        self._check("scav.index.next_gen()", None, None)


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if isinstance(v, int) and v > 9:
        return hex(v)
    return repr(v)

