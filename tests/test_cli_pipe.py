"""The palloc command when its reader goes away (`palloc contracts | head -1`)."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_output_pipe_is_one_line_and_exit_2_not_a_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "palloc.cli", "contracts", "--only", "pack"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # as head -1 does, before the next lines are written
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2
    assert "check_" in first
    assert "Traceback" not in err and "broken pipe" in err and len(err.strip().splitlines()) == 1
