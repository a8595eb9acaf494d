"""Address ranges (model/mranges.py): findSucc against a linear scan, add/remove against interval sets,
offset order and uintptr wraparound on a platform with and without arenaBaseOffset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.spec.errors import GoThrow
from palloc.model.mranges import (
    AddrRange,
    AddrRanges,
    AtomicOffAddr,
    OffAddr,
    find_succ_slow,
    make_addr_range,
)
from palloc.spec import platform

SETTINGS = settings(max_examples=120, deadline=None)
PLATFORMS = [platform("linux/amd64"), platform("linux/arm64"), platform("linux/386")]
IDS = ["amd64", "arm64", "386"]
UNIT = 1 << 20


def _heap_base(p):
    # A base inside the heap's offset space: on amd64 both below and above arenaBaseOffset work.
    return p.arena_base_offset + 0x100 * UNIT if p.ptr_size == 8 else 0x1000_0000


@st.composite
def disjoint_slots(draw):
    """Draws distinct slot indices (each slot one UNIT) in a random insertion order."""
    slots = draw(st.lists(st.integers(0, 60), unique=True, min_size=1, max_size=40))
    return slots


def _intervals(slots):
    out = []
    for s in sorted(slots):
        if out and out[-1][1] == s:
            out[-1][1] = s + 1
        else:
            out.append([s, s + 1])
    return out


@pytest.mark.parametrize("p", PLATFORMS, ids=IDS)
def test_add_keeps_ranges_sorted_coalesced_and_counted(p):
    base = _heap_base(p)

    @SETTINGS
    @given(disjoint_slots())
    def check(slots):
        a = AddrRanges(p)
        for s in slots:
            a.add(make_addr_range(p, base + s * UNIT, base + (s + 1) * UNIT))
        want = [((base + lo * UNIT) & p.uintptr_mask, (base + hi * UNIT) & p.uintptr_mask) for lo, hi in _intervals(slots)]
        assert [(r.base.addr(), r.limit.addr()) for r in a.ranges] == want
        assert a.total_bytes == len(slots) * UNIT

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=IDS)
def test_find_succ_matches_linear_scan(p):
    base = _heap_base(p)

    @SETTINGS
    @given(st.lists(st.integers(0, 200), unique=True, max_size=60), st.integers(-2, 210), st.integers(0, UNIT - 1))
    def check(slots, q, off):
        a = AddrRanges(p)
        for s in slots:
            if s % 3 != 1:  # leave gaps so ranges stay separate
                a.add(make_addr_range(p, base + s * UNIT, base + (s + 1) * UNIT))
        addr = (base + q * UNIT + off) & p.uintptr_mask
        assert a.find_succ(addr) == find_succ_slow(a, addr)
        covered = any(r.contains(addr) for r in a.ranges)
        assert a.contains(addr) == covered

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=IDS)
def test_remove_greater_equal_matches_interval_cut(p):
    base = _heap_base(p)

    @SETTINGS
    @given(disjoint_slots(), st.integers(-1, 62), st.integers(0, UNIT - 1))
    def check(slots, q, off):
        a = AddrRanges(p)
        for s in slots:
            a.add(make_addr_range(p, base + s * UNIT, base + (s + 1) * UNIT))
        cut = base + q * UNIT + off
        a.remove_greater_equal(cut & p.uintptr_mask)
        want = []
        for lo, hi in _intervals(slots):
            lo_a, hi_a = base + lo * UNIT, min(base + hi * UNIT, cut)
            if lo_a < hi_a:
                want.append((lo_a & p.uintptr_mask, hi_a & p.uintptr_mask))
        assert [(r.base.addr(), r.limit.addr()) for r in a.ranges] == want
        assert a.total_bytes == sum(h - l for l, h in want)

    check()


def test_offset_order_puts_high_half_first_on_amd64():
    p = platform("linux/amd64")
    hi = OffAddr(p, 0xFFFF_8000_0000_1000)
    lo = OffAddr(p, 0x0000_0000_0000_1000)
    assert hi.less_than(lo) and not lo.less_than(hi)
    assert OffAddr(p, p.min_off_addr).less_equal(hi)
    q = platform("linux/arm64")
    assert OffAddr(q, 0x1000).less_than(OffAddr(q, 0xFFFF_8000_0000_1000))


def test_make_addr_range_throws_across_segments():
    p = platform("linux/amd64")
    with pytest.raises(GoThrow, match="not in the same memory segment"):
        make_addr_range(p, 0x1000, 0xFFFF_8000_0000_1000)


def test_subtract_throws_bad_prune_on_strict_inside():
    p = platform("linux/amd64")
    a = AddrRange(p, 0x1000, 0x5000)
    with pytest.raises(GoThrow, match="bad prune"):
        a.subtract(AddrRange(p, 0x2000, 0x3000))
    assert a.subtract(AddrRange(p, 0x0, 0x2000)) == AddrRange(p, 0x2000, 0x5000)
    assert a.subtract(AddrRange(p, 0x4000, 0x9000)) == AddrRange(p, 0x1000, 0x4000)
    assert a.subtract(AddrRange(p, 0x0, 0x9000)) == AddrRange(p)


def test_add_throws_on_empty_range():
    p = platform("linux/386")
    with pytest.raises(GoThrow, match="zero-sized"):
        AddrRanges(p).add(AddrRange(p, 0x3000, 0x3000))


def test_uintptr_wraps_on_32bit():
    p = platform("linux/386")
    assert OffAddr(p, 0xFFFF_F000).add(0x2000).addr() == 0x1000
    assert OffAddr(p, 0x1000).sub(0x2000).addr() == 0xFFFF_F000
    assert AddrRange(p, 0x2000, 0x1000).size() == 0


def test_remove_last_takes_top_bytes_or_whole_range():
    p = platform("linux/amd64")
    a = AddrRanges(p)
    a.add(make_addr_range(p, 0x10000, 0x20000))
    a.add(make_addr_range(p, 0x40000, 0x50000))
    r = a.remove_last(0x4000)
    assert (r.base.addr(), r.limit.addr()) == (0x4C000, 0x50000) and a.total_bytes == 0x1C000
    r = a.remove_last(0x100000)
    assert (r.base.addr(), r.limit.addr()) == (0x40000, 0x4C000) and len(a.ranges) == 1
    b = AddrRanges(p)
    a.clone_into(b)
    b.ranges[0].limit = OffAddr(p, 0x30000)
    assert a.ranges[0].limit.addr() == 0x20000  # clone is deep


def test_atomic_off_addr_marks_and_clears_as_go():
    p = platform("linux/amd64")
    c = AtomicOffAddr(p)
    c.clear()
    assert c.load() == (p.min_off_addr, False)
    c.store_min(0xC000_0000)  # larger than the cleared value: no store
    assert c.load() == (p.min_off_addr, False)
    c.store_marked(0xC000_2000)
    assert c.load() == (0xC000_2000, True)
    c.clear()  # a marked value is left alone
    c.store_min(0xC000_0000)  # a marked value is always smaller
    assert c.load() == (0xC000_2000, True)
    c.store_unmark(0xC000_1000, 0xC000_0000)  # wrong marked value: no store
    assert c.load() == (0xC000_2000, True)
    c.store_unmark(0xC000_2000, 0xC000_1000)
    assert c.load() == (0xC000_1000, False)
    c.store_min(0xC000_0000)
    assert c.load() == (0xC000_0000, False)
    c.clear()
    assert c.load() == (p.min_off_addr, False)


def test_broken_find_succ_is_caught():
    """A seeded broken variant: a findSucc returning the first base >= addr disagrees on a base."""
    p = platform("linux/arm64")
    a = AddrRanges(p)
    for s in range(0, 40, 2):
        a.add(make_addr_range(p, s * UNIT, (s + 1) * UNIT))

    def broken(addr):
        return next((i for i, r in enumerate(a.ranges) if r.base.addr() >= addr), len(a.ranges))

    assert broken(4 * UNIT) != find_succ_slow(a, 4 * UNIT) == a.find_succ(4 * UNIT)


# Builds its set as test_find_succ_matches_linear_scan does (alike on purpose: each test reads alone).
@pytest.mark.parametrize("p", PLATFORMS, ids=IDS)
def test_find_addr_greater_equal_is_the_smallest_member_at_or_above(p):
    from palloc.spec.errors import GoFault

    base = _heap_base(p)

    @SETTINGS
    @given(st.lists(st.integers(0, 60), unique=True, max_size=30), st.integers(-2, 62), st.integers(0, UNIT - 1))
    def check(slots, q, off):
        a = AddrRanges(p)
        for s in slots:
            a.add(make_addr_range(p, base + s * UNIT, base + (s + 1) * UNIT))
        addr = (base + q * UNIT + off) & p.uintptr_mask
        if not slots:
            with pytest.raises(GoFault):
                a.find_addr_greater_equal(addr)
            return
        o = OffAddr(p, addr)
        want = (0, False)
        for r in a.ranges:  # sorted: the first range ending above addr holds the answer
            if o.less_than(r.limit):
                want = (addr, True) if r.base.less_equal(o) else (r.base.addr(), True)
                break
        assert a.find_addr_greater_equal(addr) == want

    check()
