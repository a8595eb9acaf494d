"""The page-allocator surface of the runtime's export_test.go, over the model.

Mirrors src/runtime/export_test.go of Go 1.27.3 (the page allocator's exports: PallocSum,
PallocBits, PallocData, PageCache, PageAlloc, AddrRange(s), BitRange, NewPageAlloc,
ScavengeIndex, ...), with the same names in snake_case, so the runtime's own table-driven tests
(tests/model/runtime_tables/) read as in Go.

Differences forced by Python, all mechanical:
* The Go constants PageSize, PallocChunkPages, PageAlloc64Bit, BaseChunkIdx, PhysPageSize, ...
  depend on the platform; here they are functions of a Platform (page_size is a constant).
* Go's accessor methods that share a name with a field (PageCache.Base, AddrRange.Base, ...)
  are methods of the wrapper classes here, as in Go.
* PhysPageSize and PhysHugePageSize are the host's in Go; here they are parameters of
  new_page_alloc (default: the platform's usual values), so a test can ask for any host.
* NewPageAlloc grows its chunks in Go's (random) map order; here in the dict's order. The final
  state does not depend on the order: each chunk's grow and bitmaps touch only that chunk, the
  summaries above it (recomputed from the bitmaps) and its index entry, and grow leaves searchAddr
  at the lowest chunk grown whatever the order.
"""

from __future__ import annotations

import contextlib
import dataclasses

from palloc.model import mpagealloc as _mpa
from palloc.spec.errors import GoThrow
from palloc.model.gomath import MASK64
from palloc.model.mgcscavenge import ScavChunkData, ScavengeIndex as _ScavengeIndex
from palloc.model.mgcscavenge import fill_aligned, unpack_scav_chunk_data
from palloc.model.mpagecache import PageCache as _PageCache
from palloc.model.mpallocbits import PallocBits, find_bit_range64, summarize_slow
from palloc.model.mpallocbits import PallocData as _PallocData
from palloc.model.mranges import AddrRanges as _AddrRanges
from palloc.model.mranges import make_addr_range as _make_addr_range
from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE, PALLOC_SUM_BYTES

__all__ = [
    "AddrRange",
    "AddrRanges",
    "BitRange",
    "ChunkIdx",
    "PAGE_CACHE_PAGES",
    "PAGE_SIZE",
    "PALLOC_SUM_BYTES",
    "PageAlloc",
    "PageCache",
    "PallocBits",
    "PallocData",
    "ScavengeIndex",
    "base_chunk_idx",
    "check_pack_scav_chunk_data",
    "diff_palloc_bits",
    "fill_aligned",
    "find_bit_range64",
    "free_page_alloc",
    "make_addr_range",
    "make_addr_ranges",
    "new_addr_ranges",
    "new_page_alloc",
    "new_page_cache",
    "new_palloc_bits",
    "new_palloc_data",
    "new_scavenge_index",
    "pack_palloc_sum",
    "page_alloc64_bit",
    "page_base",
    "palloc_chunk_pages",
    "palloc_sum_end",
    "palloc_sum_max",
    "palloc_sum_start",
    "stringify_palloc_bits",
    "summarize_slow",
    "undefined_allowed",
]

# --- constants ------------------------------------------------------------------------------


def palloc_chunk_pages(p) -> int:
    """PallocChunkPages."""
    return p.palloc_chunk_pages


def page_alloc64_bit(p) -> int:
    """PageAlloc64Bit: 1 where mpagealloc_64bit.go is built, else 0."""
    return 1 if p.is_64bit_page_alloc else 0


def base_chunk_idx(p) -> int:
    """BaseChunkIdx: 0xc000 (64-bit) or 0x100 (32-bit) chunks up, plus arenaBaseOffset on AIX."""
    return p.base_chunk_idx


ChunkIdx = int


def page_base(p, c: int, page_idx: int) -> int:
    """PageBase: the address of page page_idx of chunk c."""
    return (_mpa.chunk_base(p, c) + page_idx * PAGE_SIZE) & p.uintptr_mask


# --- pallocSum ------------------------------------------------------------------------------

pack_palloc_sum = _mpa.pack_palloc_sum
palloc_sum_start = _mpa.palloc_sum_start
palloc_sum_max = _mpa.palloc_sum_max
palloc_sum_end = _mpa.palloc_sum_end


# --- bitmaps ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BitRange:
    """BitRange: the bit range [i, i+n) of a bitmap."""

    i: int
    n: int


def new_palloc_bits(p) -> PallocBits:
    """new(PallocBits): an all-free bitmap."""
    return PallocBits(p)


