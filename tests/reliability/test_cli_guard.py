"""The command line's guard: no input or fault ends in a traceback, and exit 1 only means a divergence.

An unexpected exception is a palloc bug: exit 2 with one line naming it and the file where its
traceback was saved. Argument errors and Ctrl-C are exit 2 with one line too.
"""

from __future__ import annotations

import re
import tempfile
import textwrap
from pathlib import Path

import pytest


def _boom(args):
    raise RuntimeError("an injected fault\nwith a second line")


def _saved_traceback(line: str) -> Path:
    m = re.search(r"saved in (\S+?)(?:;|$)", line)
    assert m, line
    return Path(m.group(1))


def test_an_unexpected_exception_is_exit_2_with_one_line_naming_the_saved_traceback(palloc, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("palloc.cli.platforms.run", _boom)
    line = palloc("platforms").error_line()
    assert line.startswith("palloc platforms:") and "RuntimeError: an injected fault" in line
    saved = _saved_traceback(line)
    assert saved.is_file() and saved.is_relative_to(tmp_path / "state")
    text = saved.read_text()
    assert "Traceback" in text and "_boom" in text and "palloc platforms" in text
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_the_traceback_goes_to_the_temporary_folder_when_the_log_folder_is_unwritable(palloc, monkeypatch, tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("palloc.cli.platforms.run", _boom)
    saved = _saved_traceback(palloc("platforms").error_line())
    assert saved.parent == tmp_path and "Traceback" in saved.read_text()


# The same set-up as the test above, one folder fewer to write to (alike on purpose).
def test_with_nowhere_to_save_the_traceback_it_is_printed_and_the_exit_is_still_2(palloc, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    monkeypatch.setattr("palloc.cli.platforms.run", _boom)
    r = palloc("platforms")
    assert r.code == 2 and "Traceback" in r.err and "_boom" in r.err
    assert r.err.strip().splitlines()[-1].startswith("palloc platforms:")


def test_a_verb_that_returns_nothing_is_not_exit_1(palloc, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr("palloc.cli.platforms.run", lambda args: None)
    assert "TypeError" in palloc("platforms").error_line()


def test_an_argument_error_is_one_line_that_points_to_help(palloc):
    line = palloc("platforms", "--go-version").error_line()
    assert "--go-version" in line and "palloc platforms --help" in line
    line = palloc("platforms", "--no-such-flag").error_line()
    assert "--no-such-flag" in line and "palloc --help" in line


def test_ctrl_c_is_exit_2_with_one_line(palloc, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("palloc.cli.platforms.run", interrupted)
    assert "interrupted" in palloc("platforms").error_line()


# The real entry point, with a fault injected at start-up by a sitecustomize module.
INJECT = {
    "boom": """
        import palloc.cli.platforms as m
        def run(args):
            raise RuntimeError("an injected fault")
        m.run = run
    """,
    # Ctrl-C in the verb, then a second Ctrl-C while the interpreter shuts down.
    "twice": """
        import atexit, os, signal, time
        import palloc.cli.platforms as m
        def run(args):
            raise KeyboardInterrupt
        m.run = run
        @atexit.register
        def second_ctrl_c():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
    """,
}


@pytest.mark.parametrize("fault", sorted(INJECT))
def test_the_installed_entry_point_keeps_the_contract(palloc_process, tmp_path, fault):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(INJECT[fault]))
    r = palloc_process("platforms", env={"PYTHONPATH": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")})
    line = r.error_line()
    if fault == "boom":
        assert "RuntimeError: an injected fault" in line and _saved_traceback(line).is_file()
    else:
        assert "interrupted" in line


def test_help_states_the_exit_code_contract(palloc):
    r = palloc("--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "0 what was checked holds; 1 a counterexample or divergence was found; 2 a usage or environment error" in text
