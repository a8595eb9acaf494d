"""The allocator's contract, as the obligations a runtime must meet and the freedoms it keeps.

The model mirrors one version's *choices*; the contract is what any correct pageAlloc (Go
1.21-1.27, src/runtime/mpagealloc.go, mpagecache.go, mgcscavenge.go) must do whatever it chooses.
A patch that keeps every obligation but chooses differently where the contract leaves freedom is
a policy change, not a bug (spec/SPEC.md §8). Both lists are data: each entry names the runtime
comment that makes it strict or that grants the freedom.

Obligations come in two kinds:

* state obligations: the named invariants of spec/invariants.py, on the state after every step;
* step obligations (here): what one operation does to the abstract state (spec/abstract.py:
  grown, free and scavenged pages) and what it returns, judged on the runtime's *own* state
  before the step, never on the model's.

`check_step` takes plain values (the operation as a kind and its arguments, results as tuples),
so that any side, the model or the real runtime read through the Go helper, can be judged.
"""

from __future__ import annotations

import dataclasses

from palloc.spec.abstract import AbstractState, abstract_cache_alloc, first_fit
from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE
from palloc.spec.invariants import INVARIANTS, Violation

__all__ = ["FREEDOMS", "OBLIGATIONS", "STEP_OBLIGATIONS", "Freedom", "Obligation", "check_step"]


@dataclasses.dataclass(frozen=True)
class Obligation:
    """A strict part of the contract: breaking it is `breaks`."""

    name: str
    kind: str  # "step" (one operation's effect) or "state" (a named invariant after every step)
    statement: str
    source: str  # the runtime comment (file:function or field) that makes it strict


@dataclasses.dataclass(frozen=True)
class Freedom:
    """Where the contract leaves the runtime a choice: differing from the model here is `changes
    behaviour`. bounded_by names the obligations that still hold inside the freedom."""

    name: str
    statement: str
    source: str
    bounded_by: tuple[str, ...]


