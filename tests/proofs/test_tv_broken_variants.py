"""Broken variants of the translator are caught by tie tests against the real runtime.

Each variant of smt_go.BROKEN_VARIANTS mistranslates one rule of Go (a shift by the width gives x, unsigned
arithmetic saturates, loops run one iteration short, an if's branches are swapped); evaluated
concretely on drawn inputs, it must disagree with the runtime's own function somewhere."""

from __future__ import annotations

import pytest

from palloc.proofs import smt_go as G
from tv_support import helper, patched_program, program, specs, tie

CATCHERS = {
    "shift_of_width_gives_x": ["pageBits.setRange", "pageCache.allocN", "pageBits.popcntRange"],
    "wrapping_ignored": ["chunkIndex", "offAddr.lessThan", "chunkBase"],
    "loop_one_short": ["pallocBits.summarize", "pallocBits.find1"],
    "swapped_branch": ["packPallocSum", "findBitRange64"],
    # (function, patch): the patched translation, tied to the unpatched runtime (the patch is a
    # benign refactor, so the runtime's outputs are what the patched code must give).
    "slice_range_from_zero": [("pageBits.popcntRange", "54-benign-popcnt-range-loop.patch")],
}


@pytest.fixture(scope="module")
def amd64():
    with helper("amd64") as h:
        yield h


@pytest.mark.go
@pytest.mark.parametrize("variant", G.BROKEN_VARIANTS)
def test_translator_variant_is_caught_by_tie_tests(amd64, variant):
    prog, sp = program("linux/amd64"), specs("linux/amd64")
    caught = []
    for f in CATCHERS[variant]:
        p = prog
        if isinstance(f, tuple):
            f, patch = f
            p = patched_program(patch)
        n, bad = tie(amd64, p, sp[f], f, 300, seed=11, broken=variant)
        caught += bad
    assert caught, f"variant {variant} agrees with the runtime on every input: the tie tests would not catch it"


def test_every_variant_has_catchers():
    assert set(CATCHERS) == set(G.BROKEN_VARIANTS)
