"""The scavenger's allocator state (model/mgcscavenge.py): fillAligned and findScavengeCandidate
against their readable twins, scavChunkData packing, and the scavenge index's cursors and mapped window."""

from __future__ import annotations

import pytest
from bitmap_strategies import PLATFORM_IDS, PLATFORMS, bitmaps
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.spec.errors import GoFault, GoThrow
from palloc.model.gomath import MASK64
from palloc.model.mgcscavenge import (
    ScavChunkData,
    ScavengeIndex,
    fill_aligned,
    fill_aligned_slow,
    find_scavenge_candidate,
    find_scavenge_candidate_slow,
    unpack_scav_chunk_data,
)
from palloc.model.mpallocbits import PallocData
from palloc.spec import platform

SETTINGS = settings(max_examples=150, deadline=None)
POW2 = st.sampled_from([1, 2, 4, 8, 16, 32, 64])
# (physHugePageSize, physPageSize) of a few hosts: none, x86 THP, 64 KiB pages, huge == phys.
HOSTS = st.sampled_from([(0, 4096), (2 << 20, 4096), (512 << 10, 65536), (2 << 20, 16384), (4096, 4096)])


@SETTINGS
@given(st.one_of(st.integers(0, MASK64), bitmaps(64)), POW2)
def test_fill_aligned_matches_group_by_group(x, m):
    assert fill_aligned(x, m) == fill_aligned_slow(x, m)


@pytest.mark.parametrize("m", [0, 3, 5, 128])
def test_fill_aligned_throws_on_bad_m(m):
    with pytest.raises(GoThrow, match="bad m value"):
        fill_aligned(1, m)


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_find_scavenge_candidate_matches_definition(p):
    n = p.palloc_chunk_pages
    big = st.sampled_from([0, 1, 3, 64, 100, n, n + 7, p.uintptr_mask])

    @SETTINGS
    @given(bitmaps(n), bitmaps(n), st.integers(0, n - 1), POW2, st.one_of(big, st.integers(0, 2 * n)), HOSTS)
    def check(alloc, scav, search_idx, minimum, max_, host):
        d = PallocData(p, alloc, scav)
        huge, phys = host
        got = find_scavenge_candidate(d, search_idx, minimum, max_, huge, phys)
        assert got == find_scavenge_candidate_slow(d, search_idx, minimum, max_, huge, phys)
        assert got == d.find_scavenge_candidate(search_idx, minimum, max_, huge, phys)

    check()


def test_find_scavenge_candidate_validates_min_and_search_idx():
    d = PallocData(PLATFORMS[0])
    with pytest.raises(GoThrow, match="non-zero power of 2"):
        d.find_scavenge_candidate(0, 3, 1)
    with pytest.raises(GoThrow, match="min too large"):
        d.find_scavenge_candidate(0, 128, 1)
    with pytest.raises(GoFault):
        d.find_scavenge_candidate(512, 1, 1)


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_scav_chunk_data_pack_round_trips_in_range_values(p):
    lim = 1 << p.log_scav_chunk_in_use_max

    @SETTINGS
    @given(st.integers(0, 0xFFFFFFFF), st.integers(0, lim - 1), st.integers(0, lim - 1), st.integers(0, 63))
    def check(gen, in_use, last, flags):
        sc = ScavChunkData(in_use, last, gen, flags)
        assert unpack_scav_chunk_data(p, sc.pack(p)) == sc

    check()


def test_scav_chunk_flags_start_after_in_use_bits():
    amd64, wasm = platform("linux/amd64"), platform("js/wasm", "1.27")
    assert ScavChunkData(flags=1).pack(amd64) == 1 << 26
    assert ScavChunkData(flags=1).pack(wasm) == 1 << 23


def test_scav_chunk_data_alloc_free_roll_generations_and_throw():
    p = PLATFORMS[0]
    sc = ScavChunkData()
    sc.free(p, 0, 0)
    assert not sc.is_empty()
    sc.alloc(p, 500, 1)
    assert (sc.in_use, sc.last_in_use, sc.gen) == (500, 0, 1)
    assert not sc.should_scavenge(p, 1, False) and sc.should_scavenge(p, 1, True)
    sc.free(p, 100, 2)
    assert (sc.in_use, sc.last_in_use, sc.gen) == (400, 500, 2)
    assert not sc.should_scavenge(p, 2, False)  # last generation was dense
    assert sc.should_scavenge(p, 3, False)
    sc.alloc(p, 112, 2)
    assert sc.is_empty()  # full chunk
    with pytest.raises(GoThrow, match="too many pages"):
        sc.alloc(p, 1, 2)
    with pytest.raises(GoThrow, match="below zero"):
        ScavChunkData().free(p, 1, 0)


