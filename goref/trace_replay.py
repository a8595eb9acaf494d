"""Replay a recorded trace (goref/trace.py) in the model, in the real heap's mode, and compare.

The model is a PageAlloc initialised with test=False and the arenas the trace registered
(mheap_.arenas), so findMappedAddr takes the real heap's branch. Every record is applied as the
runtime applied it and its results compared: alloc's address and scavenged bytes, allocToCache's
cache, find's address and searchAddr, allocRange's scavenged bytes, the scavenge index's find,
each scavengeOne's candidate (its two locked sections replayed apart, as other calls ran between
them) and what each scavenge call released; every snapshot of the whole state is compared with
the model's (palloc.goref.compare.State, reported by diff_states).

Mirrors no Go file: it replays calls on the model of Go 1.27's mpagealloc.go, mpagecache.go and
mgcscavenge.go. scavengeOne's two halves are written here from mgcscavenge.go's scavengeOne.
"""

from __future__ import annotations

import dataclasses
import math
import time

from palloc.goref import trace as T
from palloc.goref.compare import Fmt, State, diff_states
from palloc.goref.model_side import scav_chunk_word
from palloc.model.mgcscavenge import ScavengeIndex, _palloc_sum_max, find_scavenge_candidate
from palloc.model.mpagealloc import PageAlloc, chunk_base, chunk_index
from palloc.model.mpagecache import PageCache
from palloc.spec.errors import ModelError, PallocError

PAGE_SIZE = 8192


@dataclasses.dataclass
class ReplayDivergence:
    """The first record where the model and the recorded runtime disagree."""
    index: int  # position in trace.records
    record: object
    lines: list[str]

    def headline(self) -> str:
        return f"divergence at record {self.index} {self.record!r}: {self.lines[0] if self.lines else ''}"

    def text(self) -> str:
        return "\n".join([f"divergence at record {self.index}: {self.record!r}"] + ["  " + ln for ln in self.lines])


@dataclasses.dataclass
class ReplayResult:
    records: int
    operations: int
    snapshots: int
    addresses: int  # returned addresses compared
    seconds: float
    divergence: ReplayDivergence | None


def platform_of(trace: T.Trace):
    """Returns the Platform of the trace's GOOS/GOARCH and Go version, checked against its header."""
    from palloc.goref.fuzz import goarch_platform

    try:
        p = goarch_platform(trace.goarch, trace.go_version or "go1.27.3")
    except Exception as e:  # an unknown GOARCH or version
        raise PallocError(f"{trace.path}: no platform for GOARCH {trace.goarch} and {trace.go_version} ({e})") from None
    h = trace.header
    if (h.ptr_size * 8, h.page_size, h.arena_base_offset) != (p.ptr_bits, p.page_size, p.arena_base_offset):
        raise T.TraceError(f"{trace.path}: the Go side's constants (ptrSize {h.ptr_size}, pageSize {h.page_size}, "
                           f"arenaBaseOffset {h.arena_base_offset:#x}) are not {trace.platform}'s")
    return p


def new_model(trace: T.Trace, factory=None) -> PageAlloc:
    """Returns the real heap's model allocator for the trace's platform and host page sizes: the
    fuzzer's model (the fast layer, FastPageAlloc) unless factory names another class, such as the
    readable mirror PageAlloc or a broken model."""
    from palloc.model.mpagealloc_fast import FastPageAlloc

    p = platform_of(trace)
    h = trace.header
    cls = factory or FastPageAlloc
    pa = cls(p, phys_page_size=h.phys_page_size, phys_huge_page_size=h.phys_huge_page_size)
    pa.init(False)
    pa.arenas = set()
    pa.log_heap_arena_bytes = h.heap_arena_bytes.bit_length() - 1
    return pa


