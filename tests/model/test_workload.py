"""The standard benchmark workload (model/workload.py): a seeded trace that replays identically."""

from __future__ import annotations

from palloc.model import workload
from palloc.spec.abstract import AbstractPageAlloc
from palloc.spec import platform


def test_trace_is_a_function_of_the_seed():
    assert workload.trace_list(7, 500) == workload.trace_list(7, 500)
    assert workload.trace_list(7, 500) != workload.trace_list(8, 500)


def test_trace_keeps_live_handles_between_zero_and_the_limit_and_sizes_in_range():
    live = 0
    sizes = []
    for kind, arg in workload.trace(3, 20_000):
        if kind == "alloc":
            sizes.append(arg)
            live += 1
        else:
            assert 0 <= arg < live
            live -= 1
        assert 0 <= live <= workload.MAX_LIVE
    assert min(sizes) == 1 and max(sizes) <= workload.LARGE_MAX_PAGES
    assert 0.02 < sum(s > workload.SMALL_MAX_PAGES for s in sizes) / len(sizes) < 0.08


def test_replay_frees_what_it_allocated_and_model_matches_the_abstract_allocator():
    p = platform("linux/amd64")
    trace = workload.trace_list(1, 400)
    pa = workload.standard_page_alloc(p)
    spec = AbstractPageAlloc(p)
    spec.grow(*workload.heap_range(p))
    got = workload.replay(trace, pa.alloc, pa.free, record=True)
    want = workload.replay(trace, spec.alloc, spec.free, record=True)
    assert got.results == want.results and got.scav_bytes == want.scav_bytes
    assert got.allocs + got.frees == 400


def test_replay_skips_the_free_of_a_failed_alloc():
    freed = []
    st = workload.replay([("alloc", 5), ("free", 0)], lambda n: (0, 0), lambda a, n: freed.append(a))
    assert (st.failed_allocs, st.skipped_frees, freed) == (1, 1, [])


def test_sparse_layout_spreads_chunks_over_the_address_space_avoiding_its_ends():
    p = platform("linux/amd64")
    idx = workload.sparse_chunk_indices(p)
    total = (1 << p.heap_addr_bits) // p.palloc_chunk_bytes
    assert len(idx) == workload.SPARSE_CHUNKS and idx[0] > 0 and idx[-1] < total - 1
    assert idx[1] - idx[0] == 256
