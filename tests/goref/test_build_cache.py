"""The helper cache's size budget (goref/build.py:prune_cache): least recently used helpers go
first, and a helper just used, being built, or kept is never deleted. Fake files, no Go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from palloc.goref import build

MB = 1 << 20
NOW = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PALLOC_HELPER_CACHE_MB", raising=False)
    d = tmp_path / "cache" / "helpers"
    d.mkdir(parents=True)
    return d


def _helper(d: Path, name: str, mb: float, used_hours_ago: float) -> Path:
    """Writes a fake cached helper of mb megabytes last used that many hours before NOW."""
    p = d / f"runtime-go1.27.3-linux-amd64-{name}.test"
    p.write_bytes(b"\0" * int(mb * MB))
    Path(str(p) + ".json").write_text(json.dumps({"version": "go1.27.3", "goarch": "amd64", "extra_overlay": {}}))
    Path(str(p) + ".lock").touch()
    t = NOW - used_hours_ago * HOUR
    os.utime(p, (t, t))
    return p


def _names(paths) -> list[str]:
    return sorted(p.name.split("-")[-1].removesuffix(".test") for p in paths)


def test_least_recently_used_helpers_are_evicted_until_the_cache_fits(cache):
    for name, age in (("a", 5), ("b", 1), ("c", 3), ("d", 2)):
        _helper(cache, name, 1, age)
    removed = build.prune_cache(budget_bytes=int(2.5 * MB), now=NOW)
    assert _names(removed) == ["a", "c"]  # the two oldest
    assert _names(h.path for h in build.cached_helpers()) == ["b", "d"]
    assert not Path(str(removed[0]) + ".json").exists()


def test_cached_helpers_are_listed_most_recently_used_first(cache):
    for name, age in (("a", 5), ("b", 1), ("c", 3)):
        _helper(cache, name, 0.1, age)
    assert [h.path.name.split("-")[-1] for h in build.cached_helpers()] == ["b.test", "c.test", "a.test"]


def test_nothing_is_evicted_under_the_budget(cache):
    _helper(cache, "a", 1, 50)
    assert build.prune_cache(budget_bytes=2 * MB, now=NOW) == []


def test_a_helper_used_within_the_grace_period_is_never_evicted(cache):
    _helper(cache, "old", 1, 2)
    _helper(cache, "recent", 1, 60 / HOUR)  # a minute ago: a process may be about to exec it
    removed = build.prune_cache(budget_bytes=0, now=NOW)
    assert _names(removed) == ["old"]


def test_a_kept_helper_is_never_evicted(cache):
    keep = _helper(cache, "keep", 1, 10)
    _helper(cache, "other", 1, 1)
    assert _names(build.prune_cache(budget_bytes=MB, keep=[keep], now=NOW)) == ["other"]


def test_a_helper_whose_build_lock_is_held_is_never_evicted(cache):
    busy = _helper(cache, "busy", 1, 10)
    _helper(cache, "idle", 1, 9)
    code = ("import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); l.acquire();"
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(busy) + ".lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _names(build.prune_cache(budget_bytes=0, now=NOW)) == ["idle"]
        assert busy.exists()
    finally:
        holder.kill()
        holder.wait()


def test_half_built_helpers_and_lock_files_are_left_alone(cache):
    work = cache / ".build-xyz"
    work.mkdir()
    (work / "runtime.test").write_bytes(b"\0" * MB)
    _helper(cache, "a", 1, 10)
    assert _names(build.prune_cache(budget_bytes=0, now=NOW)) == ["a"]
    assert (work / "runtime.test").exists()
    assert Path(str(cache / "runtime-go1.27.3-linux-amd64-a.test") + ".lock").exists()


def test_budget_comes_from_the_environment(cache, monkeypatch):
    assert build.cache_budget_bytes() == build.CACHE_BUDGET_BYTES
    monkeypatch.setenv("PALLOC_HELPER_CACHE_MB", "1.5")
    assert build.cache_budget_bytes() == int(1.5 * MB)
    for name, age in (("a", 3), ("b", 2), ("c", 1)):
        _helper(cache, name, 1, age)
    assert _names(build.prune_cache(now=NOW)) == ["a", "b"]


def test_cli_lists_and_prunes_the_cache(cache, capsys):
    from palloc.cli.main import main

    for name, age in (("a", 5), ("b", 1)):
        _helper(cache, name, 1, age)
    os.utime(cache / "runtime-go1.27.3-linux-amd64-a.test", (time.time() - 5 * HOUR,) * 2)
    os.utime(cache / "runtime-go1.27.3-linux-amd64-b.test", (time.time() - HOUR,) * 2)
    assert main(["goref", "cache", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [Path(h["path"]).name for h in out["helpers"]] == ["runtime-go1.27.3-linux-amd64-b.test", "runtime-go1.27.3-linux-amd64-a.test"]
    assert main(["goref", "cache", "--prune", "--max-mb", "1.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [Path(p).name for p in out["removed"]] == ["runtime-go1.27.3-linux-amd64-a.test"]
    assert len(out["helpers"]) == 1


def test_a_pinned_helper_survives_its_eviction_and_its_pin_goes_with_its_process(cache):
    h = _helper(cache, "a", 1, 10)
    pin = build.pin_helper(h)
    assert pin != h and pin.read_bytes() == h.read_bytes()
    assert _names(build.prune_cache(budget_bytes=0, now=NOW)) == ["a"]
    assert not h.exists() and pin.exists()  # a running campaign can still restart from it
    build.unpin_helper(pin)
    assert not pin.exists()
    # A pin whose process is gone is removed by the next prune.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    h2 = _helper(cache, "b", 1, 10)
    stale = cache / ".pinned" / f"{dead.pid}-0000-{h2.name}"
    os.link(h2, stale)
    mine = build.pin_helper(h2)
    build.prune_cache(budget_bytes=10 * MB, now=NOW)
    assert not stale.exists() and mine.exists()


def test_a_helper_outside_the_cache_is_not_pinned(tmp_path, cache):
    outside = tmp_path / "elsewhere.test"
    outside.write_bytes(b"x")
    assert build.pin_helper(outside) == outside


@pytest.mark.go
def test_a_running_helper_restarts_after_its_binary_is_evicted(tmp_path, monkeypatch):
    from palloc.goref.driver import GoHelper
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        real = build.build_helper(find_toolchain())
    except PallocError as e:
        pytest.skip(f"no Go helper ({e})")
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    d = tmp_path / "cache" / "helpers"
    d.mkdir(parents=True)
    binary = d / real.name
    binary.write_bytes(real.read_bytes())
    binary.chmod(0o755)
    with GoHelper(binary) as h:
        assert h.call1({"op": "ping"})["kind"] == "ok"
        os.utime(binary, (time.time() - 10 * HOUR,) * 2)
        assert build.prune_cache(budget_bytes=0) == [binary]
        h.restart()  # as after a death: a new process from the pinned link
        assert h.call1({"op": "ping"})["kind"] == "ok" and h.generation == 2
    assert not list((d / ".pinned").iterdir())  # close() unpins
