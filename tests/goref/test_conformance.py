"""The real runtime judged against the spec (goref/conformance.py): the stock runtime keeps
every obligation; a dumped state with a seeded corruption breaks the named one; verify-change says
`changes behaviour` (exit 3) for a valid policy patch, `breaks` with the obligation for a mutant, and
`--strict` breaks on any divergence."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from palloc.goref import ops as O
from palloc.goref.compare import Outcome

pytestmark = pytest.mark.go

MUTANTS = Path(__file__).resolve().parents[2] / "goref" / "mutants"


def _patch(prefix: str) -> Path:
    return next(MUTANTS.glob(f"{prefix}-*.patch"))


def test_the_stock_runtime_keeps_every_obligation_through_a_spec_campaign(need_helper):
    from palloc.goref.conformance import SpecLockstep
    from palloc.goref.fuzz import run_random_campaign

    r = need_helper("amd64")
    s = SpecLockstep(r.p, r.go, r.host, "amd64", r.go_version)
    res = run_random_campaign(s, 60, seed=3, max_examples=25)
    assert res.failure is None, res.failure.divergence.text()
    b = s.behaviour
    assert b.compared > 100 and sum(b.results_differ.values()) == 0 and b.heaps_parted == 0, b.summary()
    assert res.stats.page_alloc_ops > 100


def _case_on_runtime(r):
    from palloc.goref.go_side import GoSide

    base = (r.p.base_chunk_idx * r.p.palloc_chunk_bytes + r.p.arena_base_offset) & r.p.uintptr_mask
    ops = [O.Grow(base, 2 * r.p.palloc_chunk_bytes), O.Alloc(7), O.Alloc(600), O.AllocToCache(0),
           O.Free(base + 7 * 8192, 100), O.Scavenge(1 << 20, True)]
    return ops, GoSide(r.p, r.go.helper).run(None, ops)


def test_a_runtime_dump_read_as_a_page_alloc_keeps_every_invariant_and_abstracts_like_the_model(need_helper):
    from palloc.goref.conformance import RuntimeView, abstract_of_state
    from palloc.goref.model_side import ModelSide
    from palloc.spec import invariants as I
    from palloc.spec.refinement import abstract_of

    r = need_helper("amd64")
    ops, outs = _case_on_runtime(r)
    assert all(o.crash is None for o in outs)
    m = ModelSide(r.p, None, r.host)
    m.run(None, ops)
    st = outs[-1].state
    assert I.check_all(RuntimeView(r.p, st)) == []
    assert abstract_of_state(r.p, st) == abstract_of(m.pa)


def test_a_seeded_corruption_of_the_runtimes_state_breaks_the_named_obligation(need_helper):
    # The judge must be able to fail: the same real step, its dump corrupted one way at a time.
    from palloc.goref.conformance import judge_step

    r = need_helper("amd64")
    ops, outs = _case_on_runtime(r)
    before, after = outs[1].state, outs[2]  # alloc(7) on a fresh heap
    assert judge_step(r.p, r.host, ops[1], before, after) == []
    ci, (alloc, scav) = next(iter(sorted(after.state.chunks.items())))

    def judged(**changes):
        st = dataclasses.replace(after.state, **changes)
        return {v.invariant for v in judge_step(r.p, r.host, ops[1], before, Outcome(after.result, state=st))}

    # A page allocated beside the seven: the summaries no longer match, and a page changed.
    bad = judged(chunks={**after.state.chunks, ci: (alloc | 1 << 100, scav)})
    assert {"summaries_consistent", "hands_out_only_free_pages", "scav_index_in_use_matches_bitmap"} <= bad
    # searchAddr past a free page.
    assert "below_search_addr_allocated" in judged(search_addr=after.state.search_addr + 200 * 8192)
    # The wrong address returned.
    wrong = Outcome((after.result[0] + 8192, after.result[1]), state=after.state)
    assert "alloc_first_fit" in {v.invariant for v in judge_step(r.p, r.host, ops[1], before, wrong)}


def _verify(patch: Path, tmp: Path, *extra: str) -> tuple[int, dict]:
    script = Path(sys.executable).with_name("palloc")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "palloc.cli"]
    r = subprocess.run(cmd + ["verify-change", str(patch), "--goarch", "amd64", "--json", "--seconds", "8",
                              "--jobs", "1", "--no-baseline", "--no-prove", "--failures", str(tmp), *extra],
                       capture_output=True, text=True, timeout=900)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"stderr": r.stderr}


def test_a_valid_policy_patch_changes_behaviour_with_exit_3_and_strict_makes_it_break(tmp_path):
    pytest.importorskip("palloc.goref.build")
    code, rep = _verify(_patch("58"), tmp_path / "a")
    assert code == 3 and rep["verdict"] == "changes behaviour", rep
    diff = next(c for c in rep["checks"] if c["name"] == "differential")
    assert diff["verdict"] == "changes"
    b = diff["evidence"]["behaviour"]
    assert b["search_addr_differs"] > 0 and b["compared"] > 0, b
    assert diff["evidence"]["spec_campaign"]["checked_ops"] > 0
    code, rep = _verify(_patch("58"), tmp_path / "b", "--strict")
    assert code == 1 and rep["verdict"] == "breaks", rep


@pytest.mark.slow  # the default suite has B1's (tests/goref/test_campaign.py) and the twins' (slow) besides
def test_a_mutant_breaks_with_the_obligation_it_breaks_named(tmp_path):
    # free does not lower searchAddr; without coverage (the policy test above builds with it: F31)
    code, rep = _verify(_patch("34"), tmp_path, "--no-coverage")
    assert code == 1 and rep["verdict"] == "breaks", rep
    diff = next(c for c in rep["checks"] if c["name"] == "differential")
    assert diff["evidence"]["obligation"] in ("below_search_addr_allocated", "alloc_first_fit"), diff
    assert "spec obligation" in diff["detail"]
    case = json.loads(Path(diff["evidence"]["replay"]).read_text())
    assert case["divergence"]["lines"][0].startswith("breaks "), case["divergence"]
    # Its picture draws the patched runtime beside the model (goref/picture.py).
    assert 'data-side="runtime"' in Path(diff["evidence"]["replay"]).with_suffix(".html").read_text()


@pytest.mark.parametrize("goarch", ["386", "amd64"])
def test_tf12_a_forced_scavenge_after_an_unforced_one_leaves_free_pages_as_the_model_does(need_helper, goarch):
    # SPEC T-F12, FINDINGS F34: no progress obligation, because the real runtime stops short.
    from palloc.goref.conformance import abstract_of_state
    from palloc.goref.go_side import GoSide
    from palloc.goref.model_side import ModelSide
    from palloc.spec.obligations import forced_scavenge_leftovers

    r = need_helper(goarch)
    p, cb = r.p, r.p.palloc_chunk_bytes
    base = ((r.p.base_chunk_idx + 1) * cb + p.arena_base_offset) & p.uintptr_mask
    hole = base + 2 * cb + 485 * 8192  # in the third chunk, above what the first alloc reaches
    ops = [O.Grow(base, 3 * cb), O.Alloc(1174), O.Free(base, 1174), O.NextGen(), O.AllocRange(hole, 11),
           O.Free(hole, 11), O.Scavenge(0x29E36E, False), O.Scavenge(0x9CBF0D, True)]
    outs = GoSide(p, r.go.helper).run(None, ops)
    assert all(o.crash is None for o in outs), outs[-1]
    released = outs[-1].result[0]
    left = forced_scavenge_leftovers(p, abstract_of_state(p, outs[-1].state), released, 0x9CBF0D, r.host)
    hole_pn = ((hole - p.arena_base_offset) & p.uintptr_mask) // 8192
    assert released < 0x9CBF0D and hole_pn in left, (hex(released), left[:4])
    model = ModelSide(p, None, r.host).run(None, ops)
    assert model[-1].result == outs[-1].result and model[-1].state == outs[-1].state
