"""CrossHair contracts on the model's pure functions (PEP 316 `pre:`/`post:` docstrings).

Each check_* function states one property of a model function on linux/amd64 constants (the
function's own code is platform-generic; the encodings' platform sweep is Theorem 1-4's job).
`palloc contracts` and tests/proofs/test_contracts.py run CrossHair on every check_*, with a
short per-condition timeout, and grade the answer honestly:

  confirmed        CrossHair exhausted every path: the contract holds for all inputs
  could not refute CrossHair ran out of time or paths without finding a counterexample
  counterexample   CrossHair found inputs breaking the post-condition (printed)
  error            the check raised, or its precondition cannot be met

check_broken_* are contracts that must fail; they keep the harness honest.

CrossHair follows bytecode: a model module compiled by Cython (palloc.model.COMPILED) is opaque
to it, and it could only try concrete values there. run_checks therefore runs CrossHair in a
child Python on the interpreted model (PALLOC_INTERPRETED=1), whatever this process runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Iterator

from palloc.model import mpagealloc as M
from palloc.model import mpagealloc_fast as MF
from palloc.model import mpallocbits as MB
from palloc.model import mpallocbits_fast as MBF
from palloc.model.mranges import AddrRange, OffAddr
from palloc.spec import platform

P = platform("linux/amd64")
MAX_PACKED = P.max_packed_value  # 1 << 21
CHUNK_PAGES = P.palloc_chunk_pages
HEAP = 1 << P.heap_addr_bits
ABO = P.arena_base_offset
MASK = P.uintptr_mask
NCHUNKS = 1 << (P.heap_addr_bits - P.log_palloc_chunk_bytes)
LOG_LEAF = P.level_log_pages[P.summary_levels - 1]


def check_pack_unpack_round_trip(start: int, most: int, end: int) -> bool:
    """
    pre: 0 <= start <= most < MAX_PACKED
    pre: 0 <= end <= most
    post: __return__
    """
    return M.palloc_sum_unpack(P, M.pack_palloc_sum(P, start, most, end)) == (start, most, end)


def check_pack_all_free_is_special(x: int) -> bool:
    """
    pre: x == MAX_PACKED
    post: __return__
    """
    return M.pack_palloc_sum(P, x, x, x) == 1 << 63 and M.palloc_sum_unpack(P, 1 << 63) == (x, x, x)


def check_merge_two_free_leaves_is_free(a: int) -> bool:
    """
    pre: a == CHUNK_PAGES
    post: __return__
    """
    s = M.pack_palloc_sum(P, a, a, a)
    return M.palloc_sum_unpack(P, M.merge_summaries(P, [s, s], LOG_LEAF)) == (2 * a, 2 * a, 2 * a)


def check_merge_matches_readable_twin(s0: int, m0: int, e0: int, s1: int, m1: int, e1: int) -> bool:
    """
    pre: 0 <= s0 <= m0 <= CHUNK_PAGES and 0 <= e0 <= m0 and (m0 < CHUNK_PAGES or s0 == e0 == m0)
    pre: 0 <= s1 <= m1 <= CHUNK_PAGES and 0 <= e1 <= m1 and (m1 < CHUNK_PAGES or s1 == e1 == m1)
    pre: (m0 == CHUNK_PAGES) or s0 + e0 < CHUNK_PAGES
    pre: (m1 == CHUNK_PAGES) or s1 + e1 < CHUNK_PAGES
    post: __return__
    """
    sums = [M.pack_palloc_sum(P, s0, m0, e0), M.pack_palloc_sum(P, s1, m1, e1)]
    return M.merge_summaries(P, sums, LOG_LEAF) == M.merge_summaries_slow(P, sums, LOG_LEAF)


# The pre: conditions repeat check_merge_matches_readable_twin's on purpose: CrossHair reads each
# contract's from its own docstring.
def check_merge_summaries_fast_equals_mirror(s0: int, m0: int, e0: int, s1: int, m1: int, e1: int) -> bool:
    """The fast layer's merge (two passes, zeros not unpacked) against Go's loop.

    pre: 0 <= s0 <= m0 <= CHUNK_PAGES and 0 <= e0 <= m0 and (m0 < CHUNK_PAGES or s0 == e0 == m0)
    pre: 0 <= s1 <= m1 <= CHUNK_PAGES and 0 <= e1 <= m1 and (m1 < CHUNK_PAGES or s1 == e1 == m1)
    post: __return__
    """
    sums = [M.pack_palloc_sum(P, s0, m0, e0), M.pack_palloc_sum(P, s1, m1, e1)]
    return MF.merge_summaries_fast(P, sums, LOG_LEAF) == M.merge_summaries(P, sums, LOG_LEAF)


def check_broken_merge_fast_adds_every_start(s0: int, m0: int, e0: int, s1: int, m1: int, e1: int) -> bool:
    """Must fail: a merge that adds the second start whether or not the first summary is all free.

    pre: 0 <= s0 <= m0 <= CHUNK_PAGES and 0 <= e0 <= m0 and (m0 < CHUNK_PAGES or s0 == e0 == m0)
    pre: 0 <= s1 <= m1 <= CHUNK_PAGES and 0 <= e1 <= m1 and (m1 < CHUNK_PAGES or s1 == e1 == m1)
    post: __return__
    """
    sums = [M.pack_palloc_sum(P, s0, m0, e0), M.pack_palloc_sum(P, s1, m1, e1)]
    got = MF.merge_summaries_fast(P, sums, LOG_LEAF)
    start, most, end = M.palloc_sum_unpack(P, got)
    broken = M.pack_palloc_sum(P, min(s0 + s1, MAX_PACKED - 1), most, end) if most < MAX_PACKED else got
    return broken == M.merge_summaries(P, sums, LOG_LEAF)


def check_fast_summarize_equals_mirror(v: int, w: int) -> bool:
    """The fast layer's whole-chunk summarize against Go's word loop (as check_summarize_matches_readable_twin).

    pre: 0 <= v < (1 << 64) and 0 <= w < (1 << 64)
    post: __return__
    """
    bits = v | (((1 << 384) - 1) << 64) | (w << 448)
    return MBF.FastPallocData(P, bits).summarize() == MB.PallocBits(P, bits).summarize()


def check_find_bit_range64_matches_readable_twin(c: int, n: int) -> bool:
    """
    pre: 0 <= c < (1 << 64)
    pre: 1 <= n <= 64
    post: __return__
    """
    return MB.find_bit_range64(c, n) == MB.find_bit_range64_slow(c, n)


def check_summarize_matches_readable_twin(v: int, w: int) -> bool:
    """Two symbolic words (pages [0, 64) and [448, 512)); the pages between are allocated.

    pre: 0 <= v < (1 << 64) and 0 <= w < (1 << 64)
    post: __return__
    """
    b = MB.PallocBits(P, v | (((1 << 384) - 1) << 64) | (w << 448))
    return b.summarize() == MB.summarize_slow(b)


def check_chunk_index_chunk_base_round_trip(ci: int) -> bool:
    """
    pre: 0 <= ci < NCHUNKS
    post: __return__
    """
    return M.chunk_index(P, M.chunk_base(P, ci)) == ci


def check_chunk_base_aligns_address_down(off: int) -> bool:
    """
    pre: 0 <= off < HEAP
    post: __return__
    """
    a = (off + ABO) & MASK
    return M.chunk_base(P, M.chunk_index(P, a)) == (a - off % P.palloc_chunk_bytes) & MASK


def check_off_addr_order_is_offset_order(oa: int, ob: int) -> bool:
    """
    pre: 0 <= oa < HEAP and 0 <= ob < HEAP
    post: __return__
    """
    a, b = OffAddr(P, (oa + ABO) & MASK), OffAddr(P, (ob + ABO) & MASK)
    return a.less_than(b) == (oa < ob) and a.add(b.diff(a)).equal(b)


def check_addr_range_size_is_length(ob: int, n: int) -> bool:
    """
    pre: 0 <= ob < HEAP and 0 <= n <= HEAP - ob
    post: __return__
    """
    base = (ob + ABO) & MASK
    return AddrRange(P, base, (base + n) & MASK).size() == n


def check_broken_pack_max_packed_by_masking(most: int) -> bool:
    """Must fail: masking max = maxPackedValue into 21 bits loses it.

    pre: 0 <= most <= MAX_PACKED
    post: __return__
    """
    return (most & (MAX_PACKED - 1)) == most


CHECKS = sorted(name for name in dir() if name.startswith("check_"))

CONFIRMED, NOT_REFUTED, COUNTEREXAMPLE, ERROR = "confirmed", "could not refute", "counterexample", "error"


def _patch_crosshair_for_namespace_packages():
    # CrossHair reads "# crosshair:" directives from every parent package's __init__.py; the
    # palloc namespace (mapped by setuptools package-dir) has none, and importlib.resources
    # raises NotADirectoryError on it. Treat such a package as having no directives.
    from crosshair import codeconfig, core
    from crosshair.options import AnalysisOptionSet

    if getattr(codeconfig.collect_options, "_palloc_safe", False):
        return
    orig = codeconfig.collect_options

    def safe(thing):
        try:
            return orig(thing)
        except (NotADirectoryError, TypeError, OSError):
            return AnalysisOptionSet()

    safe._palloc_safe = True
    codeconfig.collect_options = safe
    core.collect_options = safe


def run_check(name: str, per_condition_timeout: float = 4.0) -> tuple[str, str]:
    """Runs CrossHair on one check_*; returns (grade, detail)."""
    from crosshair.core_and_libs import analyze_function, run_checkables
    from crosshair.options import DEFAULT_OPTIONS, AnalysisKind, AnalysisOptionSet
    from crosshair.statespace import MessageType

    _patch_crosshair_for_namespace_packages()
    fn = globals()[name]
    opts = DEFAULT_OPTIONS.overlay(AnalysisOptionSet(
        analysis_kind=[AnalysisKind.PEP316], per_condition_timeout=per_condition_timeout, report_all=True))
    msgs = run_checkables(analyze_function(fn, opts))
    bad = [m for m in msgs if m.state in (MessageType.POST_FAIL, MessageType.POST_ERR)]
    if bad:
        return COUNTEREXAMPLE, bad[0].message
    err = [m for m in msgs if m.state in (MessageType.EXEC_ERR, MessageType.PRE_UNSAT,
                                          MessageType.SYNTAX_ERR, MessageType.IMPORT_ERR)]
    if err:
        return ERROR, err[0].message
    if msgs and all(m.state == MessageType.CONFIRMED for m in msgs):
        return CONFIRMED, ""
    return NOT_REFUTED, "no counterexample within the per-condition timeout"


def expected_grade(name: str) -> set[str]:
    """What a healthy check may report: variants must be refuted, others must not be."""
    if name.startswith("check_broken_"):
        return {COUNTEREXAMPLE}
    return {CONFIRMED, NOT_REFUTED}


def run_checks(names: list[str], per_condition_timeout: float) -> Iterator[dict]:
    """Runs run_check on each name in a child Python on the interpreted model; yields, as each
    ends, {"check", "grade", "detail", "seconds"}.

    Raises PallocError if the child's model is not interpreted or the child dies (the results
    yielded before are kept by the caller).
    """
    from palloc.model import INTERPRETED_ENV
    from palloc.spec.errors import PallocError

    cmd = [sys.executable, "-m", __name__, str(per_condition_timeout), *names]
    env = {**os.environ, INTERPRETED_ENV: "1"}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        build = json.loads(child.stdout.readline() or "{}").get("model_build")
        if build != "interpreted":
            child.kill()
            raise PallocError(f"the CrossHair child runs the model {build or 'not at all'}, not interpreted; "
                              f"check that {INTERPRETED_ENV}=1 reaches it")
        for line in child.stdout:
            if line.startswith("{"):  # a result; anything else is CrossHair talking
                yield json.loads(line)
        err = child.stderr.read()
    if child.returncode != 0:
        last = (err.strip().splitlines() or ["no message"])[-1]
        raise PallocError(f"the CrossHair child exited {child.returncode}: {last}")


def _child(argv: list[str]) -> None:
    from palloc import model

    print(json.dumps({"model_build": model.build()}), flush=True)
    timeout, names = float(argv[0]), argv[1:]
    for n in names:
        t0 = time.perf_counter()
        grade, detail = run_check(n, timeout)
        print(json.dumps({"check": n, "grade": grade, "detail": detail,
                          "seconds": round(time.perf_counter() - t0, 3)}), flush=True)


if __name__ == "__main__":
    # Run on the module under its own name (not __main__), as CrossHair then sees it.
    from palloc.proofs import contracts as _contracts

    _contracts._child(sys.argv[1:])
