"""The matrix on a real Dask cluster (goref/matrix.py): a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 run the shards of a campaign of fixed work; one worker is killed while
they run, and the merged report is still complete and identical to a run of the same shards in
this process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from palloc.goref import matrix

pytestmark = pytest.mark.go

SHARDS = 6
HEAPS = 6  # heaps per shard: about a second each natively


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    # Own session: killing a worker kills it alone, and the test's teardown the whole group.
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"})


@pytest.fixture
def cluster(tmp_path):
    pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    exe = Path(sys.executable).with_name("dask")
    if not exe.is_file():
        pytest.skip("the `dask` command is not installed beside this Python (pip install distributed)")
    procs = [_start([str(exe), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")]
    deadline = time.monotonic() + 60
    while not sched_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sched_file.exists(), (tmp_path / "scheduler.log").read_text()
    address = json.loads(sched_file.read_text())["address"]
    assert address.startswith("tcp://127.0.0.1:")
    workers = []
    for i in range(2):
        w = _start([str(exe), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                    "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"], tmp_path / f"worker{i}.log")
        workers.append(w)
        procs.append(w)
    from dask.distributed import Client

    with Client(address, timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    yield address, workers
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


def _conf(tmp_path):
    from palloc.goref.campaign import Config

    return Config(goarch="amd64", seconds=300.0, seed=3, steps=100, failures=str(tmp_path / "failures"), heaps=HEAPS)


def _report(outs: list[dict]) -> list[tuple]:
    """What a shard's report says, less its timings: verdict, ops, heaps, operations by kind."""
    return [(d.get("stopped"), d.get("error"), d["stats"].ops, d["stats"].examples, sorted(d["stats"].by_kind.items()))
            for d in outs]


def test_a_killed_worker_loses_no_shard_and_the_report_equals_a_local_run(cluster, tmp_path, need_helper):
    need_helper("amd64")  # the helper is built here, and cached for the workers (same machine)
    address, workers = cluster
    conf = _conf(tmp_path)
    cells = [matrix.Cell("fuzz", ("amd64", w), {"conf": conf, "shard": w, "shards": SHARDS}) for w in range(SHARDS)]
    killed, seen = [], []

    def arrived(cell, res):
        seen.append((cell.key, res.get("worker")))
        if not killed:  # a shard is done: kill the worker that is not idle mid-shard
            victim = workers[1]
            os.killpg(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    got = matrix.run(matrix.fuzz_shard, cells, scheduler=address, on_result=arrived, progress=False)
    assert killed and workers[1].wait(timeout=10) is not None
    assert len(got) == SHARDS and all("stats" in d for d in got), [d.get("why") for d in got]
    assert all(d["stopped"] == "budget" and d["error"] is None for d in got)
    # After the kill every shard still finished: the killed worker's on the one left (a result it
    # had already handed over when it died may still be its own).
    assert sum(w == "w1" for _, w in seen[1:]) <= 1 and seen[-1][1] == "w0"
    # The same shards in this process: the same report, shard for shard.
    local = [matrix.fuzz_shard(c.args) for c in cells]
    assert _report(got) == _report(local)
    from palloc.goref.campaign import Outcome, _merge

    merged = _merge([Outcome(**{k: v for k, v in d.items() if k != "worker"}) for d in got], time.monotonic())
    assert merged.verdict == "holds" and merged.stats.examples == SHARDS * HEAPS


def test_an_unreachable_scheduler_is_one_line(capsys):
    from palloc.spec.errors import PallocError

    with pytest.raises(PallocError) as e:
        with matrix.client("tcp://127.0.0.1:9"):
            pass
    assert "dask scheduler" in str(e.value) and "\n" not in str(e.value)
