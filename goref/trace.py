"""Traces of a real Go program's page allocator: the file format, the reader and the request stream.

A trace is what `palloc trace record` writes: every call that changed or read the real heap's
`mheap_.pages` (Go 1.27 src/runtime/mpagealloc.go, mpagecache.go, mgcscavenge.go, called from
mheap.go, mgc.go, proc.go, malloc.go), in the order it took effect under `mheap_.lock`, with its
inputs and results, plus snapshots of the whole allocator state. The format is in
goref/TRACE.md; this module is its one reader.

Reader API (what `verify-change --workload` builds on):

    t = read_trace(path)             # Trace: .goarch, .goos, .go_version, .meta, .header, .records
    for r in t.records: ...          # typed records: Grow, Alloc, Free, AllocToCache, Flush, ...
    for q in request_stream(t): ...  # Request(kind, id, npages, nbytes, force, base)

A corrupted or truncated file raises TraceError (a PallocError: one line, exit 2).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

from palloc.spec.errors import PallocError

# The container: gzip of  MAGIC_LINE, one JSON line of metadata, then the Go side's raw records.
MAGIC_LINE = b"palloc-trace\n"
VERSION = 1
WORDS = 10  # a record is WORDS little-endian uint64 words
RECORD_BYTES = WORDS * 8
GO_MAGIC = 0x31525450_4F4C4C41  # "ALLOPTR1" little-endian, the Go side's header word 1

# Record kinds (word 0's low byte; its upper 56 bits are the kind's aux field).
HEADER, ARENA, GROW, ALLOC, FREE, ALLOC_TO_CACHE, FLUSH, FIND, ALLOC_RANGE, RANDOM_PADDING = range(1, 11)
SCAVENGE_BEGIN, SCAV_FIND, SCAV_TAKE, SCAV_GIVE, SCAV_EMPTY, SCAVENGE_END = range(11, 17)
NEXT_GEN, ENABLE_HUGE, CACHE_ALLOC = 17, 18, 19
STATE_BEGIN, STATE_IN_USE, STATE_CHUNK, STATE_SCAV, STATE_SUM, STATE_END, END = range(20, 27)
SCAV_STEP = 27


class TraceError(PallocError):
    """The trace file is not a complete palloc trace (corrupted, truncated, another version)."""


# --- typed records -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Header:
    """The Go side's constants: pointer size, page sizes, heap arena size, arenaBaseOffset, pid."""
    ptr_size: int
    page_size: int
    phys_page_size: int
    phys_huge_page_size: int
    heap_arena_bytes: int
    arena_base_offset: int
    state_every: int
    pid: int


# The record types, one frozen dataclass per record kind of goref/TRACE.md: a table, its
# entries alike by design.
@dataclasses.dataclass(frozen=True)
class Arena:
    """An arena registered in mheap_.arenas (mheap.sysAlloc): index ri, [base, base+size)."""
    index: int
    base: int
    size: int


@dataclasses.dataclass(frozen=True)
class Grow:
    """pageAlloc.grow(base, size), called by mheap.grow."""
    base: int
    size: int


@dataclasses.dataclass(frozen=True)
class Alloc:
    """pageAlloc.alloc(npages) returned (ret_base, ret_scav); ret_base 0 = failure."""
    npages: int
    ret_base: int
    ret_scav: int


@dataclasses.dataclass(frozen=True)
class Free:
    """pageAlloc.free(base, npages), from mheap.freeSpanLocked."""
    base: int
    npages: int


@dataclasses.dataclass(frozen=True)
class AllocToCache:
    """pageAlloc.allocToCache() returned pageCache{base, cache, scav} (all 0 = empty)."""
    base: int
    cache: int
    scav: int


@dataclasses.dataclass(frozen=True)
class Flush:
    """pageCache.flush(&mheap_.pages) of the cache {base, cache, scav} as it was before."""
    base: int
    cache: int
    scav: int


@dataclasses.dataclass(frozen=True)
class Find:
    """pageAlloc.find(npages) returned (ret_base, ret_search_addr), for a physically aligned stack."""
    npages: int
    ret_base: int
    ret_search_addr: int


@dataclasses.dataclass(frozen=True)
class AllocRange:
    """pageAlloc.allocRange(base, npages) returned ret_scav (the aligned stack's pages)."""
    base: int
    npages: int
    ret_scav: int


