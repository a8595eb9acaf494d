"""The model's speed-ups against their slow twins (model/mpallocbits.py, model/mpagealloc.py).

Each optimisation `palloc bench` measures keeps the readable transcription next to it; these
properties say the fast version computes exactly what the readable one does, and each has a
seeded broken twin that the same comparison catches.
"""

from __future__ import annotations

import pytest
from bitmap_strategies import PLATFORM_IDS, PLATFORMS, bitmaps
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.model.mpallocbits import PallocBits, geometry, summarize_incremental, summarize_slow_unpacked

SETTINGS = settings(max_examples=150, deadline=None)


def _ops(n):
    # (page, npages, alloc): one run of pages changed, as alloc_range/free do; npages may overrun.
    return st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n), st.booleans()), min_size=1, max_size=12)


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_memoised_summarize_equals_full_summarize_after_every_change(p):
    """summarize() after runs of allocs, frees and arbitrary rewrites equals the bit-by-bit count."""
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), _ops(n), st.lists(bitmaps(n), max_size=2))
    def check(v, ops, rewrites):
        b = PallocBits(p, v)
        assert b.summarize_unpacked() == summarize_slow_unpacked(b)
        for i, k, alloc in ops:
            k = min(k, n - i)
            if alloc:
                b.alloc_range(i, k)
            else:
                b.free(i, k)
            assert b.summarize_unpacked() == summarize_slow_unpacked(b)
        for w in rewrites:  # a write of v that is not one run (tests and mutants do this)
            b.v = w
            assert b.summarize_unpacked() == summarize_slow_unpacked(b)

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_incremental_summarize_answers_exactly_or_not_at_all(p):
    """summarize_incremental(old -> new) is None or the full summary of new, for any two bitmaps."""
    n = p.palloc_chunk_pages
    g = geometry(p)

    @SETTINGS
    @given(bitmaps(n), st.integers(0, n - 1), st.integers(1, n), st.booleans(), bitmaps(n), st.booleans())
    def check(old, i, k, alloc, other, use_other):
        k = min(k, n - i)
        m = ((1 << k) - 1) << i
        new = other if use_other else (old | m if alloc else old & ~m)
        got = summarize_incremental(g, old, summarize_slow_unpacked(PallocBits(p, old)), new)
        assert got is None or got == summarize_slow_unpacked(PallocBits(p, new))

    check()


def test_incremental_summarize_with_a_broken_alloc_rule_is_caught():
    """A seeded broken twin: keeping max after cutting the longest run must disagree somewhere."""
    p = PLATFORMS[0]
    n = p.palloc_chunk_pages
    old = 0b1 << 10  # free runs [0, 10) and [11, n)
    new = old | (1 << 20)  # cuts the longest run

    def broken(old_sum):
        start, most, end = old_sum
        return min(start, 20), most, min(end, n - 21)

    want = summarize_slow_unpacked(PallocBits(p, new))
    assert broken(summarize_slow_unpacked(PallocBits(p, old))) != want
    assert summarize_incremental(geometry(p), old, summarize_slow_unpacked(PallocBits(p, old)), new) in (None, want)
