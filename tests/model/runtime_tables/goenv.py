"""The runtime's exported test names for one platform, and the Go tests' shared check helpers.

`go_env(p, ...)` fills the names the transcribed tables (go_tables.py) use, from
palloc.model.export; check_palloc_bits, check_page_alloc and check_page_cache port the helpers of
mpallocbits_test.go, mpagealloc_test.go and mpagecache_test.go, reporting differences as bit
ranges like the Go helpers do.
"""

from __future__ import annotations

import pytest

from palloc.model import export as ex
from palloc.model.gomath import MASK64
from palloc.spec import platform

# The platforms the runtime's tables run on in the model: the host the Go tests usually run on,
# a 32-bit one (mpagealloc_32bit.go) and wasm with its 64-page chunks (Go >= 1.26).
PLATFORMS = [
    (platform("linux/amd64"), 4096, 2 << 20),
    (platform("linux/386"), 4096, 2 << 20),
    (platform("js/wasm", "1.27"), 65536, 0),
]
IDS = ["linux-amd64", "linux-386", "wasm-1.27"]


def go_env(p, phys_page_size: int, phys_huge_page_size: int) -> dict:
    """Returns the package-runtime names the tables use, for platform p and the given host."""
    umask = p.uintptr_mask
    return {
        "PallocChunkPages": p.palloc_chunk_pages,
        "PageSize": ex.PAGE_SIZE,
        "PageAlloc64Bit": ex.page_alloc64_bit(p),
        "PallocSumBytes": ex.PALLOC_SUM_BYTES,
        "PageCachePages": ex.PAGE_CACHE_PAGES,
        "BaseChunkIdx": ex.base_chunk_idx(p),
        "PhysPageSize": phys_page_size,
        "PhysHugePageSize": phys_huge_page_size,
        "goos_IsIos": 1 if p.name.startswith("ios/") else 0,
        "PageBase": lambda c, i: ex.page_base(p, c, i),
        "MakeAddrRange": lambda b, l: ex.make_addr_range(p, b, l),
        "NewPageCache": ex.new_page_cache,
        "PackPallocSum": lambda s, m, e: ex.pack_palloc_sum(p, s, m, e),
        "ChunkIdx": lambda x: x & umask,
        "uint": lambda x: x & umask,
        "uintptr": lambda x: x & umask,
        "uint64": lambda x: x & MASK64,
        "BNOT_uint": lambda x: ~x & umask,
        "BNOT_uintptr": lambda x: ~x & umask,
        "BNOT_uint64": lambda x: ~x & MASK64,
        "append": lambda s, *xs: list(s or []) + list(xs),
        "fmt_Sprintf": lambda f, *a: f % a,
    }


class Env:
    """A platform with its host page sizes, and everything a driver needs from it."""

    def __init__(self, p, phys_page_size, phys_huge_page_size):
        self.p = p
        self.phys_page_size = phys_page_size
        self.phys_huge_page_size = phys_huge_page_size
        self.names = go_env(p, phys_page_size, phys_huge_page_size)

    def new_page_alloc(self, chunks, scav):
        return ex.new_page_alloc(
            chunks, scav, p=self.p, phys_page_size=self.phys_page_size, phys_huge_page_size=self.phys_huge_page_size
        )

    def make_palloc_bits(self, ranges):
        """makePallocBits: a bitmap with the ranges set."""
        b = ex.new_palloc_bits(self.p)
        for i, n in ranges:
            b.alloc_range(i, n)
        return b

    def make_palloc_data(self, alloc, scavenged):
        """makePallocData: alloc and scavenged ranges set (N == 0 skipped)."""
        d = ex.PallocData(ex.new_palloc_data(self.p), self.phys_page_size, self.phys_huge_page_size)
        for i, n in alloc or []:
            if n:
                d.alloc_range(i, n)
        for i, n in scavenged or []:
            if n:
                d.scavenged_set_range(i, n)
        return d


def invert_palloc_bits(b) -> None:
    """invertPallocBits."""
    b.v = ~b.v & b.g.full


def check_palloc_bits(got, want) -> list[str]:
    """checkPallocBits: the differing bit ranges, each with both sides as 0/1 strings."""
    out = []
    for r in ex.diff_palloc_bits(got, want):
        out.append(
            f"@ bit index {r.i}: got {ex.stringify_palloc_bits(got, r)} want {ex.stringify_palloc_bits(want, r)}"
        )
    return out


def _l1_of(p, ci: int) -> int:
    return ci >> p.palloc_chunks_l1_shift if p.palloc_chunks_l1_bits else 0


def _touched_chunks(pa, lo: int, hi: int) -> set[int]:
    """Chunk indices in [lo, hi) whose pallocData the model has materialised (others are zero)."""
    p = pa.p
    shift = p.palloc_chunks_l1_shift if p.palloc_chunks_l1_bits else p.ptr_bits
    out = set()
    for l1, block in pa.chunks.items():
        for l2 in block.keys():
            ci = (l1 << shift) | l2
            if lo <= ci < hi:
                out.add(ci)
    return out


def check_page_alloc(want, got) -> None:
    """checkPageAlloc: equal bounds, and equal alloc and scavenged bitmaps in every chunk.

    Go walks every chunk in [start, end); chunks the model never materialised are zero on both
    sides, so only materialised ones (and the nilness of whole L2 blocks) need comparing.
    """
    ws, we = want.bounds()
    gs, ge = got.bounds()
    assert gs == ws, f"start values not equal: got {gs}, want {ws}"
    assert ge == we, f"end values not equal: got {ge}, want {we}"
    p = got.p
    if gs < ge:
        l1s = range(_l1_of(p, gs), _l1_of(p, ge - 1) + 1)
        gl = {l1 for l1 in l1s if l1 in got.pa.chunks}
        wl = {l1 for l1 in l1s if l1 in want.pa.chunks}
        assert gl == wl, f"chunk nilness mismatch in L1 blocks {sorted(gl ^ wl)}"
    errors = []
    for i in sorted(_touched_chunks(got.pa, gs, ge) | _touched_chunks(want.pa, gs, ge)):
        gb, wb = got.palloc_data(i), want.palloc_data(i)
        for what, g, w in (("mallocBits", gb.palloc_bits(), wb.palloc_bits()), ("scavenged", gb.scavenged(), wb.scavenged())):
            for line in check_palloc_bits(g, w):
                errors.append(f"in chunk {i:#x} ({what}) {line}")
    assert not errors, "\n".join(errors)


def check_page_cache(got, want) -> None:
    """checkPageCache."""
    assert got.base() == want.base(), f"bad pageCache base: got {got.base():#x}, want {want.base():#x}"
    assert got.cache() == want.cache(), f"bad pageCache bits: got {got.cache():016x}, want {want.cache():016x}"
    assert got.scav() == want.scav(), f"bad pageCache scav: got {got.scav():016x}, want {want.scav():016x}"


def table_cases(table_fn, key="name"):
    """Returns pytest params (env, name, case) for every platform and every case of a Go table.

    Dict tables are keyed by case name; list tables carry the name in the `key` field.
    """
    out = []
    for env, pid in zip(ENVS, IDS):
        tests = table_fn(env.names)
        items = tests.items() if isinstance(tests, dict) else ((t[key], t) for t in tests)
        for name, case in items:
            out.append(pytest.param(env, name, case, id=f"{pid}/{name}"))
    return out


ENVS = [Env(p, phys, huge) for p, phys, huge in PLATFORMS]
