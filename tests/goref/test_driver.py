"""GoHelper against the real runtime: constants, the version probe, deaths as results, restarts.

Crash-report parsing is checked on canned Go output without a toolchain; everything else needs
one (`go` marker) and skips with the reason when there is none.
"""

from __future__ import annotations

import os
import platform as host
from pathlib import Path

import pytest

from palloc.goref.targets import HOST_CONSTANTS, compare_constants
from palloc.goref.driver import GoHelper, decode, encode, parse_crash
from palloc.spec import platform
from palloc.spec.errors import PallocError

BASE = 0x3000000000  # PageBase(BaseChunkIdx, 0) on linux/amd64
CHUNK = 4 << 20


def _toolchain():
    from palloc.goref.toolchain import find_toolchain

    try:
        return find_toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e})")


@pytest.fixture(scope="module")
def helper():
    tc = _toolchain()
    if (tc.goos, tc.goarch) != ("linux", "amd64"):
        pytest.skip(f"these expectations are linux/amd64's; the toolchain is {tc.goos}/{tc.goarch}")
    with GoHelper(toolchain=tc, timeout=60) as h:
        yield h


def _ok(results):
    bad = [r for r in results if r["kind"] != "ok"]
    assert not bad, bad
    return results


# --- crash reports, no toolchain needed --------------------------------------------------------

THROW = """runtime: inUse=0 npages=3
fatal error: allocated pages below zero?

runtime stack:
runtime.throw({0x8a1b2c?, 0x0?})
\t/go/src/runtime/panic.go:1243 +0x48 fp=0x7ffd sp=0x7ffd pc=0x43b2c8
runtime.(*scavChunkData).free(...)
\t/go/src/runtime/mgcscavenge.go:1336
"""

SIGNAL_FAULT = """unexpected fault address 0x7f0000001000
fatal error: fault
[signal SIGSEGV: segmentation violation code=0x1 addr=0x7f0000001000 pc=0x44a9b6]

goroutine 7 gp=0xc000 m=0 mp=0x9 [running]:
runtime.throw({0x8a1b2c?, 0x0?})
\t/go/src/runtime/panic.go:1243 +0x48
runtime.(*pageAlloc).update(0x1, 0x2)
\t/go/src/runtime/mpagealloc.go:503 +0x1f6
"""

BARE_FAULT = """SIGSEGV: segmentation violation
PC=0x44a9b6 m=3 sigcode=2 addr=0x7f559943aff8

goroutine 0 gp=0x1575 m=3 mp=0x1575 [idle]:
runtime.(*pageAlloc).find(0x1575cefee000, 0x1)
\t/go/src/runtime/mpagealloc.go:769 +0x1f6 fp=0x1 sp=0x2 pc=0x44a9b6
"""

PANIC = """panic: runtime error: index out of range [5] with length 3

goroutine 7 [running]:
runtime_test.(*pallocSrv).dispatch(0x1)
\t/go/src/runtime/palloc_server_test.go:300 +0x1
"""


def test_throw_report_gives_message_detail_and_stack_head():
    r = parse_crash(THROW)
    assert r["kind"] == "go-throw" and r["msg"] == "allocated pages below zero?"
    assert r["detail"] == ["runtime: inUse=0 npages=3"]
    assert r["stack"][:2] == ["runtime.throw panic.go:1243", "runtime.(*scavChunkData).free mgcscavenge.go:1336"]


def test_signal_during_throw_is_a_fault_with_its_address():
    r = parse_crash(SIGNAL_FAULT)
    assert (r["kind"], r["signal"], r["addr"]) == ("go-fault", "SIGSEGV", 0x7F0000001000)
    assert "runtime.(*pageAlloc).update mpagealloc.go:503" in r["stack"]


def test_bare_signal_on_system_stack_is_a_fault():
    r = parse_crash(BARE_FAULT)
    assert (r["kind"], r["msg"], r["addr"]) == ("go-fault", "SIGSEGV: segmentation violation", 0x7F559943AFF8)
    assert r["stack"][0] == "runtime.(*pageAlloc).find mpagealloc.go:769"


def test_unrecovered_panic_is_a_panic():
    r = parse_crash(PANIC)
    assert (r["kind"], r["msg"]) == ("go-panic", "runtime error: index out of range [5] with length 3")


