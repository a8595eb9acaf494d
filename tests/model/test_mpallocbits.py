"""The chunk bitmaps (model/mpallocbits.py): each Go transcription against its definition.

summarize and find transcribe Go's per-word loops; summarize_slow counts bit by bit as
export_test.go SummarizeSlow does, and find_first_fit states the specification. The fast layer
(model/mpallocbits_fast.py: big-int run shrinking over the whole chunk) is held to the same
definitions here and to the transcription step by step in test_fast_paths.py.
"""

from __future__ import annotations

import pytest
from bitmap_strategies import PLATFORM_IDS, PLATFORMS, bitmaps
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.spec.errors import GoFault, UndefinedBehaviour
from palloc.model.mpagealloc import palloc_sum_unpack
from palloc.model.mpallocbits_fast import FastPallocData
from palloc.model.gomath import MASK64
from palloc.model.mpallocbits import (
    PageBits,
    PallocBits,
    PallocData,
    find_bit_range64,
    find_bit_range64_slow,
    find_first_fit,
    popcnt_range_slow,
    summarize_slow_unpacked,
)

SETTINGS = settings(max_examples=150, deadline=None)


def _npages(n):
    return st.one_of(st.sampled_from([1, 2, 3, 63, 64, 65, 127, 128, n - 1, n, n + 1]), st.integers(1, n + 2))


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_summarize_matches_bit_by_bit_count(p):
    @SETTINGS
    @given(bitmaps(p.palloc_chunk_pages))
    def check(v):
        b = PallocBits(p, v)
        assert palloc_sum_unpack(p, b.summarize()) == summarize_slow_unpacked(b)
        assert FastPallocData(p, v).summarize_unpacked() == summarize_slow_unpacked(b)

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_find_matches_go_word_loop_and_first_fit(p):
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), _npages(n), st.integers(0, n + 64))
    def check(v, npages, search_idx):
        b = PallocBits(p, v)
        got = b.find(npages, search_idx)
        assert got == FastPallocData(p, v).find(npages, search_idx)
        assert got[0] == find_first_fit(b, npages, search_idx)

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_popcnt_range_matches_bit_count(p):
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), st.data())
    def check(v, data):
        i = data.draw(st.integers(0, n - 1))
        k = data.draw(st.integers(1, n - i))
        b = PageBits(p, v)
        assert b.popcnt_range(i, k) == popcnt_range_slow(b, i, k)

    check()


@SETTINGS
@given(st.one_of(st.integers(0, MASK64), bitmaps(64)), st.integers(1, 64))
def test_find_bit_range64_matches_bit_scan(c, n):
    assert find_bit_range64(c, n) == find_bit_range64_slow(c, n)


# Each property draws its own range as test_popcnt_range_matches_bit_count does: alike on purpose,
# so that each test reads alone.
@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_set_and_clear_range_touch_exactly_the_range(p):
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), st.data())
    def check(v, data):
        i = data.draw(st.integers(0, n - 1))
        k = data.draw(st.integers(1, n - i))
        b = PageBits(p, v)
        b.set_range(i, k)
        c = PageBits(p, v)
        c.clear_range(i, k)
        for j in range(n):
            inside = i <= j < i + k
            assert b.get(j) == (1 if inside else (v >> j) & 1)
            assert c.get(j) == (0 if inside else (v >> j) & 1)

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_words_are_go_layout(p):
    n = p.palloc_chunk_pages
    b = PageBits(p)
    b.set(0)
    b.set(n - 63)
    b.set(n - 1)
    w = b.words()
    assert len(w) == n // 64
    assert w[0] & 1 and w[-1] == (1 << 63) | 2 | (1 if n == 64 else 0)
    assert PageBits.from_words(p, w) == b
    assert b.block64(n - 63) == w[-1]


def test_palloc_data_alloc_clears_scavenged_bits():
    p = PLATFORMS[0]
    d = PallocData(p)
    d.scavenged.set_all()
    d.alloc_range(10, 20)
    assert d.popcnt_range(10, 20) == 20 and d.popcnt_range(0, 512) == 20
    assert d.scavenged.popcnt_range(10, 20) == 0 and d.scavenged.popcnt_range(0, 512) == 492
    d.free(10, 20)
    assert d.scavenged.popcnt_range(10, 20) == 0  # free leaves scavenged bits alone
    d.alloc_all()
    assert d.scavenged.v == 0 and d.v == (1 << 512) - 1


