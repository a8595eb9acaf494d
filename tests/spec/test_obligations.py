"""The contract (spec/obligations.py): each step obligation holds on the abstract allocator's own
transitions and has a broken transition it must catch; SPEC.md §8 names every obligation and
freedom."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from palloc.spec.abstract import AbstractPageAlloc
from palloc.spec.constants import PAGE_SIZE, platform
from palloc.spec.obligations import FREEDOMS, OBLIGATIONS, STEP_OBLIGATIONS, check_step, forced_scavenge_leftovers

P = platform("linux/amd64")
HOST = {"phys_page_size": 4096}


def heap() -> AbstractPageAlloc:
    """Two chunks: pages 0-9 and 20-29 allocated, 10-19 free and unscavenged, the rest free and
    scavenged (as grown)."""
    a = AbstractPageAlloc(P)
    base = (P.base_chunk_idx * P.palloc_chunk_bytes + P.arena_base_offset) & P.uintptr_mask
    a.grow(base, 2 * P.palloc_chunk_bytes)
    a.alloc(10)
    a.alloc(10)
    a.alloc(10)
    a.free(base + 10 * PAGE_SIZE, 10)
    return a


def names(vs) -> set[str]:
    return {v.invariant for v in vs}


def step(kind, args, a: AbstractPageAlloc, do, **kw):
    pre = a.state()
    result = do(a)
    return check_step(P, kind, args, pre, a.state(), result, host=HOST, **kw)


def test_the_abstract_allocators_transitions_keep_every_step_obligation():
    a = heap()
    assert step("alloc", {"npages": 5}, a, lambda a: a.alloc(5)) == []
    addr, _ = a.alloc(3)
    assert step("free", {"base": addr, "npages": 3}, a, lambda a: a.free(addr, 3)) == []
    c = a.copy()
    assert step("alloc_to_cache", {"slot": 0}, c, lambda c: c.alloc_to_cache()) == []
    assert step("find", {"npages": 2}, a, lambda a: (a.addr(a.find_first_fit(2)), a.addr(min(a.free_set)))) == []
    nb = 5 * PAGE_SIZE
    pre = a.state()
    released = _scavenge_top(a, 5)
    assert check_step(P, "scavenge", {"nbytes": nb, "force": True}, pre, a.state(), (released,), host=HOST) == []


def _scavenge_top(a: AbstractPageAlloc, n: int) -> int:
    """A valid scavenge of the n highest free unscavenged pages; returns the bytes."""
    pages = sorted(a.free_set - a.scav_set)[-n:]
    a.scav_set |= set(pages)
    return len(pages) * PAGE_SIZE


def test_alloc_that_is_not_the_first_fit_breaks_alloc_first_fit():
    a = heap()
    pre = a.state()
    first = a.find_first_fit(4)
    wrong = a.addr(first + 1)
    a.free_set -= set(range(first + 1, first + 5))
    vs = check_step(P, "alloc", {"npages": 4}, pre, a.state(), (wrong, 0), host=HOST)
    assert "alloc_first_fit" in names(vs)


def test_alloc_of_allocated_pages_breaks_hands_out_only_free_pages():
    a = heap()
    pre = a.state()
    base_pn = a.grown[0][0]  # allocated since the first alloc
    vs = check_step(P, "alloc", {"npages": 2}, pre, a.state(), (a.addr(base_pn), 0), host=HOST)
    assert {"alloc_first_fit", "hands_out_only_free_pages"} <= names(vs)


def test_a_find_candidate_outside_the_heap_or_above_a_free_page_breaks_find_candidate_valid():
    a = heap()
    pre = a.state()
    first = a.find_first_fit(2)
    ok = check_step(P, "find", {"npages": 2}, pre, pre, (a.addr(first), a.addr(first)), host=HOST)
    assert ok == []
    gap = a.addr(a.grown[0][0]) - P.palloc_chunk_bytes  # B3: the start of an unmapped gap
    assert names(check_step(P, "find", {"npages": 2}, pre, pre, (a.addr(first), gap), host=HOST)) == {"find_candidate_valid"}
    high = a.addr(first + 1)
    assert names(check_step(P, "find", {"npages": 2}, pre, pre, (a.addr(first), high), host=HOST)) == {"find_candidate_valid"}
    assert check_step(P, "find", {"npages": 5000}, pre, pre, (0, gap), host=HOST) == []  # ignored on failure


def test_wrong_scavenged_bytes_break_alloc_scav_bytes():
    a = heap()
    pre = a.state()
    addr, scav = a.alloc(600)  # reaches into never-allocated, scavenged pages
    assert scav > 0
    vs = check_step(P, "alloc", {"npages": 600}, pre, a.state(), (addr, scav - PAGE_SIZE), host=HOST)
    assert names(vs) == {"alloc_scav_bytes"}


def test_free_that_forgets_a_page_breaks_free_returns_pages():
    a = heap()
    addr, _ = a.alloc(4)
    pre = a.state()
    a.free(addr, 3)
    vs = check_step(P, "free", {"base": addr, "npages": 4}, pre, a.state(), None, host=HOST)
    assert names(vs) == {"free_returns_pages"}


def test_grow_that_leaves_pages_unscavenged_breaks_grow_adds_free_scavenged():
    a = AbstractPageAlloc(P)
    base = (P.base_chunk_idx * P.palloc_chunk_bytes + P.arena_base_offset) & P.uintptr_mask
    pre = a.state()
    a.grow(base, P.palloc_chunk_bytes)
    a.scav_set.discard(a.pn(base))
    vs = check_step(P, "grow", {"base": base, "size": P.palloc_chunk_bytes}, pre, a.state(), None, host=HOST)
    assert names(vs) == {"grow_adds_free_scavenged"}


def test_cache_holding_an_allocated_page_breaks_cache_takes_free_pages():
    a = heap()
    pre = a.state()
    base, cache, scav = a.alloc_to_cache()
    vs = check_step(P, "alloc_to_cache", {"slot": 0}, pre, a.state(), (base, cache | 1, scav), host=HOST)
    assert "cache_takes_free_pages" in names(vs)
    empty = check_step(P, "alloc_to_cache", {"slot": 0}, pre, pre, (0, 0, 0), host=HOST)
    assert "cache_takes_free_pages" in names(empty)


def test_cache_alloc_past_the_first_fit_breaks_cache_alloc_first_fit():
    base, cache, scav = 0xC000000000, 0b11110110, 0
    vs = check_step(P, "cache_alloc", {"slot": 0, "npages": 2}, heap().state(), heap().state(),
                    (base + 5 * PAGE_SIZE, 0), caches_before={0: (base, cache, scav)},
                    caches_after={0: (base, cache & ~(0b11 << 5), 0)}, host=HOST)
    assert "cache_alloc_first_fit" in names(vs)
    # The first fit taken, but its scav bit kept (corpus mutant n-pagecache-alloc-keeps-scav).
    scav = 0b110
    vs = check_step(P, "cache_alloc", {"slot": 0, "npages": 2}, heap().state(), heap().state(),
                    (base + PAGE_SIZE, PAGE_SIZE), caches_before={0: (base, cache, scav)},
                    caches_after={0: (base, cache & ~0b110, scav)}, host=HOST)
    assert names(vs) == {"cache_alloc_first_fit"}


def test_scavenge_miscounting_or_releasing_allocated_pages_breaks_scavenge_releases_free_pages():
    a = heap()
    pre = a.state()
    released = _scavenge_top(a, 4)
    vs = check_step(P, "scavenge", {"nbytes": released, "force": True}, pre, a.state(), (released + PAGE_SIZE,), host=HOST)
    assert names(vs) == {"scavenge_releases_free_pages"}
    a = heap()
    pre = a.state()
    a.scav_set.add(a.grown[0][0])  # an allocated page
    vs = check_step(P, "scavenge", {"nbytes": PAGE_SIZE, "force": True}, pre, a.state(), (PAGE_SIZE,), host=HOST)
    assert "scavenge_releases_free_pages" in names(vs)


def test_a_scavenge_that_stops_early_breaks_nothing_but_its_leftovers_are_named():
    # T-F12: the runtime leaves free, unscavenged pages after a forced scavenge that stopped
    # early, so progress is no obligation; forced_scavenge_leftovers names them.
    a = heap()
    pre = a.state()
    released = _scavenge_top(a, 2)
    for force in (True, False):
        assert check_step(P, "scavenge", {"nbytes": 10 * PAGE_SIZE, "force": force}, pre, a.state(), (released,), host=HOST) == []
    left = forced_scavenge_leftovers(P, a.state(), released, 10 * PAGE_SIZE, HOST)
    assert len(left) == 8 and forced_scavenge_leftovers(P, a.state(), released, released, HOST) == []
    # ... unless the index still offers their chunk: then the forced scavenge stopped too soon.
    ci = (a.grown[0][0] + 10) // P.palloc_chunk_pages
    args = {"nbytes": 10 * PAGE_SIZE, "force": True}
    assert names(check_step(P, "scavenge", args, pre, a.state(), (released,), host=HOST, offered=frozenset({ci}))) == {
        "forced_scavenge_exhausts_offered_chunks"}
    assert check_step(P, "scavenge", args, pre, a.state(), (released,), host=HOST, offered=frozenset()) == []
    assert check_step(P, "scavenge", dict(args, force=False), pre, a.state(), (released,), host=HOST,
                      offered=frozenset({ci})) == []


def test_next_gen_that_moves_a_page_breaks_read_only_keeps_pages():
    a = heap()
    pre = a.state()
    a.free_set.discard(max(a.free_set))
    assert names(check_step(P, "next_gen", {}, pre, a.state(), None, host=HOST)) == {"read_only_keeps_pages"}


@pytest.mark.parametrize("name", sorted(OBLIGATIONS) + sorted(FREEDOMS))
def test_spec_md_section_8_names_every_obligation_and_freedom(name):
    text = Path(__file__).resolve().parents[2].joinpath("spec", "SPEC.md").read_text()
    assert f"`{name}`" in text.split("## 8.", 1)[1]


def test_every_freedom_is_bounded_by_named_obligations():
    for f in FREEDOMS.values():
        assert f.bounded_by and all(b in OBLIGATIONS for b in f.bounded_by), f.name
    assert set(STEP_OBLIGATIONS) < set(OBLIGATIONS)
    assert all(dataclasses.asdict(o)["source"] for o in OBLIGATIONS.values())
