"""Fault injection: a runtime that throws, crashes, hangs or keeps
a state the model does not is a divergence, with a shrunk case, its Go test and its replay, and
nothing is left running or lying about afterwards.

Each patch in data/ injects one fault into the real runtime, for test-mode allocators only (the
helper's), so the patched runtime starts:

  throw-find-npages5       pageAlloc.find throws for npages == 5
  crash-findlargen-strict  findLargeN's `>=` made `>` (a wrong result, then a crash)
  hang-find-npages3        pageAlloc.find loops forever for npages == 3
  short-summary-slice      sysGrow slices summary level 1 one entry short
  hang-runtime             grow loops forever for the runtime's own heap: nothing starts

Each verify-change here builds one patched helper (about 40 s cold on two cores); the runs share
the cache. Every run's TMPDIR is a fresh folder, checked empty afterwards, and no process of the
run may outlive it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from reliability_runs import DATA, _need_go, palloc_run

pytestmark = pytest.mark.go


def verify(patch: str, tmp: Path, *extra: str) -> tuple[int, dict]:
    r = palloc_run(["verify-change", str(DATA / patch), "--goarch", "amd64", "--json",
                    "--failures", str(tmp / "failures"), *extra], tmp)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"stderr": r.stderr}


def _differential(rep: dict) -> dict:
    return next(c for c in rep["checks"] if c["name"] == "differential")


@pytest.fixture(scope="module")
def throw_run(tmp_path_factory):
    """verify-change of the throwing patch: two workers, no baseline, its Go test run."""
    _need_go()
    tmp = tmp_path_factory.mktemp("throw")
    t0 = time.monotonic()
    code, rep = verify("throw-find-npages5.patch", tmp, "--seconds", "10", "--jobs", "2", "--no-baseline")
    return tmp, code, rep, time.monotonic() - t0


def test_a_throwing_patch_breaks_with_a_shrunk_case_and_its_go_test(throw_run):
    # Item 1: one worker's divergence must win over whatever the other worker saw.
    tmp, code, rep, secs = throw_run
    assert code == 1 and rep["verdict"] == "breaks", rep
    c = _differential(rep)
    assert c["verdict"] == "breaks"
    assert "runtime threw 'palloc fault injection: find(5)'" in c["detail"]
    assert c["evidence"]["ops"] <= 3  # shrunk
    runs = c["evidence"]["go_test_runs"]
    assert runs["reproduces"], runs
    # Item 9: the crash's own line, not "neither passed nor failed".
    assert runs["patched"]["outcome"] == "crash"
    assert runs["patched"]["errors"][0] == "fatal error: palloc fault injection: find(5)"


def test_a_verify_change_case_records_its_patch_and_replays_on_the_patched_runtime(throw_run):
    # Item 8: the case alone is enough to reproduce the divergence, Go test included.
    tmp, code, rep, _ = throw_run
    case = Path(_differential(rep)["evidence"]["replay"])
    data = json.loads(case.read_text())
    assert data["patch"]["text"] == (DATA / "throw-find-npages5.patch").read_text()
    assert data["goarch"] == "amd64"
    r = palloc_run(["replay", str(case), "--go-test"], tmp)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "runtime threw 'palloc fault injection: find(5)'" in r.stdout
    assert "CRASH (fatal error: palloc fault injection: find(5))" in r.stdout
    # The same case on the unpatched runtime: the two sides agree.
    r = palloc_run(["replay", str(case), "--unpatched"], tmp)
    assert r.returncode == 0, r.stdout + r.stderr


def test_case_files_are_readable_by_others(throw_run):
    # Item 16: the case files a user shares are 0644 (under the usual umask), not 0600.
    tmp, _, rep, _ = throw_run
    for f in _differential(rep)["evidence"]["files"].values():
        assert os.stat(f).st_mode & 0o044 == 0o044, f


def test_a_wrong_result_then_crash_is_found_by_the_default_engine_on_one_worker(tmp_path):
    # Item 2: the lockstep engine on one worker used to blame an innocent batch (the helper was
    # restarted under batches still pending) and call it a harness fault.
    _need_go()
    code, rep = verify("crash-findlargen-strict.patch", tmp_path, "--seconds", "10", "--jobs", "1",
                       "--no-baseline", "--no-go-test")
    assert code == 1 and rep["verdict"] == "breaks", rep
    c = _differential(rep)
    assert c["verdict"] == "breaks" and "harness" not in c["detail"], c["detail"]


def test_a_hanging_patch_breaks_with_a_hang_case_in_bounded_time(tmp_path):
    # Item 3: a hang is a divergence (the runtime hung where the model returned), found within
    # the budget, the build and a bounded grace; no hung helper is left (palloc_run checks).
    _need_go()
    t0 = time.monotonic()
    code, rep = verify("hang-find-npages3.patch", tmp_path, "--seconds", "10", "--jobs", "2", "--no-baseline",
                       "--no-go-test")
    secs = time.monotonic() - t0
    assert code == 1 and rep["verdict"] == "breaks", rep
    c = _differential(rep)
    assert "runtime hung" in c["detail"], c["detail"]
    assert c["evidence"]["ops"] <= 3
    assert secs < rep["build_seconds"]["amd64"] + 10 + 180, secs  # budget + build + grace


def test_a_runtime_whose_summaries_are_sliced_short_diverges_in_its_state(tmp_path):
    # Item 4: what the runtime's summary slices cover is its state: a divergence, not a
    # "palloc bug" the helper's dump refused to describe.
    _need_go()
    code, rep = verify("short-summary-slice.patch", tmp_path, "--seconds", "10", "--jobs", "1", "--no-baseline",
                       "--no-go-test")
    # Judged against the spec (SPEC §8): the summary slices' lengths are free (summary_memory)
    # unless an entry the allocator reads is cut off; either way the difference is reported.
    assert (code, rep["verdict"]) in ((1, "breaks"), (3, "changes behaviour")), rep
    ev = _differential(rep)["evidence"]
    d = ev.get("model_divergence") or ev.get("first_difference") or ev["divergence"]
    assert d["kind"] in ("state", "result"), d
    # Level 1's slice is an entry short in the runtime: its len, or the entry itself, differs.
    assert any(l.startswith("summary lens") and "65640" in l and "65639" in l or
               ("summary level 1" in l and "runtime not mapped" in l) for l in d["lines"]), d["lines"]
    if code == 3:  # a refactor that must not change behaviour: any divergence breaks
        code, rep = verify("short-summary-slice.patch", tmp_path / "strict", "--seconds", "10", "--jobs", "1",
                           "--no-baseline", "--no-go-test", "--strict")
        assert code == 1 and rep["verdict"] == "breaks", rep


def test_zero_seconds_checks_nothing_and_cannot_pass(tmp_path):
    # Item 13: a check that checked nothing must not say "no divergence".
    _need_go()
    r = palloc_run(["verify-change", str(DATA / "throw-find-npages5.patch"), "--seconds", "0"], tmp_path)
    assert r.returncode == 2 and "--seconds: must be a finite number of seconds above 0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --- the digest lockstep against a helper killed from outside (item 6) ----------------------------


def test_a_helper_killed_from_outside_is_named_and_the_campaign_goes_on(need_helper):
    from palloc.goref import lockstep as L
    from palloc.goref import ops as O

    runner = need_helper("amd64")
    d = L.DigestLockstep(runner)
    d.begin(None)
    base = 0x3000000000
    d.step(O.Grow(base, 0x400000))
    d.flush()
    d.drain()
    for _ in range(5):
        d.step(O.Alloc(3))
    os.kill(runner.go.helper.pid, signal.SIGKILL)  # between two batches, idle
    time.sleep(0.3)
    d.drain()  # no divergence: the heap re-run on a fresh helper agrees
    deaths = runner.stats.helper_deaths
    assert len(deaths) == 1 and "SIGKILL" in deaths[0], deaths
    assert not runner.failures
    # The heap the death interrupted has ended; the next one runs on a new helper.
    d.begin(None)
    d.step(O.Grow(base, 0x400000))
    assert d.step(O.Alloc(1)) is not None
    d.end_seq()
    d.drain()
    assert not runner.failures and len(runner.stats.helper_deaths) == 1


def test_a_dead_helper_is_never_restarted_under_pending_batches(need_helper):
    # The blame rests on this: batches sent to a helper that died are answered from what it
    # wrote; the first unanswered one gets the death, the later ones are "skipped".
    runner = need_helper("amd64")
    h = runner.go.helper
    h.call([{"op": "ping"}])
    gen = h.generation
    t1 = h.submit('[{"op":"ping"}]')
    t2 = h.submit('[{"op":"sleep","ms":60000}]')
    time.sleep(0.3)
    os.kill(h.pid, signal.SIGKILL)
    time.sleep(0.3)
    t3 = h.submit('[{"op":"ping"}]')  # not sent: t2 is still to be collected
    assert h.generation == gen
    assert h.collect(t1, 1)[0]["kind"] == "ok"
    died = h.collect(t2, 1)[0]
    assert died["kind"] == "go-exit" and died["signal"] == "SIGKILL" and "from outside" in died["msg"]
    assert h.collect(t3, 1)[0]["kind"] == "skipped"
    assert h.call([{"op": "ping"}])[0]["kind"] == "ok" and h.generation == gen + 1


def test_an_unwritable_failures_folder_prints_the_case_on_stderr(capsys, need_helper):
    # Item 7, second half: if writing still fails after the campaign, the case is not lost.
    from palloc.goref import campaign
    from palloc.goref.fuzz import Case
    from palloc.goref import ops as O

    runner = need_helper("amd64")
    case = Case("amd64", runner.go_version, None, [O.Alloc(1)])
    entry = {"headline": "crash divergence at step 0"}
    campaign._keep_case(case, "amd64_0123456789", "/proc/palloc-no-such-folder", entry, OSError("read-only"))
    err = capsys.readouterr().err
    assert "cannot write the case to /proc/palloc-no-such-folder" in err
    assert json.loads(err.split("\n", 1)[1])["ops"] == [O.Alloc(1).to_json()]
    assert entry["files"] == {}


# --- the whole matrix (slow): every fault patch, one and two workers, with and without baseline ---


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [True, False], ids=["baseline", "no-baseline"])
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("patch,says", [("throw-find-npages5.patch", ("runtime threw",)),
                                        # a wrong result, or the bad summary data it leads to
                                        ("crash-findlargen-strict.patch", ("runtime returned", "runtime threw",
                                                                           "breaks alloc_first_fit")),
                                        ("hang-find-npages3.patch", ("runtime hung",))])
def test_every_fault_breaks_with_any_jobs_with_and_without_the_baseline(tmp_path, patch, says, jobs, baseline):
    _need_go()
    extra = ["--seconds", "10", "--jobs", jobs] + ([] if baseline else ["--no-baseline"])
    t0 = time.monotonic()
    code, rep = verify(patch, tmp_path, *extra)
    secs = time.monotonic() - t0
    assert code == 1 and rep["verdict"] == "breaks", rep
    c = _differential(rep)
    assert c["verdict"] == "breaks" and any(x in c["detail"] for x in says), c["detail"]
    assert c["evidence"]["ops"] <= 5
    runs = c["evidence"]["go_test_runs"]
    assert runs["reproduces"], runs
    # Within the budget, the build, the baseline's bound and a bounded grace.
    assert secs < rep["build_seconds"]["amd64"] + 10 + (120 if baseline else 0) + 180, secs


@pytest.mark.slow
def test_fuzz_against_a_patched_goroot_finds_the_findlargen_break_on_one_worker(tmp_path):
    # Item 2 as reported: `palloc fuzz --goroot <patched> --jobs 1` (the default lockstep engine)
    # called it a harness fault. The patched tree is a hard-linked copy of the toolchain with one
    # file replaced (the user's GOROOT is never touched).
    import shutil
    import subprocess as sp

    tc = _need_go()
    root = tmp_path / "go"
    sp.run(["cp", "-al", str(tc.goroot), str(root)], check=True)
    f = root / "src" / "runtime" / "mpallocbits.go"
    text = f.read_text()
    f.unlink()  # break the hard link before writing
    f.write_text(text.replace("if s+size >= uint(npages) {", "if s+size > uint(npages) {", 1))
    assert f.read_text() != text and (tc.goroot / "src/runtime/mpallocbits.go").read_text() == text
    r = palloc_run(["fuzz", "--goroot", str(root), "--jobs", "1", "--seconds", "20", "--failures",
                    str(tmp_path / "failures")], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "harness fault" not in r.stdout and "divergence" in r.stdout
    shutil.rmtree(root)


@pytest.mark.parametrize("seen,confirmed", [("runtime hung", False), ("runtime threw 'bad summary data'", True)])
def test_a_divergence_that_does_not_recur_is_a_slow_host_if_a_hang_and_a_crash_if_a_crash(
        need_helper, tmp_path, monkeypatch, seen, confirmed):
    # A batch that timed out on a loaded host must not become "breaks" when the case answers
    # in time on every run after; a runtime that threw once did throw, and stays a divergence.
    from palloc.goref import campaign
    from palloc.goref import lockstep as L
    from palloc.goref import ops as O
    from palloc.goref.compare import Divergence
    from palloc.goref.fuzz import Case, CampaignResult, NotReproduced

    runner = need_helper("amd64")
    ops = [O.Grow(0x3000000000, 0x400000), O.Alloc(3)]
    case = Case("amd64", runner.go_version, None, ops, divergence=Divergence(1, ops[1], "crash", [
        f"model returned (addr 0x3000000000, scav 0x0 bytes), {seen}"]))
    with pytest.raises(NotReproduced, match="does not diverge when run again"):
        runner.self_check_case(case)
    monkeypatch.setattr(L, "run_lockstep_campaign", lambda *a, **k: CampaignResult(runner.stats, case, None, "divergence"))
    out = campaign.run_here(campaign.Config(failures=str(tmp_path / "f")), runner)
    assert out.failures[0]["confirmed"] is confirmed
    assert out.verdict == ("divergence" if confirmed else "fault"), out
    assert Path(out.failures[0]["files"]["json"]).is_file()  # kept either way
