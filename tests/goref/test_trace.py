"""palloc trace: a real program recorded through the recording overlay and replayed in the model.

The stored traces (tests/goref/data/trace/, binarytrees at depth 10, recorded by `palloc trace
record`) replay without Go; recording needs a toolchain (the go marker)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from palloc.goref import trace as T
from palloc.goref import trace_replay as R

DATA = Path(__file__).parent / "data" / "trace"
STORED = sorted(DATA.glob("*.trace"))


def _palloc(capsys, *argv):
    from palloc.cli.main import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def toolchain():
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        return find_toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); pip install 'palloc[go]'")


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
@pytest.mark.parametrize("model", ["fast", "readable"])
def test_stored_trace_replays_with_every_address_equal(path, model):
    """The fuzzer's model (the fast layer) and the readable mirror replay every stored trace."""
    from palloc.model.mpagealloc import PageAlloc

    t = T.read_trace(path)
    res = R.replay(t, factory=PageAlloc if model == "readable" else None)
    assert res.divergence is None, res.divergence.text()
    assert res.addresses > 0 and res.snapshots >= 1
    assert path.stat().st_size < 1 << 20


@pytest.mark.parametrize("broken", R.MUST_DIVERGE)
def test_broken_model_diverges_on_a_real_trace(broken):
    t = T.read_trace(DATA / "binarytrees-amd64.trace")
    res = R.replay(t, factory=R.broken_model(broken))
    assert res.divergence is not None, f"{broken} replayed a real trace without divergence"


def test_real_heap_find_mapped_addr_takes_a_registered_arena_as_mapped():
    """The model's real-heap branch: an address in an arena of mheap_.arenas outside inUse is mapped
    as it is; test mode (and the broken RealHeapAsTestMode) go to inUse's next range."""
    from palloc.model.mranges import OffAddr

    t = T.read_trace(DATA / "binarytrees-amd64.trace")
    pa = R.new_model(t)
    grow = next(r for r in t.records if isinstance(r, T.Grow))
    arena = next(r for r in t.records if isinstance(r, T.Arena))
    pa.arenas.add(arena.index)
    pa.grow(grow.base, grow.size)
    below = OffAddr(pa.p, arena.base)  # the arena's first byte, below the (randomized) first chunk
    assert arena.base < grow.base
    assert pa.find_mapped_addr(below).addr() == arena.base
    assert R.RealHeapAsTestMode.find_mapped_addr(pa, below).addr() == grow.base
    twin = R.new_model(t, R.RealHeapAsTestMode)
    twin.arenas.add(arena.index)
    twin.grow(grow.base, grow.size)
    assert twin.find_mapped_addr(below).addr() == grow.base


def test_request_stream_frees_name_live_allocations():
    t = T.read_trace(DATA / "binarytrees-amd64.trace")
    live = set()
    kinds = set()
    for q in T.request_stream(t):
        kinds.add(q.kind)
        if q.kind == "alloc":
            live.add(q.id)
        elif q.kind == "free":
            assert q.id in live
            live.remove(q.id)
    assert {"alloc", "free", "grow"} <= kinds


def test_encode_records_round_trips():
    t = T.read_trace(DATA / "binarytrees-amd64.trace")
    assert T.read_raw(t.path)[1] == T.encode_records(t, t.records)


