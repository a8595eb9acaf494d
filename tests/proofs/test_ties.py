"""Each SMT encoding agrees with the model function of the same name on many concrete inputs."""

from __future__ import annotations

import random

import pytest

from palloc.model import gomath, mpagealloc as M, mpallocbits as MB
from palloc.model.mranges import OffAddr
from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs import thm_no_double_alloc as T3
from palloc.spec import platform

PLATFORMS = ["linux/amd64", "aix/ppc64", "linux/386", "linux/mips", "js/wasm"]
V = smt.value
B = E.bv


def _rng(seed):
    return random.Random(seed)


def _valid_sum(p, r):
    M_ = p.max_packed_value
    if r.random() < 0.1:
        return M_, M_, M_
    m = r.choice([0, 1, r.randrange(M_), M_ - 1])
    return r.randint(0, m), m, r.randint(0, m)


@pytest.mark.parametrize("name", PLATFORMS)
def test_pack_and_unpack_encodings_match_model(name):
    p, r = platform(name), _rng(1)
    for _ in range(60):
        s = _valid_sum(p, r)
        code = M.pack_palloc_sum(p, *s)
        assert V(E.pack_palloc_sum(p, *map(B, s))) == code
        assert tuple(V(x) for x in E.palloc_sum_unpack(p, B(code))) == M.palloc_sum_unpack(p, code)
        assert V(E.palloc_sum_start(p, B(code))) == M.palloc_sum_start(p, code)


@pytest.mark.parametrize("name", PLATFORMS)
def test_merge_summaries_encodings_match_model(name):
    p, r = platform(name), _rng(2)
    for _ in range(25):
        l = r.randrange(1, p.summary_levels)
        width = 1 << p.level_log_pages[l]
        kids = []
        for _ in range(8):
            kind = r.random()
            if kind < 0.4:
                kids.append((width, width, width))
            elif kind < 0.5:
                kids.append((0, 0, 0))
            else:
                m = r.randrange(width)
                st = r.randint(0, m)
                en = r.randint(0, min(m, width - 1 - st))
                kids.append((st, m, en))
        packed = [M.pack_palloc_sum(p, *k) for k in kids]
        want = M.merge_summaries(p, packed, p.level_log_pages[l])
        assert V(E.merge_summaries(p, [B(x) for x in packed], p.level_log_pages[l])) == want
        got_int = E.merge_summaries_int([tuple(smt.IntVal(v) for v in k) for k in kids], smt.IntVal(width))
        assert M.pack_palloc_sum(p, *(V(x) for x in got_int)) == want


def test_bit_count_encodings_match_gomath():
    r = _rng(3)
    for _ in range(100):
        x = r.getrandbits(64) >> r.randrange(64) << r.randrange(64) & gomath.MASK64
        assert V(E.trailing_zeros64(B(x))) == gomath.trailing_zeros64(x)
        assert V(E.leading_zeros64(B(x))) == gomath.leading_zeros64(x)


def test_find_bit_range64_encodings_match_model():
    r = _rng(4)
    for _ in range(80):
        c = r.getrandbits(64) | r.getrandbits(64)
        n = r.randint(1, 64)
        got, done = E.find_bit_range64(B(c), B(n))
        want = MB.find_bit_range64(c, n)
        assert V(done)
        assert V(got) == want
        assert V(E.find_bit_range64_slow(B(c), B(n))) == MB.find_bit_range64_slow(c, n)


def _random_chunk(p, r):
    n = p.palloc_chunk_pages
    v = 0
    i = 0
    while i < n:
        run = r.choice([1, 2, 3, 7, 30, 64, 100])
        if r.random() < 0.5:
            v |= ((1 << run) - 1) << i
        i += run
    return v & ((1 << n) - 1)


