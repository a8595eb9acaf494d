"""check_patch on corpus patches: equivalent mutants and benign refactors proved, mutants refuted.

The fast cases run in the default suite without confirmation (which builds a patched helper);
one slow test confirms a counterexample in the real patched runtime and checks its Go test."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from palloc.proofs import tv
from tv_support import toolchain

pytestmark = pytest.mark.go


def _overlay(tmp_path, name):
    from palloc.goref.patch import apply_patch

    tc = toolchain()
    patch = Path(str(resources.files("palloc.goref.mutants").joinpath(name)))
    return tc, apply_patch(patch, tc.goroot, tmp_path / "ov")


@pytest.mark.parametrize("patch, fn", [
    ("30-n-findlargen-exact-fit-fails.patch", "pallocBits.findLargeN"),   # F19: equivalent, now proved
    ("51-benign-merge-max-as-ifs.patch", "mergeSummaries"),
    ("55-benign-range-size-lessequal.patch", "addrRange.size"),
])
def test_equivalent_patch_is_proved(tmp_path, patch, fn):
    tc, ov = _overlay(tmp_path, patch)
    rep = tv.check_patch(tc, ov.files, "amd64", confirm=False)
    assert rep.verdict == "proved equivalent", rep.format()
    assert rep.exit_code() == 0
    assert any(f.name == fn and f.verdict == "proved" for f in rep.functions)


@pytest.mark.parametrize("patch, fn", [
    ("27-n-findbitrange64-p-equals-n.patch", "findBitRange64"),
    ("20-n-packing-end-shift.patch", "pallocSum.end"),
    ("47-n-offaddr-raw-compare.patch", "offAddr.lessThan"),
    ("48-n-filealigned-shift.patch", "fillAligned"),
    ("50-n-should-scavenge-or.patch", "scavChunkData.shouldScavenge"),
])
def test_breaking_patch_gets_a_counterexample(tmp_path, patch, fn):
    tc, ov = _overlay(tmp_path, patch)
    rep = tv.check_patch(tc, ov.files, "amd64", confirm=False)
    f = next(f for f in rep.functions if f.name == fn)
    assert f.verdict == "counterexample", rep.format()
    assert f.original != f.patched and f.input is not None and "func TestPalloctv" in f.go_test
    assert rep.exit_code() == 2  # unconfirmed: never a pass, never `breaks`


def test_patch_outside_the_scope_is_reported_not_ignored(tmp_path):
    tc, ov = _overlay(tmp_path, "37-n-update-exclusive-limit.patch")
    rep = tv.check_patch(tc, ov.files, "amd64", confirm=False)
    assert [f.verdict for f in rep.functions] == ["not in scope"]
    assert rep.functions[0].name == "pageAlloc.update" and rep.exit_code() == 2


@pytest.mark.slow
def test_counterexample_is_confirmed_by_the_patched_runtime_and_its_go_test_fails_there(tmp_path):
    from palloc.goref.gotest import run_go_test

    tc, ov = _overlay(tmp_path, "27-n-findbitrange64-p-equals-n.patch")
    rep = tv.check_patch(tc, ov.files, "amd64")
    f = next(f for f in rep.functions if f.name == "findBitRange64")
    assert f.verdict == "counterexample" and f.confirmed is True, rep.format()
    assert rep.exit_code() == 1
    test = tmp_path / "tv_case_test.go"
    test.write_text(f.go_test)
    assert not run_go_test(test, "amd64", extra_overlay=ov.files).passed
    assert run_go_test(test, "amd64").passed
