"""--total-seconds (fuzz, check, verify-change): the whole run, builds included, ends by it, keeps
what it found and gives a verdict; running out is never a divergence.

A fake toolchain whose build never ends within the budget (a shell script standing in for
`go`) needs no Go; the tests marked `go` run the real helper.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from palloc.cli.main import main

FAKE_GO = r"""#!/bin/sh
if [ "$1" = env ] && [ "$2" = GOCACHE ]; then echo "{cache}/gocache"; exit 0; fi
if [ "$1" = env ]; then printf "%s\n" "{root}" go1.27.3 linux amd64; exit 0; fi
if [ "$1" = test ]; then sleep 120; exit 1; fi
exit 2
"""
MUTANT = Path(__file__).resolve().parents[1] / "goref" / "mutants" / "01-b1-find1-addr-plus-one.patch"


@pytest.fixture
def slow_go(tmp_path, monkeypatch):
    """A toolchain whose helper build takes two minutes, and an empty palloc cache; its GOROOT."""
    root = tmp_path / "goroot"
    (root / "src" / "runtime").mkdir(parents=True)
    (root / "bin").mkdir()
    for name in ("mpagealloc.go", "export_test.go"):
        (root / "src" / "runtime" / name).write_text("package runtime\n")
    go = root / "bin" / "go"
    go.write_text(FAKE_GO.replace("{root}", str(root)).replace("{cache}", str(tmp_path)))
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    return str(root)


def test_fuzz_total_seconds_ends_a_build_with_one_line_and_exit_2(slow_go, tmp_path, capsys):
    failures = tmp_path / "failures"
    assert main(["fuzz", "--goroot", slow_go, "--total-seconds", "6", "--failures", str(failures)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "palloc fuzz: building the helper for go1.27.3 linux/amd64 (about a minute the first time)"
    assert len(err) == 2 and "the --total-seconds budget ran out while building the helper" in err[1]
    assert not failures.exists() or not any(failures.iterdir())


def test_check_lists_a_stage_the_budget_cut_short_as_not_reached(slow_go, capsys, monkeypatch):
    # A quick first stage holds; the fuzz stage's build meets the end of the budget: not reached,
    # not a failure; a stage after the end is not started.
    from palloc.cli import check

    monkeypatch.setattr(check, "stages", lambda args: [
        ("platforms", ["platforms"]), ("fuzz amd64", ["fuzz", "--goroot", slow_go, "--goarch", "amd64"]),
        ("fuzz 386", ["fuzz", "--goroot", slow_go, "--goarch", "386"])])
    assert main(["check", "--total-seconds", "6", "--json"]) == 0
    stages = {s["stage"]: s for s in json.loads(capsys.readouterr().out)["stages"]}
    assert stages["platforms"]["exit"] == 0
    assert stages["fuzz amd64"]["exit"] is None and stages["fuzz amd64"]["not_reached"]
    assert stages["fuzz 386"]["not_reached"] and stages["fuzz 386"]["seconds"] == 0.0


def test_check_with_every_stage_cut_short_checked_nothing_and_exits_2(slow_go, capsys, monkeypatch):
    from palloc.cli import check

    monkeypatch.setattr(check, "stages", lambda args: [("fuzz amd64", ["fuzz", "--goroot", slow_go])])
    assert main(["check", "--total-seconds", "6"]) == 2
    assert "fuzz amd64   not reached" in capsys.readouterr().out


@pytest.mark.go
def test_fuzz_total_seconds_bounds_the_campaign_and_says_no_divergence(need_helper, tmp_path, capsys):
    need_helper("amd64")
    assert main(["fuzz", "--seconds", "600", "--total-seconds", "8", "--jobs", "1", "--failures", str(tmp_path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "no divergence" and out["total_seconds"] == 8.0
    assert 0 < out["seconds"] <= 8 - 3 and out["stats"]["checked_ops"] > 0


@pytest.mark.go
def test_fuzz_total_seconds_keeps_a_divergence_found_within_it(need_helper, tmp_path, capsys):
    need_helper("amd64")
    assert main(["fuzz", "--total-seconds", "20", "--model-variant", "search-addr-update-skipped", "--jobs", "1",
                 "--failures", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert Path(out["failure"]["files"]["json"]).is_file() and Path(out["failure"]["files"]["html"]).is_file()


@pytest.mark.go
def test_verify_change_total_seconds_cut_during_the_build_is_nothing_checked(need_helper, tmp_path, monkeypatch,
                                                                              capsys):
    need_helper("amd64")  # a toolchain is here; the patched helper is built in empty caches
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    # An empty Go build cache too: with a warm one (an earlier test built this mutant) the build
    # finishes inside the 3 s and the budget runs out in a later stage instead.
    monkeypatch.setenv("GOCACHE", str(tmp_path / "gocache"))
    rc = main(["verify-change", str(MUTANT), "--goarch", "amd64", "--no-prove", "--no-baseline", "--total-seconds", "3",
               "--failures", str(tmp_path / "f"), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 2 and rep["verdict"] == "nothing checked"
    assert [(c["name"], c["status"]) for c in rep["checks"]] == [("build", "skipped")]
    assert "--total-seconds budget ran out while building" in rep["checks"][0]["detail"]
    # the build it cut is gone: no go or compile process (its environment names this GOCACHE), no
    # half-built helper in the cache
    from reliability.reliability_runs import _ours

    from palloc.goref.build import cache_dir

    time.sleep(0.5)
    assert _ours(str(tmp_path / "gocache")) == [], "build processes left running"
    helpers = cache_dir(writable=False) / "helpers"
    assert not helpers.is_dir() or not [p for p in helpers.iterdir() if p.suffix == ".test" or p.name.startswith(".build-")]
