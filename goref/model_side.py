"""Applies fuzzer operations to the reference model and dumps its state in the helper's normal form.

The Go helper (goref/overlay/palloc_server_test.go, op "dump") reports a real pageAlloc as:
searchAddr, start/end, inUse; every chunk of inUse with its alloc and scavenged bitmaps; every
summary level over the "live" entries (addrsToSummaryRange of each inUse range, merged); the
scavenge index's per-chunk words and scalars; and the page caches by slot. `ModelSide.state()`
computes exactly that from a palloc.model.mpagealloc.PageAlloc, so both reduce to the same
goref.compare.State and compare with ==.

Model verdicts are outcomes too: GoThrow -> ("throw", msg), GoFault -> ("fault", msg), and
UndefinedBehaviour -> ("undefined", msg), which the fuzzer uses to avoid ever sending the
runtime an input it leaves undefined.

Mirrors no Go file; the model it drives mirrors src/runtime/mpagealloc.go (Go 1.27).
"""

from __future__ import annotations

from typing import Any, Callable

from palloc.goref import ops as O
from palloc.goref.compare import Outcome, State
from palloc.spec.errors import GoFault, GoThrow, ModelError, UndefinedBehaviour


def live_summary_ranges(p, in_use: tuple[tuple[int, int], ...], level: int) -> list[tuple[int, int]]:
    """Returns the summary index ranges of a level covering inUse, merged as the helper merges them."""
    shift = p.level_shift[level]
    abo, mask = p.arena_base_offset, p.uintptr_mask
    out: list[list[int]] = []
    for base, limit in in_use:
        lo = ((base - abo) & mask) >> shift
        hi = (((limit - 1 - abo) & mask) >> shift) + 1
        if out and out[-1][1] >= lo:
            out[-1][1] = max(out[-1][1], hi)
            continue
        out.append([lo, hi])
    return [(a, b) for a, b in out]


def chunks_of(p, in_use) -> list[int]:
    """Returns every chunk index of inUse, in address order."""
    abo, mask, cb = p.arena_base_offset, p.uintptr_mask, p.palloc_chunk_bytes
    out = []
    for base, limit in in_use:
        lo = ((base - abo) & mask) // cb
        hi = ((limit - 1 - abo) & mask) // cb + 1
        out.extend(range(lo, hi))
    return out


def default_factory(p, **host):
    """Returns a fresh, initialised test-mode model allocator (NewPallocEmptyPageAlloc): the fast
    layer, which tests/model/test_fast_paths.py holds to the mirror, PageAlloc."""
    from palloc.model.mpagealloc_fast import FastPageAlloc

    return FastPageAlloc.make(p, test=True, **host)


