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

import dataclasses
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
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
    # A helper already built (a patched runtime's, by verify-change) and the platform the model
    # takes against it; None: the toolchain's own helper and its platform (goref/fuzz.py:session).
    binary: str | None = None
    platform: Any = None
    host: dict | None = None
    go_version: str = ""
    # The runtime patch under test (verify-change), recorded in every case found: Case.patch.
    patch: dict | None = None
    # At most this many heaps (lockstep engine; per worker or shard): a campaign of fixed work,
    # the same whoever runs it, whatever the machine's speed (the Dask matrix's tests).
    heaps: int | None = None
    # A coverage helper's counter folder (conf.binary built with coverage; goref/coverage.py), and
    # the generator's verbs steered toward a patch's changed functions (None: the default weights).
    coverdir: str | None = None
    verbs: list | None = None
    # The failure corpus (goref/corpus.py): every confirmed divergence is kept there, and, with
    # corpus_replay, its cases of this GOARCH are replayed before anything is generated.
    corpus: str | None = None
    corpus_replay: bool = True


@dataclasses.dataclass
class Outcome:
    """What a campaign (one process's, or a pool's merged) ended with; plain data, picklable."""

    stats: Any  # goref.fuzz.Stats
    stopped: str = "budget"  # "budget", "divergence", "interrupted", "helper", "stopped"
    failures: list[dict] = dataclasses.field(default_factory=list)  # headline, files, report, ops
    fault: str | None = None  # a harness fault: the words of the HarnessFault
    error: str | None = None  # an environment error (the helper could not be restarted, ...)
    start_death: dict | None = None  # the helper died starting (HelperStartError.death)

    @property
    def failure(self) -> dict | None:
        """The smallest confirmed failure found (fewest operations), else the smallest found."""
        ok = [f for f in self.failures if f.get("confirmed", True)] or self.failures
        return min(ok, key=lambda f: f["ops"]) if ok else None

    @property
    def verdict(self) -> str:
        """"divergence" when any worker found a confirmed one (it wins over every fault and
        error of the others), else "fault", "error" or "holds"."""
        if any(f.get("confirmed", True) for f in self.failures):
            return "divergence"
        if self.fault is not None:
            return "fault"
        if self.error is not None:
            return "error"
        return "holds"


def make_runner(conf: Config):
    """Returns the goref.fuzz.Lockstep a campaign process runs: the toolchain's helper, or
    conf.binary against conf.platform."""
    from palloc.goref.fuzz import Lockstep, session

    if conf.binary is None:
        runner = session(conf.goarch, goroot=conf.goroot, variant=conf.variant, invariants=conf.invariants)
    else:
        runner = Lockstep(conf.platform, _given_helper(conf), host=conf.host, invariants=conf.invariants,
                          goarch=conf.goarch, go_version=conf.go_version)
    runner.verbs = conf.verbs
    return runner


def _given_helper(conf: Config):
    from pathlib import Path

    from palloc.goref.driver import GoHelper
    from palloc.goref.go_side import GoSide

    from palloc.goref.toolchain import find_toolchain

    # The toolchain only for how the binary runs (js/wasm needs its own wasm_exec_node.js).
    tc = find_toolchain(conf.goroot) if conf.goarch == "wasm" else None
    if conf.coverdir:
        from palloc.goref.coverage import helper_options

        return GoSide(conf.platform, GoHelper(Path(conf.binary), toolchain=tc, goarch=conf.goarch,
                                              **helper_options(conf.coverdir)))
    return GoSide(conf.platform, GoHelper(Path(conf.binary), toolchain=tc, goarch=conf.goarch))


def fresh_session(conf: Config):
    """Returns a function making a GoSide on a new helper process of the campaign's kind."""
    from palloc.goref.fuzz import session

    if conf.binary is not None:
        return lambda: _given_helper(conf)
    return lambda: session(conf.goarch, conf.goroot, fresh=True).go


