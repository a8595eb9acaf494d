"""Tie tests: every translated runtime function, evaluated concretely, equals the runtime's own
function called through the helper (tv_call), on drawn inputs (random plus edges), per GOARCH.

The translation evaluated here (smt_go on PyDom) is the one the proofs use (on Z3Dom);
test_tv_executor.py ties the two domains."""

from __future__ import annotations

import pytest

from palloc.proofs import tv
from tv_support import helper, program, specs, tie

# Inputs per function: the bit searches get more (their branches are many), the total runs
# to tens of thousands of comparisons per GOARCH.
HEAVY = {"pallocBits.find": 1200, "pallocBits.findSmallN": 1000, "pallocBits.findLargeN": 800,
         "pallocBits.summarize": 1000, "findBitRange64": 2000, "pallocData.findScavengeCandidate": 800,
         "fillAligned": 1500, "mergeSummaries": 600, "pageCache.alloc": 1000, "pageCache.allocN": 1000}
DEFAULT_N = 300


@pytest.fixture(scope="module", params=["amd64", "386"])
def arch(request):
    h = helper(request.param)
    with h:
        yield request.param, h


@pytest.mark.go
@pytest.mark.parametrize("fname", tv.scope())
def test_translation_equals_runtime(arch, fname):
    goarch, h = arch
    plat = f"linux/{goarch}"
    prog, sp = program(plat), specs(plat)
    n, bad = tie(h, prog, sp[fname], fname, HEAVY.get(fname, DEFAULT_N), seed=hash(fname) & 0xFFFF)
    assert n >= min(100, HEAVY.get(fname, DEFAULT_N) // 4), f"only {n} inputs met the precondition"
    assert not bad, f"{len(bad)} of {n} differ, first: {bad[0]}"
