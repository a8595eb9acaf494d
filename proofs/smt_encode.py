"""SMT encodings of the model's functions, named after the Go/model functions they encode.

Each encoding transcribes the Go source of Go 1.27.3 (mpagealloc.go, mpallocbits.go,
mranges.go) into Z3 terms: uint64/uintptr as bit-vectors of the platform's width (wrapping as
Go wraps), `uint` counters of the summary algebra as unbounded integers where the theorem is
about all lengths. Loops are unrolled to a stated bound, and each unrolled loop returns a
`done` flag so a theorem can require that the bound was enough (a too-small bound then shows
up as a counterexample, never as a silent proof). tests/proofs/test_ties.py evaluates every
encoding on concrete inputs against the Python model function of the same name.
"""

from __future__ import annotations

from typing import Any, Sequence

import z3

W64 = 64


def bv(v: int, w: int = W64) -> z3.BitVecRef:
    return z3.BitVecVal(v, w)


def umax(*xs):
    """Unsigned max of bit-vectors (Go's built-in max on uint)."""
    m = xs[0]
    for x in xs[1:]:
        m = z3.If(z3.UGT(x, m), x, m)
    return m


def imax(*xs):
    m = xs[0]
    for x in xs[1:]:
        m = z3.If(x > m, x, m)
    return m


# --- math/bits ------------------------------------------------------------------------------


def trailing_zeros64(x):
    """sys.TrailingZeros64 on a 64-bit vector: 64 for x == 0."""
    w = x.size()
    r = bv(w, w)
    for i in reversed(range(w)):
        r = z3.If(z3.Extract(i, i, x) == 1, bv(i, w), r)
    return r


def leading_zeros64(x):
    """sys.LeadingZeros64 on a 64-bit vector: 64 for x == 0."""
    w = x.size()
    r = bv(w, w)
    for i in range(w):
        r = z3.If(z3.Extract(i, i, x) == 1, bv(w - 1 - i, w), r)
    return r


# --- pallocSum packing (mpagealloc.go) ------------------------------------------------------


def pack_palloc_sum(p, start, most, end):
    """packPallocSum on 64-bit vectors, with the platform's logMaxPackedValue."""
    mpv, L = bv(p.max_packed_value), p.log_max_packed_value
    m1 = mpv - 1
    return z3.If(
        most == mpv,
        bv(1 << 63),
        (start & m1) | ((most & m1) << L) | ((end & m1) << (2 * L)),
    )


def palloc_sum_start(p, s):
    mpv = bv(p.max_packed_value)
    return z3.If(s & bv(1 << 63) != 0, mpv, s & (mpv - 1))


def palloc_sum_max(p, s):
    mpv = bv(p.max_packed_value)
    return z3.If(s & bv(1 << 63) != 0, mpv, z3.LShR(s, p.log_max_packed_value) & (mpv - 1))


def palloc_sum_end(p, s):
    mpv = bv(p.max_packed_value)
    return z3.If(s & bv(1 << 63) != 0, mpv, z3.LShR(s, 2 * p.log_max_packed_value) & (mpv - 1))


def palloc_sum_unpack(p, s):
    """pallocSum.unpack: (start, max, end) as 64-bit vectors."""
    return palloc_sum_start(p, s), palloc_sum_max(p, s), palloc_sum_end(p, s)


def merge_summaries(p, sums: Sequence[Any], log_max_pages_per_sum: int):
    """mergeSummaries on packed 64-bit summaries, as the Go loop writes it."""
    start, most, end = palloc_sum_unpack(p, sums[0])
    full = bv(1 << log_max_pages_per_sum)
    for i in range(1, len(sums)):
        si, mi, ei = palloc_sum_unpack(p, sums[i])
        start = z3.If(start == bv(i << log_max_pages_per_sum), start + si, start)
        most = umax(most, end + si, mi)
        end = z3.If(ei == full, end + full, ei)
    return pack_palloc_sum(p, start, most, end)


