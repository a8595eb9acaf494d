"""The failure corpus (goref/corpus.py, `palloc corpus list|replay|prune`): each divergence kept
once, replayed before anything is generated, a bad file said in one line while the others run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from palloc.cli.main import main
from palloc.goref import corpus
from palloc.goref import ops as O
from palloc.goref.fuzz import Case, goarch_platform

DATA = Path(__file__).parent.parent / "reliability" / "data"


def _case(npages: int = 1, variant: str | None = None) -> Case:
    p = goarch_platform("amd64")
    base = (p.base_chunk_idx * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask
    return Case("amd64", "1.27", None, [O.Grow(base, p.palloc_chunk_bytes), O.Alloc(npages), O.Alloc(3)], variant)


def test_a_case_is_kept_once_under_its_key(tmp_path):
    a = corpus.add(tmp_path, _case(), "fuzz")
    assert a == tmp_path / "amd64" / f"{corpus.key(_case())}.json"
    assert corpus.add(tmp_path, _case(), "verify-change x.patch") is None  # the same input again
    assert corpus.add(tmp_path, _case(2), "fuzz") is not None
    assert corpus.add(tmp_path, _case(5, "find-off-by-one"), "fuzz") is None  # a broken model's: not kept
    d = json.loads(a.read_text())
    assert d["format"] == "palloc-fuzz-case/1" and d["corpus"]["source"] == "fuzz"
    assert len(list((tmp_path / "amd64").glob("*.json"))) == 2


def test_a_corrupted_file_is_listed_as_such_and_the_others_are_still_read(tmp_path, capsys):
    corpus.add(tmp_path, _case(), "fuzz")
    corpus.add(tmp_path, _case(2), "fuzz")
    (tmp_path / "amd64" / "0bad.json").write_text('{"format": "palloc-fuzz-case/1", "goarch": "amd64", "ops": [')
    es = list(corpus.entries(tmp_path))
    assert [e.case is None for e in es] == [True, False, False]
    code = main(["corpus", "list", "--corpus", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.count(" amd64 ") == 2 and "2 cases in" in out and "1 unreadable" in out
    assert err.count("\n") == 1 and "0bad.json: not a palloc fuzz case" in err


def test_list_of_a_missing_corpus_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["corpus", "list", "--corpus", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no corpus at" in err


@pytest.mark.go
def test_replay_runs_every_case_and_a_corrupted_one_is_exit_2_in_one_line(tmp_path, capsys, need_helper):
    need_helper("amd64")
    corpus.add(tmp_path, _case(), "fuzz")
    corpus.add(tmp_path, _case(2), "fuzz")
    (tmp_path / "amd64" / "0bad.json").write_text("not json")
    code = main(["corpus", "replay", "--corpus", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert out.count("the model and the runtime agree") == 2
    assert err.count("\n") == 1 and "0bad.json" in err
    (tmp_path / "amd64" / "0bad.json").unlink()
    assert main(["corpus", "replay", "--corpus", str(tmp_path), "--json"]) == 0
    assert [c["agree"] for c in json.loads(capsys.readouterr().out)["cases"]] == [True, True]


@pytest.mark.go
def test_prune_drops_cases_that_agree_now_and_duplicates_and_keeps_bad_files(tmp_path, capsys, need_helper):
    need_helper("amd64")
    kept = corpus.add(tmp_path, _case(), "fuzz")
    dup = kept.with_name("dup.json")
    dup.write_text(kept.read_text())
    (tmp_path / "amd64" / "0bad.json").write_text("{}")
    assert main(["corpus", "prune", "--corpus", str(tmp_path), "--dry-run"]) == 2
    assert kept.exists() and dup.exists()
    capsys.readouterr()
    code = main(["corpus", "prune", "--corpus", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2  # the bad file: kept, and said
    assert sorted(Path(d["file"]).name for d in out["dropped"]) == sorted([kept.name, dup.name])
    assert any("duplicate" in d["why"] for d in out["dropped"])
    assert any("no longer diverges on this runtime" in d["why"] for d in out["dropped"])
    assert not kept.exists() and not dup.exists() and (tmp_path / "amd64" / "0bad.json").exists()


@pytest.mark.go
def test_fuzz_replays_the_corpus_first_and_reports_a_case_that_diverges_again(tmp_path, capsys, need_helper):
    need_helper("amd64")
    kept = corpus.add(tmp_path / "corpus", _case(), "fuzz")
    (tmp_path / "corpus" / "amd64" / "0bad.json").write_text("[]")
    # b1's model gets a one-page alloc wrong: the corpus case shows it before anything is generated.
    code = main(["fuzz", "--model-variant", "b1-find-addr-plus-one", "--corpus", str(tmp_path / "corpus"),
                 "--seconds", "30", "--jobs", "1", "--failures", str(tmp_path / "f"), "--json"])
    out, err = capsys.readouterr()
    rep = json.loads(out)
    assert code == 1 and rep["result"] == "divergence", rep
    (f,) = rep["failures"]
    assert f"the corpus case {kept} diverges again" in f["note"]
    assert rep["stats"]["examples"] == 0  # found by the replay, before any heap was generated
    assert "0bad.json" in err and err.count("palloc: corpus:") == 1
    # Without the broken model the corpus agrees and the campaign goes on.
    code = main(["fuzz", "--corpus", str(tmp_path / "corpus"), "--seconds", "2", "--jobs", "1",
                 "--failures", str(tmp_path / "f"), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["stats"]["examples"] > 0, rep


@pytest.mark.go
@pytest.mark.slow
def test_verify_change_keeps_its_divergence_and_replays_it_first_next_time(tmp_path, capsys):
    argv = ["verify-change", str(DATA / "throw-find-npages5.patch"), "--goarch", "amd64", "--seconds", "30", "--jobs",
            "1", "--no-baseline", "--no-go-test", "--no-prove", "--no-coverage", "--corpus", str(tmp_path / "c"),
            "--failures", str(tmp_path / "f"), "--json"]
    assert main(argv) == 1
    capsys.readouterr()
    (kept,) = (tmp_path / "c" / "amd64").glob("*.json")
    assert json.loads(kept.read_text())["corpus"]["source"].startswith("verify-change ")
    assert main(argv) == 1
    rep = json.loads(capsys.readouterr().out)
    (d,) = [c for c in rep["checks"] if c["name"] == "differential"]
    assert f"the corpus case {kept} diverges again" in (d["evidence"].get("note") or "")
