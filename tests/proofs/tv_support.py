"""Shared set-up of the translation-validation tests: programs and helpers, built once per run."""

from __future__ import annotations

import functools
import random

import pytest

from palloc.spec.errors import PallocError


@functools.cache
def _toolchain():
    from palloc.goref.toolchain import find_toolchain

    return find_toolchain()


def toolchain():
    try:
        return _toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); install one with `pip install 'palloc[go]'`")


@functools.cache
def program(platform: str = "linux/amd64"):
    from palloc.proofs import tv

    [p] = tv.programs(toolchain(), [platform])
    return p


@functools.cache
def specs(platform: str = "linux/amd64"):
    from palloc.proofs import tv

    return tv.specs_for(program(platform))


def helper(goarch: str):
    from palloc.goref.driver import GoHelper

    try:
        return GoHelper(goarch=goarch, timeout=120)
    except PallocError as e:
        pytest.skip(f"no Go helper for {goarch} ({e}); install one with `pip install 'palloc[go]'`")


def tie(h, prog, spec, fname: str, n: int, seed: int, broken: str | None = None) -> tuple[int, list[str]]:
    """Evaluates the translation of fname on n drawn inputs and calls the runtime's own function
    on the same inputs through the helper; returns (inputs compared, mismatches as text)."""
    from palloc.proofs import smt_go as G
    from palloc.proofs import tv
    from palloc.proofs.tv_inputs import draws

    consts = h.call1({"op": "constants"})
    gins = {k: consts[k] for k in ("physPageSize", "physHugePageSize") if k in prog.globals and
            any(g[0] == k for g in spec.globals)}
    inputs = list(draws(prog, fname, spec, random.Random(seed), n))
    ops = [{"op": "tv_call", "fn": fname, "args": tv.args_words(prog, fname, a)} for a in inputs]
    got = []
    i = 0
    while i < len(ops):
        batch = h.call(ops[i:i + 500])
        done = [r for r in batch if r.get("kind") != "skipped"]  # a throw ends the batch
        got += done
        i += len(done)
    bad = []
    for a, hr in zip(inputs, got):
        want = tv.helper_outcome(hr)
        run = G.run_concrete(prog, fname, spec, a, gins, broken=broken)
        mine = tv.concrete_outcome(prog, fname, run)
        if not tv.same_outcome(mine, want):
            bad.append(f"{fname}({a}): translation {mine} / runtime {want}")
    return len(inputs), bad


@functools.cache
def patched_program(patch: str, platform: str = "linux/amd64"):
    """The translation of the runtime with a corpus patch (goref/mutants/<patch>) applied."""
    import tempfile
    from importlib import resources
    from pathlib import Path

    from palloc.goref.patch import apply_patch
    from palloc.proofs import tv

    tc = toolchain()
    with tempfile.TemporaryDirectory(prefix="palloc-tv-test-") as d:
        ov = apply_patch(Path(str(resources.files("palloc.goref.mutants").joinpath(patch))), tc.goroot,
                         Path(d) / "ov")
        [p] = tv.programs(tc, [platform], overlay=ov.files,
                          files=sorted({Path(r).name for r in ov.files if r.startswith("src/runtime/")}))
    return p
