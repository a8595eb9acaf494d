"""Child processes that never outlive palloc: each in its own process group, ended with it.

Every process palloc starts for a long job (the Go helper, `go test -c`, the runtime's own test
binary under `go tool test2json`, a Go test of a counterexample) is started here:

* in a new session, so its children (test2json's runtime.test, go's compile and link) share its
  process group and `kill_group` ends them all, and a Ctrl-C at the terminal reaches palloc
  (which decides) rather than a helper in the middle of a heap;
* with PR_SET_PDEATHSIG = SIGKILL on Linux, so when palloc itself is killed (SIGKILL, a pool
  worker stopped by its parent) the kernel ends the child instead of leaving it to init;
* with a private TMPDIR that `run` removes afterwards, so Go's work folders go with it even when
  the child is killed before it could clean up; and if palloc itself is killed first, the next
  palloc sweeps the folders of processes that are gone (`sweep_stale`).

`run` is subprocess.run with those guarantees: on a timeout, an interrupt or any exception the
whole group is killed before the exception propagates.

Mirrors no Go file.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from typing import Any

_PR_SET_PDEATHSIG = 1


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # not a system with a C library we can reach
        return None


_LIBC = _libc()


def _child_setup(parent: int) -> None:
    """Runs in the child between fork and exec: dies with its parent (Linux), dumps no core (a Go
    runtime with GOTRACEBACK=crash aborts)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    # A shell's background job starts with SIGQUIT ignored, which a child would inherit: the
    # watchdog's SIGQUIT (a hung runtime's stacks) must reach it.
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


_STALE = re.compile(r"^palloc-(?:child|helper|fuzz)-(\d+)-")


def tempdir(kind: str) -> str:
    """Returns a new temporary folder of palloc's, named for this process (palloc-KIND-PID-...),
    so that sweep_stale can tell it was left by a process that is gone."""
    return tempfile.mkdtemp(prefix=f"palloc-{kind}-{os.getpid()}-")


def sweep_stale(root: str | None = None) -> int:
    """Removes palloc's temporary folders whose process has died (killed before it could remove
    them); returns how many."""
    root = root or tempfile.gettempdir()
    n = 0
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    for name in names:
        m = _STALE.match(name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # its process lives
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        n += 1
    return n


def popen(cmd: list[str], **kw: Any) -> subprocess.Popen:
    """Starts cmd like subprocess.Popen, in its own session, dying with this process."""
    parent = os.getpid()
    kw.setdefault("start_new_session", True)
    return subprocess.Popen(cmd, preexec_fn=lambda: _child_setup(parent), **kw)


def kill_group(proc: subprocess.Popen, wait: float = 10.0) -> None:
    """Kills proc and every process of its group (its session's children), then reaps proc."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass


def run(cmd: list[str], *, timeout: float | None = None, input: str | bytes | None = None,
        private_tmp: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    """Runs cmd to its end like subprocess.run(capture_output=True), in its own process group.

    On a timeout (subprocess.TimeoutExpired, with the output so far), an interrupt or any other
    exception, the whole group is killed first. private_tmp: the child's TMPDIR is a new folder,
    removed afterwards with whatever the child left in it.
    """
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    if input is not None:
        kw["stdin"] = subprocess.PIPE
    tmp = None
    if private_tmp:
        tmp = tempdir("child")
        kw["env"] = {**(kw.get("env") or os.environ), "TMPDIR": tmp}
    try:
        with popen(cmd, **kw) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                out, err = proc.communicate()
                raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
            except BaseException:
                kill_group(proc)
                raise
            # The leader exited; anything it left running in its group goes with it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def group_alive(pid: int) -> bool:
    """Reports whether any process of the process group pid is still running (for tests)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) succeeds for zombies too: look for a member that is not one.
    for d in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pid) and fields[0] != "Z":
            return True
    return False