# --- the summary algebra over unbounded integers ----------------------------------------------
# A summary of a run of n pages is (start, max, end, n). These are spec-level functions: the
# model's summarize_slow is a left fold of summary_snoc, and summary_concat is what every
# merge must compute.


def summary_snoc(s, bit):
    """Appends one page (bit true = allocated) to summary s: one step of summarize_slow."""
    st, mx, en, n = s
    free_st = z3.If(st == n, st + 1, st)
    return (
        z3.If(bit, st, free_st),
        z3.If(bit, mx, imax(mx, en + 1)),
        z3.If(bit, z3.IntVal(0), en + 1),
        n + 1,
    )


def summary_concat(a, b):
    """Returns the summary of the run a followed by the run b (the pairwise merge).

    Works on integers and on bit-vectors (unsigned; callers keep values far below 2^64).
    """
    sa, ma, ea, na = a
    sb, mb, eb, nb = b
    mx = umax if z3.is_bv(sa) else imax
    return (
        z3.If(sa == na, na + sb, sa),
        mx(ma, mb, ea + sb),
        z3.If(eb == nb, nb + ea, eb),
        na + nb,
    )


def summary_well_formed(s):
    """The summaries reachable from (0,0,0,0) by summary_snoc (proved inductive in thm_merge).

    On bit-vectors the comparisons are unsigned and n must be far below 2^63.
    """
    st, mx, en, n = s
    if z3.is_bv(st):
        le, lt, nonneg = z3.ULE, z3.ULT, z3.BoolVal(True)
    else:
        le, lt = (lambda a, b: a <= b), (lambda a, b: a < b)
        nonneg = z3.And(n >= 0, st >= 0, en >= 0)
    return z3.And(
        nonneg,
        le(st, mx),
        le(en, mx),
        le(mx, n),
        (st == n) == (en == n),
        (mx == n) == (st == n),
        z3.Implies(lt(st, n), lt(st + en, n)),
    )


def merge_summaries_int(sums: Sequence[tuple], width):
    """mergeSummaries' loop over unbounded integers, children of `width` pages each."""
    start, most, end = sums[0][:3]
    for i in range(1, len(sums)):
        si, mi, ei = sums[i][:3]
        start = z3.If(start == i * width, start + si, start)
        most = imax(most, end + si, mi)
        end = z3.If(ei == width, end + width, ei)
    return start, most, end


# --- pallocBits (mpallocbits.go) ---------------------------------------------------------------


def find_bit_range64(c, n):
    """findBitRange64(c, n) on 64-bit vectors; the loop runs at most 7 times (k doubles)."""
    p = n - 1
    k = bv(1)
    done = z3.BoolVal(False)
    ret64 = z3.BoolVal(False)
    for _ in range(8):
        active = z3.And(z3.Not(done), z3.UGT(p, 0))
        small = z3.ULE(p, k)
        c_small = c & z3.LShR(c, p & 63)
        c_big = c & z3.LShR(c, k & 63)
        c = z3.If(active, z3.If(small, c_small, c_big), c)
        ret64 = z3.Or(ret64, z3.And(active, z3.Not(small), c == 0))
        done = z3.Or(done, z3.Not(active), small, c == 0)
        p = z3.If(active, p - k, p)
        k = z3.If(active, k * 2, k)
    return z3.If(ret64, bv(64), trailing_zeros64(c)), done


def find_bit_range64_slow(c, n):
    """Index of the lowest bit i with bits [i, i+n) of c all set (bits past 63 count as 0); 64 if none."""
    runs = bv((1 << 64) - 1)
    for t in range(64):
        runs = runs & z3.If(z3.ULT(bv(t), n), z3.LShR(c, t), bv((1 << 64) - 1))
    return trailing_zeros64(runs)


def summarize_slow_bits(bits: Sequence[Any]):
    """summarizeSlow as a fold of summary_snoc over Bool bits (True = allocated): integers."""
    s = (z3.IntVal(0), z3.IntVal(0), z3.IntVal(0), z3.IntVal(0))
    for b in bits:
        s = summary_snoc(s, b)
    return s