def model_state(pa: PageAlloc, in_use) -> State:
    """Returns the model's state in normal form over the chunks and summary ranges of in_use."""
    p = pa.p
    chunks, scav_chunks = {}, {}
    idx = pa.scav.index
    for base, limit in in_use:
        for ci in range(chunk_index(p, base), chunk_index(p, limit - 1) + 1):
            d = pa.try_chunk_of(ci)
            if d is None:
                continue
            chunks[ci] = (d.v, d.scavenged.v)
            w = scav_chunk_word(idx, ci)
            scav_chunks[ci] = 0 if w is None else w
    summary = []
    for level in range(p.summary_levels):
        vals = pa.summary[level].vals
        shift = p.level_shift[level]
        d = {}
        for base, limit in in_use:
            lo = ((base - p.arena_base_offset) & p.uintptr_mask) >> shift
            hi = (((limit - 1 - p.arena_base_offset) & p.uintptr_mask) >> shift) + 1
            for i in range(lo, hi):
                d[i] = vals.get(i, 0)
        summary.append(d)
    bg, bgm = idx.search_addr_bg.load()
    fo, fom = idx.search_addr_force.load()
    return State(
        search_addr=pa.search_addr.addr(), start=pa.start, end=pa.end,
        in_use=tuple((r.base.addr(), r.limit.addr()) for r in pa.in_use.ranges),
        chunks=chunks, summary=tuple(summary), scav_chunks=scav_chunks,
        scav={"gen": idx.gen, "free_hwm": idx.free_hwm.addr(), "min_heap_idx": idx.min_heap_idx,
              "search_addr_bg": bg, "search_addr_bg_marked": int(bgm),
              "search_addr_force": fo, "search_addr_force_marked": int(fom)},
        caches={})


def snapshot_state(s: T.Snapshot) -> State:
    return State(search_addr=s.search_addr, start=s.start, end=s.end, in_use=s.in_use, chunks=s.chunks,
                 summary=s.summary, scav_chunks=s.scav_chunks, scav=s.scav, caches={})


# --- scavengeOne's two locked sections (mgcscavenge.go) ------------------------------------


