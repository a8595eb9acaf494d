"""mpagecache_test.go, run on the model through the export mirror."""

from __future__ import annotations

import random

import go_tables
import pytest
from goenv import table_cases, check_page_alloc, check_page_cache

from palloc.model import export as ex
from palloc.model.gomath import MASK64


@pytest.mark.parametrize("env,name,test", table_cases(go_tables.TestPageCacheAlloc))
def test_page_cache_alloc(env, name, test):
    c = test["cache"]
    for i, (npages, base, scav) in enumerate(test["hits"]):
        b, s = c.alloc(npages)
        assert b == base, f"bad alloc base #{i}: got {b:#x}, want {base:#x}"
        assert s == scav, f"bad alloc scav #{i}: got {s}, want {scav}"


def _bits64_to_bit_ranges(bits, base):
    ranges = []
    start = size = 0
    for i in range(64):
        if bits & (1 << i):
            if size == 0:
                start = i + base
            size += 1
        elif size:
            ranges.append((start, size))
            size = 0
    if size:
        ranges.append((start, size))
    return ranges


def test_page_cache_flush(env):
    n = env.names
    base_ci = n["BaseChunkIdx"]

    def run(base, cache, scav):
        b = env.new_page_alloc({base_ci: [(base, 64)]}, {base_ci: []})
        c = ex.new_page_cache(n["PageBase"](base_ci, base), cache, scav)
        c.flush(b)
        assert c.empty(), "pageCache flush did not clear cache"
        want = env.new_page_alloc(
            {base_ci: _bits64_to_bit_ranges(~cache & MASK64, base)},
            {base_ci: _bits64_to_bit_ranges(scav, base)},
        )
        check_page_alloc(want, b)

    run(0, 0, 0)  # empty
    run(0, MASK64, MASK64)  # full
    rng = random.Random(1)
    for _ in range(100):
        base = rng.randrange(n["PallocChunkPages"] // 64) * 64
        cache = rng.getrandbits(64)
        scav = rng.getrandbits(64) & cache
        run(base, cache, scav)


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocAllocToCache))
def test_page_alloc_alloc_to_cache(env, name, v):
    b = env.new_page_alloc(v["beforeAlloc"], v.get("beforeScav"))
    for expect in v["hits"]:
        check_page_cache(b.alloc_to_cache(), expect)
    want = env.new_page_alloc(v["afterAlloc"], v.get("afterScav"))
    check_page_alloc(want, b)


def test_full_cache_alloc_of_128_pages_succeeds_as_in_the_runtime():
    """Finding: findBitRange64(^0, 128) == 0 (masked shift counts), so pageCache.alloc(128) on a
    full cache returns its base and empties it, though it owned only 64 pages. Verified on the real
    1.27.3 runtime through export_test (NewPageCache(...).Alloc(128) -> base, scav 0, cache 0).
    mheap never asks a page cache for more than 15 pages."""
    c = ex.new_page_cache(0x3000000000, MASK64, 0)
    assert c.alloc(128) == (0x3000000000, 0)
    assert c.cache() == 0
    c = ex.new_page_cache(0x3000000000, MASK64, 0)
    assert c.alloc(65) == (0, 0) and c.cache() == MASK64
