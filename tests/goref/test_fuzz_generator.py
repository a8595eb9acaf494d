"""The fuzzer's generator: adversarial bitmaps, exact fits, heap carving and addrRanges verbs are
generated, and the broken variants they exist for are caught (model against model: no Go needed;
tests/goref/test_fuzz.py runs every variant against the real runtime)."""

from __future__ import annotations

import random

import pytest

from palloc.goref import ops as O
from palloc.goref.broken import model_variant as variant, summarize_shortcut_61
from palloc.goref.fuzz import Generator, Lockstep, free_runs, run_campaign, runs_of_ones
from palloc.goref.model_side import ModelSide
from palloc.model.mpallocbits import PallocBits
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

P = platform("linux/amd64")
CP = P.palloc_chunk_pages


def seeded_generator(seed: int, init=None) -> tuple[Generator, Lockstep]:
    runner = Lockstep(P, None)
    rng = random.Random(seed)
    g = Generator(runner, lambda spec, label=None: spec.sample(rng))
    runner.begin(init)
    return g, runner


def boundary_most_and_inner(v: int) -> tuple[int, int]:
    """Returns (longest free run touching a word boundary or the chunk's ends, longest free run
    strictly inside one word), by the obvious scan."""
    bnd = inner = 0
    for lo, ln in free_runs(v, CP):
        hi = lo + ln
        if lo // 64 == (hi - 1) // 64 and lo % 64 and hi % 64:
            inner = max(inner, ln)
        else:
            bnd = max(bnd, ln)
    return bnd, inner


def test_free_runs_and_runs_of_ones_are_complements():
    rng = random.Random(1)
    for _ in range(200):
        v = rng.getrandbits(CP)
        free = sum(((1 << n) - 1) << i for i, n in free_runs(v, CP))
        ones = sum(((1 << n) - 1) << i for i, n in runs_of_ones(v, CP))
        assert free == ~v & ((1 << CP) - 1) and ones == v


def test_adversarial_bitmaps_reach_summarizes_shortcut_edge():
    # A boundary run of exactly 61 pages and a 62-page run inside one word: summarize's
    # shortcut at most >= 61 (mutant n-summarize-shortcut-61) gets max wrong only there.
    g, _ = seeded_generator(0, {"chunks": {P.base_chunk_idx: []}})
    hits = 0
    for _ in range(2000):
        v = g.adversarial_bits()
        if boundary_most_and_inner(v) == (61, 62):
            hits += 1
            assert summarize_shortcut_61(P, v) != PallocBits(P, v).summarize()
    assert hits >= 5


def test_summarize_shortcut_61_variant_differs_from_summarize_only_at_its_edge():
    g, _ = seeded_generator(1, {"chunks": {P.base_chunk_idx: []}})
    rng = random.Random(2)
    for k in range(3000):
        v = g.adversarial_bits() if k % 2 else rng.getrandbits(CP)
        bnd, inner = boundary_most_and_inner(v)
        differs = summarize_shortcut_61(P, v) != PallocBits(P, v).summarize()
        assert differs == (bnd == 61 and inner == 62)


def test_exact_fit_offers_the_length_of_a_free_run_ending_at_a_chunk_end():
    ci = P.base_chunk_idx
    g, runner = seeded_generator(3, {"chunks": {ci: [[0, CP - 100]]}})  # free: the last 100 pages
    assert (runner.model.pa.chunk_of(ci).v >> (CP - 100)) == 0
    seen = {g.exact_fit() for _ in range(200)}
    assert 100 in seen and seen <= {99, 100, 101}


def test_exact_fit_joins_runs_across_adjacent_chunks():
    ci = P.base_chunk_idx
    g, _ = seeded_generator(4, {"chunks": {ci: [[0, CP - 70]], ci + 1: [[30, CP - 30]]}})
    runs = g.heap_free_runs()
    assert (g.chunk_addr(ci) + (CP - 70) * PAGE_SIZE, 100, True) in runs


def test_carve_shapes_a_free_chunk_into_the_target_bitmap():
    # Exactly when the target has at most 16 allocated runs (carve's allocRange budget).
    ci = P.base_chunk_idx
    exact = 0
    for seed in range(30):
        g, runner = seeded_generator(seed, {"chunks": {ci: []}})
        target = []
        real = g.adversarial_bits

        def remember():
            target.append(real())
            return target[-1]

        g.adversarial_bits = remember
        g.carve()
        v = runner.model.pa.chunk_of(ci).v
        if len(runs_of_ones(target[0], CP)) <= 16:
            assert v == target[0], seed
            exact += 1
        else:
            assert v & ~target[0] == 0, seed
        assert all(isinstance(op, (O.AllocRange, O.Free)) for op in runner.ops)
    assert exact >= 20


def test_addr_ranges_verbs_query_range_bases_with_few_and_with_more_than_8_ranges():
    # findSucc binary-searches down to 8 candidates, then scans: a query at a range's base
    # must happen in both regimes (mutant n-ranges-findsucc-lessequal is in the scan).
    few = many = 0
    kinds = set()
    for seed in range(40):
        g, runner = seeded_generator(seed, {"chunks": {P.base_chunk_idx: []}})
        for _ in range(40):
            g.addr_ranges()
        m = ModelSide(P)
        m.reset(runner.init)
        for op in runner.ops:
            a = getattr(m, "addr_ranges", None)
            if isinstance(op, O.AddrRangesContains) and a is not None and any(r.base.addr() == op.addr for r in a.ranges):
                if len(a.ranges) > 8:
                    many += 1
                else:
                    few += 1
            kinds.add(op.kind)
            assert not m.apply(op).crash, op
    assert few > 0 and many > 0
    assert {t.kind for t in O.ADDR_RANGES_OPS} <= kinds


def test_addr_ranges_results_end_with_the_set():
    m = ModelSide(P)
    m.reset(None)
    base = 0xC000000000
    assert m.apply(O.AddrRangesNew()).result is None
    assert m.apply(O.AddrRangesAdd(base, base + 0x2000)).result == (0x2000, 1, base, base + 0x2000)
    assert m.apply(O.AddrRangesContains(base)).result == (1, 0x2000, 1, base, base + 0x2000)
    assert m.apply(O.AddrRangesAdd(base + 0x1000, base + 0x3000)).crash[0] == "undefined"  # overlaps
    assert m.apply(O.AddrRangesRemoveLast(0x1000)).result == (base + 0x1000, base + 0x2000, 0x1000, 1, base, base + 0x1000)


@pytest.mark.parametrize("name", ["summarize-shortcut-61", "ranges-findsucc-lessequal", "exact-fit-at-chunk-end"])
def test_model_against_the_broken_variant_the_new_rules_exist_for_diverges(name):
    class BrokenOther:
        def run(self, init, ops):
            return ModelSide(P, variant(name).factory()).run(init, ops)

    runner = Lockstep(P, BrokenOther(), invariants=False)
    runner.shrink_seconds = 2
    res = run_campaign(runner, seconds=60, seed=0, engine="random")
    assert res.failure is not None, f"{name} not caught"
    assert res.failure.divergence.kind == variant(name).expected