def new_palloc_data(p) -> _PallocData:
    """new(PallocData): all free, nothing scavenged."""
    return _PallocData(p)


class _BitsView(PallocBits):
    """A *PallocBits pointing into another bitmap (Go's (*PallocBits)(&d.pallocBits))."""

    __slots__ = ("_owner",)

    def __init__(self, owner):
        self.g = owner.g
        self._owner = owner

    @property
    def v(self):
        return self._owner.v

    @v.setter
    def v(self, value):
        self._owner.v = value


class PallocData:
    """PallocData: the export wrapper of a chunk's pallocData (shares its state)."""

    __slots__ = ("d", "phys_page_size", "phys_huge_page_size")

    def __init__(self, d: _PallocData, phys_page_size: int | None = None, phys_huge_page_size: int | None = None):
        self.d = d
        p = d.g.p
        self.phys_page_size = p.phys_page_size if phys_page_size is None else phys_page_size
        self.phys_huge_page_size = p.effective_phys_huge_page_size if phys_huge_page_size is None else phys_huge_page_size

    def find_scavenge_candidate(self, search_idx: int, min: int, max: int) -> tuple[int, int]:
        return self.d.find_scavenge_candidate(search_idx, min, max, self.phys_huge_page_size, self.phys_page_size)

    def alloc_range(self, i: int, n: int) -> None:
        self.d.alloc_range(i, n)

    def scavenged_set_range(self, i: int, n: int) -> None:
        self.d.scavenged.set_range(i, n)

    def palloc_bits(self) -> PallocBits:
        return _BitsView(self.d)

    def scavenged(self) -> PallocBits:
        return _BitsView(self.d.scavenged)


def diff_palloc_bits(a, b) -> list[BitRange]:
    """DiffPallocBits: the bit ranges where a and b differ, lowest first."""
    x = a.v ^ b.v
    out = []
    while x:
        lo = (x & -x).bit_length() - 1
        y = x >> lo
        run = ((~y) & (y + 1)).bit_length() - 1  # trailing ones of y
        out.append(BitRange(lo, run))
        x &= ~(((1 << run) - 1) << lo)
    return out


def stringify_palloc_bits(b, r: BitRange) -> str:
    """StringifyPallocBits: the bits of r in b as '0'/'1' characters, lowest first."""
    return "".join("1" if (b.v >> j) & 1 else "0" for j in range(r.i, r.i + r.n))


# --- pageCache ----------------------------------------------------------------------------------


class PageCache:
    """PageCache: the export wrapper of a pageCache."""

    __slots__ = ("c",)

    def __init__(self, c: _PageCache):
        self.c = c

    def empty(self) -> bool:
        return self.c.empty()

    def base(self) -> int:
        return self.c.base

    def cache(self) -> int:
        return self.c.cache

    def scav(self) -> int:
        return self.c.scav

    def alloc(self, npages: int) -> tuple[int, int]:
        return self.c.alloc(npages)

    def flush(self, s: "PageAlloc") -> None:
        self.c.flush(s.pa)

    def __eq__(self, other):
        if not isinstance(other, PageCache):
            return NotImplemented
        return (self.c.base, self.c.cache, self.c.scav) == (other.c.base, other.c.cache, other.c.scav)

    __hash__ = None

    def __repr__(self):
        return f"new_page_cache({self.c.base:#x}, {self.c.cache:#x}, {self.c.scav:#x})"


def new_page_cache(base: int, cache: int, scav: int) -> PageCache:
    """NewPageCache."""
    return PageCache(_PageCache(base=base, cache=cache & MASK64, scav=scav & MASK64))


# --- address ranges -----------------------------------------------------------------------------


class AddrRange:
    """AddrRange: the export wrapper of an addrRange."""

    __slots__ = ("r",)

    def __init__(self, r):
        self.r = r

    def base(self) -> int:
        return self.r.base.addr()

    def limit(self) -> int:
        return self.r.limit.addr()

    def equals(self, b: "AddrRange") -> bool:
        return self.r == b.r

    def size(self) -> int:
        return self.r.size()

    def __eq__(self, other):
        if not isinstance(other, AddrRange):
            return NotImplemented
        return self.r == other.r

    __hash__ = None

    def __repr__(self):
        return f"make_addr_range(p, {self.base():#x}, {self.limit():#x})"


def make_addr_range(p, base: int, limit: int) -> AddrRange:
    """MakeAddrRange (throws if base and limit are in different segments)."""
    return AddrRange(_make_addr_range(p, base, limit))