def run_here(conf: Config, runner, first_heap: int = 0, heap_stride: int = 1,
             should_stop: Callable[[], bool] | None = None, on_found: Callable[[Any], None] | None = None) -> Outcome:
    """Runs the campaign on runner (a goref.fuzz.Lockstep) in this process; writes any failure."""
    from palloc.goref.compare import HarnessFault
    from palloc.goref.driver import HelperStartError
    from palloc.goref.fuzz import CrashNotRecurring, NotReproduced, run_campaign
    from palloc.goref.lockstep import run_lockstep_campaign

    failure, fault, stopped, error, death = None, None, "budget", None, None
    if conf.corpus and conf.corpus_replay and first_heap == 0:  # one worker replays it
        again = _corpus_first(conf, runner, on_found)
        if again is not None:
            return again
    try:
        if conf.engine == "lockstep":
            res = run_lockstep_campaign(runner, conf.seconds, conf.seed, conf.steps, first_heap=first_heap,
                                        heap_stride=heap_stride, should_stop=should_stop, on_found=on_found,
                                        max_examples=conf.heaps)
        else:
            res = run_campaign(runner, conf.seconds, seed=conf.seed, step_count=conf.steps, engine=conf.engine)
        failure, fault, stopped = res.failure, res.harness_fault, res.stopped
    except HarnessFault as e:
        fault = e
    except KeyboardInterrupt:
        stopped = "interrupted"
        failure = runner.smallest_failure()
    except HelperStartError as e:  # it did not start (again): a patched runtime's doing, or the setup's
        stopped, error, death = "helper", e, e.death
        failure = runner.smallest_failure()
    except PallocError as e:  # the helper could not be restarted: keep what was found
        stopped, error = "helper", e
        failure = runner.smallest_failure()
    out = Outcome(runner.stats, stopped, fault=str(fault) if fault is not None else None,
                  error=str(error) if error is not None else None, start_death=death)
    if failure is not None:
        # Whatever else went wrong, a case found is checked and written: nothing found is lost.
        note, confirmed = None, True
        if error is None and failure.alone:
            try:
                runner.self_check_case(failure, fresh_go=fresh_session(conf))
            except CrashNotRecurring as e:
                note = f"the runtime's crash did not recur on every run of the case ({e})"
            except NotReproduced as e:
                d = failure.divergence
                if d is not None and d.kind == "crash" and "runtime hung" not in " ".join(d.lines[:1]):
                    # A runtime that threw or faulted once did so: a divergence all the same.
                    note = f"the runtime's crash did not recur when the case was run again ({e})"
                else:  # a hang not seen again was a slow answer; anything else, a flaky side
                    out.fault, confirmed = str(e), False
            except HarnessFault as e:  # a side disagrees with itself on it: not a divergence
                out.fault, confirmed = str(e), False
            except PallocError as e:  # the helper could not be started again
                note = f"not self-checked: {e}"
        elif not failure.alone:
            note = "the heap crashes the runtime only after others ran in the same process; a replay of it alone may pass"
        if conf.patch is not None:
            failure.patch = conf.patch
        # confirmed False: a side disagreed with itself on the case (out.fault says how), so it is
        # kept but is no divergence.
        runtime_outs = _runtime_outcomes(runner, failure) if error is None and failure.alone else None
        out.failures.append(_written(failure, conf.failures, confirmed, note, runtime_outs))
        if confirmed:
            _keep(conf, failure, out.failures[-1])
    return out


def _keep(conf: Config, case, entry: dict) -> None:
    """Adds a confirmed divergence to the corpus (goref/corpus.py), noting where in its entry."""
    from palloc.goref import corpus

    if not conf.corpus:
        return
    source = f"verify-change {(conf.patch or {}).get('path') or 'a patch'}" if conf.patch else "fuzz"
    try:
        kept = corpus.add(conf.corpus, case, source)
    except OSError as e:  # the case is in the failures folder all the same
        entry["corpus_error"] = f"not kept in the corpus {conf.corpus}: {e.strerror or e}"
        return
    if kept is not None:
        entry.setdefault("files", {})["corpus"] = str(Path(kept).resolve())  # the report is read from anywhere


def _corpus_first(conf: Config, runner, on_found) -> Outcome | None:
    """Replays the corpus on runner before the campaign; returns the Outcome of the first case
    that diverges again (run twice: a case that agrees the second time is not taken), or None.
    A corpus file that cannot be read is one line on stderr; the others are still replayed."""
    from palloc.goref import corpus

    def say(msg: str) -> None:
        print(f"palloc: corpus: {msg}", file=sys.stderr, flush=True)

    case, rep = corpus.replay_first(conf.corpus, runner, say)
    if case is None or runner.run_case(case) is None:
        return None
    if on_found is not None:
        on_found(case)
    if conf.patch is not None:
        case.patch = conf.patch
    path = rep.diverged[0][0].path
    entry = _written(case, conf.failures, True, f"the corpus case {path} diverges again (replayed before generating)")
    entry["corpus_case"] = str(path)
    return Outcome(runner.stats, "divergence", [entry])


