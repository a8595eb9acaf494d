"""`palloc fuzz --jobs`: the lockstep campaign shared by worker processes (goref/campaign.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import pytest

from palloc.cli.main import main
from palloc.goref.campaign import Config, run_pool
from palloc.goref.fuzz import Lockstep
from palloc.goref.lockstep import run_lockstep_campaign
from palloc.spec import platform


def _kinds(first_heap: int, stride: int, heaps: int):
    runner = Lockstep(platform("linux/amd64"), None)  # model against model: no Go needed
    res = run_lockstep_campaign(runner, seconds=60, seed=4, step_count=30, max_examples=heaps,
                                first_heap=first_heap, heap_stride=stride)
    assert res.failure is None
    return runner.stats.by_kind


def test_a_heap_is_the_same_whichever_worker_runs_it():
    # Heaps 0 and 1 run by one worker make exactly the operations of heap 0 alone plus heap 1
    # run as the second worker's first heap (stride 2).
    both = _kinds(0, 1, 2)
    assert both == _kinds(0, 1, 1) + _kinds(1, 2, 1)
    assert _kinds(1, 2, 1) != _kinds(0, 1, 1)  # and the two heaps differ


def test_jobs_is_for_the_lockstep_engine_only(capsys):
    assert main(["fuzz", "--seconds", "1", "--engine", "random", "--jobs", "2"]) == 2
    assert "--jobs 2 needs the lockstep engine" in capsys.readouterr().err
    assert main(["fuzz", "--seconds", "1", "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--jobs" in err and "must be at least 1" in err


@pytest.mark.go
def test_two_workers_catch_a_broken_model_and_write_its_files(tmp_path, capsys, need_helper):
    need_helper("amd64")  # skips without one
    rc = main(["fuzz", "--seconds", "30", "--jobs", "2", "--model-variant", "find-off-by-one",
               "--failures", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["jobs"] == 2 and out["result"] == "divergence"
    for f in out["failures"]:
        assert all(os.path.exists(p) for p in f["files"].values())
    assert main(["replay", out["failure"]["files"]["json"]]) == 1


@pytest.mark.go
def test_a_worker_that_dies_is_an_error_and_the_other_keeps_its_count(tmp_path, need_helper):
    need_helper("amd64")
    killed = []

    def kill_one(stats):
        if not killed and stats.ops > 0:
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.name)

    out = run_pool(Config(seconds=8, failures=str(tmp_path)), 2, kill_one)
    assert killed
    assert out.error is not None and "died (exit code -9) without a result" in out.error
    assert out.stats.ops > 0  # the survivor's work is counted


# Set up as the test above, on purpose: each test reads alone.
@pytest.mark.go
def test_an_interrupt_stops_every_worker_and_keeps_their_counts(tmp_path, need_helper):
    need_helper("amd64")
    seen = []

    def interrupt(stats):
        if not seen and stats.ops > 0:
            seen.append(stats.ops)
            raise KeyboardInterrupt

    out = run_pool(Config(seconds=60, failures=str(tmp_path)), 2, interrupt)
    assert out.stopped == "interrupted" and out.error is None and not out.failures
    assert out.stats.ops >= seen[0]
    assert out.stats.to_json()["seconds"] < 30  # it stopped long before the budget


def test_a_worker_without_a_toolchain_says_so(tmp_path):
    out = run_pool(Config(goroot=str(tmp_path / "no-go"), seconds=5, failures=str(tmp_path)), 2)
    assert out.error is not None and out.error.startswith("fuzz worker 0: ")
    assert "fuzz worker 1: " in out.error


@pytest.mark.go
def test_a_failure_whose_files_cannot_be_written_still_leaves_its_case(tmp_path, monkeypatch, need_helper):
    from palloc.goref import report
    from palloc.goref.campaign import run_here

    runner = need_helper("amd64", variant="find-off-by-one")

    def cannot(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_failure", cannot)
    out = run_here(Config(seconds=30, failures=str(tmp_path), variant="find-off-by-one"), runner)
    f = out.failure
    assert f is not None and f["printer_error"] == "disk full"
    assert json.loads(open(f["files"]["json"]).read())["ops"], "the replayable case is there"


@pytest.mark.go
def test_verify_change_fuzzes_a_patched_runtime_on_two_workers(tmp_path, need_helper):
    from pathlib import Path

    from palloc.goref.verdict import _fuzz_check
    from palloc.goref import patch
    from palloc.goref.build import build_helper
    from palloc.goref.mutants import generate
    from palloc.goref.toolchain import find_toolchain

    need_helper("amd64")
    tc = find_toolchain()
    ov = patch.apply_patch(Path(generate.__file__).parent / "01-b1-find1-addr-plus-one.patch", tc.goroot, tmp_path / "ov")
    binary = build_helper(tc, "amd64", dict(ov.files))
    c = _fuzz_check(None, "amd64", tc, {}, 30.0, 0, tmp_path / "replay", 0.0, binary=binary, jobs=2)
    assert (c.name, c.verdict) == ("differential", "breaks"), c.detail
    # The model's divergence, then the spec's verdict on it (goref/conformance.py): B1 breaks an obligation.
    assert Path(c.evidence["replay"]).is_file() and c.evidence["model_divergence"]["kind"] in ("state", "result")
    assert c.evidence["divergence"]["kind"] in ("spec", "crash") and c.evidence["obligation"], c.evidence["divergence"]


@pytest.mark.go
def test_a_worker_that_cannot_be_started_is_a_clear_error(tmp_path, monkeypatch, need_helper):
    import errno
    from multiprocessing.context import SpawnProcess

    from palloc.spec.errors import PallocError

    need_helper("amd64")
    start = SpawnProcess.start

    def refuse_the_second(self):
        if self.name.endswith("-1"):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        start(self)

    monkeypatch.setattr(SpawnProcess, "start", refuse_the_second)
    with pytest.raises(PallocError, match=r"cannot start fuzz worker 1 \(Resource temporarily unavailable\); try --jobs 1"):
        run_pool(Config(seconds=5, failures=str(tmp_path)), 2)
    assert not multiprocessing.active_children()  # the first one was stopped and joined