_STEP = [
    Obligation("alloc_first_fit", "step",
               "alloc(n) and find(n) return the lowest address, in offset order, of n contiguous free grown "
               "pages, or 0 when there is none",
               "mpagealloc.go:pageAlloc.find: \"find searches for the first (address-ordered) contiguous free "
               "region of npages in size\"; pageAlloc.alloc: \"Returns a 0 base address on failure\""),
    Obligation("find_candidate_valid", "step",
               "when find succeeds, the searchAddr candidate it returns is a valid searchAddr: in a grown range, "
               "and no page below it is free",
               "mpagealloc.go:pageAlloc.find: \"find also computes and returns a candidate p.searchAddr ... This "
               "candidate is always a valid p.searchAddr\"; pageAlloc.searchAddr: \"inUse.contains(searchAddr.addr()) "
               "must always be true ... all valid heap addresses below this value are allocated\""),
    Obligation("alloc_scav_bytes", "step",
               "alloc and allocRange report exactly the scavenged bytes of the pages they hand out, and "
               "leave those pages allocated and unscavenged",
               "mpagealloc.go:pageAlloc.alloc: \"returning the base address for the allocation and the amount "
               "of scavenged memory in bytes contained in the region\"; allocRange: \"returns the number of "
               "bytes of scavenged memory\""),
    Obligation("hands_out_only_free_pages", "step",
               "every page alloc, allocRange or allocToCache hands out was free before and is allocated "
               "after, and no other page changes (no double allocation)",
               "mpagealloc.go:pageAlloc.allocRange: \"allocRange marks the range of memory [base, base+npages*"
               "pageSize) as allocated\"; mpagecache.go:allocToCache: \"acquires a pageCachePages-aligned chunk "
               "of free pages\""),
    Obligation("free_returns_pages", "step",
               "free(base, n) and a page cache's flush make exactly their pages free again, and leave "
               "scavenged pages as they were (a flush re-marks the cached pages that were scavenged)",
               "mpagealloc.go:pageAlloc.free: \"free returns npages worth of memory starting at base back "
               "to the page heap\"; mpagecache.go:pageCache.flush: \"empties out unallocated free pages in the "
               "given cache into s\""),
    Obligation("grow_adds_free_scavenged", "step",
               "grow(base, size) adds its pages to the heap, every one free and scavenged, and changes no "
               "other page",
               "mpagealloc.go:pageAlloc.grow: \"Newly-grown memory is always considered scavenged\""),
    Obligation("cache_takes_free_pages", "step",
               "allocToCache returns a 64-page-aligned block of grown pages whose cache bits are pages that "
               "were free (now allocated) and whose scav bits carry those pages' scavenged state; it is "
               "empty only when no page is free",
               "mpagecache.go:allocToCache: \"acquires a pageCachePages-aligned chunk of free pages which may "
               "not be contiguous, and returns a pageCache structure which owns the chunk\""),
    Obligation("cache_alloc_first_fit", "step",
               "pageCache.alloc(n) takes the lowest run of n pages the cache owns, reports its scavenged "
               "bytes and drops their cache and scav bits; it fails only when the cache holds no such run",
               "mpagecache.go:pageCache.alloc: \"alloc allocates npages from the page cache and is the main "
               "entry point for allocation. Returns a base address and the amount of scavenged memory\""),
    Obligation("scavenge_releases_free_pages", "step",
               "scavenge only marks free, unscavenged pages scavenged, changes no free or allocated "
               "page, and returns exactly the bytes it newly scavenged",
               "mgcscavenge.go:pageAlloc.scavenge: \"scavenge scavenges nbytes worth of free pages ... Returns "
               "the amount of memory scavenged in bytes\""),
    Obligation("forced_scavenge_exhausts_offered_chunks", "step",
               "a forced scavenge(n) that returns less than n leaves no physical page of free, unscavenged pages "
               "in a chunk the scavenge index still offers (not marked empty)",
               "mgcscavenge.go:pageAlloc.scavenge: \"force makes all memory available to scavenge\", \"will only "
               "fail to do so if the heap is exhausted for now\"; scavengeIndex.setEmpty: \"marks that the scavenger "
               "has finished looking at ci for now\" (a chunk marked empty may keep free pages: T-F12)"),
    Obligation("read_only_keeps_pages", "step",
               "find and the scavenge index's nextGen change no page (grown, free or scavenged)",
               "mpagealloc.go:pageAlloc.find: \"find searches for ...\" (a search); mgcscavenge.go:"
               "scavengeIndex.nextGen: \"nextGen moves the scavenger forward one generation\""),
    Obligation("pure_functions_exact", "step",
               "the bitmap functions (pallocBits.find, summarize, findBitRange64, fillAligned) and the "
               "addrRanges verbs return what their doc comments define, the model's value",
               "mpallocbits.go, mgcscavenge.go:fillAligned, mranges.go: each function's doc comment"),
    Obligation("scavenge_candidate_free", "step",
               "findScavengeCandidate returns a run of pages that are free and unscavenged in the bitmaps it "
               "is given, at least min pages and aligned to min, or size 0",
               "mgcscavenge.go:pallocData.findScavengeCandidate: \"represents a contiguous region of free and "
               "unscavenged memory\", \"will not return a region smaller than min pages in size, or that is "
               "min pages or greater in size but not aligned to min\""),
    Obligation("defined_ops_return", "step",
               "an operation within its precondition returns: the runtime does not throw, fault, panic or "
               "hang on it, and throws exactly where the runtime's own checks must",
               "every operation's doc comment; a runtime that dies on a defined input crashes every Go program"),
]

_STATE = [
    Obligation(name, "state", (f.__doc__ or "").strip().splitlines()[0],
               "spec/invariants.py:" + name + " (the runtime comment it formalises is in its docstring)")
    for name, f in INVARIANTS.items()
]

OBLIGATIONS: dict[str, Obligation] = {o.name: o for o in _STEP + _STATE}
STEP_OBLIGATIONS = tuple(o.name for o in _STEP)

