"""mpallocbits_test.go, run on the model through the export mirror (same cases, same expectations)."""

from __future__ import annotations

import random

import go_tables
import pytest
from goenv import table_cases, check_palloc_bits, invert_palloc_bits

from palloc.model import export as ex
from palloc.model.gomath import MASK64


def test_palloc_bits_alloc_range(env):
    """TestPallocBitsAllocRange (its subtests, with `want` built word by word as in Go)."""
    n = env.names["PallocChunkPages"]
    words = n // 64

    def want_of(ws):
        w = [0] * words
        for k, x in ws.items():
            w[k] = x
        return ex.PallocBits.from_words(env.p, w)

    cases = {"OneLow": (0, 1, {0: 0x1}), "OneHigh": (n - 1, 1, {words - 1: 1 << 63})}
    if n >= 512:
        cases["Inner"] = (129, 5, {2: 0x3E})
        cases["Aligned"] = (128, 128, {2: MASK64, 3: MASK64})
        cases["Begin"] = (0, 321, {0: MASK64, 1: MASK64, 2: MASK64, 3: MASK64, 4: MASK64, 5: 0x1})
        cases["End"] = (n - (64 * 3 + 1), 64 * 3 + 1, {words - 1: MASK64, words - 2: MASK64, words - 3: MASK64, words - 4: 1 << 63})
    cases["All"] = (0, n, {k: MASK64 for k in range(words)})
    for name, (i, k, ws) in cases.items():
        assert not check_palloc_bits(env.make_palloc_bits([(i, k)]), want_of(ws)), name


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestMallocBitsPopcntRange))
def test_malloc_bits_popcnt_range(env, name, v):
    b = env.make_palloc_bits(v.get("init", []))
    for i, n, want in v["tests"]:
        assert b.popcnt_range(i, n) == want, f"bad popcnt (i={i}, n={n})"


def test_palloc_bits_summarize_random(env):
    """TestPallocBitsSummarizeRandom (seeded; Go uses math/rand's global source)."""
    rng = random.Random(1)
    b = ex.new_palloc_bits(env.p)
    for _ in range(1000):
        b.v = rng.getrandbits(env.p.palloc_chunk_pages)
        assert b.summarize() == ex.summarize_slow(b)


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPallocBitsSummarize))
def test_palloc_bits_summarize(env, name, v):
    b = env.make_palloc_bits(v["free"])
    invert_palloc_bits(b)
    for h in v["hits"]:
        p = env.p
        got = b.summarize()
        assert (ex.palloc_sum_start(p, got), ex.palloc_sum_max(p, got), ex.palloc_sum_end(p, got)) == (
            ex.palloc_sum_start(p, h),
            ex.palloc_sum_max(p, h),
            ex.palloc_sum_end(p, h),
        )


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPallocBitsAlloc))
def test_palloc_bits_alloc(env, name, v):
    b = env.make_palloc_bits(v.get("before", []))
    fail = env.p.uintptr_mask
    for it, i in enumerate(v["hits"]):
        a, _ = b.find(v["npages"], 0)
        assert a == i, f"find #{it + 1} picked wrong index: want {i}, got {a}"
        if i != fail:
            b.alloc_range(a, v["npages"])
    assert not check_palloc_bits(b, env.make_palloc_bits(v["after"]))


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPallocBitsFree))
def test_palloc_bits_free(env, name, v):
    b = env.make_palloc_bits(v.get("beforeInv", []))
    invert_palloc_bits(b)
    for i in v["frees"]:
        b.free(i, v["npages"])
    want = env.make_palloc_bits(v["afterInv"])
    invert_palloc_bits(want)
    assert not check_palloc_bits(b, want)


def test_find_bit_range64():
    fail = None

    def check(x, n, result):
        i = ex.find_bit_range64(x, n)
        if result is fail:
            assert i >= 64, f"case ({x:016x}, {n}): got {i}, want failure"
        else:
            assert i == result, f"case ({x:016x}, {n}): got {i}, want {result}"

    for i in range(1, 65):
        check(MASK64, i, 0)
    for i in range(1, 65):
        check(0, i, fail)
    check(0x8000000000000000, 1, 63)
    check(0xC000010001010000, 2, 62)
    check(0xC000010001030000, 2, 16)
    check(0xE000030001030000, 3, 61)
    check(0xE000030001070000, 3, 16)
    check(0xFFFF03FF01070000, 16, 48)
    check(0xFFFF03FF0107FFFF, 16, 0)
    check(0x0FFF03FF01079FFF, 16, fail)