class AddrRanges:
    """AddrRanges: the export wrapper of an addrRanges; immutable if made by make_addr_ranges."""

    __slots__ = ("a", "mutable")

    def __init__(self, a: _AddrRanges, mutable: bool):
        self.a = a
        self.mutable = mutable

    def ranges(self) -> list[AddrRange]:
        return [AddrRange(r.copy()) for r in self.a.ranges]

    def find_succ(self, base: int) -> int:
        return self.a.find_succ(base)

    def add(self, r: AddrRange) -> None:
        if not self.mutable:
            raise GoThrow("attempt to mutate immutable AddrRanges")
        self.a.add(r.r)

    def total_bytes(self) -> int:
        return self.a.total_bytes


def new_addr_ranges(p) -> AddrRanges:
    """NewAddrRanges: an empty, mutable set."""
    a = _AddrRanges(p)
    a.init()
    return AddrRanges(a, True)


def make_addr_ranges(p, *rs: AddrRange) -> AddrRanges:
    """MakeAddrRanges: an immutable set holding exactly rs (not checked or coalesced, as in Go)."""
    a = _AddrRanges(p)
    a.ranges = [r.r.copy() for r in rs]
    a.total_bytes = sum(r.size() for r in rs) & p.uintptr_mask
    return AddrRanges(a, False)


# --- pageAlloc ----------------------------------------------------------------------------------


class PageAlloc:
    """PageAlloc: the export wrapper of a test-mode pageAlloc (model object in `pa`)."""

    __slots__ = ("pa",)

    def __init__(self, pa):
        self.pa = pa

    @property
    def p(self):
        return self.pa.p

    def alloc(self, npages: int) -> tuple[int, int]:
        return self.pa.alloc(npages)

    def alloc_to_cache(self) -> PageCache:
        return PageCache(self.pa.alloc_to_cache())

    def free(self, base: int, npages: int) -> None:
        self.pa.free(base, npages)

    def bounds(self) -> tuple[int, int]:
        return self.pa.start, self.pa.end

    def scavenge(self, nbytes: int) -> int:
        """Scavenge: (*pageAlloc).scavenge(nbytes, nil, force=true)."""
        return self.pa.scavenge(nbytes, None, True)

    def in_use(self) -> list[AddrRange]:
        return [AddrRange(r.copy()) for r in self.pa.in_use.ranges]

    def palloc_data(self, i: int) -> PallocData | None:
        """PallocData: the chunk's data, or None if its L2 block is missing."""
        d = self.pa.try_chunk_of(i)
        if d is None:
            return None
        return PallocData(d, self.pa.phys_page_size, self.pa.phys_huge_page_size)


def new_page_alloc(
    chunks: dict[int, list],
    scav: dict[int, list] | None,
    p=None,
    phys_page_size: int | None = None,
    phys_huge_page_size: int | None = None,
) -> PageAlloc:
    """NewPageAlloc: a test-mode pageAlloc grown by one chunk per key of chunks.

    For each chunk: grow it, clear the scavenged bits grow set, alloc then free the whole chunk in
    the scavenge index, set the scav ranges (if scav has the chunk), allocRange each chunks range
    (updating the index), then update(chunkBase, pallocChunkPages, contig=false, alloc=false).
    Ranges are BitRange or (i, n) pairs; zero-length ones are skipped, as in Go.
    """
    if p is None:
        from palloc.spec import platform

        p = platform()
    pa = _mpa.PageAlloc(p, phys_page_size=phys_page_size, phys_huge_page_size=phys_huge_page_size)
    pa.scav.index.phys_page_size = pa.phys_page_size
    pa.init(True)
    n = p.palloc_chunk_pages
    for i, init in chunks.items():
        addr = _mpa.chunk_base(p, i)
        pa.grow(addr, p.palloc_chunk_bytes)
        ci = _mpa.chunk_index(p, addr)
        chunk = pa.chunk_of(ci)
        chunk.scavenged.clear_range(0, n)
        pa.scav.index.alloc(ci, n)
        pa.scav.index.free(ci, 0, n)
        if scav is not None and i in scav:
            for s in scav[i]:
                si, sn = _bit_range(s)
                if sn != 0:
                    chunk.scavenged.set_range(si, sn)
        for s in init:
            si, sn = _bit_range(s)
            if sn != 0:
                chunk.alloc_range(si, sn)
                pa.scav.index.alloc(ci, sn)
        pa.update(addr, n, False, False)
    return PageAlloc(pa)