FREEDOMS: dict[str, Freedom] = {f.name: f for f in [
    Freedom("scavenge_choice",
            "which free, unscavenged pages a scavenge releases, in what order, and how many beyond the "
            "nbytes asked for",
            "mgcscavenge.go:pageAlloc.scavengeOne: \"It will try to scavenge at most max bytes at once, but may "
            "scavenge more to avoid breaking huge pages\"; findScavengeCandidate: \"max is a hint for how big "
            "of a region is desired\"",
            ("scavenge_releases_free_pages", "scavenge_candidate_free", "forced_scavenge_exhausts_offered_chunks")),
    Freedom("scavenge_pacing",
            "whether an unforced scavenge takes a chunk at all (density, generations): it may release less "
            "than asked, or nothing",
            "mgcscavenge.go:scavChunkData.shouldScavenge (\"In the current generation, if either the current or "
            "last generation is dense, then skip scavenging\") and pageAlloc.scavenge: \"will only fail to do so "
            "if the heap is exhausted for now\"",
            ("scavenge_releases_free_pages",)),
    Freedom("cache_window",
            "which 64-page-aligned block allocToCache takes, and which of its free pages",
            "mpagecache.go:allocToCache: \"acquires a pageCachePages-aligned chunk of free pages which may not "
            "be contiguous\"",
            ("cache_takes_free_pages", "page_cache_disjoint")),
    Freedom("search_addr_hint",
            "searchAddr's exact value (and find's candidate for it): anywhere in inUse at or below the "
            "first free page",
            "mpagealloc.go:pageAlloc.searchAddr: \"The address to start an allocation search with ... We "
            "guarantee that all valid heap addresses below this value are allocated and not worth searching\"",
            ("search_addr_in_use", "below_search_addr_allocated")),
    Freedom("scavenge_index_bookkeeping",
            "the scavenge index's cursors, free high-water mark, generations and density fields",
            "mgcscavenge.go:scavengeIndex (\"searchAddr* ... should be the base address of the highest runtime "
            "page available for scavenging\"): hints for the scavenger's search",
            ("scav_index_cursors_in_use", "scav_index_in_use_matches_bitmap")),
    Freedom("summary_memory",
            "how much summary memory grow maps beyond what the allocator reads, and the summaries' slice lengths",
            "mpagealloc.go:pageAlloc.summary: \"To iterate over a summary level, use inUse to determine which "
            "ranges are currently available\"",
            ("summary_reads_mapped", "summaries_consistent")),
]}


# --- the step obligations ---------------------------------------------------------------------


def _pn(p, addr: int) -> int:
    return ((addr - p.arena_base_offset) & p.uintptr_mask) // PAGE_SIZE


def _pages(p, base: int, n: int) -> set[int]:
    s = _pn(p, base)
    return set(range(s, s + n))


def _fmt_pages(p, pns) -> str:
    """'pages [a, b) of chunk C, ...' for a set of page numbers (at most four runs)."""
    n = p.palloc_chunk_pages
    runs: list[list[int]] = []
    for pn in sorted(pns):
        if runs and pn == runs[-1][1] and pn // n == runs[-1][0] // n:
            runs[-1][1] += 1
        else:
            runs.append([pn, pn + 1])
    s = ", ".join(f"chunk {a // n:#x} pages [{a % n}, {(b - 1) % n + 1})" for a, b in runs[:4])
    return s + (f" and {len(runs) - 4} more runs" if len(runs) > 4 else "")


def _addr(p, pn: int) -> int:
    return (pn * PAGE_SIZE + p.arena_base_offset) & p.uintptr_mask


def _same_pages(p, name: str, what: str, pre: AbstractState, post: AbstractState,
                free: frozenset[int] | None = None, scav: frozenset[int] | None = None) -> list[Violation]:
    """Violations of `name` where post's grown, free or scavenged pages differ from the expected."""
    out = []
    if post.grown != pre.grown:
        out.append(Violation(name, what, "the grown ranges changed"))
    for label, want, got, yes, no in (("free", pre.free if free is None else free, post.free, "free", "allocated"),
                                      ("scavenged", pre.scavenged if scav is None else scav, post.scavenged,
                                       "scavenged", "unscavenged")):
        if got != want:
            extra, missing = got - want, want - got
            if extra:
                out.append(Violation(name, f"{what}: {_fmt_pages(p, extra)}", f"{yes} after, should be {no}"))
            if missing:
                out.append(Violation(name, f"{what}: {_fmt_pages(p, missing)}", f"{no} after, should be {yes}"))
    return out


