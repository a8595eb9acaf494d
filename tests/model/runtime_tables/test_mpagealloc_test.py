"""mpagealloc_test.go, run on the model through the export mirror (checkPageAlloc compares bounds
and every chunk's alloc and scavenged bitmaps, as the Go helper does)."""

from __future__ import annotations

import go_tables
import pytest
from goenv import table_cases, check_page_alloc


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocGrow))
def test_page_alloc_grow(env, name, v):
    b = env.new_page_alloc({c: [] for c in v["chunks"]}, None)
    got = b.in_use()
    want = v["inUse"]
    assert len(got) == len(want) and all(w.equals(g) for w, g in zip(want, got)), (
        f"found inUse mismatch: got {got}, want {want}"
    )


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocAlloc))
def test_page_alloc_alloc(env, name, v):
    b = env.new_page_alloc(v["before"], v.get("scav"))
    for it, (npages, base, scav) in enumerate(v["hits"]):
        a, s = b.alloc(npages)
        assert a == base, f"bad alloc #{it + 1}: want base {base:#x}, got {a:#x}"
        assert s == scav, f"bad alloc #{it + 1}: want scav {scav}, got {s}"
    want = env.new_page_alloc(v["after"], v.get("scav"))
    check_page_alloc(want, b)


@pytest.mark.parametrize("npages", [1, 2, 3, 4, 5, 8, 16, 64, 1024, 1025, 2048, 2049])
def test_page_alloc_exhaust(env, npages):
    n = env.names
    base_ci, chunk_pages, page_base = n["BaseChunkIdx"], n["PallocChunkPages"], n["PageBase"]
    b = env.new_page_alloc({base_ci + i: [] for i in range(4)}, None)
    n_alloc = (chunk_pages * 4) // npages
    for i in range(n_alloc):
        addr = page_base(base_ci, i * npages)
        a, _ = b.alloc(npages)
        assert a == addr, f"bad alloc #{i + 1}: want {addr:#x}, got {a:#x}"
    a, _ = b.alloc(npages)
    assert a == 0, f"bad alloc #{n_alloc}: want 0, got {a:#x}"
    alloc_pages = n_alloc * npages
    want_desc = {}
    for i in range(4):
        if alloc_pages >= chunk_pages:
            want_desc[base_ci + i] = [(0, chunk_pages)]
            alloc_pages -= chunk_pages
        elif alloc_pages > 0:
            want_desc[base_ci + i] = [(0, alloc_pages)]
            alloc_pages = 0
        else:
            want_desc[base_ci + i] = []
    check_page_alloc(env.new_page_alloc(want_desc, None), b)


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocFree))
def test_page_alloc_free(env, name, v):
    b = env.new_page_alloc(v["before"], None)
    for addr in v["frees"]:
        b.free(addr, v["npages"])
    check_page_alloc(env.new_page_alloc(v["after"], None), b)


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocAllocAndFree))
def test_page_alloc_alloc_and_free(env, name, v):
    b = env.new_page_alloc(v["init"], None)
    for it, (alloc, npages, base) in enumerate(v["hits"]):
        if alloc:
            a, _ = b.alloc(npages)
            assert a == base, f"bad alloc #{it + 1}: want {base:#x}, got {a:#x}"
        else:
            b.free(base, npages)


def test_discontiguous_cases_are_ported():
    """The two regression cases for golang/go#38605-style unmapped-summary reads are present."""
    names = {c.id for c in table_cases(go_tables.TestPageAllocAlloc)}
    assert "linux-amd64/DiscontiguousMappedSumBoundary" in names
    assert "linux-amd64/DiscontiguousBadSearchAddr" in names


def test_check_page_alloc_catches_a_one_page_difference(env):
    """The broken variant of the tables' comparison: one extra page or one scavenged bit must fail it."""
    base = env.names["BaseChunkIdx"]
    want = env.new_page_alloc({base: [(0, 3)]}, {base: []})
    extra = env.new_page_alloc({base: [(0, 4)]}, {base: []})
    scav = env.new_page_alloc({base: [(0, 3)]}, {base: [(10, 1)]})
    check_page_alloc(want, env.new_page_alloc({base: [(0, 3)]}, {base: []}))
    for got, what in ((extra, "mallocBits"), (scav, "scavenged")):
        with pytest.raises(AssertionError, match=what):
            check_page_alloc(want, got)
    with pytest.raises(AssertionError, match="end values"):
        check_page_alloc(want, env.new_page_alloc({base: [], base + 1: []}, None))


def test_new_page_alloc_state_does_not_depend_on_map_order(env):
    """Go grows NewPageAlloc's chunks in random map order; the model uses dict order. The final
    state must not depend on it: bitmaps, bounds, inUse, searchAddr, and the
    scavenge index (force cursor marked at the highest chunk's last page, Bg cursor cleared)."""
    import random

    n = env.names
    base, pages = n["BaseChunkIdx"], n["PallocChunkPages"]
    chunks = {base: [(0, 3)], base + 1: [], base + 4: [(1, pages - 1)], base + 2: [(5, 10)]}
    scav = {base + 1: [(0, pages)], base + 2: [(0, 7)]}

    def state(b):
        pa = b.pa
        idx = pa.scav.index
        return (
            b.bounds(),
            [(r.base(), r.limit()) for r in b.in_use()],
            pa.search_addr.addr(),
            idx.search_addr_bg.load(),
            idx.search_addr_force.load(),
            idx.free_hwm.addr(),
            {ci: (d.v, d.scavenged.v) for ci in chunks for d in [pa.chunk_of(ci)]},
            {ci: idx.peek(ci) for ci in chunks},
        )

    want = state(env.new_page_alloc(chunks, scav))
    rng = random.Random(7)
    for _ in range(5):
        keys = list(chunks)
        rng.shuffle(keys)
        assert state(env.new_page_alloc({k: chunks[k] for k in keys}, scav)) == want
    top = n["PageBase"](base + 4, pages - 1)
    assert want[4] == (top, True) and want[3][1] is False
    assert want[2] == n["PageBase"](base, 0)
