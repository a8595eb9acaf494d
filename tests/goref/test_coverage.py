"""Coverage of the runtime's own allocator code (goref/coverage.py): counted in a helper built
with Go's coverage of package runtime, attributed to palloc's operations alone, and read back;
verify-change says how often a patch's changed lines ran, and a campaign that never ran them
is inconclusive."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from palloc.goref import coverage as cov
from palloc.spec.errors import PallocError

DATA = Path(__file__).parent / "data"
MUTANTS = Path(str(resources.files("palloc.goref.mutants")))
SRC = ["package runtime", "", "func (p *pageAlloc) f(x int) int {", "\tif x > 0 {", "\t\treturn 1", "\t}",
       "\treturn 0", "}", "", "func g() {", "\t_ = 1", "}"]


def test_a_profile_gives_lines_reached_and_the_runs_never_reached():
    blocks = cov.parse_profile("mode: count\n"
                               "runtime/x.go:3.35,4.12 1 7\nruntime/x.go:4.12,6.3 1 0\nruntime/x.go:7.2,7.10 1 7\n"
                               "runtime/x.go:10.10,11.7 1 0\nruntime/x.go:3.35,4.12 1 2\n")
    assert len(blocks) == 4 and blocks[0].count == 9  # a block listed twice is added up
    fc = cov.file_coverage(blocks, "x.go", SRC)
    assert fc.lines == {3: 9, 4: 9, 5: 0, 7: 7, 10: 0, 11: 0}
    assert fc.reached == 3 and (fc.blocks, fc.blocks_reached) == (4, 2)
    assert fc.never_reached() == [(5, 5, "(*pageAlloc).f"), (10, 11, "g")]


def test_a_profile_line_that_is_not_one_is_an_error():
    with pytest.raises(PallocError, match="line 2 unreadable"):
        cov.parse_profile("mode: count\nruntime/x.go:3 1 7\n")


def test_changed_lines_are_the_patched_files_new_lines(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "x.go").write_text("\n".join(SRC) + "\n")
    new = list(SRC)
    new[4] = "\t\treturn 2"
    del new[10]  # a deletion marks the line after it
    (tmp_path / "x.go").write_text("\n".join(new) + "\n")
    assert cov.changed_lines(base, {"src/runtime/x.go": str(tmp_path / "x.go")}) == {"x.go": [5, 11]}


def _report(counts: dict[int, int], changed: list[int]) -> cov.Report:
    lines = {l: c for l, c in counts.items()}
    fc = cov.FileCoverage("x.go", lines, 1, 1, cov.functions(SRC))
    rows = [{"file": "x.go", "line": l, "function": cov.function_at(fc.funcs, l), "statement": l in lines,
             "count": lines.get(l, 0), "text": SRC[l - 1].strip()} for l in changed]
    return cov.Report([fc], {"x.go": SRC}, rows)


def test_changed_lines_that_never_ran_say_so_and_ones_that_ran_say_how_often():
    never = _report({4: 3, 5: 0}, [5])
    assert never.changed_status == "never ran"
    assert never.changed_sentences() == ["the changed line in (*pageAlloc).f (x.go:5) never ran: no divergence means "
                                         "nothing here"]
    ran = _report({4: 18204, 5: 18204, 11: 0}, [5, 11])
    assert ran.changed_status == "ran"
    assert ran.changed_sentences() == ["the changed line in (*pageAlloc).f (x.go:5) ran 18,204 times",
                                       "the changed line in g (x.go:11) never ran: no divergence means nothing here"]
    assert _report({4: 1}, [1]).changed_status == "no statements"  # a declaration: nothing to count


def test_steering_lists_the_verbs_of_the_changed_functions_more_often(tmp_path):
    from palloc.goref.fuzz import VERB_WEIGHTS
    from palloc.goref.toolchain import find_toolchain

    try:
        tc = find_toolchain()
    except PallocError as e:
        pytest.skip(str(e))
    src = (tc.runtime_dir / "mpagecache.go").read_text().splitlines()
    line = next(i for i, l in enumerate(src, 1) if l.startswith("func (c *pageCache) flush"))
    verbs = cov.steer_verbs({"mpagecache.go": [line + 2]}, tc)
    assert verbs.count("cache_flush") == VERB_WEIGHTS.count("cache_flush") + cov.STEER_EXTRA
    assert verbs.count("alloc") == VERB_WEIGHTS.count("alloc")
    assert cov.steer_verbs({"mheap.go": [10]}, tc) is None
    target = cov.target_verbs({"mpagecache.go": [line + 2]}, tc)
    assert target[:2] == ["alloc", "free"] and target.count("cache_flush") == cov.TARGET_WEIGHT
    assert "scavenge" not in target


def test_the_html_view_marks_reached_never_reached_and_changed_lines(tmp_path):
    rep = _report({4: 3, 5: 0}, [5])
    page = cov.write_html(rep, tmp_path / "c.html").read_text()
    assert page.count("class='cov'") == 1 and "class='unc chg'" in page and "<script" in page
    assert "http" not in page  # self-contained


@pytest.mark.go
def test_a_coverage_helper_counts_only_pallocs_operations(tmp_path):
    """A helper that runs only bitmap searches: its own heap runs mpagealloc.go all the time,
    yet what is counted is the searches, exactly."""
    from palloc.goref.build import build_helper
    from palloc.goref.driver import GoHelper
    from palloc.goref.toolchain import find_toolchain

    try:
        tc = find_toolchain()
    except PallocError as e:
        pytest.skip(str(e))
    binary = build_helper(tc, "amd64", coverage=True)
    d = tmp_path / "cover"
    d.mkdir()
    with GoHelper(binary, goarch="amd64", **cov.helper_options(d)) as h:
        for k in range(20):
            r = h.call([{"op": "bits_find", "bits": hex((1 << 512) - 1 - (7 << (3 * k))), "npages": 3,
                         "search_idx": 0}] * 10 + [{"op": "constants"}])
            assert r[0]["kind"] == "ok", r[0]
    rep = cov.report(cov.read_profile(d, tc), tc)
    by = {f.name: f for f in rep.files}
    assert by["mpagealloc.go"].reached == 0  # the helper's own heap ran it; palloc's operations did not
    assert by["mpagecache.go"].reached == 0 and by["mranges.go"].reached == 0
    find = next(l for l, t in enumerate(rep.sources["mpallocbits.go"], 1) if t.startswith("func (b *pallocBits) find("))
    assert by["mpallocbits.go"].lines[find + 1] == 200  # 20 batches of 10 searches, each counted once
    # The binary's own profile counts the whole process: its own heap ran mpagealloc.go (F30).
    whole = [u for units in cov._meta_units(d, tc) for u in units if u[0] == "mpagealloc.go"]
    assert sum(1 for u in whole if u[-1] > 0) > 50


@pytest.mark.go
@pytest.mark.slow
def test_a_60s_style_campaign_reports_figures_per_file(tmp_path, capsys):
    from palloc.cli.main import main

    code = main(["fuzz", "--seconds", "10", "--jobs", "1", "--coverage", str(tmp_path / "cov"), "--no-corpus",
                 "--failures", str(tmp_path / "f"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    files = {f["file"]: f for f in out["runtime_coverage"]["files"]}
    assert set(files) >= {"mpagealloc.go", "mpallocbits.go", "mpagecache.go", "mranges.go", "mgcscavenge.go"}
    assert all(0 < f["lines_reached"] <= f["lines"] for f in files.values())
    assert (tmp_path / "cov" / "amd64.html").is_file() and (tmp_path / "cov" / "amd64.profile.txt").is_file()


def _verify(patch: Path, tmp_path: Path) -> dict:
    from palloc.cli.verify_change import patch_overlay
    from palloc.goref.verdict import verify
    from palloc.goref.toolchain import find_toolchain

    try:
        tc = find_toolchain()
    except PallocError as e:
        pytest.skip(str(e))

    class A:
        goroot = None

    A.patch = patch
    ov = patch_overlay(A, tc)
    return verify(ov, tc, ["amd64"], 8, replay_dir=tmp_path / "f", baseline=False, name=patch.stem, go_test=False,
                  jobs=1, prove=False)


@pytest.mark.go
@pytest.mark.slow
def test_verify_change_on_a_patch_whose_changed_line_never_runs_is_inconclusive(tmp_path):
    rep = _verify(DATA / "cold-trychunkof.patch", tmp_path)
    (d,) = [c for c in rep["checks"] if c["name"] == "differential"]
    assert rep["verdict"] == "inconclusive" and d["verdict"] is None, rep
    assert "never ran: no divergence means nothing here" in d["detail"]
    assert d["evidence"]["runtime_coverage"]["changed_status"] == "never ran"
    # A targeted campaign ran after the first, drawing mostly the verbs that reach mpagealloc.go.
    assert "; then " in d["detail"] and "drawing mostly alloc, free, find, grow" in d["detail"], d["detail"]
    assert d["evidence"]["targeted"]["checked_ops"] > 0


@pytest.mark.go
@pytest.mark.slow
def test_verify_change_on_a_patch_whose_changed_lines_run_says_how_often(tmp_path):
    rep = _verify(MUTANTS / "54-benign-popcnt-range-loop.patch", tmp_path)
    (d,) = [c for c in rep["checks"] if c["name"] == "differential"]
    assert rep["verdict"] == "no divergence found" and d["verdict"] == "holds", rep
    cov_ = d["evidence"]["runtime_coverage"]
    assert cov_["changed_status"] == "ran"
    ran = [c for c in cov_["changed"] if c["statement"]]
    assert ran and all(c["count"] > 0 for c in ran)
    assert "(*pageBits).popcntRange" in d["detail"] and " times" in d["detail"]
