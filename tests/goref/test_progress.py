"""goref/progress.py: a helper build says what it is doing, and a run's --total-seconds bounds it.

A fake toolchain (a shell script standing in for `go`, whose build takes FAKE_BUILD_SECONDS)
and an empty palloc cache, as tests/goref/test_build.py has them.
"""

from __future__ import annotations

import stat
import time

import pytest

from palloc.goref import build, progress
from palloc.goref.toolchain import find_toolchain
from palloc.spec.errors import PallocError

FAKE_BUILD_SECONDS = 2.5
# A fake go as test_build.py's, on purpose: this one only sleeps, so each test file reads alone.
FAKE_GO = r"""#!/bin/sh
if [ "$1" = env ] && [ "$2" = GOCACHE ]; then echo "{cache}/gocache"; exit 0; fi
if [ "$1" = env ]; then printf "%s\n" "{root}" go1.27.3 linux amd64; exit 0; fi
if [ "$1" = test ]; then
  out=""; prev=""
  for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
  if [ -n "$FAKE_GO_FAIL" ]; then echo "mpagealloc.go:7: $FAKE_GO_FAIL" >&2; exit 1; fi
  sleep {secs}; printf 'helper' > "$out"; exit 0
fi
exit 2
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = tmp_path / "goroot"
    (root / "src" / "runtime").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "src" / "runtime" / "mpagealloc.go").write_text("package runtime\n")
    (root / "src" / "runtime" / "export_test.go").write_text("package runtime\n")
    go = root / "bin" / "go"
    go.write_text(FAKE_GO.replace("{root}", str(root)).replace("{cache}", str(tmp_path))
                  .replace("{secs}", str(FAKE_BUILD_SECONDS)))
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 1.0)
    return find_toolchain(root)


def test_a_build_says_it_starts_how_long_it_has_run_and_that_it_ended(fake):
    lines: list[str] = []
    with progress.reporting(lines.append):
        build.build_helper(fake, "amd64")
    assert lines[0] == "building the helper for go1.27.3 linux/amd64 (about a minute the first time)"
    assert any(l.startswith("still building the helper for go1.27.3 linux/amd64: ") for l in lines[1:-1])
    assert lines[-1].startswith("built the helper for go1.27.3 linux/amd64 in ")
    # The next build of another GOARCH estimates from what is cached only for its own GOARCH;
    # a cached helper says nothing.
    n = len(lines)
    with progress.reporting(lines.append):
        build.build_helper(fake, "amd64")
    assert len(lines) == n


def test_a_build_of_a_patched_runtime_says_so_and_estimates_from_the_last(fake, tmp_path):
    build.build_helper(fake, "386")  # silent: nothing set reporting
    patched = tmp_path / "p.go"
    patched.write_text("package runtime // patched\n")
    lines: list[str] = []
    with progress.reporting(lines.append):
        build.build_helper(fake, "386", {"src/runtime/mpagealloc.go": str(patched)})
    assert lines[0].startswith("building the helper for go1.27.3 linux/386 on the patched runtime (a recent one took ")
    assert lines[0].endswith(" s)")


def test_a_failed_build_says_why_and_never_that_it_was_built(fake, monkeypatch):
    monkeypatch.setenv("FAKE_GO_FAIL", "undefined: x")
    lines: list[str] = []
    with progress.reporting(lines.append), pytest.raises(PallocError, match="mpagealloc.go:7: undefined: x"):
        build.build_helper(fake, "amd64")
    assert len(lines) == 1 and lines[0].startswith("building the helper")


def test_the_total_budget_ends_a_build_and_leaves_nothing_half_built(fake):
    t0 = time.monotonic()
    with progress.reporting(None, deadline=time.monotonic() + 0.5):
        with pytest.raises(progress.BudgetSpent, match="--total-seconds budget ran out while building the helper"):
            build.build_helper(fake, "amd64")
    assert time.monotonic() - t0 < FAKE_BUILD_SECONDS
    helpers = build.cache_dir(writable=False) / "helpers"
    assert not [p for p in helpers.iterdir() if p.suffix == ".test" or p.name.startswith(".build-")]


def test_a_spent_budget_refuses_the_next_step():
    with progress.reporting(None, deadline=time.monotonic() - 1):
        with pytest.raises(progress.BudgetSpent, match="before the campaign"):
            progress.bounded(60, "the campaign")
    assert progress.left() is None and progress.bounded(60, "x") == 60  # unbounded outside
