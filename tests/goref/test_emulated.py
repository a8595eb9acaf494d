"""The real runtime on other GOARCHes (goref/targets.py): arm64 and mips under qemu-user, wasm
under Node.js, and a helper slowed down 20x natively.

On each emulated GOARCH a short lockstep campaign finds no divergence, and a broken model variant
is caught: the emulated runtime is really compared. Each skips, saying what to install, where its
emulator is missing. A cold cross-build of a helper takes 60-150 s (once per machine: cached);
the other GOARCHes are in the slow tests.
"""

from __future__ import annotations

import sys

import pytest

from palloc.goref import targets

pytestmark = pytest.mark.go

# One 64-bit and one 32-bit GOARCH under qemu (mips: heapAddrBits 31, big-endian, the 32-bit
# summary layout), and js/wasm (64-page chunks, 64 KiB physical pages).
DEFAULT = ["arm64", "mips", "wasm"]
SLOW = ["arm", "ppc64le", "ppc64", "s390x", "riscv64", "loong64", "mipsle", "mips64", "mips64le", "wasip1"]


def _runner(need_helper, goarch):
    t = targets.target(goarch)
    if not t.runnable:
        pytest.skip(f"{goarch} cannot run here: {t.why}")
    return need_helper(goarch)


def _campaign(runner, seconds=3.0, heaps=None):
    from palloc.goref.lockstep import run_lockstep_campaign

    return run_lockstep_campaign(runner, seconds, seed=1, step_count=120, max_examples=heaps)


def _check(need_helper, goarch):
    runner = _runner(need_helper, goarch)
    assert runner.go.helper.target.runner == targets.target(goarch).runner
    assert runner.platform_diffs == [], runner.platform_diffs
    res = _campaign(runner, heaps=8)
    assert res.failure is None and res.harness_fault is None, res.failure and res.failure.divergence.text()
    assert runner.stats.ops > 500 and runner.go.helper.deaths == []
    broken = need_helper(goarch, variant="find-off-by-one")
    res = _campaign(broken, seconds=30.0)
    assert res.failure is not None and res.failure.divergence is not None  # the broken variant is caught


@pytest.mark.parametrize("goarch", DEFAULT)
def test_lockstep_agrees_and_a_broken_model_is_caught(need_helper, goarch):
    _check(need_helper, goarch)


@pytest.mark.slow
@pytest.mark.parametrize("goarch", SLOW)
def test_lockstep_agrees_and_a_broken_model_is_caught_slow(need_helper, goarch):
    _check(need_helper, goarch)


def test_the_emulated_runtime_reports_its_own_goarch_and_page_sizes(need_helper):
    runner = _runner(need_helper, "mips")
    info = runner.go.helper.info
    assert info["goarch"] == "mips" and info["goos"] == "linux"
    assert runner.p.heap_addr_bits == 31 and runner.p.ptr_size == 4
    assert runner.host["phys_page_size"] == 4096  # qemu-user's 4 KiB pages for mips (F25)


def test_wasm_runs_its_64_page_chunks_and_64k_physical_pages(need_helper):
    runner = _runner(need_helper, "wasm")
    assert runner.p.palloc_chunk_pages == 64 and runner.host["phys_page_size"] == 65536
    assert runner.go.helper.info["goos"] == "js"


@pytest.mark.parametrize("goarch,kind", [("amd64", "go-throw"), ("wasm", "go-panic")])
def test_freeing_an_allocator_that_never_grew_faults_in_the_runtime(need_helper, goarch, kind):
    """FINDINGS.md F26: FreePageAlloc indexes summary[0][0]; natively a throw, on wasm a recoverable
    panic. The lockstep never drops such an allocator (a generated wasm heap once did)."""
    runner = _runner(need_helper, goarch)
    r = runner.go.helper.call([{"op": "new", "empty": True}, {"op": "drop"}])
    assert r[0]["kind"] == "ok" and r[1]["kind"] == kind and "index out of range" in r[1]["msg"]
    runner.go.helper.restart()


def test_a_hung_emulated_runtime_is_killed_with_its_stacks(need_helper):
    """qemu-user passes the watchdog's SIGQUIT to the guest: the Go runtime prints where it was."""
    runner = _runner(need_helper, "arm64")
    h = runner.go.helper
    r = h.call([{"op": "sleep", "ms": 60_000}], timeout=3.0)[0]
    assert r["kind"] == "go-hang"
    assert "SIGQUIT" in r["stderr"] and "goroutine" in r["stderr"]
    assert h.call1({"op": "ping"})["kind"] == "ok"  # restarted


THROTTLE = """
import os, signal, subprocess, sys, time
duty, cmd = float(sys.argv[1]), sys.argv[2:]
p = subprocess.Popen(cmd)  # stdin, stdout, stderr: the helper's own
signal.signal(signal.SIGQUIT, lambda *a: (os.kill(p.pid, signal.SIGCONT), p.send_signal(signal.SIGQUIT)))
while p.poll() is None:  # the helper runs `duty` of every 100 ms
    time.sleep(0.1 * duty)
    os.kill(p.pid, signal.SIGSTOP)
    time.sleep(0.1 * (1 - duty))
    os.kill(p.pid, signal.SIGCONT)
sys.exit(p.returncode)
"""


def test_the_lockstep_stays_correct_when_the_helper_is_20x_slower(need_helper, tmp_path):
    """A native helper run 2 ms of every 100 (SIGSTOP/SIGCONT; 12-20x slower, measured on 5,000
    allocs, more than qemu's 6-14x) answers like an emulated one: the
    watchdog scales with the measured start-up and batches, no batch is taken for a hang, and a
    broken model is still caught."""
    from palloc.goref.driver import GoHelper
    from palloc.goref.fuzz import Lockstep
    from palloc.goref.go_side import GoSide

    base = need_helper("amd64")
    throttle = tmp_path / "throttle.py"
    throttle.write_text(THROTTLE)
    h = GoHelper(base.go.helper.binary, goarch="amd64", launcher=[sys.executable, str(throttle), "0.02"])
    try:
        h.start()
        assert h.start_seconds > 0 and h.timeout_for(1000) >= h.timeout
        for variant, want in ((None, False), ("find-off-by-one", True)):
            from palloc.goref.broken import model_variant as get

            fac = get(variant).factory() if variant else None
            runner = Lockstep(base.p, GoSide(base.p, h), fac, base.host, goarch="amd64", go_version=base.go_version)
            res = _campaign(runner, seconds=25.0, heaps=None if want else 3)
            assert (res.failure is not None) == want, res.failure and res.failure.divergence.text()
            assert res.harness_fault is None
        assert not any(d["kind"] == "go-hang" for d in h.deaths), h.deaths
    finally:
        h.close()
