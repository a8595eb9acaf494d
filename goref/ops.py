"""The operation vocabulary shared by the model side and the Go helper side of the fuzzer.

Each operation is one verb of the Go 1.27 page allocator (src/runtime/mpagealloc.go,
mpagecache.go, mgcscavenge.go, mpallocbits.go) with exactly the arguments the runtime takes.
An operation is a small frozen value that prints as the Python code recreating it and converts
to and from one JSON object ({"op": "alloc", "npages": 3}), the form saved in failure files.

The vocabulary only names inputs whose behaviour the runtime defines. Which inputs are defined
depends on the allocator's state (freeing pages that are free is undefined), so the
generator (goref/fuzz.py) is responsible for sending only defined ones; `undefined_reason`
here checks what can be checked without state (npages > 0, chunk alignment).
Besides the allocator's verbs, the bitmap-level functions take their bitmaps as arguments, and
the addrRanges verbs act on one set of ranges kept beside the allocator.

Page caches live beside the allocator, as P-local caches do beside mheap_.pages: `slot`
names one of them (0 .. CACHE_SLOTS-1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

CACHE_SLOTS = 4


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    """Base of every operation: a verb name and its arguments."""

    kind: ClassVar[str] = ""
    # Whether the operation can change allocator state (a read-only op needs no state check).
    mutates: ClassVar[bool] = True
    # Whether the operation acts on a page allocator (False: a pure bitmap-level function).
    on_page_alloc: ClassVar[bool] = True

    def to_json(self) -> dict[str, Any]:
        """Returns the operation as one JSON object: {"op": kind, <arg>: <int or bool>, ...}."""
        d = {"op": self.kind}
        for f in dataclasses.fields(self):
            d[f.name] = getattr(self, f.name)
        return d

    def __repr__(self) -> str:
        args = ", ".join(_fmt_arg(f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        return f"{type(self).__name__}({args})"


def _fmt_arg(name: str, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        return f"{name}={v!r}"
    if name in ("base", "size", "nbytes", "bits", "alloc", "scav", "c", "x", "limit", "addr") and v >= 4096:
        return f"{name}={v:#x}"
    return f"{name}={v}"


# --- pageAlloc verbs ------------------------------------------------------------------------
#
# One frozen dataclass per runtime function: a table of operations, its entries alike by design.


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Grow(Op):
    """(*pageAlloc).grow(base, size): adds [base, base+size) to the heap, free and scavenged.

    Defined only for chunk-aligned base and size that overlap nothing already grown.
    """

    base: int
    size: int
    kind: ClassVar[str] = "grow"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Alloc(Op):
    """(*pageAlloc).alloc(npages) -> (addr, scav bytes); addr 0 when out of memory."""

    npages: int
    kind: ClassVar[str] = "alloc"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Free(Op):
    """(*pageAlloc).free(base, npages). Defined only when every page is allocated and grown."""

    base: int
    npages: int
    kind: ClassVar[str] = "free"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AllocToCache(Op):
    """(*pageAlloc).allocToCache() into cache `slot` -> (base, cache, scav). Requires an empty slot."""

    slot: int
    kind: ClassVar[str] = "alloc_to_cache"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class CacheAlloc(Op):
    """(*pageCache).alloc(npages) on cache `slot` -> (addr, scav bytes); (0, 0) when it cannot."""

    slot: int
    npages: int
    kind: ClassVar[str] = "cache_alloc"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class CacheFlush(Op):
    """(*pageCache).flush(p) of cache `slot`: returns its free pages to the allocator."""

    slot: int
    kind: ClassVar[str] = "cache_flush"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Scavenge(Op):
    """(*pageAlloc).scavenge(nbytes, nil, force) -> bytes released."""

    nbytes: int
    force: bool
    kind: ClassVar[str] = "scavenge"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class NextGen(Op):
    """(*scavengeIndex).nextGen(): the start of a GC cycle for the scavenger."""

    kind: ClassVar[str] = "next_gen"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Find(Op):
    """(*pageAlloc).find(npages) -> (addr, candidate searchAddr); changes nothing."""

    npages: int
    kind: ClassVar[str] = "find"
    mutates: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AllocRange(Op):
    """(*pageAlloc).allocRange(base, npages) -> scavenged bytes. Defined only on free, grown pages."""

    base: int
    npages: int
    kind: ClassVar[str] = "alloc_range"


# --- bitmap-level functions (mpallocbits.go, mgcscavenge.go), pure ------------------------


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class PureOp(Op):
    """Base of the pure functions: on values, never on a page allocator, whose state they leave alone."""

    mutates: ClassVar[bool] = False
    on_page_alloc: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class BitsFind(PureOp):
    """(*pallocBits).find(npages, searchIdx) on a chunk bitmap `bits` -> (index, new searchIdx)."""

    bits: int
    npages: int
    search_idx: int
    kind: ClassVar[str] = "bits_find"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class BitsSummarize(PureOp):
    """(*pallocBits).summarize() -> packed pallocSum."""

    bits: int
    kind: ClassVar[str] = "bits_summarize"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class FindBitRange64(PureOp):
    """findBitRange64(c, n) -> index of the first run of n one bits, >= 64 if none."""

    c: int
    n: int
    kind: ClassVar[str] = "find_bit_range64"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class FindScavengeCandidate(PureOp):
    """(*pallocData).findScavengeCandidate(searchIdx, minimum, max) -> (start, size)."""

    alloc: int
    scav: int
    search_idx: int
    minimum: int
    max: int
    kind: ClassVar[str] = "find_scavenge_candidate"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class FillAligned(PureOp):
    """fillAligned(x, m) -> x with every m-aligned group holding a one bit filled with ones."""

    x: int
    m: int
    kind: ClassVar[str] = "fill_aligned"


# --- addrRanges (mranges.go), on one set beside the allocator -------------------------------
#
# A heap that uses them starts one set with AddrRangesNew; the other verbs act on the most
# recent set. Every result ends with the set after the operation: totalBytes, the number of
# ranges, then each range's base and limit (so the whole set is compared after every verb).


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesOp(PureOp):
    """Base of the addrRanges verbs: they act on the set, never on a page allocator, whose
    state they leave alone (the set itself is compared through every verb's result)."""


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesNew(AddrRangesOp):
    """A fresh, empty addrRanges (NewAddrRanges); later addr_ranges verbs act on it."""

    kind: ClassVar[str] = "addr_ranges_new"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesAdd(AddrRangesOp):
    """(*addrRanges).add(makeAddrRange(base, limit)). Defined only for a non-empty range
    overlapping nothing in the set, base and limit on the same side of arenaBaseOffset."""

    base: int
    limit: int
    kind: ClassVar[str] = "addr_ranges_add"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesFindSucc(AddrRangesOp):
    """(*addrRanges).findSucc(addr) -> the index of the first range whose base is above addr."""

    addr: int
    kind: ClassVar[str] = "addr_ranges_find_succ"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesFindAddrGreaterEqual(AddrRangesOp):
    """(*addrRanges).findAddrGreaterEqual(addr) -> (addr', found). Defined on a non-empty set."""

    addr: int
    kind: ClassVar[str] = "addr_ranges_find_addr_greater_equal"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesContains(AddrRangesOp):
    """(*addrRanges).contains(addr) -> bool."""

    addr: int
    kind: ClassVar[str] = "addr_ranges_contains"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesRemoveLast(AddrRangesOp):
    """(*addrRanges).removeLast(nbytes) -> the removed [base, limit)."""

    nbytes: int
    kind: ClassVar[str] = "addr_ranges_remove_last"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesRemoveGreaterEqual(AddrRangesOp):
    """(*addrRanges).removeGreaterEqual(addr)."""

    addr: int
    kind: ClassVar[str] = "addr_ranges_remove_greater_equal"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class AddrRangesClone(AddrRangesOp):
    """(*addrRanges).cloneInto(b) of the set into a fresh empty one, which later verbs act on."""

    kind: ClassVar[str] = "addr_ranges_clone"


ADDR_RANGES_OPS = (
    AddrRangesNew, AddrRangesAdd, AddrRangesFindSucc, AddrRangesFindAddrGreaterEqual, AddrRangesContains,
    AddrRangesRemoveLast, AddrRangesRemoveGreaterEqual, AddrRangesClone,
)


OP_TYPES: dict[str, type[Op]] = {
    t.kind: t
    for t in (
        Grow, Alloc, Free, AllocToCache, CacheAlloc, CacheFlush, Scavenge, NextGen, Find, AllocRange,
        BitsFind, BitsSummarize, FindBitRange64, FindScavengeCandidate, FillAligned, *ADDR_RANGES_OPS,
    )
}


def short(v: Any, n: int = 40) -> str:
    """Returns repr(v), cut to n characters: a message quoting bad input stays one readable line."""
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


class OpFormatError(ValueError):
    """A JSON object that is not an operation of this vocabulary."""


# Arguments that are a chunk's bitmap (pallocBits, pallocData's two), and those that are uint64 in
# Go whatever the GOARCH; every other integer argument is a uintptr (or a uint of the same width).
_BITMAP_ARGS = ("bits", "alloc", "scav")
_UINT64_ARGS = ("c", "x")


def from_json(d: Any, p=None) -> Op:
    """Returns the operation a JSON object describes; raises OpFormatError if it describes none.

    With a platform p, every integer must also fit its Go type there (a uintptr of p's width, a
    bitmap of one chunk, a uint64), as a case sent to the helper must.
    """
    if not isinstance(d, dict) or "op" not in d:
        raise OpFormatError(f"an operation must be an object with an 'op' key, not {short(d)}")
    t = OP_TYPES.get(d["op"])
    if t is None:
        raise OpFormatError(f"unknown operation {short(d['op'])}; known: {', '.join(OP_TYPES)}")
    names = [f.name for f in dataclasses.fields(t)]
    extra = set(d) - set(names) - {"op"}
    missing = [n for n in names if n not in d]
    if extra or missing:
        raise OpFormatError(f"operation {d['op']!r} takes {names}; got {sorted(set(d) - {'op'})}")
    args = {}
    for f in dataclasses.fields(t):
        v = d[f.name]
        want_bool = f.type in ("bool", bool)
        if want_bool and not isinstance(v, bool) or not want_bool and (isinstance(v, bool) or not isinstance(v, int)):
            raise OpFormatError(f"operation {d['op']!r}: {f.name} must be {'a bool' if want_bool else 'an int'}, not {v!r}")
        if not want_bool and v < 0:
            raise OpFormatError(f"operation {d['op']!r}: {f.name} must not be negative")
        if p is not None and not want_bool and v > _arg_max(f.name, p):
            raise OpFormatError(f"operation {d['op']!r}: {f.name} = {v:#x} does not fit {_arg_type(f.name, p)}")
        args[f.name] = v
    return t(**args)


def _arg_max(name: str, p) -> int:
    if name in _UINT64_ARGS:
        return (1 << 64) - 1
    if name in _BITMAP_ARGS:
        return (1 << p.palloc_chunk_pages) - 1
    return p.uintptr_mask


def _arg_type(name: str, p) -> str:
    if name in _UINT64_ARGS:
        return "a uint64"
    if name in _BITMAP_ARGS:
        return f"a bitmap of one chunk ({p.palloc_chunk_pages} pages)"
    return f"a {p.ptr_bits}-bit uintptr"


def undefined_reason(op: Op, p) -> str | None:
    """Returns why an operation is undefined on platform p without looking at state, or None.

    The runtime defines no behaviour for npages == 0 (setRange and find misbehave), for grow
    of an unaligned or empty range, or for cache slots that do not exist.
    """
    for name in ("npages", "n"):
        if hasattr(op, name) and getattr(op, name) == 0:
            return f"{op.kind} with {name} == 0 is undefined"
    if isinstance(op, Grow):
        if op.size == 0 or op.base % p.palloc_chunk_bytes or op.size % p.palloc_chunk_bytes:
            return "grow needs a non-empty chunk-aligned range"
        if op.base + op.size > p.uintptr_mask:
            return "grow must not reach the top of the address space (golang/go#35954)"
    if hasattr(op, "slot") and not 0 <= op.slot < CACHE_SLOTS:
        return f"cache slot {op.slot} does not exist (0..{CACHE_SLOTS - 1})"
    if isinstance(op, FindScavengeCandidate) and (op.minimum & (op.minimum - 1) or not 1 <= op.minimum <= 64):
        return "findScavengeCandidate throws unless minimum is a power of two in [1, 64]"
    if isinstance(op, FillAligned) and op.m not in (1, 2, 4, 8, 16, 32, 64):
        return "fillAligned throws unless m is a power of two in [1, 64]"
    if isinstance(op, (BitsFind, FindScavengeCandidate)) and op.search_idx >= p.palloc_chunk_pages:
        return "searchIdx must lie inside the chunk"
    if isinstance(op, FindBitRange64) and op.n > 64:
        return "findBitRange64 needs n in [1, 64]"
    if isinstance(op, AddrRangesAdd) and op.limit <= op.base:
        return "addrRanges.add throws on an empty range (and makeAddrRange on limit below base)"
    return None
