"""mgcscavenge_test.go, run on the model through the export mirror.

TestPallocDataFindScavengeCandidate runs for several host huge page sizes (the Go test only sees
the host's), so every PreserveHugePage* case is exercised; TestScavengeIndex uses the Go test's own
small window [BaseChunkIdx, BaseChunkIdx+64).
"""

from __future__ import annotations

import random

import go_tables
import pytest
from goenv import ENVS, IDS, Env, check_page_alloc, table_cases

from palloc.model import export as ex
from palloc.model.gomath import MASK64


def _fill_aligned_slow(x, m):
    if m == 1:
        return x
    out = 0
    for i in range(0, 64, m):
        for j in range(m):
            if x & (1 << (i + j)):
                out |= ((1 << m) - 1) << i
                break
    return out


def test_fill_aligned():
    rng = random.Random(1)
    m = 1
    while m <= 64:
        tests = [
            0x0000000000000000,
            0x00000000FFFFFFFF,
            0xFFFFFFFF00000000,
            0x8000000000000001,
            0xF00000000000000F,
            0xF00000010050000F,
            0xFFFFFFFFFFFFFFFF,
            0x0000000000000001,
            0x0000000000000002,
            0x0000000000000008,
            (1 << (m - 1)) & MASK64,
            (1 << m) & MASK64,
            0xB02B9EFFCF137016,
            0x3975A076A9FBFF18,
            0x0F8C88EC3B81506E,
            0x60F14D80EF2FA0E6,
        ]
        for x in tests:
            assert ex.fill_aligned(x, m) == _fill_aligned_slow(x, m), f"bad fillAligned({x:016x}, {m})"
        for _ in range(1000):
            x = rng.getrandbits(64)
            assert ex.fill_aligned(x, m) == _fill_aligned_slow(x, m)
            if m > 1:
                val = 0
                for n in range(0, 64, m):
                    if rng.getrandbits(1) == 0:
                        val |= (rng.getrandbits(64) & ((1 << m) - 1)) << n
                assert ex.fill_aligned(val, m) == _fill_aligned_slow(val, m)
        m *= 2


def _huge_envs():
    """Every platform with its usual host, plus amd64 with other huge page sizes (1, 4, 8 MiB, none)."""
    out = list(zip(ENVS, IDS))
    amd64 = ENVS[0].p
    for huge in (0, 1 << 20, 4 << 20, 8 << 20):
        out.append((Env(amd64, 4096, huge), f"linux-amd64-huge{huge >> 10}k"))
    return out


def _scavenge_candidate_cases():
    out = []
    for env, pid in _huge_envs():
        for name, case in go_tables.TestPallocDataFindScavengeCandidate(env.names).items():
            out.append(pytest.param(env, name, case, id=f"{pid}/{name}"))
    return out


@pytest.mark.parametrize("env,name,v", _scavenge_candidate_cases())
def test_palloc_data_find_scavenge_candidate(env, name, v):
    b = env.make_palloc_data(v.get("alloc"), v.get("scavenged"))
    got = b.find_scavenge_candidate(env.p.palloc_chunk_pages - 1, v["min"], v["max"])
    want = v["want"]
    if not (got[1] == 0 and want[1] == 0):
        assert got == want, f"candidate mismatch: got {got}, want {want}"


def test_preserve_huge_page_cases_are_all_exercised():
    names = {c.id.split("/", 1)[1] for c in _scavenge_candidate_cases()}
    for case in ("Bottom", "Middle", "Top", "All", "None"):
        assert "PreserveHugePage" + case in names


@pytest.mark.parametrize("env,name,v", table_cases(go_tables.TestPageAllocScavenge))
def test_page_alloc_scavenge(env, name, v):
    b = env.new_page_alloc(v["beforeAlloc"], v.get("beforeScav"))
    for it, (request, expect) in enumerate(v["expect"]):
        got = b.scavenge(request)
        assert got == expect, f"bad scavenge #{it + 1}: want {expect}, got {got}"
    want = env.new_page_alloc(v["beforeAlloc"], v.get("afterScav"))
    check_page_alloc(want, b)


def _setup(env, force):
    """The Go test's setup: a small index, every chunk dense last generation and empty now."""
    n = env.names
    base = n["BaseChunkIdx"]
    page_base = n["PageBase"]
    si = ex.new_scavenge_index(env.p, base, base + 64)
    si.alloc_range(page_base(base, 0), page_base(base + 64, 0))
    si.next_gen()
    si.free_range(page_base(base, 0), page_base(base + 64, 0))
    for ci in range(base, base + 64):
        si.set_empty(ci)
    si.reset_search_addrs()

    def mark(b, l):
        si.alloc_range(b, l)
        si.free_range(b, l)

    def find(want, want_offset):
        got, got_offset = si.find(force)
        assert (got, got_offset) == (want, want_offset), (
            f"find: wanted chunk index {want} page offset {want_offset}, got {got} {got_offset}"
        )
        si.set_empty(got)

    return mark, find, si.next_gen


@pytest.mark.parametrize("env,name,test", table_cases(go_tables.TestScavengeIndex))
def test_scavenge_index_bg(env, name, test):
    mark, find, next_gen = _setup(env, False)
    test["mark"](mark)
    find(0, 0)  # nothing yet
    next_gen()
    test["find"](find)
    find(0, 0)  # the test always exhausts the index


@pytest.mark.parametrize("env,name,test", table_cases(go_tables.TestScavengeIndex))
def test_scavenge_index_force(env, name, test):
    mark, find, _ = _setup(env, True)
    test["mark"](mark)
    test["find"](find)
    find(0, 0)


@pytest.mark.parametrize("force", [False, True], ids=["Bg", "Force"])
def test_scavenge_index_mark_interleaved(env, force):
    mark, find, next_gen = _setup(env, force)
    n = env.names
    base, page_base = n["BaseChunkIdx"], n["PageBase"]
    for i in range(base, base + 32):
        mark(page_base(i, 0), page_base(i + 1, 0))
        if not force:
            next_gen()
        find(i, n["PallocChunkPages"] - 1)
    find(0, 0)


def test_scav_chunk_data_pack(env):
    p = env.p
    if p.palloc_chunk_pages >= 512:
        assert ex.check_pack_scav_chunk_data(p, 1918237402, 512, 512, 0b11)
    assert ex.check_pack_scav_chunk_data(p, 0xFFFFFFFF, 12, 0, 0b00)
