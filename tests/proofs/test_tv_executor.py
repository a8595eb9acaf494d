"""The executor's two domains agree, and its broken variants are caught by a proof.

smt_go gives Go's semantics once, over SMT-LIB primitives; PyDom evaluates them on Python ints
(tie tests), Z3Dom builds terms (proofs). Here every translated function runs in both on the
same drawn inputs and must give the same outcome; and each translator variant (smt_go.BROKEN_VARIANTS) must
make some function non-equivalent to its correct translation."""

from __future__ import annotations

import random

import pytest

from palloc.proofs import smt_go as G
from palloc.proofs import tv
from palloc.proofs.tv_inputs import draws
from tv_support import patched_program, program, specs

PLATFORMS = ["linux/amd64", "linux/386"]


@pytest.mark.go
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("fname", tv.scope())
def test_pydom_and_z3dom_agree(platform, fname):
    prog, sp = program(platform), specs(platform)[fname]
    r = random.Random(7)
    n = 0
    for args in draws(prog, fname, sp, r, 6):
        gins = {"physPageSize": 4096, "physHugePageSize": 2 << 20} if sp.globals else {}
        a = G.run_concrete(prog, fname, sp, args, gins)
        b = G.run_concrete(prog, fname, sp, args, gins, dom=G.Z3Dom())
        assert (a["outcome"], a["outputs"]) == (b["outcome"], b["outputs"]), (fname, args)
        n += 1
    assert n > 0


# Each variant and a function on which a proof shows it wrong (the translation of the variant is
# compared with the correct translation of the same code).
BROKEN_WITNESS = {
    "shift_of_width_gives_x": "pageBits.setRange",
    "wrapping_ignored": "chunkIndex",
    "loop_one_short": "pallocBits.find1",
    "swapped_branch": "packPallocSum",
    # The runtime has no range over a slice; the benign refactor of popcntRange brings one.
    "slice_range_from_zero": ("pageBits.popcntRange", "54-benign-popcnt-range-loop.patch"),
}


@pytest.mark.go
@pytest.mark.parametrize("variant", G.BROKEN_VARIANTS)
def test_each_translator_variant_is_refuted_by_a_proof(variant):
    prog, sp = program("linux/amd64"), specs("linux/amd64")
    f = BROKEN_WITNESS[variant]
    prog_b = prog
    if isinstance(f, tuple):
        f, patch = f
        prog_b = patched_program(patch)
    r = G.check_equivalent(prog, prog_b, f, sp[f], timeout_s=60, broken_b=variant)
    assert r["verdict"] in ("counterexample", "unknown"), r
    if variant == "loop_one_short":
        # A bound one short is never a silent proof: the solver shows the loop may still run.
        assert r["verdict"] == "unknown" and "past its bound" in r["reason"], r
    else:
        assert r["verdict"] == "counterexample", r


def test_every_variant_has_a_witness():
    assert set(BROKEN_WITNESS) == set(G.BROKEN_VARIANTS)