def word_bits(x) -> list:
    """The 64 pages of a word as Bools, lowest page first."""
    return [z3.Extract(i, i, x) == 1 for i in range(x.size())]


def interior_max_slow(x):
    """Longest zero run of word x strictly between its lowest and highest set bit (same width)."""
    w = x.size()
    seen, cur, best = z3.BoolVal(False), bv(0, w), bv(0, w)
    for b in word_bits(x):
        best = z3.If(z3.And(b, seen), umax(best, cur), best)
        cur = z3.If(b, bv(0, w), cur + 1)
        seen = z3.Or(seen, b)
    return best


def summarize_shrink_runs(x, most, steps: int = 40):
    """The `outer:` loop body of pallocBits.summarize for one nonzero word x.

    Returns (new most, done). The two nested loops are flattened into one state machine of
    `steps` steps (k doubles at most 7 times and each outer round raises most by at least 1).
    """
    w = x.size()
    x = z3.LShR(x, trailing_zeros64(x) & (w - 1))
    done = x & (x + 1) == 0
    p, k = most, bv(1, w)
    in_j = z3.BoolVal(False)  # False: shrinking (inner loop); True: the j step
    for _ in range(steps):
        # Inner-loop step.
        shrink = z3.And(z3.Not(done), z3.Not(in_j))
        p_pos = z3.UGT(p, 0)
        small = z3.ULE(p, k)
        sh = z3.If(small, p, k)
        x1 = x | z3.LShR(x, sh & (w - 1))
        full1 = x1 & (x1 + 1) == 0
        # j step.
        jstep = z3.And(z3.Not(done), in_j)
        j1 = trailing_zeros64(~x)
        xa = z3.LShR(x, j1 & (w - 1))
        j2 = trailing_zeros64(xa)
        xb = z3.LShR(xa, j2 & (w - 1))
        fullb = xb & (xb + 1) == 0

        n_x = z3.If(z3.And(shrink, p_pos), x1, z3.If(jstep, xb, x))
        n_done = z3.Or(done, z3.And(shrink, p_pos, full1), z3.And(jstep, fullb))
        n_in_j = z3.If(shrink, z3.Or(z3.Not(p_pos), small), z3.If(jstep, z3.BoolVal(False), in_j))
        n_p = z3.If(z3.And(shrink, p_pos, z3.Not(small)), p - k, z3.If(jstep, j2, p))
        n_k = z3.If(z3.And(shrink, p_pos, z3.Not(small)), k * 2, k)
        n_most = z3.If(jstep, most + j2, most)
        x, done, in_j, p, k, most = n_x, n_done, n_in_j, n_p, n_k, n_most
    return most, done


def summarize_words(words: Sequence[tuple]):
    """pallocBits.summarize's control flow over abstract words (integers).

    Each word is (zero, tz, lz, interior): whether it is 0, its trailing and leading zero
    counts, and its longest interior zero run; the shrink-runs loop turns most into
    max(most, interior) (thm_merge proves this of summarize_shrink_runs). Returns
    (start, max, end).
    """
    n = 64 * len(words)
    start, most, cur = z3.IntVal(-1), z3.IntVal(0), z3.IntVal(0)
    for zero, t, l, _ in words:
        cur_t = cur + t
        start = z3.If(z3.Or(zero, start != -1), start, cur_t)
        most = z3.If(zero, most, imax(most, cur_t))
        cur = z3.If(zero, cur + 64, l)
    none_set = start == -1
    most = imax(most, cur)
    most_final = most
    for zero, t, l, interior in words:
        most_final = imax(most_final, interior)
    return (
        z3.If(none_set, z3.IntVal(n), start),
        z3.If(none_set, z3.IntVal(n), z3.If(most >= 62, most, most_final)),
        z3.If(none_set, z3.IntVal(n), cur),
    )