def test_pages64_and_alloc_pages64_work_on_aligned_blocks():
    p = PLATFORMS[0]
    b = PallocBits(p)
    b.alloc_pages64(130, 0xF0)
    assert b.pages64(128) == 0xF0 and b.pages64(191) == 0xF0 and b.pages64(127) == 0
    assert b.find(4, 128) == (128, 128)
    assert b.find(5, 128) == (136, 128)


def test_zero_length_ranges_are_undefined():
    b = PallocData(PLATFORMS[0])
    for f in (b.alloc_range, b.free, b.set_range, b.clear_range, b.popcnt_range, b.scavenged.set_range):
        with pytest.raises(UndefinedBehaviour):
            f(5, 0)
    with pytest.raises(UndefinedBehaviour):
        b.find(0, 0)
    with pytest.raises(UndefinedBehaviour):
        find_bit_range64(MASK64, 0)


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_out_of_range_indices_fault(p):
    n = p.palloc_chunk_pages
    b = PallocData(p)
    with pytest.raises(GoFault):
        b.alloc_range(n - 3, 4)
    with pytest.raises(GoFault):
        b.get(n)
    with pytest.raises(GoFault):
        b.free1(n)
    with pytest.raises(GoFault):
        b.pages64(n)
    assert b.v == 0  # a faulting call changes nothing


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_find_failure_is_all_ones_uint(p):
    b = PallocBits(p)
    b.alloc_all()
    fail = p.uintptr_mask
    assert b.find(1, 0) == (fail, fail)
    assert b.find(3, 0) == (fail, fail)
    b.free(1, 1)
    assert b.find(2, 0) == (fail, 1)  # the new search index is still reported
    assert b.find(1, p.palloc_chunk_pages) == (fail, fail)  # search index past the chunk


def test_find_examines_the_whole_word_of_search_idx():
    b = PallocBits(PLATFORMS[0])
    assert b.find(1, 63) == (0, 0)
    assert b.find(1, 64) == (64, 64)
    assert b.find(100, 70) == (64, 64)


def test_broken_summarize_is_caught_by_its_definition():
    """A seeded broken variant: a summarize that forgets interior runs must disagree somewhere."""
    p = PLATFORMS[0]

    def broken(b):
        s, _, e = palloc_sum_unpack(p, b.summarize())
        return s, max(s, e), e

    b = PallocBits(p, ((1 << 512) - 1) & ~(((1 << 100) - 1) << 200))
    assert broken(b) != summarize_slow_unpacked(b)
    assert palloc_sum_unpack(p, b.summarize()) == summarize_slow_unpacked(b)


def test_memory_per_chunk_is_small():
    d = PallocData(PLATFORMS[0])
    assert not hasattr(d, "__dict__") and not hasattr(d.scavenged, "__dict__")
    assert d.g is d.scavenged.g is PallocData(PLATFORMS[0]).g


def test_find_bit_range64_claims_a_run_for_multiples_of_64_above_64():
    """Go's shift counts are masked (c >> (p & 63)), so n = 128, 192, ... on an all-ones word
    report a run at bit 0 instead of failing. Callers never pass n > 64 (findSmallN), except
    pageCache.alloc through its export, where a full cache then hands out its 64 pages for 128.
    Verified on the real 1.27.3 runtime (export_test FindBitRange64, overlay probe).
    """
    assert find_bit_range64(MASK64, 65) == 64
    assert find_bit_range64(MASK64, 128) == 0
    assert find_bit_range64(MASK64, 192) == 0
    assert [n for n in range(65, 300) if find_bit_range64(MASK64, n) < 64] == [128, 192, 256]


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_export_diff_palloc_bits_matches_go_bit_loop(p):
    from palloc.model.export import BitRange, diff_palloc_bits

    n = p.palloc_chunk_pages

    def slow(a, b):
        d, base, size = [], 0, 0
        for i in range(n):
            if a.get(i) != b.get(i):
                if size == 0:
                    base = i
                size += 1
            else:
                if size:
                    d.append(BitRange(base, size))
                size = 0
        if size:
            d.append(BitRange(base, size))
        return d

    @settings(max_examples=60, deadline=None)
    @given(bitmaps(n), bitmaps(n))
    def check(x, y):
        a, b = PallocBits(p, x), PallocBits(p, y)
        assert diff_palloc_bits(a, b) == slow(a, b)

    check()