class ModelSide:
    """One model allocator, its page-cache slots, and the operations applied to it.

    factory(p, **host) makes an empty initialised allocator (a broken variant supplies its own);
    host holds phys_page_size / phys_huge_page_size as the helper reports them, since
    findScavengeCandidate depends on both.
    """

    name = "model"

    def __init__(self, p, factory: Callable[..., Any] | None = None, host: dict | None = None):
        self.p = p
        self.factory = factory or default_factory
        self.host = dict(host or {})
        self.pa = None
        self.caches: dict[int, Any] = {}

    # --- lifecycle -------------------------------------------------------------------

    def reset(self, init: dict | None = None) -> Outcome:
        """Starts a fresh allocator: empty, or NewPageAlloc(chunks, scav) when init is given.

        init is {"chunks": {ci: [[i, n], ...]}, "scav": {ci: [[i, n], ...]}} (ci ints).
        """
        self.caches = {}
        try:
            if init is None:
                self.pa = self.factory(self.p, **self.host)
            else:
                self.pa = new_page_alloc(self.p, self.factory, self.host, init)
        except ModelError as e:
            return Outcome(crash=_crash(e))
        return Outcome(state=self.state())

    def run(self, init: dict | None, ops: list[O.Op]) -> list[Outcome]:
        """Runs a whole case on a fresh allocator; stops after the first crash."""
        out = [self.reset(init)]
        for op in ops:
            o = self.apply(op)
            out.append(o)
            if o.crash:
                break
        return out

    # --- operations ------------------------------------------------------------------

    def apply(self, op: O.Op, with_state: bool = True) -> Outcome:
        """Applies one operation; returns its result or crash and the state after it."""
        try:
            result = self._do(op)
        except ModelError as e:
            return Outcome(crash=_crash(e), state=self.state() if with_state and op.on_page_alloc else None,
                           detail=getattr(e, "detail", None) or None, throw=getattr(e, "throw", None))
        st = self.state() if with_state and op.on_page_alloc else None
        return Outcome(result=result, state=st)

    def _do(self, op: O.Op):
        pa, k = self.pa, op.kind
        if k == "alloc":
            return tuple(pa.alloc(op.npages))
        if k == "free":
            pa.free(op.base, op.npages)
            return None
        if k == "grow":
            pa.grow(op.base, op.size)
            return None
        if k == "alloc_to_cache":
            c = self.caches.get(op.slot)
            if c is not None and not c.empty():
                raise UndefinedBehaviour(f"cache slot {op.slot} is not empty")
            c = pa.alloc_to_cache()
            self.caches[op.slot] = c
            return (c.base, c.cache, c.scav)
        if k == "cache_alloc":
            c = self.caches.get(op.slot)
            if c is None:
                raise UndefinedBehaviour(f"cache slot {op.slot} was never filled")
            return tuple(c.alloc(op.npages))
        if k == "cache_flush":
            c = self.caches.get(op.slot)
            if c is None:
                raise UndefinedBehaviour(f"cache slot {op.slot} was never filled")
            c.flush(pa)
            return None
        if k == "scavenge":
            return (pa.scavenge(op.nbytes, None, op.force),)
        if k == "next_gen":
            pa.scav.index.next_gen()
            return None
        if k == "find":
            addr, hint = pa.find(op.npages)
            return (addr, hint.addr())
        if k == "alloc_range":
            _require_free(pa, op.base, op.npages)
            return (pa.alloc_range(op.base, op.npages),)
        if k.startswith("addr_ranges_"):
            return self._addr_ranges(op)
        return _pure(self.p, op, self.host)

    def _addr_ranges(self, op: O.Op):
        """Runs an addrRanges verb on the set beside the allocator (made by addr_ranges_new).

        Returns the verb's own results, then the set after it: totalBytes, the number of ranges,
        each range's base and limit. The set is of the allocator's inUse class, so a broken
        model's addrRanges is the one tested.
        """
        from palloc.model.mranges import AddrRange, OffAddr

        k, p = op.kind, self.p
        cls = type(self.pa.in_use) if self.pa is not None else None
        if k == "addr_ranges_new":
            if cls is None:
                from palloc.model.mranges import AddrRanges as cls
            self.addr_ranges = cls(p)
            return None
        a = getattr(self, "addr_ranges", None)
        if a is None:
            raise UndefinedBehaviour(f"{k} before addr_ranges_new")
        if k == "addr_ranges_add":
            abo = p.arena_base_offset
            if op.limit <= op.base or ((op.base - abo) & p.uintptr_mask >= op.base) != ((op.limit - abo) & p.uintptr_mask >= op.limit):
                raise UndefinedBehaviour("addrRanges.add of an empty range, or across arenaBaseOffset (makeAddrRange throws)")
            r = AddrRange(p, OffAddr(p, op.base), OffAddr(p, op.limit))
            if any(x.base.less_than(r.limit) and r.base.less_than(x.limit) for x in a.ranges):
                raise UndefinedBehaviour("addrRanges.add of a range overlapping the set")
            a.add(r)
            out = ()
        elif k == "addr_ranges_find_succ":
            out = (a.find_succ(op.addr),)
        elif k == "addr_ranges_find_addr_greater_equal":
            if not a.ranges:
                raise UndefinedBehaviour("findAddrGreaterEqual on an empty addrRanges indexes ranges[0]")
            addr, ok = a.find_addr_greater_equal(op.addr)
            out = (addr, int(ok))
        elif k == "addr_ranges_contains":
            out = (int(a.contains(op.addr)),)
        elif k == "addr_ranges_remove_last":
            r = a.remove_last(op.nbytes)
            out = (r.base.addr(), r.limit.addr())
        elif k == "addr_ranges_remove_greater_equal":
            a.remove_greater_equal(op.addr)
            out = ()
        elif k == "addr_ranges_clone":
            b = type(a)(p)
            a.clone_into(b)
            self.addr_ranges = a = b
            out = ()
        else:
            raise UndefinedBehaviour(f"unknown operation {k!r}")
        return out + addr_ranges_words(a)

    # --- the normal form -------------------------------------------------------------

    def state(self) -> State:
        """Returns the allocator's state in the helper's normal form."""
        pa, p = self.pa, self.p
        in_use = tuple((r.base.addr(), r.limit.addr()) for r in pa.in_use.ranges)
        chunks: dict[int, Any] = {}
        scav_chunks: dict[int, Any] = {}
        idx = pa.scav.index
        for ci in chunks_of(p, in_use):
            d = pa.try_chunk_of(ci)
            chunks[ci] = None if d is None else (d.v, d.scavenged.v)
            scav_chunks[ci] = scav_chunk_word(idx, ci)
        summary = []
        for level in range(p.summary_levels):
            sl = pa.summary[level]
            vals = sl.vals
            d = {}
            for lo, hi in live_summary_ranges(p, in_use, level):
                for i in range(lo, hi):
                    d[i] = vals.get(i, 0)
            summary.append(d)
        bg, bgm = idx.search_addr_bg.load()
        fo, fom = idx.search_addr_force.load()
        scav = {
            "gen": idx.gen,
            "free_hwm": idx.free_hwm.addr(),
            "min_heap_idx": idx.min_heap_idx,
            "search_addr_bg": bg,
            "search_addr_bg_marked": int(bgm),
            "search_addr_force": fo,
            "search_addr_force_marked": int(fom),
        }
        caches = {slot: (c.base, c.cache, c.scav) for slot, c in self.caches.items()}
        return State(
            search_addr=pa.search_addr.addr(),
            start=pa.start,
            end=pa.end,
            in_use=in_use,
            chunks=chunks,
            summary=tuple(summary),
            scav_chunks=scav_chunks,
            scav=scav,
            caches=caches,
            summary_len=tuple(len(s) for s in pa.summary),
            summary_mapped=tuple(mapped_entries(s) for s in pa.summary),
        )