def summarize(words: Sequence[Any]):
    """pallocBits.summarize on 64-bit word vectors, the Go algorithm end to end.

    Returns (start, max, end, done) as 64-bit vectors (done: every shrink loop finished).
    """
    nw = len(words)
    not_set = bv((1 << 64) - 1)
    start, most, cur = not_set, bv(0), bv(0)
    for x in words:
        t, l = trailing_zeros64(x), leading_zeros64(x)
        zero = x == 0
        cur_t = cur + t
        start = z3.If(z3.Or(zero, start != not_set), start, cur_t)
        most = z3.If(zero, most, umax(most, cur_t))
        cur = z3.If(zero, cur + 64, l)
    most = umax(most, cur)
    m2, done = most, z3.BoolVal(True)
    for x in words:
        r, d = summarize_shrink_runs(x, m2)
        m2 = r
        done = z3.And(done, d)
    none_set = start == not_set
    full = bv(64 * nw)
    early = z3.UGE(most, 62)
    return (
        z3.If(none_set, full, start),
        z3.If(none_set, full, z3.If(early, most, m2)),
        z3.If(none_set, full, cur),
        z3.Or(none_set, early, done),
    )


# --- address arithmetic (mpagealloc.go, mranges.go), uintptr of the platform's width ----------


def uintptr(p, v: int):
    return bv(v & p.uintptr_mask, p.ptr_bits)


def off(p, a):
    """The offset address a - arenaBaseOffset (mod 2^ptrBits) that offAddr compares by."""
    return a - uintptr(p, p.arena_base_offset)


def off_addr_less_than(p, a, b):
    return z3.ULT(off(p, a), off(p, b))


def off_addr_less_equal(p, a, b):
    return z3.ULE(off(p, a), off(p, b))


def off_addr_add(p, a, nbytes):
    return a + nbytes


def off_addr_diff(p, a, b):
    return a - b


def chunk_index(p, a):
    """chunkIndex(p) = (p - arenaBaseOffset) / pallocChunkBytes."""
    return z3.UDiv(a - uintptr(p, p.arena_base_offset), uintptr(p, p.palloc_chunk_bytes))


def chunk_base(p, ci):
    """chunkBase(ci) = ci*pallocChunkBytes + arenaBaseOffset."""
    return ci * uintptr(p, p.palloc_chunk_bytes) + uintptr(p, p.arena_base_offset)


def chunk_page_index(p, a):
    return z3.UDiv(z3.URem(a, uintptr(p, p.palloc_chunk_bytes)), uintptr(p, p.page_size))


def chunk_idx_l1(p, ci):
    if p.palloc_chunks_l1_bits == 0:
        return uintptr(p, 0)
    return z3.LShR(ci, p.palloc_chunks_l1_shift)


def chunk_idx_l2(p, ci):
    if p.palloc_chunks_l1_bits == 0:
        return ci
    return ci & uintptr(p, (1 << p.palloc_chunks_l2_bits) - 1)


def off_addr_to_level_index(p, level: int, a):
    return z3.LShR(a - uintptr(p, p.arena_base_offset), p.level_shift[level])


def level_index_to_off_addr(p, level: int, idx):
    return (idx << p.level_shift[level]) + uintptr(p, p.arena_base_offset)


def addrs_to_summary_range(p, level: int, base, limit):
    abo = uintptr(p, p.arena_base_offset)
    lo = z3.LShR(base - abo, p.level_shift[level])
    hi = z3.LShR((limit - 1) - abo, p.level_shift[level]) + 1
    return lo, hi


def block_align_summary_range(p, level: int, lo, hi):
    e = uintptr(p, 1 << p.level_bits[level])
    return lo & ~(e - 1), (hi + e - 1) & ~(e - 1)


def summarize_slow_word(x):
    """summarizeSlow of one word as same-width bit-vectors: (start, max, end)."""
    w = x.size()
    st, mx, en, n = bv(0, w), bv(0, w), bv(0, w), bv(0, w)
    for b in word_bits(x):
        st = z3.If(b, st, z3.If(st == n, st + 1, st))
        mx = z3.If(b, mx, umax(mx, en + 1))
        en = z3.If(b, bv(0, w), en + 1)
        n = n + 1
    return st, mx, en