def scavenge_one_take(pa: PageAlloc, ci: int, search_idx: int, max_: int) -> tuple[int, int]:
    """scavengeOne's first locked section: returns the candidate (base, npages) it allocates, or
    (0, 0) when there is none (the caller then marks the chunk empty)."""
    p = pa.p
    max_pages = max_ // PAGE_SIZE + (1 if max_ % PAGE_SIZE else 0)
    min_pages = max(pa.phys_page_size // PAGE_SIZE, 1)
    if _palloc_sum_max(p, pa.summary[-1][ci]) >= min_pages:
        base, npages = find_scavenge_candidate(pa.chunk_of(ci), search_idx, min_pages, max_pages,
                                               pa.phys_huge_page_size, pa.phys_page_size)
        if npages != 0:
            addr = (chunk_base(p, ci) + base * PAGE_SIZE) & p.uintptr_mask
            pa.chunk_of(ci).alloc_range(base, npages)
            pa.update(addr, npages, True, True)
            return base, npages
    return 0, 0


# The tail of the model's PageAlloc.scavenge_one, repeated on purpose: the trace records
# scavengeOne's two locked sections apart, and the mirror keeps Go's one function whole.
def scavenge_one_give(pa: PageAlloc, ci: int, base: int, npages: int) -> None:
    """scavengeOne's second locked section: frees the candidate back and marks it scavenged."""
    from palloc.model.mranges import OffAddr

    p = pa.p
    addr = (chunk_base(p, ci) + base * PAGE_SIZE) & p.uintptr_mask
    b = OffAddr(p, addr)
    if b.less_than(pa.search_addr):
        pa.search_addr = b
    pa.chunk_of(ci).free(base, npages)
    pa.update(addr, npages, True, False)
    pa.chunk_of(ci).scavenged.set_range(base, npages)


# --- the replay ---------------------------------------------------------------------------


def replay(trace: T.Trace, factory=None, progress=None) -> ReplayResult:
    """Replays every record of trace in a fresh real-heap model; stops at the first divergence."""
    pa = new_model(trace, factory)
    p = pa.p
    f = Fmt(p)
    ops = snaps = addrs = 0
    scav_calls: dict[int, list] = {}  # id -> [nbytes, released so far]
    # Candidates taken and not yet given back, and what scavengeOne returned, per chunk: two
    # scavenge calls (the background scavenger, an allocation's assist) may work on one chunk.
    pending: dict[int, list[tuple[int, int]]] = {}
    returned: dict[int, list[int]] = {}
    t0 = time.perf_counter()

    def div(i, r, *lines):
        return ReplayResult(len(trace.records), ops, snaps, addrs, time.perf_counter() - t0,
                            ReplayDivergence(i, r, list(lines)))

    def mismatch(what, model, runtime, fmt=hex):
        return f"{what}: model {fmt(model)}, runtime {fmt(runtime)}"

    for i, r in enumerate(trace.records):
        if progress is not None and i % 65536 == 0:
            progress(i)
        try:
            if isinstance(r, T.Arena):
                pa.arenas.add(r.index)
                continue
            if isinstance(r, (T.CacheAlloc,)):
                continue
            if isinstance(r, T.Snapshot):
                snaps += 1
                lines = diff_states(p, model_state(pa, r.in_use), snapshot_state(r))
                if lines:
                    return div(i, r, "state differs after the previous record:", *lines)
                continue
            ops += 1
            if isinstance(r, T.Grow):
                pa.grow(r.base, r.size)
            elif isinstance(r, T.Alloc):
                base, scav = pa.alloc(r.npages)
                addrs += 1
                if (base, scav) != (r.ret_base, r.ret_scav):
                    return div(i, r, f"alloc({r.npages}): model ({f.addr(base)}, {scav}), "
                                     f"runtime ({f.addr(r.ret_base)}, {r.ret_scav})")
            elif isinstance(r, T.Free):
                pa.free(r.base, r.npages)
            elif isinstance(r, T.AllocToCache):
                c = pa.alloc_to_cache()
                addrs += 1
                if (c.base, c.cache, c.scav) != (r.base, r.cache, r.scav):
                    return div(i, r, f"allocToCache: model base {f.addr(c.base)} cache {c.cache:#018x} "
                                     f"scav {c.scav:#018x}, runtime base {f.addr(r.base)} cache {r.cache:#018x} "
                                     f"scav {r.scav:#018x}")
            elif isinstance(r, T.Flush):
                PageCache(base=r.base, cache=r.cache, scav=r.scav).flush(pa)
            elif isinstance(r, T.Find):
                base, sa = pa.find(r.npages)
                addrs += 1
                if (base, sa.addr() if base else r.ret_search_addr) != (r.ret_base, r.ret_search_addr):
                    return div(i, r, f"find({r.npages}): model ({f.addr(base)}, {f.addr(sa.addr())}), "
                                     f"runtime ({f.addr(r.ret_base)}, {f.addr(r.ret_search_addr)})")
            elif isinstance(r, T.AllocRange):
                scav = pa.alloc_range(r.base, r.npages)
                if scav != r.ret_scav:
                    return div(i, r, mismatch(f"allocRange({f.addr(r.base)}, {r.npages}) scavenged bytes", scav, r.ret_scav, str))
            elif isinstance(r, T.RandomPadding):
                pa.mark_random_padding_pages(r.base, r.npages)
            elif isinstance(r, T.ScavengeBegin):
                scav_calls[r.id] = [r.nbytes, 0]
            elif isinstance(r, T.ScavFind):
                call = scav_calls.get(r.id)
                if call is None or not call[1] < call[0]:
                    return div(i, r, f"scavenge call {r.id} searched again after releasing "
                                     f"{call and call[1]} of {call and call[0]} bytes (or never began)")
                ci, page_idx = pa.scav.index.find(r.force)
                if (ci, page_idx) != (r.ci, r.page_idx):
                    return div(i, r, f"scavengeIndex.find(force={r.force}): model chunk {ci:#x} page {page_idx}, "
                                     f"runtime chunk {r.ci:#x} page {r.page_idx}")
            elif isinstance(r, T.ScavTake):
                base, npages = scavenge_one_take(pa, r.ci, r.search_idx, r.max)
                if (base, npages) != (r.base, r.npages):
                    return div(i, r, f"scavengeOne({r.ci:#x}, {r.search_idx}, {r.max}) candidate: model pages "
                                     f"[{base}, {base + npages}), runtime [{r.base}, {r.base + r.npages})")
                pending.setdefault(r.ci, []).append((base, npages))
            elif isinstance(r, T.ScavGive):
                if (r.base, r.npages) not in pending.get(r.ci, ()):
                    return div(i, r, f"scavengeOne gave back chunk {r.ci:#x} pages [{r.base}, {r.base + r.npages}) "
                                     "it did not take")
                pending[r.ci].remove((r.base, r.npages))
                scavenge_one_give(pa, r.ci, r.base, r.npages)
                returned.setdefault(r.ci, []).append(r.npages * PAGE_SIZE)
            elif isinstance(r, T.ScavEmpty):
                base, npages = scavenge_one_take(pa, r.ci, r.search_idx, r.max)
                if npages:
                    return div(i, r, f"scavengeOne({r.ci:#x}, {r.search_idx}, {r.max}): model finds pages "
                                     f"[{base}, {base + npages}) to scavenge, runtime none")
                pa.scav.index.set_empty(r.ci)
                returned.setdefault(r.ci, []).append(0)
            elif isinstance(r, T.ScavStep):
                if r.ret not in returned.get(r.ci, ()):
                    return div(i, r, f"scavengeOne({r.ci:#x}) returned {r.ret} bytes, the model's scavengeOne "
                                     f"calls on that chunk returned {returned.get(r.ci, [])}")
                returned[r.ci].remove(r.ret)
                call = scav_calls.get(r.id)
                if call is not None:
                    call[1] += r.ret
            elif isinstance(r, T.ScavengeEnd):
                call = scav_calls.pop(r.id, None)
                if call is not None and call[1] != r.released:
                    return div(i, r, mismatch(f"scavenge call {r.id} released bytes", call[1], r.released, str))
            elif isinstance(r, T.NextGen):
                pa.scav.index.next_gen()
            elif isinstance(r, T.EnableHuge):
                pa.enable_chunk_huge_pages()
        except ModelError as e:
            return div(i, r, f"the model raised {type(e).__name__}: {e}", "the runtime went on")
    return ReplayResult(len(trace.records), ops, snaps, addrs, time.perf_counter() - t0, None)


def shrunk_prefix(trace: T.Trace, d: ReplayDivergence):
    """Returns the records of the shortest prefix that still ends in the divergence: everything up to
    and including the diverging record (for a state divergence, the last snapshot before it is kept
    as the snapshot that shows it)."""
    return trace.records[: d.index + 1]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.inf


# --- seeded broken models, which replay of a real trace must catch ---------------------------


class RealHeapAsTestMode(PageAlloc):
    """findMappedAddr ignores mheap_.arenas and always consults inUse, as in test mode."""

    def find_mapped_addr(self, addr):
        arenas, self.arenas = self.arenas, None  # None: the test path, where inUse decides
        try:
            return PageAlloc.find_mapped_addr(self, addr)
        finally:
            self.arenas = arenas


class _IndexWithoutNextGen(ScavengeIndex):
    __slots__ = ()

    def next_gen(self):
        pass


class NextGenForgotten(PageAlloc):
    """The scavenge index's nextGen is lost (mgc.go's call at mark termination does nothing)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.scav.index.__class__ = _IndexWithoutNextGen


# Broken models replay of a real trace must catch, besides goref/broken.py's MODEL_VARIANTS (which
# the lockstep knows too). RealHeapAsTestMode is not among them: on the traces recorded so far the
# arenas branch never decided a result (goref/TRACE.md).
BROKEN = {"next-gen-forgotten": NextGenForgotten}
# The broken models of both kinds the tests hold replay to: each must diverge on a real trace.
MUST_DIVERGE = ("next-gen-forgotten", "free-skips-search-addr", "leaf-summary-off-by-one")


def broken_model(name: str):
    """Returns the PageAlloc class of a broken model named here or in goref/broken.py."""
    if name in BROKEN:
        return BROKEN[name]
    from palloc.goref.broken import MODEL_VARIANTS

    if name in MODEL_VARIANTS:
        return MODEL_VARIANTS[name].cls
    raise PallocError(f"no broken model {name!r}; choose from {', '.join([*BROKEN, *MODEL_VARIANTS])}")


# --- a prefix as a test-mode lockstep case ------------------------------------------------------


def lockstep_ops(trace: T.Trace, upto: int):
    """Returns (ops, None): records[:upto+1] as the helper's test-mode operations (goref/ops.py),
    or (None, why) when the prefix holds a call with no exact test-mode counterpart.

    Arenas are dropped (test mode has no mheap_.arenas); the randomized base's padding becomes an
    allocRange of the same pages (the same allocation bits, without the scavenged bits, on pages
    never freed); page caches take the helper's cache slots; a scavenge call becomes one scavenge
    op when no other call ran inside it and it did not stop on shouldStop.
    """
    from palloc.goref import ops as O

    ops: list = []
    slots: dict[int, int] = {}  # cache base -> slot
    recs = trace.records[: upto + 1]
    open_scav: dict[int, list] = {}  # id -> [begin, index of the op placeholder, released, nbytes, stopped]
    for i, r in enumerate(recs):
        inside = [k for k, v in open_scav.items()]
        if isinstance(r, (T.Arena, T.Snapshot, T.EnableHuge)):
            continue
        if isinstance(r, (T.ScavFind, T.ScavTake, T.ScavGive, T.ScavEmpty, T.ScavStep)):
            if isinstance(r, T.ScavFind) and r.id in open_scav and r.ci == 0:
                open_scav[r.id][4] = True  # the index ran dry: scavenge returns by itself
            if isinstance(r, T.ScavStep) and r.id in open_scav:
                call = open_scav[r.id]
                call[2] += r.ret
                call[4] = call[2] >= call[3]
            continue
        if isinstance(r, T.ScavengeBegin):
            if open_scav:
                return None, f"record {i}: scavenge calls {sorted(open_scav)} and {r.id} overlap"
            open_scav[r.id] = [r, len(ops), 0, r.nbytes, False]
            ops.append(None)
            continue
        if isinstance(r, T.ScavengeEnd):
            call = open_scav.pop(r.id, None)
            if call is None:
                continue
            if not call[4]:
                return None, f"record {i}: scavenge call {r.id} stopped on shouldStop, which test mode has not"
            ops[call[1]] = O.Scavenge(call[0].nbytes & pa_mask(trace), call[0].force)
            continue
        if inside:
            return None, f"record {i}: {type(r).__name__} ran inside scavenge call {inside[0]}"
        if isinstance(r, T.Grow):
            ops.append(O.Grow(r.base, r.size))
        elif isinstance(r, T.RandomPadding):
            ops.append(O.AllocRange(r.base, r.npages))
        elif isinstance(r, T.Alloc):
            ops.append(O.Alloc(r.npages))
        elif isinstance(r, T.Free):
            ops.append(O.Free(r.base, r.npages))
        elif isinstance(r, T.Find):
            ops.append(O.Find(r.npages))
        elif isinstance(r, T.AllocRange):
            ops.append(O.AllocRange(r.base, r.npages))
        elif isinstance(r, T.NextGen):
            ops.append(O.NextGen())
        elif isinstance(r, T.AllocToCache):
            free = [s for s in range(O.CACHE_SLOTS) if s not in [v[0] for v in slots.values()]]
            if not free:
                return None, f"record {i}: more than {O.CACHE_SLOTS} page caches held at once"
            ops.append(O.AllocToCache(free[0]))
            if r.cache:
                slots[r.base] = [free[0], r.cache]
        elif isinstance(r, T.CacheAlloc):
            base = r.ret_base - r.ret_base % (64 * PAGE_SIZE)  # a page cache is 64 aligned pages
            if base not in slots:
                return None, f"record {i}: a page cache at {base:#x} that no allocToCache of the prefix filled"
            slot = slots[base]
            ops.append(O.CacheAlloc(slot[0], r.npages))
            first = (r.ret_base - base) // PAGE_SIZE
            slot[1] &= ~(((1 << r.npages) - 1) << first)
            if slot[1] == 0:  # used up: its P refills without a flush
                del slots[base]
        elif isinstance(r, T.Flush):
            if r.base not in slots:
                return None, f"record {i}: a flush of a page cache no allocToCache of the prefix filled"
            ops.append(O.CacheFlush(slots.pop(r.base)[0]))
    if open_scav:
        return None, "the prefix ends inside a scavenge call"
    return [op for op in ops if op is not None], None


def pa_mask(trace: T.Trace) -> int:
    return (1 << (8 * trace.header.ptr_size)) - 1
