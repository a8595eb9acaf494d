"""Loops abstracted as the same function on both sides (tv_functions.toml `abstract`).

summarize's `outer:` loop is too big to compare whole; when a patch leaves it the same code, it
runs as one uninterpreted function of what it reads on both sides. That proves the benign
refactor of summarize's first pass; the stated specification of the loop (hint) steers the search
that refutes the mutant at 61 with a real input; and the hint is never assumed in a proof: the
mutant at 63, equivalent only through what the loop computes, stays unknown. A loop the patch
changes is never abstracted."""

from __future__ import annotations

import pytest

from palloc.proofs import smt_go as G
from palloc.proofs import tv
from tv_support import patched_program, program, specs

pytestmark = pytest.mark.go

F = "pallocBits.summarize"


def _res(prog):
    return {"types": prog.raw_types, "globals": prog.globals}


def _check(patch):
    a, b = program(), patched_program(patch)
    abs_a, abs_b, hints = tv.identical_loops(_res(a), _res(b), a, b, F, tv.function_table()["func"][F])
    assert abs_a and abs_b, "the outer loop is the same code in both versions"
    return G.check_equivalent_abstract(a, b, F, specs()[F], specs()[F], abs_a, abs_b, hints, timeout_s=60), a, b


def test_the_first_pass_refactor_is_proved_with_the_shrink_loop_abstracted():
    r, _, _ = _check("57-benign-summarize-max-as-if.patch")
    assert r["verdict"] == "proved", r


@pytest.mark.slow
def test_the_shortcut_at_61_is_refuted_with_a_real_input():
    r, a, b = _check("24-n-summarize-shortcut-61.patch")
    assert r["verdict"] == "counterexample", r
    sp = specs()[F]
    ra, rb = G.run_concrete(a, F, sp, r["input"]), G.run_concrete(b, F, sp, r["input"])
    assert ra["outputs"] != rb["outputs"]  # the real translations differ, not only the abstraction


def test_the_hint_is_never_assumed_in_a_proof():
    # With the loop's specification assumed, the shortcut at 63 would be proved (every interior
    # run is at most 62); unproved at 64 bits, it may only steer a search, so: unknown.
    r, _, _ = _check("25-n-summarize-shortcut-63.patch")
    assert r["verdict"] == "unknown" and "not proved" in r["reason"], r


def test_a_loop_the_patch_changes_is_not_abstracted():
    a, b = program(), patched_program("28-n-findbitrange64-strict-le.patch")
    entry = {"abstract": [{"loop": 0, "why": "test"}]}
    assert tv.identical_loops(_res(a), _res(b), a, b, "findBitRange64", entry) == ({}, {}, {})
    # The variant that abstracts it anyway would call the two loops one function: it must not be
    # what check_patch does, and it is exactly what identical_loops refuses.


def test_loop_shape_refuses_writes_through_memory_and_calls():
    a = program()
    f = a.funcs["pageBits.setRange"]
    loops = [n for n in _walk(f["body"]) if n.get("s") in ("for", "range")]
    assert loops
    shape = G.loop_shape(loops[0], None, lambda t: a.t(t).kind)
    assert "writes memory" in shape["unsupported"]


def _walk(n):
    if isinstance(n, dict):
        yield n
        for v in n.values():
            yield from _walk(v)
    elif isinstance(n, list):
        for v in n:
            yield from _walk(v)