def _bit_range(s) -> tuple[int, int]:
    if isinstance(s, BitRange):
        return s.i, s.n
    i, n = s
    return i, n


def free_page_alloc(pp: PageAlloc) -> None:
    """FreePageAlloc: releases OS resources; nothing to do in the model."""


# --- scavenge index -----------------------------------------------------------------------------


class ScavengeIndex:
    """ScavengeIndex: the export wrapper of a test scavengeIndex (model object in `i`)."""

    __slots__ = ("i",)

    def __init__(self, i: _ScavengeIndex):
        self.i = i

    @property
    def p(self):
        return self.i.p

    def find(self, force: bool) -> tuple[int, int]:
        return self.i.find(force)

    def alloc_range(self, base: int, limit: int) -> None:
        """AllocRange: records [base, limit) allocated, chunk by chunk."""
        p = self.p
        sc, ec = _mpa.chunk_index(p, base), _mpa.chunk_index(p, limit - 1)
        si, ei = _mpa.chunk_page_index(p, base), _mpa.chunk_page_index(p, limit - 1)
        n = p.palloc_chunk_pages
        if sc == ec:
            self.i.alloc(sc, ei + 1 - si)
        else:
            self.i.alloc(sc, n - si)
            for c in range(sc + 1, ec):
                self.i.alloc(c, n)
            self.i.alloc(ec, ei + 1)

    def free_range(self, base: int, limit: int) -> None:
        """FreeRange: records [base, limit) freed, chunk by chunk."""
        p = self.p
        sc, ec = _mpa.chunk_index(p, base), _mpa.chunk_index(p, limit - 1)
        si, ei = _mpa.chunk_page_index(p, base), _mpa.chunk_page_index(p, limit - 1)
        n = p.palloc_chunk_pages
        if sc == ec:
            self.i.free(sc, si, ei + 1 - si)
        else:
            self.i.free(sc, si, n - si)
            for c in range(sc + 1, ec):
                self.i.free(c, 0, n)
            self.i.free(ec, 0, ei + 1)

    def reset_search_addrs(self) -> None:
        for a in (self.i.search_addr_bg, self.i.search_addr_force):
            addr, marked = a.load()
            if marked:
                a.store_unmark(addr, addr)
            a.clear()
        self.i.free_hwm = _mpa._off(self.p, self.p.min_off_addr)

    def next_gen(self) -> None:
        self.i.next_gen()

    def set_empty(self, ci: int) -> None:
        self.i.set_empty(ci)


class WholeArrayScavengeIndex(_ScavengeIndex):
    """A scavengeIndex whose whole chunks array is readable, as NewScavengeIndex allocates it."""

    __slots__ = ()

    def _lo(self) -> int:
        return 0


def new_scavenge_index(p, min: int, max: int) -> ScavengeIndex:
    """NewScavengeIndex: a test index over chunks [0, max) with min and minHeapIdx = min.

    Like Go's (which allocates the whole array), every index below max is readable.
    """
    s = WholeArrayScavengeIndex(p)
    s.min = min
    s.max = max
    s.min_heap_idx = min
    s.test = True
    return ScavengeIndex(s)


# --- not in export_test.go: the bare transcription, for tests -----------------------------------


def _no_guard(self, *args, **kwargs) -> None:
    pass


_UNGUARDED: dict[type, type] = {}


@contextlib.contextmanager
def undefined_allowed(pa):
    """Runs pa's operations as the bare transcription inside the with block: the guards against
    inputs the runtime leaves undefined (PageAlloc._require_*) pass, so an undefined input does
    whatever the transcribed code does with it (double counts, throws, faults).

    pa may be any PageAlloc (the fast layer's too); it gets its own class back on exit.
    """
    cls = type(pa)
    bare = _UNGUARDED.get(cls)
    if bare is None:
        bare = _UNGUARDED[cls] = type(f"Unguarded{cls.__name__}", (cls,), {
            "_require_npages": _no_guard, "_require_growable": _no_guard, "_require_pages": _no_guard})
    pa.__class__ = bare
    try:
        yield pa
    finally:
        pa.__class__ = cls


def check_pack_scav_chunk_data(p, gen: int, in_use: int, last_in_use: int, flags: int) -> bool:
    """CheckPackScavChunkData: whether pack then unpack gives back the same scavChunkData."""
    sc0 = ScavChunkData(in_use & 0xFFFF, last_in_use & 0xFFFF, gen & 0xFFFFFFFF, flags & 0xFF)
    sc1 = unpack_scav_chunk_data(p, sc0.pack(p))
    return sc0 == sc1



