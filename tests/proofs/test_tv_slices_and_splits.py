"""Range over a slice with symbolic bounds, and equivalence by cases (tv_functions.toml split).

smt_go unrolls `for _, w := range b[lo:hi]` to the backing array's length (len <= cap <= n), each
iteration on the paths where it runs; the benign refactor of popcntRange that brings such a loop
is proved equivalent, its translation equals the runtime's function, and a variant that reads the
backing array from 0 is refuted. A split proves findBitRange64's equivalent mutant case by case
(n concrete), and a split that does not cover the precondition is never a proof."""

from __future__ import annotations

import dataclasses

import pytest

from palloc.proofs import smt_go as G
from tv_support import helper, patched_program, program, specs, tie

pytestmark = pytest.mark.go

POPCNT = "54-benign-popcnt-range-loop.patch"
FIND64 = "28-n-findbitrange64-strict-le.patch"


def test_range_over_a_symbolic_slice_is_proved_equivalent_to_the_counted_loop():
    prog, sp = program(), specs()
    r = G.check_equivalent(prog, patched_program(POPCNT), "pageBits.popcntRange", sp["pageBits.popcntRange"],
                           timeout_s=60)
    assert r["verdict"] == "proved", r


def test_range_over_a_slice_equals_the_runtime():
    with helper("amd64") as h:
        n, bad = tie(h, patched_program(POPCNT), specs()["pageBits.popcntRange"], "pageBits.popcntRange", 400,
                     seed=5)
    assert n >= 100 and not bad, bad[:1]


def test_a_stated_bound_below_the_slice_length_is_unknown_not_proved():
    # popcntRange's range loop is its only loop (ordinal 0); 3 iterations do not cover b[1:7].
    prog, sp = program(), specs()
    short = dataclasses.replace(sp["pageBits.popcntRange"], loops={0: 3})
    r = G.check_equivalent(prog, patched_program(POPCNT), "pageBits.popcntRange", sp["pageBits.popcntRange"],
                           short, timeout_s=60)
    assert r["verdict"] == "unknown" and "past its bound of 3" in r["reason"], r


def test_a_split_that_does_not_cover_the_precondition_is_unknown():
    prog, sp = program(), specs()
    f = "findBitRange64"
    bad = dataclasses.replace(sp[f], split=("n", 2, 64, "misses n = 1"))
    r = G.check_equivalent_split(prog, patched_program(FIND64), f, bad, sp[f], timeout_s=30)
    assert r["verdict"] == "unknown" and "does not cover" in r["reason"], r


def test_a_split_finds_the_case_of_a_breaking_mutant():
    prog, sp = program(), specs()
    f = "findBitRange64"
    r = G.check_equivalent_split(prog, patched_program("27-n-findbitrange64-p-equals-n.patch"), f, sp[f],
                                 timeout_s=60)
    assert r["verdict"] == "counterexample" and 1 <= r["input"]["n"] <= 64, r


@pytest.mark.slow
def test_findbitrange64_equivalent_mutant_and_its_callers_are_proved(tmp_path):
    from importlib import resources
    from pathlib import Path

    from palloc.goref.patch import apply_patch
    from palloc.proofs import tv
    from tv_support import toolchain

    tc = toolchain()
    ov = apply_patch(Path(str(resources.files("palloc.goref.mutants").joinpath(FIND64))), tc.goroot, tmp_path / "ov")
    rep = tv.check_patch(tc, ov.files, "amd64", confirm=False)
    assert rep.verdict == "proved equivalent", rep.format()
    assert {f.name for f in rep.functions} >= {"findBitRange64", "pallocBits.findSmallN", "pallocBits.find",
                                               "pageCache.allocN", "pageCache.alloc"}
