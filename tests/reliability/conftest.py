"""Fault injection: helpers to run `palloc` and hold it to its exit-code contract.

Exit 0 means what was checked holds, 1 a real counterexample or divergence, 2 a usage or
environment error with exactly one line on stderr that says what to do, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@dataclasses.dataclass
class Ran:
    """What one run of `palloc` did: its exit code and its two output streams."""

    code: int | None
    out: str
    err: str

    def error_line(self) -> str:
        """Asserts a usage or environment error (exit 2, one line on stderr, no traceback); returns the line."""
        lines = self.err.strip().splitlines()
        assert "Traceback" not in self.err, self.err
        assert self.code == 2, (self.code, self.err)
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def palloc(capsys, monkeypatch, tmp_path):
    """palloc(*argv) runs the command line in-process (argparse's SystemExit included); returns a Ran.
    A traceback the guard saves goes under tmp_path, not the user's log folder."""
    from palloc.cli.main import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def run(*argv) -> Ran:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def entry_point() -> list[str]:
    """Returns the installed `palloc` script beside this Python, else `python -m palloc.cli`."""
    script = Path(sys.executable).with_name("palloc")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "palloc.cli"]


@pytest.fixture
def palloc_process(tmp_path):
    """palloc_process(*argv, env=...) runs the real entry point in a child process; returns a Ran."""

    def run(*argv, env: dict[str, str] | None = None, timeout: float = 120) -> Ran:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), **(env or {})}
        r = subprocess.run(entry_point() + [str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                           env=env)
        return Ran(r.returncode, r.stdout, r.stderr)

    return run


@pytest.fixture
def unwritable_dir(tmp_path):
    """Returns a folder that no file can be created in, even by root: a read-only tmpfs mount when
    this process may mount one, else a folder of mode 0555 (which stops everyone but root)."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    mount = shutil.which("mount")
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)],
                                       capture_output=True).returncode != 0:
        pytest.skip("root cannot be kept out of a folder here (no read-only mount possible)")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)
