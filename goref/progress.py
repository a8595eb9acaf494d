"""Says what a long step is doing, and bounds a whole run's wall-clock (--total-seconds).

A verb that prints (fuzz, check, verify-change) sets, for its run, where to say things and by
when the run must end (`reporting`). Library calls, tests and pool workers set nothing and stay
silent and unbounded. A helper build (goref/build.py) then says that it starts ("building the
helper for go1.27.3 linux/amd64 (about a minute the first time)"), how long it has been going
(on a terminal one line rewritten every second, elsewhere a line every PROGRESS_EVERY seconds)
and how long it took; a cached helper says nothing. Every bounded step takes what is left of the
budget as its timeout (`bounded`); a step that meets the end of the budget raises BudgetSpent,
which is an error (exit 2) only when nothing was checked before it.

Mirrors no Go file.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Iterator

from palloc.spec.errors import PallocError

PROGRESS_EVERY = 15.0  # seconds between "still building" lines when stderr is not a terminal

_say: Callable[[str], None] | None = None
_deadline: float | None = None  # time.monotonic() by which the run must end


class BudgetSpent(PallocError):
    """The run's --total-seconds budget ran out during a step."""


@contextlib.contextmanager
def reporting(say: Callable[[str], None] | None, deadline: float | None = None) -> Iterator[None]:
    """Within the block, long steps report through say(line) and end by deadline (monotonic)."""
    global _say, _deadline
    old = _say, _deadline
    _say = say
    _deadline = deadline if deadline is not None else old[1]
    try:
        yield
    finally:
        _say, _deadline = old


def deadline() -> float | None:
    """Returns the run's deadline (time.monotonic()), or None when unbounded."""
    return _deadline


def left(default: float | None = None) -> float | None:
    """Returns the seconds left of the run's budget (at most `default`), or default unbounded."""
    if _deadline is None:
        return default
    rest = _deadline - time.monotonic()
    return rest if default is None else min(default, rest)


def bounded(timeout: float, what: str) -> float:
    """Returns a step's timeout within what is left of the budget; raises BudgetSpent if nothing is."""
    rest = left(timeout)
    if rest is not None and rest <= 0:
        raise BudgetSpent(f"the --total-seconds budget ran out before {what}")
    return timeout if rest is None else rest


def say(line: str) -> None:
    if _say is not None:
        _say(line)


@contextlib.contextmanager
def building(what: str, estimate: float | None = None) -> Iterator[None]:
    """Says that a build of `what` starts, then its elapsed time while it runs, then its end."""
    if _say is None:
        yield
        return
    hint = f"a recent one took {estimate:.0f} s" if estimate else "about a minute the first time"
    _say(f"building {what} ({hint})")
    t0 = time.monotonic()
    stop = threading.Event()
    tty = sys.stderr.isatty()
    bar = None
    if tty:
        from tqdm import tqdm

        bar = tqdm(total=None, desc=f"building {what}", file=sys.stderr, bar_format="{desc}: {elapsed}", leave=False)

    def tick() -> None:
        last = t0
        while not stop.wait(1.0):
            if bar is not None:
                bar.refresh()
            elif time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                _say(f"still building {what}: {last - t0:.0f} s so far")

    th = threading.Thread(target=tick, name="palloc-build-progress", daemon=True)
    th.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        th.join()
        if bar is not None:
            bar.close()
        if ok:
            _say(f"built {what} in {time.monotonic() - t0:.0f} s")
