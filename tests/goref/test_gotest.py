"""The Go test palloc writes for a case compiles in the real runtime's test package and fails
exactly where the model and the runtime disagree (goref/gotest.py, `palloc replay --go-test`)."""

from __future__ import annotations

import json

import pytest

from palloc.cli.main import main
from palloc.goref import ops as O
from palloc.goref.fuzz import GOARCH_PLATFORM, Case
from palloc.goref.gotest import run_go_test
from palloc.goref.report import case_id, go_test_source, model_run, write_failure
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE
from palloc.spec.errors import PallocError


def every_kind(goarch: str, variant: str | None = None) -> Case:
    """A case with one operation of every kind the fuzzer sends (ops.OP_TYPES)."""
    p = platform(GOARCH_PLATFORM[goarch])
    base = (p.base_chunk_idx * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask
    bits = (1 << 100) - 1 | 0b1011 << 200
    ops = [
        O.Grow(base, 4 * p.palloc_chunk_bytes), O.Alloc(3), O.Alloc(600), O.AllocRange(base + 700 * PAGE_SIZE, 5),
        O.Free(base, 3), O.Find(7), O.AllocToCache(0), O.CacheAlloc(0, 2), O.CacheFlush(0),
        O.Scavenge(1 << 20, True), O.NextGen(), O.Scavenge(1 << 20, False),
        O.BitsFind(bits, 3, 0), O.BitsSummarize(bits), O.FindBitRange64(0xF0F0, 3),
        O.FindScavengeCandidate(bits, 1 << 300, 511, 1, 64), O.FillAligned(0x0101, 4),
        O.AddrRangesNew(), O.AddrRangesAdd(base, base + 0x10000), O.AddrRangesAdd(base + 0x40000, base + 0x50000),
        O.AddrRangesFindSucc(base + 0x20000), O.AddrRangesFindAddrGreaterEqual(base + 0x20000),
        O.AddrRangesContains(base + 0x8000), O.AddrRangesClone(), O.AddrRangesRemoveLast(0x4000),
        O.AddrRangesRemoveGreaterEqual(base + 0x8000),
    ]
    assert {op.kind for op in ops} == set(O.OP_TYPES)
    return Case(goarch, "1.27.3", None, ops, variant)


def test_every_kind_of_operation_has_a_go_form():
    src = go_test_source(every_kind("amd64"), "x", model_run(every_kind("amd64")))
    assert "a pure function" not in src
    for call in ("bits.Find(3, 0)", "bits.Summarize()", "FindBitRange64(0xf0f0, 3)", "d.FindScavengeCandidate(511, 1, 0x40)",
                 "FillAligned(0x101, 4)", "ar = NewAddrRanges()", "ar.FindSucc(", "ar.PallocFindAddrGreaterEqual(",
                 "ar.PallocContains(", "ar.PallocCloneInto(&clone)", "ar.PallocRemoveLast(0x4000)",
                 "ar.PallocRemoveGreaterEqual(", "ar.PallocAddrRangesState()"):
        assert call in src, call


@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_the_go_test_of_a_case_the_sides_agree_on_passes_on_the_runtime(goarch, tmp_path, need_helper):
    need_helper(goarch)
    case = every_kind(goarch)
    path = tmp_path / f"{case_id(case)}_test.go"
    path.write_text(go_test_source(case, case_id(case), model_run(case)))
    res = run_go_test(path, goarch)
    assert res.passed and not res.errors, res.output


@pytest.mark.go
def test_the_go_test_of_a_divergence_fails_at_the_divergent_step(tmp_path, capsys, need_helper):
    need_helper("amd64")
    # find-off-by-one: the model's find is broken, so the Go test's expected values are wrong
    # from the first alloc the fast path cannot place.
    case = Case("amd64", "1.27.3", {"chunks": {0x200C000: [[36, 264]], 0x200C001: [[0, 512]], 0x200C002: []}, "scav": {}},
                [O.Find(512)], "find-off-by-one")
    json_path = write_failure(case, tmp_path)["json"]
    assert main(["replay", str(json_path), "--go-test", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["agree"] and out["go_test"]["passed"] is False
    assert any("step 0: find(512) = (0x3000800000, 0x3000000000)" in e for e in out["go_test"]["errors"])


def test_a_go_test_that_does_not_compile_says_where(tmp_path, need_helper):
    need_helper("amd64")
    bad = tmp_path / "bad_test.go"
    bad.write_text("package runtime_test\n\nimport \"testing\"\n\nfunc TestPallocBad(t *testing.T) {\n\tundefinedThing()\n}\n")
    with pytest.raises(PallocError, match=r"the Go test bad_test.go does not build: .*bad_test.go:6.*undefined"):
        run_go_test(bad, "amd64")


def test_a_file_without_a_test_function_is_refused(tmp_path):
    f = tmp_path / "x_test.go"
    f.write_text("package runtime_test\n")
    with pytest.raises(PallocError, match="has no `func TestX"):
        run_go_test(f)


@pytest.mark.go
def test_verify_change_runs_the_go_test_on_the_patched_and_unpatched_runtimes(tmp_path, need_helper):
    # B1 (CL 216697; the mutant: find1 answers one page too far): the Go test of a
    # case it breaks must fail on the patched runtime and pass on the real one.
    from pathlib import Path

    from palloc.goref.verdict import _go_test_check
    from palloc.goref import patch
    from palloc.goref.mutants import generate
    from palloc.goref.toolchain import find_toolchain

    need_helper("amd64")
    tc = find_toolchain()
    ov = patch.apply_patch(Path(generate.__file__).parent / "01-b1-find1-addr-plus-one.patch", tc.goroot, tmp_path / "ov")
    case = Case("amd64", "1.27.3", None, [O.Grow(0x3000000000, 0x400000), O.Alloc(1), O.Alloc(1)])
    go_file = write_failure(case, tmp_path / "case")["go"]
    runs = _go_test_check(go_file, "amd64", tc, dict(ov.files))
    assert runs["patched"]["passed"] is False and runs["unpatched"]["passed"] is True
    assert runs["reproduces"]


@pytest.mark.go
def test_replay_keeps_its_verdict_when_the_go_test_beside_it_does_not_build(tmp_path, capsys, need_helper):
    need_helper("amd64")
    case = Case("amd64", "1.27.3", None, [O.Grow(0x3000000000, 0x400000), O.Alloc(1)])
    paths = write_failure(case, tmp_path)
    paths["go"].write_text(paths["go"].read_text().replace("b.Alloc(1)", "b.Alloc(\"one\")"))
    assert main(["replay", str(paths["json"]), "--go-test"]) == 2
    out, err = capsys.readouterr()
    assert "the model and the runtime agree (2 operations)" in out
    assert "does not build" in err and "_test.go:" in err