_MAPPED_CACHE: dict[int, tuple] = {}


def mapped_entries(level) -> tuple[tuple[int, int], ...]:
    """Returns the entry ranges [lo, hi) of a summary level on mapped pages, merged, capped at cap."""
    if level.all_mapped:
        return ((0, level.cap),)
    # Mappings only grow, so (level object, number of mapped pages) identifies the answer.
    hit = _MAPPED_CACHE.get(id(level))
    if hit is not None and hit[0] is level and hit[1] == len(level.mapped):
        return hit[2]
    out = _mapped_entries(level)
    if len(_MAPPED_CACHE) > 4096:
        _MAPPED_CACHE.clear()
    _MAPPED_CACHE[id(level)] = (level, len(level.mapped), out)
    return out


def _mapped_entries(level) -> tuple[tuple[int, int], ...]:
    per = 1 << level.log_sums_per_page
    out: list[list[int]] = []
    for pg in sorted(level.mapped):
        lo, hi = pg * per, min((pg + 1) * per, level.cap)
        if out and out[-1][1] >= lo:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def scav_chunk_word(idx, ci: int):
    """Returns chunk ci's packed scavChunkData, or None outside the index's mapped [min, max)."""
    if not idx.min <= ci < idx.max:
        return None
    sc = idx.chunks.get(ci)
    return 0 if sc is None else sc.pack(idx.p)


def _require_free(pa, base: int, npages: int) -> None:
    """allocRange does not check its input; allocating allocated pages is undefined (the
    scavenge index would count them twice)."""
    if npages <= 0:
        raise UndefinedBehaviour("alloc_range with npages == 0")
    req = getattr(pa, "_require_pages", None)
    if req is not None:
        req(base, npages, allocated=False)


def new_page_alloc(p, factory, host, init: dict):
    """Builds NewPageAlloc(chunks, scav) (export_test.go) on a fresh model allocator."""
    from palloc.model.mpagealloc import chunk_base

    pa = factory(p, **host)
    chunks = {int(k): v for k, v in init.get("chunks", {}).items()}
    scav = {int(k): v for k, v in (init.get("scav") or {}).items()}
    cp = p.palloc_chunk_pages
    for ci in sorted(chunks):
        addr = chunk_base(p, ci)
        pa.grow(addr, p.palloc_chunk_bytes)
        chunk = pa.chunk_of(ci)
        chunk.scavenged.clear_range(0, cp)
        pa.scav.index.alloc(ci, cp)
        pa.scav.index.free(ci, 0, cp)
        for i, n in scav.get(ci, []):
            if n:
                chunk.scavenged.set_range(i, n)
        for i, n in chunks[ci]:
            if n:
                chunk.alloc_range(i, n)
                pa.scav.index.alloc(ci, n)
        pa.update(addr, cp, False, False)
    return pa


def addr_ranges_words(a) -> tuple[int, ...]:
    """Returns an addrRanges as result words: totalBytes, the number of ranges, base and limit of each."""
    out = [a.total_bytes, len(a.ranges)]
    for r in a.ranges:
        out += (r.base.addr(), r.limit.addr())
    return tuple(out)


def _crash(e: ModelError) -> tuple[str, str]:
    if isinstance(e, GoThrow):
        return ("throw", e.msg)
    if isinstance(e, GoFault):
        return ("fault", str(e))
    if isinstance(e, UndefinedBehaviour):
        return ("undefined", str(e))
    return ("error", f"{type(e).__name__}: {e}")


def _pure(p, op: O.Op, host: dict):
    """Runs a bitmap-level function of mpallocbits.go / mgcscavenge.go on the model."""
    from palloc.model import mpallocbits as mb

    k = op.kind
    if k == "bits_find":
        return tuple(mb.PallocBits(p, op.bits).find(op.npages, op.search_idx))
    if k == "bits_summarize":
        return (mb.PallocBits(p, op.bits).summarize(),)
    if k == "find_bit_range64":
        return (mb.find_bit_range64(op.c, op.n),)
    if k == "find_scavenge_candidate":
        from palloc.model.mgcscavenge import find_scavenge_candidate

        d = mb.PallocData(p, op.alloc, op.scav)
        return tuple(find_scavenge_candidate(d, op.search_idx, op.minimum, op.max,
                                             host.get("phys_huge_page_size"), host.get("phys_page_size")))
    if k == "fill_aligned":
        from palloc.model.mgcscavenge import fill_aligned

        return (fill_aligned(op.x, op.m),)
    raise UndefinedBehaviour(f"unknown operation {k!r}")