def _index(p, lo, hi, cls=None):
    from palloc.model.export import WholeArrayScavengeIndex

    s = (cls or WholeArrayScavengeIndex)(p)
    s.init(True)
    s.min, s.max, s.min_heap_idx = lo, hi, lo
    return s


def test_scavenge_index_find_walks_down_and_moves_the_cursor():
    p = PLATFORMS[0]
    base = p.base_chunk_idx
    s = _index(p, base, base + 8)
    cb = p.palloc_chunk_bytes
    chunk_base = lambda ci: (ci * cb + p.arena_base_offset) & p.uintptr_mask  # noqa: E731
    assert s.find(True) == (0, 0)
    s.alloc(base + 1, 10)
    s.free(base + 1, 0, 10)
    s.alloc(base + 5, 3)
    s.free(base + 5, 2, 1)
    assert s.search_addr_force.load() == (chunk_base(base + 5) + 2 * 8192, True)
    assert s.find(True) == (base + 5, 2)
    s.set_empty(base + 5)
    assert s.find(True) == (base + 1, p.palloc_chunk_pages - 1)
    assert s.search_addr_force.load() == (chunk_base(base + 1) + cb - 8192, False)
    s.set_empty(base + 1)
    assert s.find(True) == (0, 0)
    assert s.search_addr_force.load() == (p.min_off_addr, False)
    # The background cursor only moves at a new generation.
    assert s.find(False) == (0, 0)
    s.alloc(base + 3, 1)
    s.free(base + 3, 0, 1)
    assert s.find(False) == (0, 0)
    s.next_gen()  # free_hwm (chunk base+5, page 2) becomes the marked background cursor
    assert s.search_addr_bg.load() == (chunk_base(base + 5) + 2 * 8192, True)
    assert s.find(False) == (base + 3, p.palloc_chunk_pages - 1)
    assert s.search_addr_bg.load() == (chunk_base(base + 3) + cb - 8192, False)


def test_scavenge_index_grow_maps_a_contiguous_window_on_64bit():
    p = platform("linux/amd64")
    s = ScavengeIndex(p, phys_page_size=4096)
    s.init(True)
    cb = p.palloc_chunk_bytes
    ci = p.base_chunk_idx
    addr = lambda c: (c * cb + p.arena_base_offset) & p.uintptr_mask  # noqa: E731
    assert s.grow(addr(ci), addr(ci + 1)) == 4096
    assert (s.min, s.max, s.min_heap_idx) == (ci - ci % 512, ci - ci % 512 + 512, ci)
    assert s.grow(addr(ci + 1), addr(ci + 2)) == 0
    far = ci + 5000
    mapped = s.grow(addr(far), addr(far + 1))
    assert s.max == far - far % 512 + 512 and mapped == (s.max - (ci - ci % 512 + 512)) * 8
    with pytest.raises(GoFault):
        s.alloc(s.max, 1)
    with pytest.raises(GoThrow, match="not aligned"):
        s.grow(addr(ci) + 8192, addr(ci + 1))


