"""Run a matrix of independent cells on Dask distributed: mutants x GOARCH x seeds, Go versions x
GOARCH x seeds, and the shards of one `palloc fuzz` campaign.

Each cell is a task: a top-level function of this module called with plain data, returning plain
data (JSON-able), so it runs the same in an in-process `LocalCluster` (the default: one worker
process per core, one thread each, started and stopped here) and on an existing cluster given by
address (`--scheduler tcp://HOST:PORT`). Results stream back through `as_completed` and are handed
to `on_result` as they come (the verbs write their partial report then, so an interrupted run
keeps what finished), with a tqdm progress bar; the merged list is in the cells' own order, so the
report does not depend on which worker finished first. A worker that dies has its task run again
by Dask on another worker (the scheduler's own rescheduling of lost work, up to its
`allowed-failures`); a task that raises is retried `retries` times and then becomes an error row.
Nothing here schedules, queues or retries by hand.

A worker of an existing cluster runs the cells with its own palloc, toolchains and emulators,
and builds and caches its own helpers (goref/README.md, "A Dask cluster").

Mirrors no Go file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
import uuid
from typing import Any, Callable, Iterator

from palloc.spec.errors import PallocError

SCHEDULER_FIX = "start one with `dask scheduler` and workers with `dask worker ADDRESS` (goref/README.md, \"A Dask cluster\")"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One task of a matrix: its kind, its key in the report (e.g. (mutant id, GOARCH, seed)) and
    the plain-data arguments of its function."""

    kind: str
    key: tuple
    args: dict

    def label(self) -> str:
        return " ".join(str(k) for k in self.key)


def default_workers() -> int:
    """One worker process per core this process may use (each cell is one model process plus a
    helper at a fraction of a core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Yields a dask.distributed Client: on the cluster at `scheduler`, or on a LocalCluster of
    `workers` processes (default: one per core) that is shut down afterwards.

    Raises PallocError (one line) when Dask is not installed or the scheduler cannot be reached.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PallocError("the matrix runs on Dask: pip install distributed (a dependency of palloc)") from None
    if scheduler:
        try:
            c = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError, ValueError) as e:
            raise PallocError(f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__}); {SCHEDULER_FIX}") from None
        try:
            yield c
        finally:
            c.close()
        return
    n = workers or default_workers()
    # Worker processes, not threads: a cell's model is CPU-bound Python. No dashboard (a port).
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def run(fn: Callable[[dict], dict], cells: list[Cell], *, scheduler: str | None = None, workers: int | None = None,
        desc: str = "matrix", on_result: Callable[[Cell, dict], None] | None = None, retries: int = 1,
        progress: bool | None = None) -> list[dict]:
    """Runs fn(cell.args) for every cell as a Dask task; returns the results in the cells' order.

    on_result(cell, result) is called as each result arrives. A cell whose task raised (after
    `retries` more tries) gets {"verdict": "error", "why": ...}. progress: a tqdm bar on stderr
    (None: when stderr is a terminal).
    """
    from dask.distributed import as_completed
    from tqdm import tqdm

    if not cells:
        return []
    results: dict[tuple, dict] = {}
    run_id = uuid.uuid4().hex[:8]
    with client(scheduler, workers) as c:
        futures = {}
        for i, cell in enumerate(cells):
            # pure=False and a unique key: two cells with equal arguments are still two runs.
            f = c.submit(fn, cell.args, key=f"palloc-{cell.kind}-{run_id}-{i}", pure=False, retries=retries)
            futures[f] = cell
        bar = tqdm(total=len(cells), desc=desc, unit="cell", file=sys.stderr, disable=None if progress is None else not progress)
        try:
            for f in as_completed(futures):
                cell = futures[f]
                try:
                    res = f.result()
                except Exception as e:  # noqa: BLE001 - the cell's own failure, after Dask's retries
                    words = str(e) if isinstance(e, PallocError) else f"{type(e).__name__}: {e}"
                    res = {"verdict": "error", "why": words[:500]}
                results[cell.key] = res
                bar.update(1)
                bar.set_postfix_str(cell.label()[:40], refresh=False)
                if on_result is not None:
                    on_result(cell, res)
        finally:
            bar.close()
            for f in futures:  # Ctrl-C: nothing left running on the cluster
                if not f.done():
                    f.cancel()
    return [results[cell.key] for cell in cells]


# --- the cells --------------------------------------------------------------------------------
# Each runs on a worker: it finds the worker's own toolchain and builds (or takes from the
# worker's cache) the helper it needs; everything it returns is plain data. The cells of
# `palloc mutants` runs verify-change itself, so it lives with its verb (cli/mutants.py
# mutant_cell); verify-change's is goref/verdict.py verify_cell. goref never imports cli.


def version_cell(a: dict) -> dict:
    """One Go release on one GOARCH with one seed: goref/versions.py run_cell; returns its JSON."""
    from palloc.goref.versions import run_cell

    c = run_cell(a["version"], a["goarch"], a["seconds"], a["seed"], steps=a.get("steps"),
                 install=a.get("install", True), failures=a.get("failures"))
    out = c.to_json()
    out["worker"] = worker_name()
    return out


def fuzz_shard(a: dict) -> dict:
    """Shard w of n of one lockstep campaign (heaps w, w+n, ...: heap k is drawn from its own
    seeded PRNG, so it is the same whichever worker runs it); returns its campaign Outcome as a
    dict (goref/campaign.py)."""
    from palloc.goref.campaign import make_runner, run_here

    conf = a["conf"]
    runner = make_runner(conf)
    out = run_here(conf, runner, first_heap=a["shard"], heap_stride=a["shards"])
    d = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}  # stats stays a goref.fuzz.Stats
    d["worker"] = worker_name()
    return d


def run_fuzz(conf, shards: int, scheduler: str | None = None, workers: int | None = None):
    """Runs one lockstep campaign as `shards` Dask tasks (fuzz_shard); returns the merged
    goref.campaign.Outcome, as run_pool's. Each shard runs the whole budget from its start and
    writes what it finds on its worker; a divergence in one does not stop the others."""
    from palloc.goref.campaign import Outcome, _merge
    from palloc.goref.fuzz import Stats

    started = time.monotonic()
    cells = [Cell("fuzz", (conf.goarch, w), {"conf": conf, "shard": w, "shards": shards}) for w in range(shards)]
    got = run(fuzz_shard, cells, scheduler=scheduler, workers=workers, desc=f"fuzz {conf.goarch}")
    outs = []
    for d in got:
        if "stats" in d:
            outs.append(Outcome(**{k: v for k, v in d.items() if k != "worker"}))
        else:
            outs.append(Outcome(Stats(), "helper", error=f"fuzz shard: {d.get('why', 'did not run')}"))
    return _merge(outs, started)


def worker_name() -> str:
    try:
        from dask.distributed import get_worker

        return get_worker().name
    except (ImportError, ValueError):
        return "local"