def test_other_deaths_are_exits():
    assert parse_crash("killed\n")["kind"] == "go-exit"


def test_large_ints_travel_as_hex_and_come_back_as_ints():
    assert encode({"a": 1 << 60, "b": 5, "c": True, "d": [1 << 53]}) == {"a": hex(1 << 60), "b": 5, "c": True, "d": [hex(1 << 53)]}
    assert decode({"addr": "0x10", "msg": "0x10", "xs": ["0xff"]}) == {"addr": 16, "msg": "0x10", "xs": [255]}


# --- the real helper ----------------------------------------------------------------------------


def _host_value(key: str) -> int:
    if key == "physPageSize":
        return os.sysconf("SC_PAGESIZE")
    f = Path("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
    return int(f.read_text()) if f.exists() else 0


@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_helper_constants_equal_palloc_platform(goarch):
    tc = _toolchain()
    if (tc.goos, host.machine()) != ("linux", "x86_64"):
        pytest.skip("amd64 and 386 helpers both run only on x86-64 Linux")
    with GoHelper(toolchain=tc, goarch=goarch) as h:
        r = h.call1({"op": "constants"})
    assert (r["kind"], r["goos"], r["goarch"], r["version"]) == ("ok", "linux", goarch, tc.version)
    mismatches, notes = compare_constants(r, platform(f"linux/{goarch}", r["version"]))
    assert mismatches == []
    assert [n for n in notes if n["name"] not in HOST_CONSTANTS] == []
    for k in HOST_CONSTANTS:  # the helper reports the host's page sizes
        assert r[k] == _host_value(k)


@pytest.mark.go
def test_constants_broken_variant_is_caught():
    """The comparison can fail: a platform with another heapAddrBits is reported."""
    tc = _toolchain()
    with GoHelper(toolchain=tc) as h:
        r = h.call1({"op": "constants"})
    wrong = platform(f"{r['goos']}/{r['goarch']}").replace(summary_level_bits=4)
    mismatches, _ = compare_constants(r, wrong)
    assert {"summaryLevelBits", "levelBits"} <= {m["name"] for m in mismatches}


@pytest.mark.go
def test_grow_alloc_free_scavenge_probe_gives_the_runtimes_state(helper):
    r = _ok(helper.call([
        {"op": "new", "empty": True},
        {"op": "grow", "base": BASE, "size": 2 * CHUNK},
        {"op": "dump", "summaries": "none", "chunks": "none"},
        {"op": "alloc", "npages": 3},
        {"op": "dump"},
        {"op": "free", "base": BASE, "npages": 3},
        {"op": "dump", "chunks": "none"},
        {"op": "scavenge", "nbytes": (1 << 64) - 1, "force": True},
        {"op": "dump", "summaries": "none"},
        {"op": "drop"},
    ]))
    grown, alloc, after_alloc, after_free, scav, after_scav = r[2], r[3], r[4], r[6], r[7], r[8]
    assert (grown["search_addr"], grown["start"], grown["end"], len(grown["in_use"])) == (BASE, 33603584, 33603586, 1)
    assert (alloc["addr"], alloc["scav"], after_alloc["search_addr"]) == (BASE, 24576, BASE)
    want = [(0x200C, 16384, 0x7FA00000), (0x10060, 65640, 0x7FA00000), (0x80300, 525064, 0x7FA00000),
            (0x401800, 4200456, 0x7FA00000), (0x200C000, 33603592, 0x7F4003FA00000)]
    for lv, (idx, ln, raw) in zip(after_alloc["summary"], want):
        seg = lv["entries"][0]
        assert (seg["lo"], lv["len"], seg["raw"][0]) == (idx, ln, raw)
    sc = after_alloc["scav_index"]["chunks"][0]
    assert (sc["ci"], sc["in_use"], sc["last_in_use"], sc["gen"], sc["flags"]) == (0x200C000, 3, 0, 0, 0)
    assert after_free["search_addr"] == BASE
    assert after_free["summary"][4]["entries"][0]["raw"][0] == platform("linux/amd64").free_chunk_sum == 0x8000040000200
    assert scav["released"] == 24576
    sc = after_scav["scav_index"]["chunks"][0]
    assert (sc["in_use"], sc["last_in_use"], sc["gen"], sc["flags"]) == (0, 0, 0, 0)
    c0 = after_scav["chunks"][0]
    assert (c0["scav"] & (2**64 - 1), c0["alloc"] & (2**64 - 1)) == (2**64 - 1, 0)


@pytest.mark.go
def test_new_page_alloc_marks_the_force_cursor_at_the_last_page(helper):
    ci = platform("linux/amd64").base_chunk_idx
    r = _ok(helper.call([
        {"op": "new", "chunks": {hex(ci): [[0, 512]], hex(ci + 1): [[0, 10]], hex(ci + 3): []}, "scav": {hex(ci + 1): [[5, 100]]}},
        {"op": "dump", "summaries": "none"},
        {"op": "drop"},
    ]))
    d = r[1]
    assert (d["search_addr"], d["start"], d["end"]) == (BASE, ci, ci + 4)
    assert d["in_use"] == [[BASE, BASE + 2 * CHUNK], [BASE + 3 * CHUNK, BASE + 4 * CHUNK]]
    si = d["scav_index"]
    assert si["search_addr_force_marked"] and si["search_addr_force"] == BASE + 4 * CHUNK - 8192
    assert not si["search_addr_bg_marked"]
    c1 = next(c for c in d["chunks"] if c["ci"] == ci + 1)
    assert c1["alloc"] == (1 << 10) - 1 and c1["scav"] == ((1 << 105) - 1) ^ ((1 << 10) - 1)


@pytest.mark.go
def test_mapped_summary_bytes_account_for_summary_mapped_ready(helper):
    r = _ok(helper.call([
        {"op": "new", "empty": True},
        {"op": "grow", "base": BASE, "size": CHUNK},
        {"op": "grow", "base": BASE + (1 << 40), "size": 3 * CHUNK},
        {"op": "dump", "summaries": "mapped", "chunks": "none"},
        {"op": "drop"},
    ]))
    d = r[3]
    summary_bytes = sum((hi - lo) * 8 for lv in d["summary"] for lo, hi in lv["mapped"])
    si = d["scav_index"]
    assert summary_bytes + (si["max"] - si["min"]) * 8 == d["summary_mapped_ready"]
    # The mapped entries are readable and hold the grown chunks' free summaries.
    leaf = {e["lo"] + i: v for e in d["summary"][4]["entries"] for i, v in enumerate(e["raw"])}
    assert leaf[0x200C000] == platform("linux/amd64").free_chunk_sum


@pytest.mark.go
def test_unmapped_summary_read_is_reported_unreadable_not_faulted(helper):
    # Unreadable entries are state (a patched runtime may map less than it should), reported
    # as such for the comparison to show, never read (a fault) and never a refused dump.
    r = helper.call([
        {"op": "new", "empty": True},
        {"op": "grow", "base": BASE, "size": CHUNK},
        {"op": "dump", "summaries": [[4, 0x300C000, 0x300C001], [4, 0x200C000, 0x200C001]]},
        {"op": "ping"},
        {"op": "drop"},
    ])
    assert r[2]["kind"] == "ok"
    leaf = r[2]["summary"][4]
    assert leaf["unreadable"] == [[0x300C000, 0x300C001]]
    assert [e["lo"] for e in leaf["entries"]] == [0x200C000]
    assert r[3]["kind"] == "ok"


@pytest.mark.go
def test_throw_comes_back_as_go_throw_and_the_helper_restarts(helper):
    gen = helper.generation
    r = helper.call([
        {"op": "new", "empty": True},
        {"op": "grow", "base": BASE, "size": CHUNK},
        {"op": "alloc", "npages": 1},
        {"op": "free", "base": BASE + 8192, "npages": 2},  # page 1 is free: the index goes below zero
        {"op": "ping"},
    ])
    assert [x["kind"] for x in r] == ["ok", "ok", "ok", "go-throw", "skipped"]
    assert r[2]["addr"] == BASE  # results before the death are kept
    t = r[3]
    assert t["msg"] == "allocated pages below zero?" and t["op_index"] == 3
    assert t["stack"][0].startswith("runtime.throw") and any("scavChunkData).free" in f for f in t["stack"])
    assert helper.call1({"op": "ping"})["kind"] == "ok"
    assert helper.generation == gen + 1


@pytest.mark.go
def test_fault_comes_back_as_go_fault(helper):
    # find on an allocator that never grew reads summary memory nothing mapped.
    r = helper.call([{"op": "new", "empty": True}, {"op": "find", "npages": 1}])
    assert r[1]["kind"] == "go-fault" and r[1]["signal"] == "SIGSEGV"
    assert r[1]["stack"][0].startswith("runtime.(*pageAlloc).find")


@pytest.mark.go
def test_hang_is_caught_by_the_watchdog(helper):
    r = helper.call([{"op": "ping"}, {"op": "sleep", "ms": 20000}, {"op": "ping"}], timeout=1.0)
    assert [x["kind"] for x in r] == ["ok", "go-hang", "skipped"]
    assert r[1]["op_index"] == 1
    assert helper.call1({"op": "ping"})["kind"] == "ok"


@pytest.mark.go
def test_panics_and_bad_ops_leave_the_helper_alive(helper):
    pid = helper.call1({"op": "ping"})["pid"]
    r = helper.call([{"op": "panic", "msg": "boom"}, {"op": "no_such_op"}, {"op": "alloc", "pa": 999, "npages": 1}, {"op": "ping"}])
    assert [x["kind"] for x in r] == ["go-panic", "error", "error", "ok"]
    assert "boom" in r[0]["msg"] and "unknown op" in r[1]["msg"] and "no page allocator 999" in r[2]["msg"]
    assert r[3]["pid"] == pid


@pytest.mark.go
def test_bitmaps_and_words_above_2_53_are_exact(helper):
    full = (1 << 512) - 1
    r = _ok(helper.call([
        {"op": "bits_alloc_range", "bits": 0, "i": 500, "n": 12},
        {"op": "bits_free", "bits": full, "i": 1, "n": 510},
        {"op": "find_bit_range64", "c": (1 << 64) - 1 - 1, "n": 63},
        {"op": "bits_summarize", "bits": 1 << 511},
        {"op": "bits_find", "bits": full, "npages": 1, "search_idx": 0},
    ]))
    assert r[0]["bits"] == ((1 << 12) - 1) << 500
    assert r[1]["bits"] == 1 | (1 << 511)
    assert r[2]["index"] == 1
    assert (r[3]["start"], r[3]["max"], r[3]["end"]) == (511, 511, 0)
    assert r[4]["index"] == (1 << 64) - 1  # ^uint(0): nothing free


@pytest.mark.go
def test_page_cache_slots(helper):
    r = _ok(helper.call([
        {"op": "new", "empty": True},
        {"op": "grow", "base": BASE, "size": CHUNK},
        {"op": "alloc_to_cache", "slot": 0},
        {"op": "cache_alloc", "slot": 0, "npages": 3},
        {"op": "cache_flush", "slot": 0},
        {"op": "dump", "summaries": "none"},
        {"op": "drop"},
    ]))
    assert (r[2]["base"], r[2]["cache"], r[2]["scav"]) == (BASE, (1 << 64) - 1, (1 << 64) - 1)
    assert (r[3]["addr"], r[3]["scav_bytes"], r[3]["cache"]) == (BASE, 3 * 8192, ((1 << 64) - 1) ^ 7)
    assert r[4]["cache"] == 0
    assert r[5]["chunks"][0]["alloc"] == 7


@pytest.mark.go
def test_bench_replays_the_workload_like_single_calls(helper):
    from palloc.model import workload

    tr = workload.trace_list(7, 400)
    setup = [{"op": "new", "empty": True}, {"op": "grow", "base": BASE, "size": workload.HEAP_CHUNKS * CHUNK}]
    b = _ok(helper.call(setup + [{"op": "bench", "trace": {"ops": tr}}, {"op": "drop"}]))[2]
    _ok(helper.call(setup))

    def alloc(n):
        x = helper.call1({"op": "alloc", "npages": n})
        return x["addr"], x["scav"]

    st = workload.replay(tr, alloc, lambda base, n: _ok([helper.call1({"op": "free", "base": base, "npages": n})]), record=True)
    helper.call1({"op": "drop"})
    assert b["results"] == st.results
    assert (b["allocs"], b["frees"], b["failed_allocs"], b["peak_live"]) == (st.allocs, st.frees, st.failed_allocs, st.peak_live)
    assert b["elapsed_ns"] > 0


@pytest.mark.go
def test_background_scavenge_waits_for_next_gen(helper):
    ci = platform("linux/amd64").base_chunk_idx
    r = _ok(helper.call([
        {"op": "new", "chunks": {hex(ci): []}},  # free, unscavenged; the Bg cursor is cleared
        {"op": "scavenge", "nbytes": (1 << 64) - 1, "force": False},
        {"op": "next_gen"},
        {"op": "dump", "summaries": "none"},
        {"op": "scavenge", "nbytes": (1 << 64) - 1, "force": False},
        {"op": "dump", "summaries": "none"},
        {"op": "drop"},
    ]))
    assert r[1]["released"] == 0
    si = r[3]["scav_index"]
    assert (si["gen"], si["search_addr_bg_marked"], si["search_addr_bg"]) == (1, True, BASE + CHUNK - 8192)
    assert si["free_hwm"] == platform("linux/amd64").min_off_addr  # nextGen resets the high-water mark
    assert r[4]["released"] == CHUNK
    assert r[5]["chunks"][0]["scav"] == (1 << 512) - 1 and r[5]["scav_index"]["chunks"][0]["flags"] == 0


@pytest.mark.go
def test_find_and_alloc_range_and_update(helper):
    ci = platform("linux/amd64").base_chunk_idx
    leaf = [[4, ci, ci + 1]]
    r = _ok(helper.call([
        {"op": "new", "chunks": {hex(ci): []}},
        {"op": "find", "npages": 3},
        {"op": "alloc_range", "base": BASE + 8192, "npages": 5},  # allocRange updates the summaries itself
        {"op": "dump", "summaries": leaf},
        {"op": "find", "npages": 3},
        {"op": "update", "base": BASE, "npages": 512, "contig": False, "alloc": False},
        {"op": "dump", "summaries": leaf},
        {"op": "drop"},
    ]))
    assert (r[1]["addr"], r[1]["search_addr"]) == (BASE, BASE)
    assert r[2]["scav"] == 0  # NewPageAlloc cleared the scavenged bits
    raw = r[3]["summary"][4]["entries"][0]["raw"][0]
    assert (raw & (2**21 - 1), (raw >> 21) & (2**21 - 1), raw >> 42) == (1, 506, 506)
    assert r[3]["chunks"][0]["alloc"] == 0b111110
    assert r[4]["addr"] == BASE + 6 * 8192
    assert r[6]["summary"][4]["entries"][0]["raw"][0] == raw  # update recomputes the same summary


@pytest.mark.go
def test_addr_ranges_ops(helper):
    r = _ok(helper.call([
        {"op": "addr_ranges_new"},
        {"op": "addr_ranges_add", "base": BASE, "limit": BASE + 0x1000},
        {"op": "addr_ranges_add", "base": BASE + 0x3000, "limit": BASE + 0x4000},
        {"op": "addr_ranges_add", "base": BASE + 0x1000, "limit": BASE + 0x2000},  # coalesces down
        {"op": "addr_ranges_find_succ", "addr": BASE + 0x2800},
        {"op": "addr_ranges_contains", "addr": BASE + 0x2800},
        {"op": "addr_ranges_find_addr_greater_equal", "addr": BASE + 0x2800},
        {"op": "addr_ranges_remove_last", "nbytes": 0x800},
        {"op": "addr_ranges_remove_greater_equal", "addr": BASE + 0x1000},
    ]))
    assert r[3]["ranges"] == [[BASE, BASE + 0x2000], [BASE + 0x3000, BASE + 0x4000]] and r[3]["total_bytes"] == 0x3000
    assert (r[4]["index"], r[5]["contains"], r[6]["addr"], r[6]["found"]) == (1, False, BASE + 0x3000, True)
    assert r[7]["removed"] == [BASE + 0x3800, BASE + 0x4000] and r[7]["total_bytes"] == 0x2800
    assert r[8]["ranges"] == [[BASE, BASE + 0x1000]] and r[8]["total_bytes"] == 0x1000


@pytest.mark.go
def test_386_helper_allocates_and_maps_every_summary_level():
    tc = _toolchain()
    if (tc.goos, host.machine()) != ("linux", "x86_64"):
        pytest.skip("a 386 helper runs natively only on x86-64 Linux")
    p = platform("linux/386")
    ci = p.base_chunk_idx
    with GoHelper(toolchain=tc, goarch="386") as h:
        r = _ok(h.call([{"op": "new", "chunks": {hex(ci): [[0, 1]]}}, {"op": "alloc", "npages": 3}, {"op": "dump", "summaries": "mapped"}]))
    base = ci * p.palloc_chunk_bytes
    assert (r[1]["addr"], r[1]["scav"]) == (base + 8192, 0)
    d = r[2]
    assert [lv["mapped"] for lv in d["summary"]] == [[[0, n]] for n in p.level_entries]
    assert d["summary"][3]["entries"][0]["raw"][ci] & (2**18 - 1) == 0  # leaf start: page 0 is allocated


# --- partial responses, no toolchain needed -------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from palloc.goref.driver import _partial_results  # noqa: E402

_results = st.lists(
    st.fixed_dictionaries({"kind": st.just("ok")}, optional={
        "addr": st.integers(0, 2**64 - 1).map(hex),
        "msg": st.text(max_size=8),
        "raw": st.lists(st.integers(0, 2**64 - 1).map(hex), max_size=3),
    }),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(_results, st.data())
def test_a_cut_response_yields_exactly_the_results_written_before_the_cut(results, data):
    import json

    # The helper writes the head, then each result preceded by "," (not the first), flushing each.
    head = '{"id":3,"results":['
    pieces = [json.dumps(r, separators=(",", ":")) for r in results]
    line = head + ",".join(pieces) + "]}"
    cut = data.draw(st.integers(0, len(line)))
    got = _partial_results(line[:cut].encode())
    # Readable twin: a result counts once its whole text precedes the cut.
    complete, end = 0, len(head)
    for k, p in enumerate(pieces):
        end += (1 if k else 0) + len(p)
        if end <= cut:
            complete += 1
    assert got == [decode(r) for r in results[:complete]]


@pytest.mark.go
def test_cli_constants_exit_0_when_equal_and_1_with_mismatches_listed(monkeypatch, capsys):
    import json

    import palloc.spec
    from palloc.cli.main import main

    _toolchain()
    assert main(["goref", "constants", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mismatches"] == [] and out["helper"]["heapAddrBits"] == out["palloc"]["heapAddrBits"]
    real = palloc.spec.platform
    monkeypatch.setattr(palloc.spec, "platform", lambda name, v: real(name, v).replace(summary_level_bits=4))
    assert main(["goref", "constants"]) == 1
    assert "MISMATCH summaryLevelBits: helper 3, palloc 4" in capsys.readouterr().out


@pytest.mark.go
def test_cli_build_reports_a_cached_helper(capsys):
    import json

    from palloc.cli.main import main

    _toolchain()
    assert main(["goref", "build", "--json"]) == 0  # the module's helper is already built
    out = json.loads(capsys.readouterr().out)
    assert out["cached"] is True and Path(out["helper"]).is_file()


@pytest.mark.go
def test_a_big_batch_sent_before_a_big_answer_is_read_does_not_deadlock(helper):
    # The answer to the first batch (16,384 grown chunks dumped: 4 MiB) fills the helper's
    # stdout pipe while the second batch (300,000 finds: 8 MiB) is written to its
    # stdin: the write must read the first answer meanwhile, or each side waits on the other.
    import json
    import threading

    first = json.dumps([{"op": "new", "empty": True}, {"op": "grow", "base": BASE, "size": 16384 * CHUNK},
                        {"op": "dump", "summaries": "none"}])
    second = json.dumps([{"op": "find", "npages": 1 + i % 7} for i in range(300_000)] + [{"op": "drop"}])
    got = {}

    def run():
        t1 = helper.submit(first)
        t2 = helper.submit(second)
        got["dump"] = helper.collect(t1, 3)[2]
        got["finds"] = helper.collect(t2, 300_001)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), "the driver and the helper deadlocked on their pipes"
    assert len(got["dump"]["chunks"]) == 16384 and all(r["kind"] == "ok" for r in got["finds"])
