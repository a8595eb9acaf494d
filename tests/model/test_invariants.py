"""The named invariants (spec/invariants.py): they hold on legitimate states, every broken variant
(goref/broken.py) is caught by the invariant written next to it, and the theorems spec/SPEC.md
marks FALSE have the counterexamples it describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from palloc.model.export import undefined_allowed
from palloc.goref.broken import INVARIANT_VARIANTS, AllocToCachePastBlock, FindReturnsAddrPlusOne, invariant_variant
from palloc.spec.errors import GoFault
from palloc.spec.invariants import INVARIANTS, InvariantViolation, assert_invariants, check_all
from palloc.model.mpagealloc import PageAlloc, chunk_base
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

PLATFORMS = [("linux/amd64", "1.27"), ("linux/386", "1.27"), ("js/wasm", "1.26"), ("linux/mips", "1.27"),
             ("ios/arm64", "1.27"), ("linux/amd64", "1.21")]
SPEC = Path(__file__).resolve().parents[2] / "spec" / "SPEC.md"


def _p(pv):
    return platform(*pv)


def _base(p, k=0):
    return chunk_base(p, p.base_chunk_idx + k)


def _legit_states(p):
    """Yields (label, pa, caches) for a handful of reachable states."""
    cb = p.palloc_chunk_bytes
    pa = PageAlloc.make(p)
    yield "fresh", pa, []
    pa = PageAlloc.make(p)
    pa.grow(_base(p), 3 * cb)
    yield "grown", pa, []
    a, _ = pa.alloc(p.palloc_chunk_pages + 7)
    pa.alloc(1)
    c = pa.alloc_to_cache()
    c.alloc(3)
    yield "allocated", pa, [c]
    pa.free(a, 5)
    pa.scavenge(1 << 40, None, True)
    yield "freed and scavenged", pa, [c]
    far = 0x100000 if p.is_64bit_page_alloc and p.heap_addr_bits > 40 else 16
    pa.grow(_base(p, far), cb)
    c.flush(pa)
    pa.scav.index.next_gen()
    pa.scavenge(1 << 20, None, False)
    yield "discontiguous", pa, []
    while pa.alloc(1)[0]:
        pass
    yield "exhausted", pa, []


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
def test_every_invariant_holds_on_reachable_states(pv):
    p = _p(pv)
    for label, pa, caches in _legit_states(p):
        assert check_all(pa, caches=caches) == [], label


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
@pytest.mark.parametrize("t", INVARIANT_VARIANTS, ids=lambda t: t.name)
def test_broken_variant_is_caught_by_its_invariant(t, pv):
    p = _p(pv)
    pa, caches = t.build(p)
    got = {v.invariant for v in check_all(pa, caches=caches)}
    assert t.expected(p) <= got, f"{t.name}: expected {sorted(t.expected(p))}, got {sorted(got)}"


@pytest.mark.parametrize("pv", PLATFORMS[:3], ids=lambda pv: "-".join(pv))
@pytest.mark.parametrize("t", INVARIANT_VARIANTS, ids=lambda t: t.name)
def test_broken_variant_scenario_is_clean_without_the_bug(t, pv):
    p = _p(pv)
    pa, caches = t.build_healthy(p)
    assert check_all(pa, caches=caches) == []


def test_every_invariant_has_a_broken_variant():
    caught = set()
    for t in INVARIANT_VARIANTS:
        caught |= set(t.catches)
    assert caught == set(INVARIANTS)


def test_every_invariant_is_named_in_the_written_spec():
    text = SPEC.read_text()
    for name in INVARIANTS:
        assert f"`{name}`" in text, name


def test_violation_reads_like_a_debugger():
    p = platform("linux/amd64")
    pa, _ = invariant_variant("leaf_summary_off_by_one").build(p)
    lines = [str(v) for v in check_all(pa)]
    assert "summaries_consistent: chunk 0x200c000 pages [0, 1): summary says free (start=1), bitmap allocated" in lines
    # Never raw bitmaps or packed summaries: no number wider than an address.
    for s in lines:
        assert not re.search(r"0x[0-9a-f]{17,}|\d{21,}", s), s


def test_assert_invariants_lists_every_violation():
    p = platform("linux/amd64")
    pa, caches = invariant_variant("regrow_grown_memory").build(p)
    with pytest.raises(InvariantViolation) as ei:
        assert_invariants(pa, "regrow", caches=caches)
    msg = str(ei.value)
    assert "after regrow" in msg and "in_use_sorted_coalesced" in msg and "scavenged_implies_free" in msg


def test_touched_restricts_per_chunk_checks_to_those_chunks():
    p = platform("linux/amd64")
    pa, _ = invariant_variant("alloc_keeps_scavenged").build(p)
    ci = p.base_chunk_idx
    # The scenario allocates pages in chunks ci and ci+1, so both are scavenged and allocated.
    assert {v.where.split()[1] for v in check_all(pa, only=["scavenged_implies_free"])} == {hex(ci), hex(ci + 1)}
    assert [v.where for v in check_all(pa, touched=[ci + 1], only=["scavenged_implies_free"])] == [f"chunk {ci + 1:#x} pages [0, 3)"]
    assert check_all(pa, touched=[ci + 7], only=["scavenged_implies_free"]) == []


@pytest.mark.parametrize("cls", [FindReturnsAddrPlusOne, AllocToCachePastBlock], ids=["B1", "B2"])
def test_summary_reads_mapped_predicts_the_fault_of_the_next_alloc(cls):
    # On 64-bit the B1/B2 searchAddr lands on an unmapped summary page; the runtime segfaults.
    p = platform("linux/amd64")
    t = invariant_variant("b1_find_returns_addr_plus_one" if cls is FindReturnsAddrPlusOne else "b2_alloc_to_cache_past_block")
    pa, _ = t.build(p)
    assert any(v.invariant == "summary_reads_mapped" for v in check_all(pa))
    with pytest.raises(GoFault):
        pa.alloc(1)


# --- the theorems spec/SPEC.md §7 marks FALSE -----------------------------------------------------


@pytest.mark.parametrize("pv", PLATFORMS[:3], ids=lambda pv: "-".join(pv))
def test_tf1_search_addr_often_points_at_an_allocated_page(pv):
    p = _p(pv)
    pa = PageAlloc.make(p)
    pa.grow(_base(p), p.palloc_chunk_bytes)
    addr, _ = pa.alloc(1)
    assert pa.search_addr.addr() == addr
    assert pa.chunk_of(p.base_chunk_idx).get(0) == 1  # allocated
    c = pa.alloc_to_cache()
    assert pa.search_addr.addr() == c.base + 63 * PAGE_SIZE
    assert check_all(pa, caches=[c]) == []  # and every invariant still holds


def test_tf2_random_padding_pages_are_scavenged_and_allocated():
    p = platform("linux/amd64", "1.26")
    pa = PageAlloc.make(p)
    pa.grow(_base(p), p.palloc_chunk_bytes)
    pa.mark_random_padding_pages(_base(p), 5)
    vs = check_all(pa, only=["scavenged_implies_free"])
    assert [str(v) for v in vs] == ["scavenged_implies_free: chunk 0x200c000 pages [0, 5): scavenged but allocated"]
    assert check_all(pa, padding={p.base_chunk_idx: 0b11111}) == []


def test_tf3_start_end_span_chunks_that_are_not_grown():
    p = platform("linux/amd64")
    pa = PageAlloc.make(p)
    pa.grow(_base(p, 0), p.palloc_chunk_bytes)
    pa.grow(_base(p, 2), p.palloc_chunk_bytes)
    gap = p.base_chunk_idx + 1
    assert pa.start < gap < pa.end and not pa.in_use.contains(chunk_base(p, gap))
    assert check_all(pa) == []


def test_tf4_regrowing_breaks_in_use():
    p = platform("linux/386")
    pa, _ = invariant_variant("regrow_grown_memory").build(p)
    assert check_all(pa, only=["in_use_sorted_coalesced"])


def test_tf5_update_contig_on_a_non_uniform_interior_writes_a_wrong_summary():
    p = platform("linux/amd64")
    pa, _ = invariant_variant("update_contig_non_uniform").build(p)
    vs = [str(v) for v in check_all(pa, only=["summaries_consistent"])]
    assert any(f"chunk {p.base_chunk_idx + 1:#x}" in s for s in vs), vs


def test_tf10_a_cleared_scavenge_cursor_lies_below_the_index_window():
    p = platform("linux/amd64")
    pa = PageAlloc.make(p)
    pa.grow(_base(p), p.palloc_chunk_bytes)
    pa.scavenge(1 << 40, None, True)  # nothing to scavenge: grown memory is scavenged; cursor cleared
    a, marked = pa.scav.index.search_addr_force.load()
    assert (a, marked) == (p.min_off_addr, False)
    assert (a - p.arena_base_offset) >> p.log_palloc_chunk_bytes < pa.scav.index.min
    assert check_all(pa) == []  # a cleared cursor is allowed by scav_index_cursors_in_use


@pytest.mark.parametrize("version, broken", [("1.21", True), ("1.22", False), ("1.27", False)])
def test_tf11_go121_scavenge_index_window_loses_low_chunks(version, broken):
    # golang/go#63385 (B12): 1.21.13's scavengeIndex.sysGrow tests haveMin == 0 for the first growth.
    p = platform("linux/arm64", version)
    pa = PageAlloc.make(p)
    pa.grow(chunk_base(p, 1), p.palloc_chunk_bytes)
    pa.grow(chunk_base(p, 512), p.palloc_chunk_bytes)
    vs = [str(v) for v in check_all(pa, only=["scav_index_cursors_in_use"])]
    assert vs == (["scav_index_cursors_in_use: scav.index [min, max): [0x200, 0x400) does not cover the heap's chunks [0x1, 0x201)"] if broken else [])


@pytest.mark.parametrize("pv", PLATFORMS[:4], ids=lambda pv: "-".join(pv))
def test_tf6_find_hint_without_find_mapped_addr_leaves_in_use(pv):
    p = _p(pv)
    t = invariant_variant("b3_find_without_find_mapped_addr")
    pa, _ = t.build(p)
    a = pa.search_addr.addr()
    assert not pa.in_use.contains(a) and a != p.max_off_addr
    healthy, _ = t.build_healthy(p)
    assert healthy.in_use.contains(healthy.search_addr.addr())


def test_tf7_search_addr_one_past_the_cache_leaves_in_use():
    p = platform("linux/386")
    pa, caches = invariant_variant("b2_alloc_to_cache_past_block").build(p)
    assert pa.search_addr.addr() == caches[0].base + 64 * PAGE_SIZE
    assert not pa.in_use.contains(pa.search_addr.addr())


def test_tf8_scavenge_index_scan_wraps_when_chunk_0_is_grown():
    p = platform("linux/386")
    pa = PageAlloc.make(p)
    with undefined_allowed(pa):  # chunk 0 is outside grow's precondition
        pa.grow(0, 2 * p.palloc_chunk_bytes)
        assert pa.alloc(1) == (0, PAGE_SIZE)  # page 0 is allocated, but its address reads as failure
        a = chunk_base(p, 1)
        pa.alloc_range(a, 1)
        pa.free(a, 1)  # marks the force cursor in chunk 1
        # Chunk 1's page is released; then the scan passes chunk 0 (minHeapIdx) and wraps below it.
        with pytest.raises(GoFault, match="wraps|below"):
            pa.scavenge(1 << 40, None, True)


def test_tf9_unaligned_grow_misses_the_last_chunk_summary():
    p = platform("linux/amd64")
    pa = PageAlloc.make(p)
    with undefined_allowed(pa):
        pa.grow(_base(p) + PAGE_SIZE, p.palloc_chunk_bytes)  # really grows two chunks
    vs = [str(v) for v in check_all(pa, only=["summaries_consistent"])]
    assert f"summaries_consistent: chunk {p.base_chunk_idx + 1:#x} pages [0, 512): summary says allocated (start=0), bitmap free" in vs


# --- the invariants' own slow merge against the runtime's mergeSummaries ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from palloc.spec.invariants import _merge  # noqa: E402
from palloc.model.mpagealloc import merge_summaries  # noqa: E402
from palloc.model.mpallocbits import PallocBits, summarize_slow  # noqa: E402


def _run_bitmap(n):
    """Bitmaps of n pages built from runs, so that long free runs and full chunks are common."""
    run = st.tuples(st.booleans(), st.integers(1, n))

    def build(runs):
        v, i = 0, 0
        for alloc, length in runs:
            length = min(length, n - i)
            if alloc:
                v |= ((1 << length) - 1) << i
            i += length
            if i >= n:
                break
        return v

    return st.one_of(st.just(0), st.just((1 << n) - 1), st.lists(run, max_size=6).map(build))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), pv=st.sampled_from([("linux/amd64", "1.27"), ("js/wasm", "1.26")]))
def test_invariant_merge_agrees_with_merge_summaries_and_the_concatenated_bitmap(data, pv):
    p = platform(*pv)
    n = p.palloc_chunk_pages
    bitmaps = [data.draw(_run_bitmap(n)) for _ in range(8)]
    kids = [summarize_slow(PallocBits(p, v)) for v in bitmaps]
    got = _merge(p, kids, p.log_palloc_chunk_pages)
    assert got == merge_summaries(p, kids, p.log_palloc_chunk_pages)
    # The definition: (start, max, end) of the 8n-page concatenation.
    whole = "".join("".join("1" if v >> i & 1 else "0" for i in range(n)) for v in bitmaps)
    runs = [len(r) for r in whole.split("1")]
    start, end, most = runs[0], runs[-1], max(runs)
    s, m, e = (got & (p.max_packed_value - 1), (got >> p.log_max_packed_value) & (p.max_packed_value - 1),
               (got >> 2 * p.log_max_packed_value) & (p.max_packed_value - 1))
    assert (s, m, e) == (start, most, end)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), pv=st.sampled_from([("linux/amd64", "1.27"), ("js/wasm", "1.26")]))
def test_summary_from_free_runs_agrees_with_the_bit_by_bit_slow_summarize(data, pv):
    from palloc.spec.invariants import _summarize_runs
    from palloc.model.mpallocbits import summarize_slow_unpacked

    p = platform(*pv)
    n = p.palloc_chunk_pages
    v = data.draw(st.one_of(_run_bitmap(n), st.integers(0, (1 << n) - 1)))
    assert _summarize_runs(v, n) == summarize_slow_unpacked(PallocBits(p, v))


@pytest.mark.parametrize("t", INVARIANT_VARIANTS, ids=lambda t: t.name)
def test_check_all_reports_what_each_predicate_reports_alone(t):
    # check_all hands every predicate the chunk list it computed once: the same answers as
    # each predicate working out its own, with and without a touched set.
    p = platform("linux/amd64")
    pa, caches = t.build(p)
    grown = [c for c in range(p.base_chunk_idx - 2, p.base_chunk_idx + 40)]
    for touched in (None, grown[::3], [p.base_chunk_idx]):
        for name, f in INVARIANTS.items():
            assert check_all(pa, caches=caches, touched=touched, only=[name]) == f(pa, caches=caches, touched=touched)


def _agree_per_step(pa, touched, caches=()):
    from palloc.spec.invariants import PER_STEP, holds_per_step

    want = check_all(pa, touched=touched, caches=caches, only=PER_STEP) == []
    assert holds_per_step(pa, touched) == want, (touched, [str(v) for v in check_all(pa, touched=touched, only=PER_STEP)])


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
@pytest.mark.parametrize("t", INVARIANT_VARIANTS, ids=lambda t: t.name)
def test_per_step_screen_agrees_with_its_predicates_on_every_broken_variant(t, pv):
    from palloc.spec.invariants import PER_STEP, holds_per_step

    p = _p(pv)
    pa, caches = t.build(p)
    for touched in (None, [p.base_chunk_idx], [p.base_chunk_idx + 1, p.base_chunk_idx + 5]):
        _agree_per_step(pa, touched, caches)
    if t.expected(p) & set(PER_STEP):
        assert not holds_per_step(pa)  # the variant's bug is one the screen must see


@pytest.mark.parametrize("pv", PLATFORMS, ids=lambda pv: "-".join(pv))
def test_per_step_screen_holds_on_reachable_states(pv):
    from palloc.spec.invariants import holds_per_step

    p = _p(pv)
    for label, pa, _ in _legit_states(p):
        assert holds_per_step(pa), label