@pytest.mark.parametrize("name,cases", [("linux/amd64", 1), ("js/wasm", 2)])
def test_summarize_encoding_matches_model(name, cases):
    # Building the unrolled term is the cost (about 10 s per 512-page chunk), so few cases.
    p, r = platform(name), _rng(5)
    for _ in range(cases):
        b = MB.PallocBits(p, _random_chunk(p, r))
        st, mx, en, done = E.summarize([B(w) for w in b.words()])
        assert V(done)
        assert (V(st), V(mx), V(en)) == M.palloc_sum_unpack(p, b.summarize()) == MB.summarize_slow_unpacked(b)


def test_word_summary_encodings_match_model():
    p, r = platform("js/wasm"), _rng(6)  # 64-page chunks: one word
    for i in range(12):
        x = _random_chunk(p, r)
        want = MB.summarize_slow_unpacked(MB.PallocBits(p, x))
        assert tuple(V(e) for e in E.summarize_slow_word(B(x))) == want
        ints = E.summarize_slow_bits([bool(x >> i & 1) for i in range(64)])
        assert tuple(V(e) for e in ints[:3]) == want
        if x and i < 3:
            most, done = E.summarize_shrink_runs(B(x), B(0), steps=40)
            assert V(done)
            assert V(most) == V(E.interior_max_slow(B(x)))


@pytest.mark.parametrize("name", PLATFORMS + ["windows/amd64", "ios/arm64"])
def test_address_encodings_match_model(name):
    p, r = platform(name), _rng(7)
    u = lambda v: E.uintptr(p, v)  # noqa: E731
    nchunks = 1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes)
    for _ in range(40):
        off = r.randrange(1 << p.heap_addr_bits)
        a = (off + p.arena_base_offset) & p.uintptr_mask
        b = (r.randrange(1 << p.heap_addr_bits) + p.arena_base_offset) & p.uintptr_mask
        ci = r.randrange(nchunks)
        assert V(E.chunk_index(p, u(a))) == M.chunk_index(p, a)
        assert V(E.chunk_base(p, u(ci))) == M.chunk_base(p, ci)
        assert V(E.chunk_page_index(p, u(a))) == M.chunk_page_index(p, a)
        assert V(E.chunk_idx_l1(p, u(ci))) == M.chunk_idx_l1(p, ci)
        assert V(E.chunk_idx_l2(p, u(ci))) == M.chunk_idx_l2(p, ci)
        assert V(E.off_addr_less_than(p, u(a), u(b))) == OffAddr(p, a).less_than(OffAddr(p, b))
        assert V(E.off_addr_diff(p, u(a), u(b))) == OffAddr(p, a).diff(OffAddr(p, b)) & p.uintptr_mask
        for l in range(p.summary_levels):
            idx = V(E.off_addr_to_level_index(p, l, u(a)))
            assert idx == M.off_addr_to_level_index(p, l, OffAddr(p, a))
            assert V(E.level_index_to_off_addr(p, l, u(idx))) == M.level_index_to_off_addr(p, l, idx).addr()
            base = M.chunk_base(p, ci)
            limit = M.chunk_base(p, min(ci + r.randint(1, 4), nchunks))
            if ci + 1 >= nchunks or r.random() < 0.1:
                limit = (p.arena_base_offset + (1 << p.heap_addr_bits)) & p.uintptr_mask
            lo, hi = (V(x) for x in E.addrs_to_summary_range(p, l, u(base), u(limit)))
            assert (lo, hi) == M.addrs_to_summary_range(p, l, base, limit)
            alo, ahi = (V(x) for x in E.block_align_summary_range(p, l, u(lo), u(hi)))
            assert (alo, ahi) == M.block_align_summary_range(p, l, lo, hi)


def test_abstract_heap_chunk_summary_matches_summarize_slow():
    # Theorem 3's 8-page chunk summary is the model's summarize_slow restricted to 8 pages.
    r = _rng(8)
    for _ in range(40):
        x = r.getrandbits(T3.C)
        bits = [bool(x >> i & 1) for i in range(T3.C)]
        want = E.summarize_slow_bits(bits)
        got = T3._chunk_sum(B(x))
        assert tuple(V(g) for g in got) == tuple(V(w) for w in want[:3])
