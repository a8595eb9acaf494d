"""Agreeing crashes agree: the model's throw is compared with the runtime's as Go
prints it (`fatal error: <msg>`), and a free of never-allocated pages where the runtime's own check
throws is not a divergence when the model predicted that throw.
"""

from __future__ import annotations

import json

import pytest

from palloc.goref import ops as O
from palloc.goref.compare import compare_outcomes, compare_runs
from palloc.goref.driver import parse_crash
from palloc.goref.model_side import ModelSide
from palloc.model.mpagealloc import chunk_base, pack_palloc_sum
from palloc.model.mranges import OffAddr
from palloc.spec import platform

P = platform("linux/amd64")
BASE = chunk_base(P, P.base_chunk_idx)


def runtime_outcome(stderr: str):
    """The runtime's crash as the Go side reports it, from the helper's stderr."""
    from palloc.goref.compare import Outcome
    from palloc.goref.go_side import _CRASH_KINDS

    r = parse_crash(stderr)
    return Outcome(crash=(_CRASH_KINDS[r["kind"]], r["msg"]))


def test_bad_summary_data_with_the_models_detail_agrees_with_the_runtimes_throw():
    m = ModelSide(P, None, {})
    m.reset(None)
    m.apply(O.Grow(BASE, P.palloc_chunk_bytes))
    m.apply(O.Alloc(P.palloc_chunk_pages))
    pa = m.pa
    l0 = (P.base_chunk_idx) >> (P.level_shift[0] - P.log_palloc_chunk_bytes)
    pa.summary[0][l0] = pack_palloc_sum(P, 0, 5, 0)  # the root promises 5 free pages below it
    pa.search_addr = OffAddr(P, BASE)
    model = m.apply(O.Find(5))
    assert model.crash == ("throw", "bad summary data") and "npages 5" in model.detail
    go = runtime_outcome("runtime: summary[0][0x...] = 0, 5, 0\nruntime: level = 1, npages = 5, j0 = 0\n"
                         "fatal error: bad summary data\n\ngoroutine 1 gp=0x0 m=0 mp=0x0 [running]:\n")
    assert compare_outcomes(P, 2, O.Find(5), model, go) is None


def test_a_different_throw_is_still_a_divergence_and_shows_the_models_detail():
    from palloc.goref.compare import Outcome

    model = Outcome(crash=("throw", "bad summary data"), detail="max = 5, npages = 3, searchIdx = 0")
    d = compare_outcomes(P, 0, O.Alloc(3), model, runtime_outcome("fatal error: range partially overlaps\n"))
    assert d is not None and d.kind == "crash"
    assert "'bad summary data'" in d.lines[0] and "max = 5, npages = 3" in d.lines[0]


FREE_NEVER_ALLOCATED = [O.Grow(BASE, P.palloc_chunk_bytes), O.Free(BASE, 1)]


def test_the_model_predicts_the_runtimes_throw_for_a_free_of_never_allocated_pages():
    model = ModelSide(P, None, {}).run(None, FREE_NEVER_ALLOCATED)
    assert model[-1].crash[0] == "undefined" and model[-1].throw == "allocated pages below zero?"
    go = model[:-1] + [runtime_outcome("runtime: inUse=0 npages=1\nfatal error: allocated pages below zero?\n")]
    assert compare_runs(P, [None] + FREE_NEVER_ALLOCATED, model, go) is None


def test_a_free_of_free_pages_the_runtime_does_not_check_is_refused_by_replay(palloc, tmp_path):
    from palloc.goref.fuzz import Case

    ops = [O.Grow(BASE, P.palloc_chunk_bytes), O.Alloc(3), O.Free(BASE + 0x8000, 1)]  # page 4: free, inUse 3
    f = tmp_path / "case.json"
    f.write_text(json.dumps(Case("amd64", "1.27.3", None, ops).to_json()))
    line = palloc("replay", f, "--goroot", "/nonexistent-goroot").error_line()
    assert str(f) in line and "operation 2" in line and "undefined" in line


@pytest.mark.go
def test_replay_of_a_hand_edited_free_of_never_allocated_pages_agrees(palloc, tmp_path, need_helper):
    from palloc.goref.fuzz import Case

    need_helper("amd64")
    f = tmp_path / "case.json"
    f.write_text(json.dumps(Case("amd64", "1.27.3", None, FREE_NEVER_ALLOCATED).to_json()))
    r = palloc("replay", f)
    assert r.code == 0 and "agree" in r.out, r.out + r.err