def _runtime_outcomes(runner, case):
    """Returns the runtime's outcomes of a case, for its picture; None for a crash (no state at
    its step, and a hang would cost the watchdog again) or when the helper cannot run it."""
    d = case.divergence
    if runner.go is None or (d is not None and d.kind == "crash"):
        return None
    try:
        return runner.go_run(case.init, case.ops)
    except Exception:  # noqa: BLE001 - the picture is extra: the case must not be lost over it
        return None


def _written(case, folder: str, confirmed: bool = True, note: str | None = None, runtime_outs=None) -> dict:
    """Writes a case's files to folder; returns its failure entry: headline, size, divergence,
    confirmed, note, files and report (the case is printed on stderr if nothing can be written).
    runtime_outs: the runtime's outcomes of the case, for its picture."""
    from palloc.goref import report

    d = case.divergence
    entry = {"headline": d.headline() if d else None, "ops": len(case.ops), "divergence": d.to_json() if d else None,
             "confirmed": confirmed}
    if note:
        entry["note"] = note
    cid = report.case_id(case)
    try:
        paths = report.write_failure(case, folder, runtime_outcomes=runtime_outs)
        entry["files"] = {k: str(v) for k, v in paths.items()}
        entry["report"] = paths["report"].read_text()  # the human report, with the pages that differ
    except Exception as e:  # noqa: BLE001 - a printer failure must not lose the case
        _keep_case(case, cid, folder, entry, e)
    return entry


def _keep_case(failure, cid: str, folder: str, entry: dict, e: Exception) -> None:
    """Writes the case alone when its other files could not be; when even that fails, prints
    it on stderr, so that the case found is never lost."""
    from pathlib import Path

    from palloc.goref.files import write_atomic

    text = json.dumps(failure.to_json(), indent=1) + "\n"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        j = write_atomic(Path(folder) / f"{cid}.json", text)
    except OSError as e2:
        print(f"palloc: cannot write the case to {folder} ({e2.strerror or e2}); here it is, save it as {cid}.json "
              f"and replay it with `palloc replay {cid}.json`:", file=sys.stderr)
        print(text, file=sys.stderr, end="", flush=True)
        entry["files"] = {}
        entry["report"] = f"{entry['headline']}\n(the case could not be written to {folder}; it was printed on stderr)"
        entry["printer_error"] = str(e2)
        return
    entry["files"] = {"json": str(j)}
    entry["report"] = f"{entry['headline']}\n(the other files could not be written: {e})"
    entry["printer_error"] = str(e)


def default_jobs(engine: str) -> int:
    """The lockstep engine uses every core this process may run on, up to MAX_DEFAULT_JOBS (each
    worker is a model process at a full core with a helper at a tenth of one, about 60 MB in all);
    the other engines run in one process."""
    if engine != "lockstep":
        return 1
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_JOBS, n))


MAX_DEFAULT_JOBS = 8


# --- the pool ---------------------------------------------------------------------------

# How long after the budget a worker may take to finish its heap, shrink a divergence (20 s)
# and write it, with helper restarts (each under the driver's watchdog), before it is stopped.
GRACE_SECONDS = 180.0
# How long the other workers may go on once one has delivered a confirmed divergence.
AFTER_ANSWER_SECONDS = 30.0


