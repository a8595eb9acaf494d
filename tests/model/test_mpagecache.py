"""The page cache (model/mpagecache.py): pageCache.alloc/allocN/flush and pageAlloc.allocToCache.

allocN is checked against a readable twin (the lowest run of n set bits, bit by bit); allocToCache
and flush against the runtime's documented effects on bitmaps, scavenged bits and searchAddr,
including searchAddr = c.base + 63*pageSize (golang/go#38605 set it one page further).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.spec.errors import UndefinedBehaviour
from palloc.model.gomath import MASK64
from palloc.model.mpagealloc import PageAlloc, chunk_base, max_search_addr
from palloc.model.mpagecache import PageCache
from palloc.model.mranges import OffAddr
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

AMD64 = platform("linux/amd64")
WASM = platform("js/wasm", "1.26")
BASE = 0x3000000000
SETTINGS = settings(max_examples=200, deadline=None)


def fresh(p, nchunks=1):
    pa = PageAlloc.make(p, test=True)
    pa.grow(chunk_base(p, p.base_chunk_idx), nchunks * p.palloc_chunk_bytes)
    return pa


def alloc_n_slow(cache: int, scav: int, npages: int):
    """(index, scav pages, new cache, new scav) for the lowest run of npages set bits, or None."""
    for i in range(64 - npages + 1):
        mask = ((1 << npages) - 1) << i
        if cache & mask == mask:
            return i, bin(scav & mask).count("1"), cache & ~mask, scav & ~mask
    return None


@SETTINGS
@given(st.integers(0, MASK64), st.integers(0, MASK64), st.integers(1, 64))
def test_alloc_matches_lowest_run_readable_twin(cache, scav, npages):
    c = PageCache(BASE, cache, scav)
    got = c.alloc(npages)
    want = alloc_n_slow(cache, scav, npages)
    if want is None:
        assert got == (0, 0) and (c.cache, c.scav) == (cache, scav)
    else:
        i, nscav, new_cache, new_scav = want
        assert got == (BASE + i * PAGE_SIZE, nscav * PAGE_SIZE)
        assert (c.cache, c.scav) == (new_cache, new_scav)


def test_alloc_n_broken_variant_is_caught():
    # A broken variant that takes the highest run instead of the lowest disagrees with alloc.
    c = PageCache(BASE, 0b1111 | 0b1111 << 10, 0)
    assert c.alloc(4) == (BASE, 0)
    assert alloc_n_slow(0b1111 | 0b1111 << 10, 0, 4)[0] == 0 != 10


def test_empty_cache_allocates_nothing_and_zero_pages_is_undefined():
    c = PageCache()
    assert c.empty() and c.alloc(1) == (0, 0)
    with pytest.raises(UndefinedBehaviour):
        PageCache(BASE, 1, 0).alloc(0)


def test_alloc_to_cache_takes_the_first_block_and_leaves_search_addr_on_its_last_page():
    p = AMD64
    pa = fresh(p)
    pa.alloc(3)
    c = pa.alloc_to_cache()
    # The cache has every free page of the block: all but the 3 allocated ones, all scavenged.
    assert c == PageCache(BASE, MASK64 & ~0b111, MASK64 & ~0b111)
    assert pa.search_addr.addr() == BASE + 63 * PAGE_SIZE
    chunk = pa.chunk_of(p.base_chunk_idx)
    assert chunk.pages64(0) == MASK64 and chunk.scavenged.block64(0) == 0
    assert pa.scav.index.peek(p.base_chunk_idx).in_use == 64
    # The next cache is the next block: the fast path searches from page 63.
    c2 = pa.alloc_to_cache()
    assert c2.base == BASE + 64 * PAGE_SIZE and pa.search_addr.addr() == BASE + 127 * PAGE_SIZE


def test_alloc_to_cache_slow_path_finds_the_next_chunk():
    p = AMD64
    pa = fresh(p, 2)
    pa.alloc(p.palloc_chunk_pages + 5)  # chunk 0 full: its leaf summary is 0
    pa.search_addr = OffAddr(p, BASE)
    c = pa.alloc_to_cache()
    assert c.base == BASE + p.palloc_chunk_bytes
    assert c.cache == MASK64 & ~0b11111
    assert pa.search_addr.addr() == c.base + 63 * PAGE_SIZE


def test_alloc_to_cache_on_a_full_heap_is_empty_and_exhausts_search_addr():
    p = AMD64
    pa = fresh(p)
    pa.alloc(p.palloc_chunk_pages)
    pa.search_addr = OffAddr(p, BASE)
    assert pa.alloc_to_cache().empty()
    assert pa.search_addr.equal(max_search_addr(p))
    assert pa.alloc_to_cache().empty()  # now through chunkIndex(searchAddr) >= end


def test_flush_returns_free_pages_with_their_scavenged_bits_and_lowers_search_addr():
    p = AMD64
    pa = fresh(p)
    c = pa.alloc_to_cache()
    assert c.alloc(2) == (BASE, 2 * PAGE_SIZE)
    c.flush(pa)
    assert c.empty() and c == PageCache()
    chunk = pa.chunk_of(p.base_chunk_idx)
    assert chunk.pages64(0) == 0b11
    assert chunk.scavenged.block64(0) == MASK64 & ~0b11
    assert pa.search_addr.addr() == BASE
    assert pa.summary[-1][p.base_chunk_idx] == pa.chunk_of(p.base_chunk_idx).summarize()
    assert pa.scav.index.peek(p.base_chunk_idx).in_use == 2
    assert pa.alloc(1) == (BASE + 2 * PAGE_SIZE, PAGE_SIZE)


def test_wasm_cache_covers_a_whole_chunk():
    p = WASM
    pa = fresh(p, 2)
    c = pa.alloc_to_cache()
    assert (c.base, c.cache) == (chunk_base(p, p.base_chunk_idx), MASK64)
    assert pa.summary[-1][p.base_chunk_idx] == 0
    c2 = pa.alloc_to_cache()  # the first chunk is full: the slow path finds the second
    assert c2.base == chunk_base(p, p.base_chunk_idx + 1)