@dataclasses.dataclass(frozen=True)
class RandomPadding:
    """pageAlloc.markRandomPaddingPages(base, npages) at the first grow (randomized heap base)."""
    base: int
    npages: int


@dataclasses.dataclass(frozen=True)
class ScavengeBegin:
    """pageAlloc.scavenge(nbytes, shouldStop, force) began; id names this call (scavenges run
    concurrently: the background scavenger, allocation assists, debug.FreeOSMemory)."""
    id: int
    nbytes: int
    force: bool


@dataclasses.dataclass(frozen=True)
class ScavFind:
    """scavengeIndex.find(force), in scavenge call id, returned (ci, page_idx); ci 0 = nothing left."""
    id: int
    force: bool
    ci: int
    page_idx: int


@dataclasses.dataclass(frozen=True)
class ScavTake:
    """scavengeOne(ci, search_idx, max)'s first locked section found and allocated the candidate
    [base, base+npages) (page indices in chunk ci)."""
    ci: int
    search_idx: int
    max: int
    base: int
    npages: int


@dataclasses.dataclass(frozen=True)
class ScavGive:
    """scavengeOne's second locked section freed [base, base+npages) of chunk ci as scavenged."""
    ci: int
    base: int
    npages: int


@dataclasses.dataclass(frozen=True)
class ScavEmpty:
    """scavengeOne(ci, search_idx, max) found no candidate and marked chunk ci empty."""
    ci: int
    search_idx: int
    max: int


@dataclasses.dataclass(frozen=True)
class ScavStep:
    """scavengeOne(ci, ...), in scavenge call id, returned ret bytes."""
    id: int
    ci: int
    ret: int


@dataclasses.dataclass(frozen=True)
class ScavengeEnd:
    """pageAlloc.scavenge call id returned released bytes."""
    id: int
    released: int


@dataclasses.dataclass(frozen=True)
class NextGen:
    """scavengeIndex.nextGen() (mark termination, world stopped)."""


@dataclasses.dataclass(frozen=True)
class EnableHuge:
    """pageAlloc.enableChunkHugePages()."""


