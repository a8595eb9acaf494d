"""The radix-tree mirror refines the abstract allocator (spec/refinement.py): random operation
sequences give the same results and the same abstract state at every step, on 64-bit, 32-bit and
wasm (64-page chunks); and a broken PageAlloc is caught by the refinement check."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palloc.spec.abstract import AbstractPageAlloc, abstract_cache_alloc
from palloc.goref.broken import AllocKeepsScavenged
from palloc.model.mpagealloc import PageAlloc, chunk_base
from palloc.spec.refinement import Refinement, RefinementError, abstract_of
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

PLATFORMS = [("linux/amd64", "1.27"), ("linux/386", "1.27"), ("js/wasm", "1.26")]


def _base(p, k=0):
    return chunk_base(p, p.base_chunk_idx + k)


def _far(p):
    """A chunk offset far from the base: 4 TiB on 48-bit heaps, 32 chunks on 32-bit."""
    return 0x100000 if p.is_64bit_page_alloc and p.heap_addr_bits > 40 else 32


_ALLOC = st.tuples(st.just("alloc"), st.sampled_from(["1", "1", "2", "3", "5", "64", "65", "chunk-3", "chunk+1", "2chunk"]))
_FREE = st.tuples(st.just("free"), st.integers(0, 30))
# Allocation and free are listed twice so that sequences reach fragmented heaps.
OPS = st.one_of(
    _ALLOC,
    _FREE,
    _ALLOC,
    _FREE,
    st.tuples(st.just("grow"), st.sampled_from([0, 1, 2, 3, "far"])),
    st.tuples(st.just("alloc_to_cache")),
    st.tuples(st.just("cache_alloc"), st.integers(0, 5), st.integers(1, 15)),
    st.tuples(st.just("flush"), st.integers(0, 5)),
    st.tuples(st.just("scavenge"), st.sampled_from([PAGE_SIZE, 1 << 20, 1 << 40]), st.booleans()),
    st.tuples(st.just("next_gen")),
)
OP_LISTS = st.lists(OPS, min_size=5, max_size=30)


def _npages(p, s):
    n = p.palloc_chunk_pages
    return {"chunk-3": n - 3, "chunk+1": n + 1, "2chunk": 2 * n}.get(s) or int(s)


def run_ops(r: Refinement, ops) -> None:
    """Applies ops to the refinement harness, skipping those whose precondition fails."""
    p = r.p
    grown: set[int] = set()
    live: list[tuple[int, int]] = []
    r.grow(_base(p), p.palloc_chunk_bytes)
    grown.add(0)
    for op in ops:
        kind = op[0]
        if kind == "grow":
            k = _far(p) if op[1] == "far" else op[1] + 1
            if k not in grown:
                grown.add(k)
                r.grow(_base(p, k), p.palloc_chunk_bytes)
        elif kind == "alloc":
            a, _ = r.alloc(_npages(p, op[1]))
            if a:
                live.append((a, _npages(p, op[1])))
        elif kind == "free" and live:
            a, n = live.pop(op[1] % len(live))
            r.free(a, n)
        elif kind == "alloc_to_cache":
            r.alloc_to_cache()
        elif kind == "cache_alloc" and r.caches:
            k = op[1] % len(r.caches)
            a, _ = r.cache_alloc(k, op[2])
            if a:
                live.append((a, op[2]))
        elif kind == "flush" and r.caches:
            r.flush(op[1] % len(r.caches))
        elif kind == "scavenge":
            r.scavenge(op[1], op[2])
        elif kind == "next_gen":
            r.next_gen()


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OP_LISTS)
def test_radix_tree_refines_the_abstract_allocator(pv, ops):
    p = platform(*pv)
    run_ops(Refinement(p, PageAlloc.make(p, test=True)), ops)


def test_alloc_on_a_fresh_heap_is_first_fit_and_reports_grown_memory_scavenged():
    p = platform("linux/amd64")
    r = Refinement(p, PageAlloc.make(p, test=True))
    r.grow(_base(p), 2 * p.palloc_chunk_bytes)
    assert r.alloc(3) == (0x3000000000, 3 * PAGE_SIZE)
    assert r.alloc(p.palloc_chunk_pages) == (0x3000006000, p.palloc_chunk_pages * PAGE_SIZE)


def test_abstract_alloc_is_first_fit_in_offset_order_across_the_amd64_sign_split():
    # On amd64 offset order puts 0xffff800000000000 (offset 0) below 0x0000000000400000.
    p = platform("linux/amd64")
    ab = AbstractPageAlloc(p)
    ab.grow(0x400000, p.palloc_chunk_bytes)
    ab.grow(0xFFFF800000400000, p.palloc_chunk_bytes)
    assert ab.alloc(1)[0] == 0xFFFF800000400000


def test_abstract_cache_alloc_takes_the_lowest_run():
    assert abstract_cache_alloc(0x1000000, 0b1110_0011, 0b0100_0001, 3) == (0x1000000 + 5 * PAGE_SIZE, PAGE_SIZE, 0b0000_0011, 0b0000_0001)
    assert abstract_cache_alloc(0x1000000, 0b101, 0, 2) == (0, 0, 0b101, 0)


# --- broken variants of the refinement check ----------------------------------------------------------


class AllocReportsNoScav(PageAlloc):
    """alloc forgets the scavenged bytes of the range it hands out."""

    def alloc(self, npages):
        addr, _ = super().alloc(npages)
        return addr, 0


class FreeKeepsLastPage(PageAlloc):
    """free of more than one page leaves the last page allocated."""

    def free(self, base, npages):
        super().free(base, npages - 1 if npages > 1 else npages)


@pytest.mark.parametrize(
    "cls, ops, expect",
    [
        (AllocReportsNoScav, [("alloc", "3")], "alloc(3) -> radix tree (0x3000000000, 0), abstract (0x3000000000, 0x6000)"),
        (AllocKeepsScavenged, [("alloc", "3")], "chunk 0x200c000 pages [0, 3): radix tree scavenged, abstract unscavenged"),
        (FreeKeepsLastPage, [("alloc", "5"), ("free", 0)], "chunk 0x200c000 pages [4, 5): radix tree allocated, abstract free"),
    ],
    ids=["alloc_reports_no_scav", "alloc_keeps_scavenged", "free_keeps_last_page"],
)
def test_refinement_catches_a_broken_page_alloc(cls, ops, expect):
    p = platform("linux/amd64")
    r = Refinement(p, pa=cls.make(p))
    with pytest.raises(RefinementError) as ei:
        run_ops(r, ops)
    assert expect in str(ei.value)


def test_scavenge_postcondition_catches_a_scavenger_that_lies_about_released_bytes():
    class ScavengeOverReports(PageAlloc):
        def scavenge(self, nbytes, should_stop=None, force=False):
            return super().scavenge(nbytes, should_stop, force) + PAGE_SIZE

    p = platform("linux/386")
    r = Refinement(p, pa=ScavengeOverReports.make(p))
    with pytest.raises(RefinementError, match="scavenge returned"):
        run_ops(r, [("alloc", "64"), ("free", 0), ("scavenge", 1 << 40, True)])


def test_abstraction_function_reads_free_and_scavenged_pages_of_grown_chunks():
    p = platform("js/wasm", "1.26")
    pa = PageAlloc.make(p)
    pa.grow(_base(p), p.palloc_chunk_bytes)
    pa.alloc(3)
    s = abstract_of(pa)
    first = (_base(p) - p.arena_base_offset) // PAGE_SIZE
    assert s.grown == ((first, first + 64),)
    assert s.free == frozenset(range(first + 3, first + 64)) == s.scavenged


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OP_LISTS)
def test_t10_forced_scavenge_releases_every_free_physical_page(pv, ops):
    p = platform(*pv)
    r = Refinement(p, PageAlloc.make(p, test=True))
    run_ops(r, ops)
    r.scavenge(1 << 40, True)
    s = abstract_of(r.pa)
    left = s.free - s.scavenged
    m = max(1, r.pa.phys_page_size // PAGE_SIZE)
    whole = {pn // m for pn in left if all(pn - pn % m + i in left for i in range(m))}
    assert not whole, f"{len(whole)} free physical pages left unscavenged after {r.log}"
