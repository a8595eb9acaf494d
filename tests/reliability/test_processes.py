"""Fault injection on palloc's processes: Ctrl-C and SIGKILL of a
campaign, of one of its workers, of a helper, and of a build; a runtime that hangs before it
starts. Each run is the installed entry point in its own session (as a terminal runs it), with
TMPDIR a fresh folder; afterwards no process that saw that folder may be running and the folder
must be empty.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability_runs import DATA, _need_go, _ours, palloc_run

pytestmark = pytest.mark.go


def _start(args: list[str], tmp: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    t = tmp / "tmpdir"
    t.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(t), **(env or {})}
    # As a terminal starts it: its own process group, and Ctrl-C not ignored (a shell's
    # background job, as CI may run the suite, inherits SIGINT ignored).
    p = subprocess.Popen([sys.executable, "-m", "palloc.cli.main", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=tmp, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return p, t


def _wait_for(pred, seconds: float, what: str):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"never saw {what} within {seconds:.0f} s")


def _pids(marker: str, needle: str) -> list[int]:
    """Pids of live processes whose environment mentions marker and command line needle."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            env = Path(f"/proc/{d}/environ").read_bytes().decode("utf-8", "replace")
            state = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in env and needle in cmd and state != "Z":
            out.append(int(d))
    return out


def _finish(p: subprocess.Popen, t: Path, seconds: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=seconds)
    assert "Traceback" not in err, err
    _wait_for(lambda: not _ours(str(t)), 30, "every process of the run gone")
    assert sorted(os.listdir(t)) == [], "temporary files left behind"
    return p.returncode, out, err


def test_ctrl_c_of_a_two_worker_campaign_stops_everything_and_keeps_the_results(tmp_path, need_helper):
    need_helper("amd64")  # built and cached before the clock starts
    p, t = _start(["fuzz", "--seconds", "120", "--jobs", "2"], tmp_path)
    _wait_for(lambda: len(_pids(str(t), "TestPallocServer")) >= 2, 90, "both workers' helpers")
    time.sleep(1)
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    code, out, err = _finish(p, t)
    assert code == 2 and "interrupted; results found so far were kept" in err, (code, out, err)
    assert "checked ops" in out


def test_sigkill_of_a_worker_is_one_line_and_leaves_nothing_running(tmp_path, need_helper):
    need_helper("amd64")
    p, t = _start(["fuzz", "--seconds", "120", "--jobs", "2"], tmp_path)
    _wait_for(lambda: len(_pids(str(t), "TestPallocServer")) >= 2, 90, "both workers' helpers")
    worker = _wait_for(lambda: _pids(str(t), "spawn_main"), 10, "a worker")[0]
    os.kill(worker, signal.SIGKILL)
    code, out, err = _finish(p, t)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "died (exit code -9)" in lines[0], err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_helper_killed_mid_campaign_is_named_and_the_campaign_goes_on(tmp_path, need_helper, sig):
    # Item 6: not "runtime is not deterministic", and not the end of the campaign.
    need_helper("amd64")
    p, t = _start(["fuzz", "--seconds", "12", "--jobs", "1"], tmp_path)
    helper = _wait_for(lambda: _pids(str(t), "TestPallocServer"), 90, "the helper")[0]
    time.sleep(2)
    os.kill(helper, sig)
    code, out, err = _finish(p, t)
    assert code == 0, (code, out, err)
    assert "helper death not caused by the runtime" in out and sig.name in out, out
    assert "no divergence" in out


def test_a_ctrl_c_sent_to_a_worker_alone_is_ignored(tmp_path, need_helper):
    # Workers leave Ctrl-C to the parent, which stops them all; one sent to a worker alone
    # changes nothing.
    need_helper("amd64")
    p, t = _start(["fuzz", "--seconds", "10", "--jobs", "2"], tmp_path)
    worker = _wait_for(lambda: _pids(str(t), "spawn_main"), 60, "a worker")[0]
    time.sleep(2)
    os.kill(worker, signal.SIGINT)
    code, out, err = _finish(p, t)
    assert code == 0 and "no divergence" in out, (code, out, err)


def test_a_runtime_that_hangs_before_it_starts_breaks_at_start_up(tmp_path):
    # Item 3's second patch: the runtime's own heap never grows, so nothing answers. The
    # verdict comes within the build and the start-up watchdog (30 s), and nothing is left.
    _need_go()
    r = palloc_run(["verify-change", str(DATA / "hang-runtime.patch"), "--goarch", "amd64", "--seconds", "5",
                    "--no-baseline", "--failures", str(tmp_path / "f")], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BREAKS" in r.stdout and "start-up" in r.stdout and "go-hang" in r.stdout, r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_build_interrupted_or_killed_leaves_no_go_running(tmp_path, sig):
    # Item 15: Ctrl-C during a build used to leave Go's work folder; SIGKILL orphaned
    # `go test -c`. The build runs in its own group, dies with palloc, in a private TMPDIR.
    _need_go()
    # A cold Go build cache, so that the build is still running when the signal comes.
    p, t = _start(["goref", "build", "--force"], tmp_path, env={"PALLOC_CACHE_DIR": str(tmp_path / "cache"),
                                                                 "GOCACHE": str(tmp_path / "gocache")})
    _wait_for(lambda: _pids(str(t), "test -c"), 60, "go test -c")
    time.sleep(0.5)
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)
        code, out, err = _finish(p, t)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        return
    os.kill(p.pid, sig)
    p.communicate(timeout=30)
    # go dies with palloc at once (PDEATHSIG); its compilers finish what they were doing.
    _wait_for(lambda: not _pids(str(t), "test -c"), 5, "go test -c gone")
    _wait_for(lambda: not _ours(str(t)), 180, "every process of the build gone")
    # The private TMPDIR of a palloc that was killed is swept by the next palloc.
    assert os.listdir(t), "the killed palloc could not have removed its folder"
    r = palloc_run(["platforms", "--json"], tmp_path)
    assert r.returncode == 0 and sorted(os.listdir(t)) == []
