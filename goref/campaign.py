"""One `palloc fuzz` campaign to its end, in this process or on N worker processes (`--jobs`).

A campaign here is: the search (goref/fuzz.py:run_campaign), then, for a divergence, the
self-check of the failing case on both sides (a side that disagrees with itself is a harness
fault) and its files in the failures folder. `run_here` does that in this process; `run_pool`
does it on N spawned workers, each with its own model and helper process, worker w running the
digest lockstep's heaps w, w+N, w+2N, ... (heap k is drawn from lockstep.heap_rng(seed, k), so
it is the same whoever runs it). The parent only sums the workers' stats, draws the progress,
and tells the others to stop once one has found a divergence; every worker keeps and writes what
it found, so a divergence, an interrupt or a dead worker loses nothing the others found.

Mirrors no Go file.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue as queue_mod
import sys
import time
import traceback
from typing import Any, Callable

from palloc.spec.errors import PallocError


@dataclasses.dataclass
class Config:
    """What a campaign process needs to know (picklable: it is sent to every worker)."""

    goarch: str = "amd64"
    goroot: str | None = None
    variant: str | None = None
    invariants: bool = True
    seconds: float = 60.0
    seed: int = 0
    steps: int = 200
    engine: str = "lockstep"
    failures: str = "palloc-failures"


@dataclasses.dataclass
class Outcome:
    """What a campaign (one process's, or a pool's merged) ended with; plain data, picklable."""

    stats: Any  # goref.fuzz.Stats
    stopped: str = "budget"  # "budget", "divergence", "interrupted", "helper", "stopped"
    failures: list[dict] = dataclasses.field(default_factory=list)  # headline, files, report, ops
    fault: str | None = None  # a harness fault: the words of the HarnessFault
    error: str | None = None  # an environment error (the helper could not be restarted, ...)
    jobs: int = 1

    @property
    def failure(self) -> dict | None:
        """The smallest failure found (fewest operations)."""
        return min(self.failures, key=lambda f: f["ops"]) if self.failures else None


def fresh_session(conf: Config):
    from palloc.goref.fuzz import session

    return lambda: session(conf.goarch, conf.goroot, fresh=True).go


def run_here(conf: Config, runner, first_heap: int = 0, heap_stride: int = 1,
             should_stop: Callable[[], bool] | None = None, on_found: Callable[[], None] | None = None) -> Outcome:
    """Runs the campaign on runner (a goref.fuzz.Lockstep) in this process; writes any failure."""
    from palloc.goref import report
    from palloc.goref.compare import HarnessFault
    from palloc.goref.fuzz import run_campaign
    from palloc.goref.lockstep import run_lockstep_campaign

    failure, fault, stopped, error = None, None, "budget", None
    try:
        if conf.engine == "lockstep":
            res = run_lockstep_campaign(runner, conf.seconds, conf.seed, conf.steps, first_heap=first_heap,
                                        heap_stride=heap_stride, should_stop=should_stop, on_found=on_found)
        else:
            res = run_campaign(runner, conf.seconds, seed=conf.seed, step_count=conf.steps, engine=conf.engine)
        failure, fault, stopped = res.failure, res.harness_fault, res.stopped
    except HarnessFault as e:
        fault = e
    except KeyboardInterrupt:
        stopped = "interrupted"
        failure = runner.smallest_failure()
    except PallocError as e:  # the helper could not be restarted: keep what was found
        stopped, error = "helper", e
        failure = runner.smallest_failure()
    out = Outcome(runner.stats, stopped, fault=str(fault) if fault is not None else None,
                  error=str(error) if error is not None else None)
    if failure is not None and fault is None:
        if error is None:
            try:
                runner.self_check_case(failure, fresh_go=fresh_session(conf))
            except HarnessFault as e:
                out.fault = str(e)
        paths = report.write_failure(failure, conf.failures)
        cid = report.case_id(failure)
        out.failures.append({
            "headline": failure.divergence.headline() if failure.divergence else None,
            "files": {k: str(v) for k, v in paths.items()},
            "report": report.human_report(failure, cid, paths),
            "ops": len(failure.ops),
        })
    return out


def default_jobs(engine: str) -> int:
    """The lockstep engine uses every core this process may run on, up to 2 (the helpers take
    about a tenth of a core each); the other engines run in one process."""
    if engine != "lockstep":
        return 1
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(2, n))


# --- the pool ---------------------------------------------------------------------------

# How long after the budget a worker may take to finish its heap, shrink a divergence (20 s)
# and write it, with helper restarts (each under the driver's watchdog), before it is stopped.
GRACE_SECONDS = 180.0


def _worker(conf: Config, w: int, jobs: int, deadline: float, q, stop) -> None:
    """A pool worker: heaps w, w+jobs, ... until the deadline (time.time()) or stop is set."""
    import signal

    from palloc.goref.fuzz import Stats, session

    # The parent handles Ctrl-C and sets stop; a worker finishes its heap and reports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runner = session(conf.goarch, goroot=conf.goroot, variant=conf.variant, invariants=conf.invariants)
        shown = [0.0]

        def progress(r):
            now = time.monotonic()
            if now - shown[0] >= 0.25:
                shown[0] = now
                st = r.stats
                q.put(("progress", w, st.ops, st.page_alloc_ops, st.examples, dict(st.by_kind)))

        runner.on_example = progress
        c = dataclasses.replace(conf, seconds=max(0.0, deadline - time.time()))
        out = run_here(c, runner, first_heap=w, heap_stride=jobs, should_stop=stop.is_set, on_found=stop.set)
        if stop.is_set() and out.stopped == "budget" and not out.failures:
            out.stopped = "stopped"
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        traceback.print_exc(file=sys.stderr)
        words = str(e) if isinstance(e, PallocError) else f"{type(e).__name__}: {e}"
        out = Outcome(Stats(), "helper", error=f"fuzz worker {w}: {words}")
    q.put(("done", w, out))


def _merge(outs: list[Outcome], started: float, jobs: int) -> Outcome:
    from palloc.goref.fuzz import Stats

    st = Stats(started=started)
    for o in outs:
        s = o.stats
        st.ops += s.ops
        st.page_alloc_ops += s.page_alloc_ops
        st.examples += s.examples
        st.by_kind.update(s.by_kind)
        for f in ("model_s", "go_s", "compare_s", "invariant_s", "digest_s", "go_wait_s"):
            setattr(st, f, getattr(st, f) + getattr(s, f))
        st.full_compares += s.full_compares
        if s.first_divergence_s is not None:
            t = s.started + s.first_divergence_s - started
            st.first_divergence_s = t if st.first_divergence_s is None else min(st.first_divergence_s, t)
    # The worst ending wins: a divergence, then an error or an interrupt, then the budget.
    order = ["divergence", "helper", "interrupted", "budget", "stopped"]
    stopped = min((o.stopped for o in outs), key=order.index, default="budget")
    if stopped == "stopped":
        stopped = "budget"
    faults = [o.fault for o in outs if o.fault]
    errors = [o.error for o in outs if o.error]
    return Outcome(st, stopped, [f for o in outs for f in o.failures], faults[0] if faults else None,
                   "; ".join(errors) if errors else None, jobs)


def _receive(q, procs, outs: dict, latest: dict, stop, show) -> None:
    """Takes one message from the workers (or notes a worker that died without a word)."""
    from palloc.goref.fuzz import Stats

    try:
        msg = q.get(timeout=0.5)
    except queue_mod.Empty:
        for w, pr in enumerate(procs):
            if w not in outs and not pr.is_alive():
                try:  # its last words may still be in the pipe
                    msg = q.get(timeout=1.0)
                    break
                except queue_mod.Empty:
                    outs[w] = Outcome(Stats(), "helper",
                                      error=f"fuzz worker {w} died (exit code {pr.exitcode}) without a result")
                    stop.set()
        else:
            return
    if msg[0] == "progress":
        latest[msg[1]] = msg[1:]
        show()
    elif msg[0] == "done":
        w, o = msg[1], msg[2]
        outs[w] = o
        latest[w] = (w, o.stats.ops, o.stats.page_alloc_ops, o.stats.examples, dict(o.stats.by_kind))
        show()
        if o.failures or o.fault or o.error:
            stop.set()


def run_pool(conf: Config, jobs: int, on_progress: Callable[[Any], None] | None = None) -> Outcome:
    """Runs the lockstep campaign on `jobs` worker processes; returns their merged outcome.

    on_progress(stats) is called with the summed stats as the workers report. Ctrl-C stops
    every worker at its next heap; each still reports (and has written) what it found.
    """
    import multiprocessing as mp

    from palloc.goref.fuzz import Stats

    ctx = mp.get_context("spawn")  # no inherited helper pipes or threads
    q = ctx.Queue()
    stop = ctx.Event()
    started = time.monotonic()
    deadline = time.time() + conf.seconds
    procs = [ctx.Process(target=_worker, args=(conf, w, jobs, deadline, q, stop), daemon=True, name=f"palloc-fuzz-{w}")
             for w in range(jobs)]
    for pr in procs:
        pr.start()
    latest: dict[int, tuple] = {}
    outs: dict[int, Outcome] = {}
    interrupted = False

    def show():
        if on_progress is None:
            return
        st = Stats(started=started)
        for _, ops, pa_ops, ex, kinds in latest.values():
            st.ops += ops
            st.page_alloc_ops += pa_ops
            st.examples += ex
            st.by_kind.update(kinds)
        on_progress(st)

    # A worker past the budget by this much (a heap, a shrink, helper restarts) is stuck.
    hard_stop = deadline + GRACE_SECONDS
    while len(outs) < jobs:
        try:
            _receive(q, procs, outs, latest, stop, show)
            if time.time() > hard_stop:
                stop.set()
                for w, pr in enumerate(procs):
                    if w not in outs:
                        pr.kill()
                        outs[w] = Outcome(Stats(), "helper", error=f"fuzz worker {w} did not finish within "
                                          f"{GRACE_SECONDS:.0f} s of the budget's end; it was stopped")
        except KeyboardInterrupt:  # every worker finishes its heap and reports
            interrupted = True
            stop.set()
    for pr in procs:
        pr.join(timeout=5)
    out = _merge([outs[w] for w in range(jobs)], started, jobs)
    if interrupted and out.stopped == "budget":
        out.stopped = "interrupted"
    return out