def _worker(conf: Config, w: int, jobs: int, deadline: float, conn, stop, tmp: str | None = None) -> None:
    """A pool worker: heaps w, w+jobs, ... until the deadline (time.time()) or the stop flag.

    tmp: the campaign's temporary folder, which the parent removes whatever becomes of the worker.
    """
    import signal
    import tempfile

    from palloc.goref.fuzz import Stats

    # The parent handles Ctrl-C and raises the flag; a worker finishes its heap and reports.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if tmp is not None:
        os.environ["TMPDIR"] = tempfile.tempdir = tmp

    def stopped() -> bool:
        return bool(stop.value)

    def found(case) -> None:
        stop.value = 1
        if case is not None:  # the parent keeps it, in case this worker does not live to write it
            conn.send(("found", case.to_json()))

    try:
        runner = make_runner(conf)
        shown = [0.0]

        def progress(r):
            now = time.monotonic()
            if now - shown[0] >= 0.25:
                shown[0] = now
                conn.send(("progress", r.stats))

        runner.on_example = progress
        c = dataclasses.replace(conf, seconds=max(0.0, deadline - time.time()))
        out = run_here(c, runner, first_heap=w, heap_stride=jobs, should_stop=stopped, on_found=found)
        if stopped() and out.stopped == "budget" and not out.failures:
            out.stopped = "stopped"
        if conf.coverdir and hasattr(runner.go, "helper"):
            runner.go.helper.close()  # a coverage helper writes its counts as it exits
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        if not isinstance(e, PallocError):  # a palloc bug: its traceback helps whoever reports it
            traceback.print_exc(file=sys.stderr)
        words = str(e) if isinstance(e, PallocError) else f"{type(e).__name__}: {e}"
        out = Outcome(Stats(), "helper", error=f"fuzz worker {w}: {words}")
    conn.send(("done", out))
    conn.close()


def _orphan_case(conf: Config, w: int, data: dict) -> dict:
    """Writes a divergence that worker w found but did not live to shrink and write; returns its
    failure entry (not self-checked, so not confirmed unless the runtime crashed)."""
    from palloc.goref import report
    from palloc.goref.fuzz import Case

    case = Case.from_json(data)
    case.divergence = report.divergence_from_json(data.get("divergence"))
    entry = _written(case, conf.failures, True,
                     f"fuzz worker {w} found this and ended before it was shrunk; written unshrunk")
    _keep(conf, case, entry)
    return entry


def _summed(stats, started: float):
    """Returns the goref.fuzz.Stats of the workers' stats together, timed from `started`."""
    from palloc.goref.fuzz import Stats

    st = Stats(started=started)
    for s in stats:
        st.ops += s.ops
        st.page_alloc_ops += s.page_alloc_ops
        st.examples += s.examples
        st.by_kind.update(s.by_kind)
        for f in ("model_s", "go_s", "compare_s", "invariant_s", "digest_s", "go_wait_s"):
            setattr(st, f, getattr(st, f) + getattr(s, f))
        st.full_compares += s.full_compares
        st.helper_deaths += s.helper_deaths
        if s.first_divergence_s is not None:
            t = s.started + s.first_divergence_s - started
            st.first_divergence_s = t if st.first_divergence_s is None else min(st.first_divergence_s, t)
    return st


def _merge(outs: list[Outcome], started: float) -> Outcome:
    st = _summed((o.stats for o in outs), started)
    # The worst ending wins: a divergence, then an error or an interrupt, then the budget.
    order = ["divergence", "helper", "interrupted", "budget", "stopped"]
    stopped = min((o.stopped for o in outs), key=order.index, default="budget")
    if stopped == "stopped":
        stopped = "budget"
    faults = [o.fault for o in outs if o.fault]
    errors = [o.error for o in outs if o.error]
    deaths = [o.start_death for o in outs if o.start_death is not None]
    # Every worker's cases are kept; the verdict (Outcome.verdict) lets a confirmed divergence
    # win over any worker's fault or error.
    return Outcome(st, stopped, [f for o in outs for f in o.failures], "; ".join(faults) if faults else None,
                   "; ".join(errors) if errors else None, deaths[0] if deaths else None)


def _receive(conns: dict, procs, outs: dict, latest: dict, stop, show, found: dict) -> None:
    """Takes what the workers have said within half a second; a worker whose pipe closed
    without its result died (its exit code says how)."""
    from multiprocessing.connection import wait

    from palloc.goref.fuzz import Stats

    for conn in wait(list(conns.values()), timeout=0.5):
        w = next(k for k, c in conns.items() if c is conn)
        try:
            msg = conn.recv()
        except Exception:  # noqa: BLE001 - EOF, or a message cut short by the worker's death
            del conns[w]
            procs[w].join(timeout=5)
            outs[w] = Outcome(Stats(), "helper",
                              error=f"fuzz worker {w} died (exit code {procs[w].exitcode}) without a result")
            stop.value = 1
            continue
        if msg[0] == "progress":
            latest[w] = msg[1]
            show()
        elif msg[0] == "found":
            found[w] = msg[1]
        elif msg[0] == "done":
            o = outs[w] = msg[1]
            del conns[w]
            latest[w] = o.stats
            show()
            if o.failures or o.fault or o.error:
                stop.value = 1