@dataclasses.dataclass(frozen=True)
class CacheAlloc:
    """pageCache.alloc(npages) on a P's cache returned (ret_base, ret_scav), without the heap lock;
    it does not touch mheap_.pages, and is recorded for the request stream only."""
    npages: int
    ret_base: int
    ret_scav: int


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The whole allocator state at this point (palloc.goref.compare.State's fields)."""
    search_addr: int
    start: int
    end: int
    in_use: tuple
    chunks: dict
    scav_chunks: dict
    summary: tuple
    scav: dict
    final: bool


@dataclasses.dataclass
class Trace:
    """A read trace: metadata (goarch, goos, Go version, program), the Go header, the records."""
    path: str
    meta: dict
    header: Header
    records: list

    @property
    def goarch(self) -> str:
        return self.meta["goarch"]

    @property
    def goos(self) -> str:
        return self.meta.get("goos", "linux")

    @property
    def platform(self) -> str:
        return f"{self.goos}/{self.goarch}"

    @property
    def go_version(self) -> str:
        return self.meta.get("go_version", "")

    def operations(self) -> int:
        """Returns the number of records that act on or read mheap_.pages (snapshots not counted)."""
        return sum(1 for r in self.records if not isinstance(r, (Snapshot, CacheAlloc, Arena, ScavStep)))


# --- reading -----------------------------------------------------------------------------

_WORDS = struct.Struct("<%dQ" % WORDS)
_WORDS_BE = struct.Struct(">%dQ" % WORDS)


def _bad(path, why: str) -> TraceError:
    return TraceError(f"{path}: not a complete palloc trace ({why}); record it again with palloc trace record")


def read_raw(path: str | os.PathLike) -> tuple[dict, bytes]:
    """Returns (metadata, raw record bytes) of a trace file; TraceError if it is not one."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise TraceError(f"{path}: no such trace file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a folder, not a trace file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise _bad(path, f"compressed data: {e}") from None
    if not data.startswith(MAGIC_LINE):
        raise _bad(path, "no palloc-trace magic")
    nl = data.find(b"\n", len(MAGIC_LINE))
    if nl < 0:
        raise _bad(path, "no metadata line")
    try:
        meta = json.loads(data[len(MAGIC_LINE):nl])
        if not isinstance(meta, dict) or not isinstance(meta.get("goarch"), str):
            raise ValueError("metadata has no goarch")
    except ValueError as e:
        raise _bad(path, f"metadata: {e}") from None
    if meta.get("version") != VERSION:
        raise TraceError(f"{path}: trace format version {meta.get('version')!r}, this palloc reads {VERSION}; "
                         "record it again with this palloc")
    raw = data[nl + 1:]
    if len(raw) % RECORD_BYTES:
        raise _bad(path, f"{len(raw)} bytes of records is not a whole number of {RECORD_BYTES}-byte records")
    return meta, raw


def decode(path, meta: dict, raw: bytes) -> Trace:
    """Returns the Trace of raw records; TraceError on anything out of place."""
    n = len(raw) // RECORD_BYTES
    if n == 0:
        raise _bad(path, "no records")
    recs: list = []
    # Words are in the recording machine's byte order; the header's magic says which.
    words = _WORDS if _WORDS.unpack_from(raw)[1] == GO_MAGIC else _WORDS_BE
    it = words.iter_unpack(raw)
    w = next(it)
    if w[0] & 0xFF != HEADER or w[1] != GO_MAGIC or w[2] != VERSION:
        raise _bad(path, "the first record is not the Go side's header")
    header = Header(ptr_size=w[3], page_size=w[4], phys_page_size=w[5], phys_huge_page_size=w[6],
                    heap_arena_bytes=w[7], arena_base_offset=w[8], state_every=w[9] & 0xFFFFFFFF,
                    pid=w[9] >> 32)
    state: dict | None = None
    ended = False
    for k, w in enumerate(it, start=1):
        kind, aux = w[0] & 0xFF, w[0] >> 8
        if ended:
            raise _bad(path, f"record {k} after the end record")
        if state is not None and kind not in (STATE_IN_USE, STATE_CHUNK, STATE_SCAV, STATE_SUM, STATE_END):
            raise _bad(path, f"record {k} (kind {kind}) inside a state snapshot")
        if kind == ARENA:
            recs.append(Arena(w[1], w[2], w[3]))
        elif kind == GROW:
            recs.append(Grow(w[1], w[2]))
        elif kind == ALLOC:
            recs.append(Alloc(w[1], w[2], w[3]))
        elif kind == FREE:
            recs.append(Free(w[1], w[2]))
        elif kind == ALLOC_TO_CACHE:
            recs.append(AllocToCache(w[1], w[2], w[3]))
        elif kind == FLUSH:
            recs.append(Flush(w[1], w[2], w[3]))
        elif kind == FIND:
            recs.append(Find(w[1], w[2], w[3]))
        elif kind == ALLOC_RANGE:
            recs.append(AllocRange(w[1], w[2], w[3]))
        elif kind == RANDOM_PADDING:
            recs.append(RandomPadding(w[1], w[2]))
        elif kind == SCAVENGE_BEGIN:
            recs.append(ScavengeBegin(aux, w[1], bool(w[2])))
        elif kind == SCAV_FIND:
            recs.append(ScavFind(aux, bool(w[1]), w[2], w[3]))
        elif kind == SCAV_TAKE:
            recs.append(ScavTake(w[1], w[2], w[3], w[4], w[5]))
        elif kind == SCAV_GIVE:
            recs.append(ScavGive(w[1], w[2], w[3]))
        elif kind == SCAV_EMPTY:
            recs.append(ScavEmpty(w[1], w[2], w[3]))
        elif kind == SCAVENGE_END:
            recs.append(ScavengeEnd(aux, w[1]))
        elif kind == SCAV_STEP:
            recs.append(ScavStep(aux, w[1], w[2]))
        elif kind == NEXT_GEN:
            recs.append(NextGen())
        elif kind == ENABLE_HUGE:
            recs.append(EnableHuge())
        elif kind == CACHE_ALLOC:
            recs.append(CacheAlloc(w[1], w[2], w[3]))
        elif kind == STATE_BEGIN:
            if state is not None:
                raise _bad(path, f"record {k}: a snapshot inside a snapshot")
            state = {"search_addr": w[1], "start": w[2], "end": w[3], "in_use": [], "chunks": {},
                     "scav_chunks": {}, "summary": {},
                     "scav": {"search_addr_bg": w[4], "search_addr_bg_marked": aux & 1,
                              "search_addr_force": w[5], "search_addr_force_marked": (aux >> 1) & 1,
                              "free_hwm": w[6], "min_heap_idx": w[7], "gen": w[8]},
                     "final": bool((aux >> 2) & 1)}
        elif kind == STATE_IN_USE and state is not None:
            state["in_use"].append((w[1], w[2]))
        elif kind == STATE_CHUNK and state is not None:
            bits = 0
            for j in range(8):
                bits |= w[1 + j] << (64 * j)
            state["chunks"][aux] = [bits, 0]
            state["scav_chunks"][aux] = w[9]
        elif kind == STATE_SCAV and state is not None and aux in state["chunks"]:
            bits = 0
            for j in range(8):
                bits |= w[1 + j] << (64 * j)
            state["chunks"][aux][1] = bits
        elif kind == STATE_SUM and state is not None:
            count = w[2]
            if count > 7:
                raise _bad(path, f"record {k}: a summary record with {count} entries")
            d = state["summary"].setdefault(aux, {})
            for j in range(count):
                d[w[1] + j] = w[3 + j]
        elif kind == STATE_END and state is not None:
            levels = max(state["summary"], default=-1) + 1
            recs.append(Snapshot(
                search_addr=state["search_addr"], start=state["start"], end=state["end"],
                in_use=tuple(state["in_use"]),
                chunks={ci: tuple(v) for ci, v in state["chunks"].items()},
                scav_chunks=state["scav_chunks"],
                summary=tuple(state["summary"].get(lv, {}) for lv in range(levels)),
                scav=state["scav"], final=state["final"]))
            state = None
        elif kind == END:
            if w[1] != k:
                raise _bad(path, f"the end record counts {w[1]} records, the file holds {k}")
            ended = True
        else:
            raise _bad(path, f"record {k} has unknown kind {kind}")
    if not ended:
        raise _bad(path, "truncated: no end record (did the program crash or get killed?)")
    return Trace(path=str(path), meta=meta, header=header, records=recs)


def encode_records(trace: Trace, records: list) -> bytes:
    """Returns the raw bytes of the trace's header, records (a prefix, for a shrunk case) and an end."""
    out = []
    h = trace.header
    out.append((HEADER, GO_MAGIC, VERSION, h.ptr_size, h.page_size, h.phys_page_size, h.phys_huge_page_size,
                h.heap_arena_bytes, h.arena_base_offset, h.pid << 32 | h.state_every))

    def rec(kind, aux=0, *ws):
        ws = list(ws) + [0] * (WORDS - 1 - len(ws))
        out.append((kind | aux << 8, *ws))

    for r in records:
        if isinstance(r, Snapshot):
            s = r.scav
            rec(STATE_BEGIN, s["search_addr_bg_marked"] | s["search_addr_force_marked"] << 1 | int(r.final) << 2,
                r.search_addr, r.start, r.end, s["search_addr_bg"], s["search_addr_force"], s["free_hwm"],
                s["min_heap_idx"], s["gen"], len(r.in_use))
            for b, l in r.in_use:
                rec(STATE_IN_USE, 0, b, l)
            for ci, (a, v) in r.chunks.items():
                rec(STATE_CHUNK, ci, *[(a >> (64 * j)) & (2**64 - 1) for j in range(8)], r.scav_chunks.get(ci, 0))
                rec(STATE_SCAV, ci, *[(v >> (64 * j)) & (2**64 - 1) for j in range(8)])
            for lv, d in enumerate(r.summary):
                items = sorted(d.items())
                for k in range(0, len(items), 7):
                    part = items[k:k + 7]
                    if part[-1][0] - part[0][0] != len(part) - 1:  # not consecutive: one per record
                        for i, v in part:
                            rec(STATE_SUM, lv, i, 1, v)
                    else:
                        rec(STATE_SUM, lv, part[0][0], len(part), *[v for _, v in part])
            rec(STATE_END)
            continue
        kind = _KIND_OF[type(r)]
        vals = [int(getattr(r, f.name)) for f in dataclasses.fields(r)]
        if type(r) in (ScavengeBegin, ScavFind, ScavengeEnd, ScavStep):
            rec(kind, vals[0], *vals[1:])
        else:
            rec(kind, 0, *vals)
    out.append((END, len(out)) + (0,) * (WORDS - 2))
    return b"".join(_WORDS.pack(*w) for w in out)


def read_trace(path: str | os.PathLike) -> Trace:
    """Reads a trace file written by palloc trace record; TraceError (exit 2, one line) if it is
    corrupted, truncated or of another format version."""
    meta, raw = read_raw(path)
    return decode(path, meta, raw)


def write_trace(path: str | os.PathLike, meta: dict, raw: bytes) -> None:
    """Writes a trace file (metadata + the Go side's raw records) atomically: a temporary file in
    the same folder, then a rename, so a reader never sees half a trace."""
    path = Path(path)
    meta = dict(meta, version=VERSION)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # an ordinary file, not mkstemp's private one
    try:
        with os.fdopen(fd, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as g:
            g.write(MAGIC_LINE)
            g.write(json.dumps(meta, sort_keys=True).encode() + b"\n")
            g.write(raw)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_KIND_OF = {Arena: ARENA, Grow: GROW, Alloc: ALLOC, Free: FREE, AllocToCache: ALLOC_TO_CACHE, Flush: FLUSH,
            Find: FIND, AllocRange: ALLOC_RANGE, RandomPadding: RANDOM_PADDING, ScavengeBegin: SCAVENGE_BEGIN,
            ScavFind: SCAV_FIND, ScavTake: SCAV_TAKE, ScavGive: SCAV_GIVE, ScavEmpty: SCAV_EMPTY,
            ScavengeEnd: SCAVENGE_END, ScavStep: SCAV_STEP, NextGen: NEXT_GEN, EnableHuge: ENABLE_HUGE,
            CacheAlloc: CACHE_ALLOC}


# --- the request stream ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    """One thing the program's heap asked of the page allocator, independent of addresses.

    kind "alloc": a span of npages (id names it; cache True if a P's page cache served it,
        padding True for the randomized heap base's padding, stack_aligned for a physically
        aligned stack); base is the address it got in the recorded run (for reference only).
    kind "free": frees the allocation id (npages repeated).
    kind "grow": the heap grew by nbytes (mheap.grow, after an alloc failed; base for reference).
    kind "scavenge": scavenge(nbytes, force) was asked (released: what the run released); it is
        yielded where the call returned (calls overlap other requests in a real run).
    kind "next_gen": a GC cycle's scavenge generation began.
    """
    kind: str
    id: int = 0
    npages: int = 0
    nbytes: int = 0
    force: bool = False
    base: int = 0
    cache: bool = False
    padding: bool = False
    stack_aligned: bool = False
    released: int = 0


def request_stream(trace: Trace) -> Iterator[Request]:
    """Yields the trace's requests in order: allocations (with ids), frees naming the id they free,
    grows, scavenges and GC generations. Page-cache refills and flushes are not requests (they are
    the allocator's own policy); allocations a P's cache served are (cache=True)."""
    live: dict[tuple[int, int], int] = {}  # (base, npages) -> id
    next_id = 1
    scavenges: dict[int, ScavengeBegin] = {}
    pending_find: Find | None = None
    for r in trace.records:
        if isinstance(r, (Alloc, CacheAlloc)):
            if r.ret_base == 0:
                continue
            live[(r.ret_base, r.npages)] = next_id
            yield Request("alloc", id=next_id, npages=r.npages, base=r.ret_base, cache=isinstance(r, CacheAlloc))
            next_id += 1
        elif isinstance(r, Find):
            pending_find = r
        elif isinstance(r, AllocRange) and pending_find is not None:
            live[(r.base, r.npages)] = next_id
            yield Request("alloc", id=next_id, npages=r.npages, base=r.base, stack_aligned=True)
            next_id += 1
            pending_find = None
        elif isinstance(r, RandomPadding):
            yield Request("alloc", id=next_id, npages=r.npages, base=r.base, padding=True)
            next_id += 1
        elif isinstance(r, Free):
            aid = live.pop((r.base, r.npages), None)
            if aid is None:
                raise TraceError(f"{trace.path}: free of [{r.base:#x}, +{r.npages} pages) matches no live allocation")
            yield Request("free", id=aid, npages=r.npages, base=r.base)
        elif isinstance(r, Grow):
            yield Request("grow", nbytes=r.size, base=r.base)
        elif isinstance(r, ScavengeBegin):
            scavenges[r.id] = r
        elif isinstance(r, ScavengeEnd) and r.id in scavenges:
            b = scavenges.pop(r.id)
            yield Request("scavenge", nbytes=b.nbytes, force=b.force, released=r.released)
        elif isinstance(r, NextGen):
            yield Request("next_gen")