def _damaged(tmp_path, how):
    meta, raw = T.read_raw(DATA / "binarytrees-amd64.trace")
    path = tmp_path / f"{how}.trace"
    if how == "records-cut":  # the program died: no end record
        T.write_trace(path, meta, raw[: len(raw) // 2 // T.RECORD_BYTES * T.RECORD_BYTES])
    elif how == "half-record":
        T.write_trace(path, meta, raw[:-7])
    elif how == "gzip-truncated":
        path.write_bytes((DATA / "binarytrees-amd64.trace").read_bytes()[:-100])
    elif how == "bytes-flipped":
        b = bytearray((DATA / "binarytrees-amd64.trace").read_bytes())
        for i in range(200, len(b), 97):
            b[i] ^= 0x5A
        path.write_bytes(bytes(b))
    elif how == "not-a-trace":
        path.write_bytes(gzip.compress(b"hello\n"))
    elif how == "bad-kind":
        raw = bytearray(raw)
        raw[T.RECORD_BYTES * 3] = 0xEE
        T.write_trace(path, meta, bytes(raw))
    return path


@pytest.mark.parametrize("how", ["records-cut", "half-record", "gzip-truncated", "bytes-flipped", "not-a-trace",
                                 "bad-kind"])
def test_damaged_trace_exits_2_in_one_line(tmp_path, capsys, how):
    rc, out, err = _palloc(capsys, "trace", "replay", str(_damaged(tmp_path, how)))
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_replay_divergence_exits_1_with_a_shrunk_prefix(tmp_path, capsys):
    rc, out, err = _palloc(capsys, "trace", "replay", str(DATA / "binarytrees-amd64.trace"),
                           "--broken", "next-gen-forgotten", "--failures", str(tmp_path))
    assert rc == 1 and "divergence at record" in out
    (case,) = tmp_path.glob("*.trace")
    res = R.replay(T.read_trace(case), factory=R.NextGenForgotten)
    assert res.divergence is not None and res.divergence.index == len(T.read_trace(case).records) - 1


def test_lockstep_ops_of_a_real_prefix():
    """A real trace's prefix becomes test-mode operations: grows, allocs, frees, page caches."""
    from palloc.goref import ops as O

    t = T.read_trace(DATA / "binarytrees-386.trace")
    upto = next(i for i, r in enumerate(t.records) if isinstance(r, T.Free)) + 50
    ops, why = R.lockstep_ops(t, upto)
    assert why is None, why
    kinds = {type(op) for op in ops}
    assert {O.Grow, O.Alloc, O.Free} <= kinds


@pytest.mark.go
def test_a_divergence_becomes_a_lockstep_case_the_helper_replays(tmp_path, capsys, need_helper):
    """A broken model the lockstep also knows diverges on the real trace, and the prefix, as test-mode
    operations, diverges again between that model and the real runtime's helper."""
    need_helper("386")
    rc, out, err = _palloc(capsys, "trace", "replay", str(DATA / "binarytrees-386.trace"),
                           "--broken", "free-skips-search-addr", "--failures", str(tmp_path))
    assert rc == 1 and "test-mode lockstep case" in out, out
    assert list(tmp_path.glob("*.json"))


@pytest.mark.go
def test_record_then_replay_agrees_on_a_real_program(toolchain, tmp_path, capsys):
    out = tmp_path / "bt.trace"
    rc, _, err = _palloc(capsys, "trace", "record", "-o", str(out), "--state-every", "500", "--",
                         str(Path(R.__file__).parent / "workloads" / "binarytrees"), "14")
    assert rc == 0, err
    rc, text, err = _palloc(capsys, "trace", "replay", str(out))
    assert rc == 0, text + err
    res = R.replay(T.read_trace(out))
    assert res.divergence is None and res.addresses > 0 and res.snapshots >= 2


@pytest.mark.go
@pytest.mark.parametrize("twin", ["drop-free", "drop-flush"])
def test_recording_twin_is_caught_by_replay(toolchain, tmp_path, twin):
    from palloc.goref import trace_record

    out = tmp_path / f"{twin}.trace"
    prog = str(Path(R.__file__).parent / "workloads" / "binarytrees")
    trace_record.record(toolchain, prog, ["14"], out, state_every=500, twin=twin)
    t = T.read_trace(out)
    if twin == "drop-flush" and not any(isinstance(r, T.Flush) for r in trace_record_flushes(toolchain, prog, tmp_path)):
        pytest.skip("the program flushed no page cache in this run, so the twin had nothing to drop")
    assert R.replay(t).divergence is not None


def trace_record_flushes(toolchain, prog, tmp_path):
    from palloc.goref import trace_record

    out = tmp_path / "ref.trace"
    trace_record.record(toolchain, prog, ["14"], out, state_every=500)
    return T.read_trace(out).records


@pytest.mark.go
def test_recording_leaves_the_addresses_as_without_it(toolchain, tmp_path):
    """A deterministic program (no GC, so no scavenger; one P; heap base not randomized) prints its
    640 objects' addresses; the recorded build prints the same list as the plain build. The runtime's
    own goroutines start at slightly different moments from run to run (their stacks then move the
    main goroutine's objects), so each build runs up to eight times and one list must be common."""
    from palloc.goref import trace_record

    prog = str(Path(R.__file__).parent / "workloads" / "addresses")
    be = {"GOEXPERIMENT": "norandomizedheapbase64"}
    env = dict(toolchain.env(), GOMAXPROCS="1", GOGC="off")
    plain, traced = set(), set()
    for _ in range(8):
        plain.add(trace_record.run_plain(toolchain, prog, ["nogc"], toolchain.goarch, build_env=be, env=env))
        traced.add(trace_record.record(toolchain, prog, ["nogc"], tmp_path / "a.trace", build_env=be, env=env,
                                       capture=True)["stdout"])
        if plain & traced:
            break
    assert all(len(o.split()) == 640 for o in plain | traced)
    assert plain & traced, f"{len(traced)} recorded lists, {len(plain)} plain ones, none in common"


@pytest.mark.go
def test_recording_hook_never_calls_the_allocator(toolchain, tmp_path):
    """The hook's compiled code calls nothing that allocates (mallocgc, newobject, growslice...)."""
    import subprocess

    from palloc.goref import trace_record

    exe = tmp_path / "prog"
    trace_record.build(toolchain, str(Path(R.__file__).parent / "workloads" / "binarytrees"), exe,
                       toolchain.goarch, tmp_path)
    dump = subprocess.run([str(toolchain.go), "tool", "objdump", "-s", "runtime\\.palloc", str(exe)],
                          capture_output=True, text=True, env=toolchain.env(), check=True).stdout
    assert "TEXT runtime.pallocTrPut" in dump
    calls = {ln.split("CALL", 1)[1].strip() for ln in dump.splitlines() if "CALL " in ln}
    bad = [c for c in calls if any(a in c for a in ("mallocgc", "newobject", "growslice", "makeslice",
                                                        "newarray", "concatstring", "convT"))]
    assert not bad, bad


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
@pytest.mark.parametrize("model", ["real-heap-as-test-mode", "b1-find-addr-plus-one"])
def test_what_real_traces_do_not_reach(path, model):
    """FINDINGS F35: on real traces the arenas branch of findMappedAddr never changed a result (the
    model with the test path alone replays them equal), and historical bug B1 changes nothing either
    (a trace where either matters would fail here)."""
    cls = R.RealHeapAsTestMode if model == "real-heap-as-test-mode" else R.broken_model(model)
    assert R.replay(T.read_trace(path), factory=cls).divergence is None


def test_two_scavengers_in_one_chunk_at_once_replay_equal():
    """gofmt's trace (a prefix) has the background scavenger and an allocation's assist inside one
    chunk at once (two candidates taken before either is given back, the heap lock dropped around
    sysUnused): replay keeps both and agrees, snapshot included."""
    t = T.read_trace(DATA / "gofmt-amd64-prefix.trace")
    held: dict[int, int] = {}
    overlap = False
    for r in t.records:
        if isinstance(r, T.ScavTake):
            overlap |= held.get(r.ci, 0) > 0
            held[r.ci] = held.get(r.ci, 0) + 1
        elif isinstance(r, T.ScavGive):
            held[r.ci] -= 1
    assert overlap
    res = R.replay(t)
    assert res.divergence is None and res.snapshots >= 1


def test_a_big_endian_trace_is_read_in_its_byte_order():
    """s390x (under qemu-user) writes its words big-endian; the header's magic says so."""
    meta, raw = T.read_raw(DATA / "binarytrees-s390x.trace")
    assert int.from_bytes(raw[8:16], "big") == T.GO_MAGIC
    t = T.read_trace(DATA / "binarytrees-s390x.trace")
    assert t.goarch == "s390x" and R.replay(t).divergence is None


@pytest.mark.go
def test_a_program_that_crashes_gives_exit_2_and_no_trace(toolchain, tmp_path, capsys):
    out = tmp_path / "crash.trace"
    rc, _, err = _palloc(capsys, "trace", "record", "-o", str(out), "--",
                         str(Path(__file__).parent / "data" / "traceprogs" / "crashes"))
    assert rc == 2 and "without reaching its exit hooks" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_the_standard_workloads_replay_with_every_address_equal(toolchain, tmp_path, capsys, goarch):
    """The real programs of `palloc trace workloads` (the compiler, gofmt, go vet on the host's GOARCH,
    four GC-heavy programs), recorded and replayed: every address, byte count and snapshot equal."""
    import json

    rc, out, err = _palloc(capsys, "trace", "workloads", "-o", str(tmp_path), "--goarch", goarch, "--json")
    rows = json.loads(out)
    assert rc == 0, err
    assert len(rows) >= 6 and all(r["agree"] and r["addresses"] > 0 for r in rows), rows