def test_scavenge_index_is_static_on_32bit():
    p = platform("linux/386")
    s = ScavengeIndex(p)
    assert s.init(True) == ((1 << 32) // p.palloc_chunk_bytes) * 8
    assert (s.min, s.max) == (1, (1 << 32) // p.palloc_chunk_bytes)
    assert s.grow(p.palloc_chunk_bytes * 3, p.palloc_chunk_bytes * 4) == 0
    assert s.min_heap_idx == 3


def test_broken_fill_aligned_is_caught():
    """A seeded broken variant: filling groups with no bit set must disagree with the readable twin."""
    x = 0x0100A3

    def broken(x, m):
        return fill_aligned(x, m) | 0xFF00

    assert broken(x, 8) != fill_aligned_slow(x, 8) == fill_aligned(x, 8) == 0xFF00FF


@pytest.mark.parametrize("version,flags", [("1.27", 0x0), ("1.21", 0x2)])
def test_forced_scavenge_matches_the_runtime_probe(version, flags):
    """The version probe (goref/versions.py; real runtime, linux/amd64): grow 2 chunks, alloc 3, free 3,
    forced scavenge. Go 1.21 leaves the NoHugePage flag (0x2) in the chunk's index word."""
    from palloc.model.mpagealloc import PageAlloc

    p = platform("linux/amd64", version)
    pa = PageAlloc.make(p, test=True, phys_page_size=4096, phys_huge_page_size=2 << 20)
    base = 0x3000000000
    pa.grow(base, 2 * p.palloc_chunk_bytes)
    assert pa.alloc(3) == (base, 3 * 8192)
    pa.free(base, 3)
    assert pa.scavenge(p.uintptr_mask, None, True) == 24576
    sc = pa.scav.index.peek(p.base_chunk_idx)
    assert (sc.in_use, sc.last_in_use, sc.gen, sc.flags) == (0, 0, 0, flags)
    chunk = pa.chunk_of(p.base_chunk_idx)
    assert chunk.scavenged.words()[0] == MASK64 and chunk.words()[0] == 0


@st.composite
def _index_ops(draw):
    ops = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["alloc", "free", "empty", "next_gen", "find", "find_force"]))
        ops.append((kind, draw(st.integers(0, 11)), draw(st.integers(1, 600))))
    return ops


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_fast_scavenge_index_find_matches_go_loop(p):
    """The fast layer's find (sparse, bisecting the chunks held) against Go's loop over every
    index (ScavengeIndex.find), after random histories of alloc/free/setEmpty/nextGen, in a
    window whose bottom faults."""
    from palloc.model.mgcscavenge_fast import FastScavengeIndex

    base = p.base_chunk_idx

    @settings(max_examples=100, deadline=None)
    @given(_index_ops(), st.booleans(), st.integers(0, 3))
    def check(ops, force, lo_gap):
        s = FastScavengeIndex(p)
        s.init(True)
        s.min, s.max, s.min_heap_idx = base + 2, base + 12, base + 2 - lo_gap  # may scan below min
        n = p.palloc_chunk_pages
        for kind, k, npages in ops:
            ci = base + 2 + k % 10
            try:
                if kind == "alloc":
                    s.alloc(ci, min(npages, n))
                elif kind == "free":
                    s.free(ci, 0, min(npages, s.peek(ci).in_use))
                elif kind == "empty":
                    s.set_empty(ci)
                elif kind == "next_gen":
                    s.next_gen()
                else:
                    s.find(kind == "find_force")
            except (GoThrow, GoFault):
                return
        a, b = s.copy(), s.copy()
        try:
            got = a.find(force)
        except GoFault:
            got = "fault"
        try:
            want = ScavengeIndex.find(b, force)
        except GoFault:
            want = "fault"
        assert got == want
        assert a.search_addr_bg.load() == b.search_addr_bg.load()
        assert a.search_addr_force.load() == b.search_addr_force.load()

    check()


def test_find_comparison_catches_a_find_that_ignores_the_mark(monkeypatch):
    """The broken variant: a fast find that treats a marked cursor as unmarked (StoreMin instead
    of StoreUnmark) leaves the cursor marked, and the comparison with Go's loop sees it."""
    from palloc.model.mgcscavenge_fast import FastScavengeIndex
    from palloc.model.mranges import AtomicOffAddr

    p = PLATFORMS[0]
    base = p.base_chunk_idx
    s = _index(p, base, base + 8, FastScavengeIndex)
    s.min = 0  # NewScavengeIndex's whole array: every index below max is readable
    for ci in (base + 3, base + 5):
        s.alloc(ci, 1)
        s.free(ci, 0, 1)
    s.set_empty(base + 5)
    good = s.copy()
    ScavengeIndex.find(good, True)
    broken = s.copy()
    real_load = AtomicOffAddr.load
    monkeypatch.setattr(AtomicOffAddr, "load", lambda self: (real_load(self)[0], False))
    assert broken.find(True) == (base + 3, p.palloc_chunk_pages - 1)
    monkeypatch.undo()
    assert broken.search_addr_force.load() != good.search_addr_force.load()
    assert good.search_addr_force.load()[1] is False


@pytest.mark.parametrize("phys", [4096, 16384, 65536])
def test_scavenge_index_window_is_the_aligned_hull_of_every_grow(phys):
    """sysGrow (64-bit) keeps [min, max) contiguous: after any order of grows it is the hull of
    the grown chunks rounded out to whole physical pages of index, and the bytes it reports mapped
    add up to exactly that window, each byte once."""
    p = platform("linux/arm64")
    per = phys // 8
    cb = p.palloc_chunk_bytes

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.integers(1, 3000), unique=True, min_size=1, max_size=12))
    def check(starts):
        s = ScavengeIndex(p, phys_page_size=phys)
        s.init(False)
        mapped = 0
        for c in starts:
            ci = c * 7  # disjoint one-chunk ranges, in any order
            mapped += s.grow(ci * cb, (ci + 1) * cb)
        lo, hi = min(starts) * 7, max(starts) * 7 + 1
        assert (s.min, s.max) == (lo - lo % per, -(-hi // per) * per)
        assert mapped == (s.max - s.min) * 8
        assert s.min_heap_idx == lo

    check()