def run_pool(conf: Config, jobs: int, on_progress: Callable[[Any], None] | None = None) -> Outcome:
    """Runs the lockstep campaign on `jobs` worker processes; returns their merged outcome.

    on_progress(stats) is called with the summed stats as the workers report. Ctrl-C stops
    every worker at its next heap; each still reports (and has written) what it found. Each
    worker has its own pipe and the stop flag is a byte of shared memory, so a worker killed at
    any moment holds no lock the others need.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no inherited helper pipes or threads
    stop = ctx.RawValue("b", 0)
    started = time.monotonic()
    deadline = time.time() + conf.seconds
    from palloc.goref import procs

    tmp = procs.tempdir("fuzz")  # the workers' TMPDIR, removed at the end
    try:
        return _run_pool(ctx, conf, jobs, on_progress, stop, started, deadline, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_pool(ctx, conf: Config, jobs: int, on_progress, stop, started: float, deadline: float, tmp: str) -> Outcome:
    from palloc.goref import progress
    from palloc.goref.fuzz import Stats

    procs, conns = [], {}
    for w in range(jobs):
        recv, send = ctx.Pipe(duplex=False)
        pr = ctx.Process(target=_worker, args=(conf, w, jobs, deadline, send, stop, tmp), daemon=True,
                         name=f"palloc-fuzz-{w}")
        try:
            pr.start()
        except OSError as e:  # out of processes or memory: stop those started, say what to do
            stop.value = 1
            for q in procs:
                q.join(timeout=30)
            raise PallocError(f"cannot start fuzz worker {w} ({e.strerror or e}); try --jobs 1") from None
        send.close()  # the worker's end: the parent sees EOF when the worker is gone
        procs.append(pr)
        conns[w] = recv
    latest: dict[int, Any] = {}  # each worker's last Stats
    outs: dict[int, Outcome] = {}
    found: dict[int, dict] = {}  # each worker's divergence as found, before its shrinking
    interrupted = False

    def show():
        if on_progress is not None:
            on_progress(_summed(latest.values(), started))

    # A worker past the budget by this much (a heap, a shrink, helper restarts) is stuck.
    hard_stop = deadline + GRACE_SECONDS
    total_left = progress.left()  # --total-seconds: the whole run ends by then, found cases written unshrunk
    if total_left is not None:
        hard_stop = min(hard_stop, time.time() + total_left)
    answered_at = None  # when a worker first delivered a confirmed divergence
    while conns:
        try:
            _receive(conns, procs, outs, latest, stop, show, found)
            if answered_at is None and any(f.get("confirmed", True) for o in outs.values() for f in o.failures):
                answered_at = time.time()
            if answered_at is not None and time.time() > answered_at + AFTER_ANSWER_SECONDS:
                # The verdict is in; the others were told to stop and are still explaining (a
                # hang costs its watchdog several times): what they found is written unshrunk.
                for w in list(conns):
                    procs[w].kill()
                    del conns[w]
                    outs[w] = Outcome(latest.get(w) or Stats(), "stopped")
            if time.time() > hard_stop:
                stop.value = 1
                for w in list(conns):
                    procs[w].kill()
                    del conns[w]
                    outs[w] = Outcome(Stats(), "helper", error=f"fuzz worker {w} did not finish within "
                                      f"{GRACE_SECONDS:.0f} s of the budget's end; it was stopped")
        except KeyboardInterrupt:  # every worker finishes its heap and reports
            interrupted = True
            stop.value = 1
    for pr in procs:
        pr.join(timeout=5)
    for w, case in found.items():
        if not outs[w].failures:  # it died or was stopped before writing its case: write it here
            outs[w].failures.append(_orphan_case(conf, w, case))
    out = _merge([outs[w] for w in range(jobs)], started)
    if interrupted and out.stopped == "budget":
        out.stopped = "interrupted"
    return out