def check_step(p, kind: str, args: dict, pre: AbstractState, post: AbstractState | None, result,
               caches_before: dict | None = None, caches_after: dict | None = None, host: dict | None = None,
               offered: frozenset[int] | None = None) -> list[Violation]:
    """Returns the step obligations an operation broke, judged on the state before it (pre).

    kind/args: the operation (goref/ops.py's kind and fields); result: its result tuple; post:
    the abstract state after it (None for operations on no allocator). caches_before/after: slot
    -> (base, cache, scav) of the page caches beside the allocator. host: phys_page_size.
    offered: after a scavenge, the chunks the scavenge index still offers (its HasFree flag set);
    None when the side does not say (forced_scavenge_exhausts_offered_chunks is then not judged).
    """
    v: list[Violation] = []
    call = f"{kind}({', '.join(f'{k}={x:#x}' if isinstance(x, int) and x > 9 else f'{k}={x}' for k, x in args.items())})"
    if kind in ("alloc", "find"):
        n = args["npages"]
        s = first_fit(pre.free, n)
        want = 0 if s is None else _addr(p, s)
        got = result[0]
        if got != want:
            v.append(Violation("alloc_first_fit", call, f"returned {got:#x}, the first fit is "
                               + (f"{want:#x} ({_fmt_pages(p, range(s, s + n))})" if s is not None else "none (0)")))
        if kind == "find":
            if got:  # on failure the candidate "is invalid and must be ignored"
                c = _pn(p, result[1])
                if not any(b <= c < l for b, l in pre.grown):
                    v.append(Violation("find_candidate_valid", call, f"candidate searchAddr {result[1]:#x} is not in a grown range"))
                below = [q for q in pre.free if q < c]
                if below:
                    v.append(Violation("find_candidate_valid", call, f"candidate searchAddr {result[1]:#x} lies above the "
                                       f"free {_fmt_pages(p, sorted(below)[:1])}"))
            v += _same_pages(p, "read_only_keeps_pages", call, pre, post)
            return v
        if got == 0:
            v += _same_pages(p, "hands_out_only_free_pages", call, pre, post)
            return v
        taken = frozenset(_pages(p, got, n))
        if taken - pre.free:
            v.append(Violation("hands_out_only_free_pages", f"{call} -> {got:#x}: {_fmt_pages(p, taken - pre.free)}",
                               "handed out but already allocated (double allocation)"))
        scav = len(taken & pre.scavenged) * PAGE_SIZE
        if result[1] != scav:
            v.append(Violation("alloc_scav_bytes", f"{call} -> {got:#x}", f"reported {result[1]} scavenged bytes; "
                               f"the pages held {scav}"))
        v += _same_pages(p, "hands_out_only_free_pages", f"{call} -> {got:#x}", pre, post,
                         pre.free - taken, pre.scavenged - taken)
    elif kind == "alloc_range":
        taken = frozenset(_pages(p, args["base"], args["npages"]))
        scav = len(taken & pre.scavenged) * PAGE_SIZE
        if result[0] != scav:
            v.append(Violation("alloc_scav_bytes", call, f"reported {result[0]} scavenged bytes; the pages held {scav}"))
        v += _same_pages(p, "hands_out_only_free_pages", call, pre, post, pre.free - taken, pre.scavenged - taken)
    elif kind == "free":
        back = frozenset(_pages(p, args["base"], args["npages"]))
        v += _same_pages(p, "free_returns_pages", call, pre, post, pre.free | back, pre.scavenged)
    elif kind == "grow":
        new = frozenset(_pages(p, args["base"], args["size"] // PAGE_SIZE))
        v += _same_pages(p, "grow_adds_free_scavenged", call, dataclasses.replace(pre, grown=post.grown),
                         post, pre.free | new, pre.scavenged | new)
        grown = {q for b, l in post.grown for q in range(b, l)}
        if not new <= grown:
            v.append(Violation("grow_adds_free_scavenged", call, f"{_fmt_pages(p, new - grown)} not grown after"))
    elif kind == "alloc_to_cache":
        base, cache, scav = result
        got_pages = frozenset(_pn(p, base) + i for i in range(PAGE_CACHE_PAGES) if cache >> i & 1)
        name = "cache_takes_free_pages"
        where = f"{call} -> base {base:#x} cache {cache:#018x}"
        if cache == 0:
            if pre.free:
                v.append(Violation(name, where, f"empty, but {_fmt_pages(p, sorted(pre.free)[:1])} is free"))
        else:
            if ((base - p.arena_base_offset) & p.uintptr_mask) % (PAGE_CACHE_PAGES * PAGE_SIZE):
                v.append(Violation(name, where, "base not aligned to 64 pages"))
            if got_pages - pre.free:
                v.append(Violation(name, f"{where}: {_fmt_pages(p, got_pages - pre.free)}",
                                   "cached but already allocated (double allocation)"))
            b = _pn(p, base)
            want_scav = sum(1 << i for i in range(PAGE_CACHE_PAGES) if cache >> i & 1 and b + i in pre.scavenged)
            if scav & cache != want_scav:
                v.append(Violation(name, where, f"scav {scav & cache:#018x} on the cached pages, they were "
                                   f"scavenged as {want_scav:#018x}"))
        v += _same_pages(p, "hands_out_only_free_pages", where, pre, post, pre.free - got_pages,
                         pre.scavenged - got_pages)
    elif kind == "cache_alloc":
        c = (caches_before or {}).get(args["slot"])
        if c is not None:
            cb, cache, scav = c
            addr, sb, cache2, scav2 = abstract_cache_alloc(cb, cache, scav, args["npages"])
            want = (addr, sb) if addr else (0, 0)
            if tuple(result[:2]) != want:
                v.append(Violation("cache_alloc_first_fit", f"{call} on cache base {cb:#x} {cache:#018x}",
                                   f"returned ({result[0]:#x}, {result[1]}), the first fit gives ({want[0]:#x}, {want[1]})"))
            after = (caches_after or {}).get(args["slot"], (cb, 0, 0))
            if after[1] != cache2:
                v.append(Violation("cache_alloc_first_fit", f"{call} on cache base {cb:#x}",
                                   f"cache after {after[1]:#018x}, should be {cache2:#018x}"))
            if after[2] != scav2:  # a scav bit kept for a page handed out: a flush would mark it scavenged
                v.append(Violation("cache_alloc_first_fit", f"{call} on cache base {cb:#x}",
                                   f"scav after {after[2]:#018x}, should be {scav2:#018x}"))
        v += _same_pages(p, "hands_out_only_free_pages", call, pre, post)  # the cache's pages are allocated already
    elif kind == "cache_flush":
        c = (caches_before or {}).get(args["slot"])
        if c is not None:
            cb, cache, scav = c
            b = _pn(p, cb)
            back = frozenset(b + i for i in range(PAGE_CACHE_PAGES) if cache >> i & 1)
            rescav = frozenset(b + i for i in range(PAGE_CACHE_PAGES) if cache >> i & 1 and scav >> i & 1)
            v += _same_pages(p, "free_returns_pages", call, pre, post, pre.free | back, pre.scavenged | rescav)
    elif kind == "scavenge":
        released = result[0]
        name = "scavenge_releases_free_pages"
        v += _same_pages(p, name, call, pre, post, pre.free, post.scavenged | pre.scavenged)
        lost = pre.scavenged - post.scavenged
        if lost:
            v.append(Violation(name, f"{call}: {_fmt_pages(p, lost)}", "unscavenged by a scavenge"))
        new = post.scavenged - pre.scavenged
        if new - pre.free:
            v.append(Violation(name, f"{call}: {_fmt_pages(p, new - pre.free)}", "scavenged but allocated"))
        if released != len(new) * PAGE_SIZE:
            v.append(Violation(name, f"{call} -> {released:#x}", f"reported {released} bytes released, "
                               f"but {len(new)} pages ({len(new) * PAGE_SIZE} bytes) were newly scavenged"))
        if args.get("force") and offered is not None:
            n = p.palloc_chunk_pages
            left = [g for g in forced_scavenge_leftovers(p, post, released, args["nbytes"], host) if g // n in offered]
            if left:
                v.append(Violation("forced_scavenge_exhausts_offered_chunks", f"{call} -> {released:#x}",
                                   f"released less than asked, but {_fmt_pages(p, left[:1])} (and {len(left) - 1} more "
                                   f"physical pages) are free and unscavenged in chunks the index still offers"))
    elif kind == "next_gen":
        v += _same_pages(p, "read_only_keeps_pages", call, pre, post)
    return v


def forced_scavenge_leftovers(p, post: AbstractState, released: int, nbytes: int, host: dict | None = None) -> list[int]:
    """Returns the first page of each physical page left free and unscavenged by a forced
    scavenge(nbytes) that released less than asked (empty when it released all it was asked).

    Not an obligation: the runtime does leave such pages (spec/SPEC.md T-F12, FINDINGS F34), when
    an unforced scavenge marked their chunk empty while they lay above its cursor.
    """
    if released >= nbytes:
        return []
    phys = max(((host or {}).get("phys_page_size") or PAGE_SIZE) // PAGE_SIZE, 1)
    left = post.free - post.scavenged
    return sorted(g for g in {q - q % phys for q in left} if all(g + i in left for i in range(phys)))
