"""The fast layer (model/*_fast.py) against the mirror it speeds up (model/mpagealloc.py,
model/mpallocbits.py, model/mgcscavenge.py).

The fuzzer and `palloc bench` run the fast layer; these properties say it computes exactly what
the readable mirror computes, step by step on random operation sequences (results, exceptions
and the whole state after every step), and each has a seeded broken variant that the same
comparison catches.
"""

from __future__ import annotations

import pytest
from bitmap_strategies import PLATFORM_IDS, PLATFORMS, bitmaps
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.model.mpallocbits import PallocData, geometry, summarize_slow, summarize_slow_unpacked
from palloc.model.mpallocbits_fast import FastPallocData, summarize_incremental

SETTINGS = settings(max_examples=150, deadline=None)


def _ops(n):
    # (page, npages, alloc): one run of pages changed, as alloc_range/free do; npages may overrun.
    return st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n), st.booleans()), min_size=1, max_size=12)


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_memoised_summarize_equals_full_summarize_after_every_change(p):
    """summarize() after runs of allocs, frees and arbitrary rewrites equals the bit-by-bit count."""
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), _ops(n), st.lists(bitmaps(n), max_size=2))
    def check(v, ops, rewrites):
        b = FastPallocData(p, v)
        assert b.summarize_unpacked() == summarize_slow_unpacked(b)
        for i, k, alloc in ops:
            k = min(k, n - i)
            if alloc:
                b.alloc_range(i, k)
            else:
                b.free(i, k)
            assert b.summarize_unpacked() == summarize_slow_unpacked(b)
        for w in rewrites:  # a write of v that is not one run (tests and mutants do this)
            b.v = w
            assert b.summarize_unpacked() == summarize_slow_unpacked(b)

    check()


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_incremental_summarize_answers_exactly_or_not_at_all(p):
    """summarize_incremental(old -> new) is None or the full summary of new, for any two bitmaps."""
    n = p.palloc_chunk_pages
    g = geometry(p)

    @SETTINGS
    @given(bitmaps(n), st.integers(0, n - 1), st.integers(1, n), st.booleans(), bitmaps(n), st.booleans())
    def check(old, i, k, alloc, other, use_other):
        k = min(k, n - i)
        m = ((1 << k) - 1) << i
        new = other if use_other else (old | m if alloc else old & ~m)
        got = summarize_incremental(g, old, summarize_slow_unpacked(FastPallocData(p, old)), new)
        assert got is None or got == summarize_slow_unpacked(FastPallocData(p, new))

    check()


def test_incremental_summarize_with_a_broken_alloc_rule_is_caught():
    """A seeded broken variant: keeping max after cutting the longest run must disagree somewhere."""
    p = PLATFORMS[0]
    n = p.palloc_chunk_pages
    old = 0b1 << 10  # free runs [0, 10) and [11, n)
    new = old | (1 << 20)  # cuts the longest run

    def broken(old_sum):
        start, most, end = old_sum
        return min(start, 20), most, min(end, n - 21)

    want = summarize_slow_unpacked(FastPallocData(p, new))
    assert broken(summarize_slow_unpacked(FastPallocData(p, old))) != want
    assert summarize_incremental(geometry(p), old, summarize_slow_unpacked(FastPallocData(p, old)), new) in (None, want)


# --- the page allocator's fast paths against the readable transcriptions ----------------------

from palloc.spec.errors import GoFault, GoThrow, UndefinedBehaviour  # noqa: E402
from palloc.model.mgcscavenge import ScavengeIndex  # noqa: E402
from palloc.model.mpagealloc import PageAlloc, chunk_base  # noqa: E402
from palloc.model.mpagealloc_fast import FastPageAlloc  # noqa: E402
from palloc.model.mgcscavenge_fast import FastScavengeIndex  # noqa: E402
from palloc.model.export import undefined_allowed  # noqa: E402

PA_PLATFORMS = [("linux/amd64", "1.27"), ("linux/386", "1.27"), ("js/wasm", "1.26"), ("linux/amd64", "1.21")]


def _snapshot(pa):
    p = pa.p
    chunks = {}
    for l1, block in pa.chunks.items():
        for l2, d in block.items():
            chunks[(l1, l2)] = (d.v, d.scavenged.v)
    idx = pa.scav.index
    return {
        "chunks": chunks,
        "summary": [{k: v for k, v in lv.vals.items() if v} for lv in pa.summary],
        "search_addr": pa.search_addr.a,
        "bounds": (pa.start, pa.end),
        "in_use": [(r.base.a, r.limit.a) for r in pa.in_use.ranges],
        "scav": {k: v.pack(p) for k, v in idx.chunks.items()},
        "cursors": (idx.search_addr_bg.load(), idx.search_addr_force.load(), idx.free_hwm.a, idx.gen),
    }


def _step(pa, op, live):
    """Applies op to pa; returns what it returned or the exception it raised (type, message)."""
    p = pa.p
    kind, a, b = op
    try:
        if kind == "alloc":
            r = pa.alloc(a)
            if r[0]:
                live.append((r[0], a))
            return r
        if kind == "free" and live:
            base, n = live.pop(a % len(live))
            k = b % n + 1  # free a prefix; the rest stays live
            pa.free(base, k)
            if k < n:
                live.append((base + k * 8192, n - k))
            return None
        if kind == "corrupt":  # flip bitmap bits behind the summaries' back
            ci = p.base_chunk_idx + a % 3
            d = pa.try_chunk_of(ci)
            if d is not None:
                d.v ^= (b * 0x9E3779B97F4A7C15) & ((1 << p.palloc_chunk_pages) - 1)
            return None
        if kind == "scavenge":
            return pa.scavenge(a * 8192, force=bool(b & 1))
        if kind == "next_gen":
            pa.scav.index.next_gen()
            return None
        if kind == "alloc_range":  # arbitrary ranges with the guards off
            with undefined_allowed(pa):
                return pa.alloc_range(chunk_base(p, p.base_chunk_idx) + a * 8192, b)
        if kind == "find":
            addr, cand = pa.find(a)
            return addr, cand.a
        if kind == "corrupt_summary":  # an entry near the heap's at any level: bad data, faults
            from palloc.model.mpagealloc import pack_palloc_sum

            l = a % len(pa.summary)
            lv = pa.summary[l]
            # The heap's entry at level l, or one of its neighbours (maybe past len, on a mapped page).
            i = (p.base_chunk_idx >> (p.level_shift[l] - p.level_shift[-1])) + (b >> 3) % 12 - 2
            if 0 <= i < lv.cap and lv.is_mapped(i):
                full = 1 << p.level_log_pages[l]
                lv.put(i, [0, pack_palloc_sum(p, full, full, full), 1 << 63, pack_palloc_sum(p, 0, 1, 0),
                           pack_palloc_sum(p, 0, full - 1, 0), (b * 0x9E3779B97F4A7C15) & (2**64 - 1),
                           pack_palloc_sum(p, 1, 1, 1), pack_palloc_sum(p, 0, 0, full // 2)][b % 8])
            return None
        if kind == "corrupt_path":  # summaries down to chunk n claim a free page: find goes there
            from palloc.model.mpagealloc import pack_palloc_sum

            leaf_shift = p.level_shift[-1]
            l = 1 + a % (len(pa.summary) - 1)  # n is the first chunk of the next level-l entry
            s_l = p.level_shift[l] - leaf_shift
            n = ((p.base_chunk_idx >> s_l) + 1 + b % 2) << s_l
            for l in range(len(pa.summary) - 1):
                lv, i = pa.summary[l], n >> (p.level_shift[l] - leaf_shift)
                if i < lv.cap and lv.is_mapped(i):
                    lv.put(i, pack_palloc_sum(p, 0, 1 << (p.level_log_pages[l] - 1), 0))  # may be past len
            return None
        if kind == "cache":  # allocToCache, a few pages from the cache, then flush it back
            c = pa.alloc_to_cache()
            got = (c.base, c.cache, c.scav)
            if c.cache:
                got += c.alloc(1 + a % 3)
                c.flush(pa)
            return got
        if kind == "grow":  # a later growth above the heap (or over it: refused on both sides)
            pa.grow(chunk_base(p, p.base_chunk_idx + 4 + a % 8), p.palloc_chunk_bytes)
            return None
        if kind == "free_range":  # arbitrary frees with the guards off: free pages, index underflow
            with undefined_allowed(pa):
                return pa.free(chunk_base(p, p.base_chunk_idx) + a * 8192, b % 700)
    except (GoFault, GoThrow, UndefinedBehaviour) as e:
        return type(e).__name__, str(e)
    return None


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["alloc"] * 6 + ["free"] * 5 + ["corrupt", "scavenge", "next_gen", "alloc_range", "free_range",
                                                        "find", "corrupt_summary", "corrupt_path", "cache", "grow"]),
        st.one_of(st.integers(1, 20), st.integers(1, 1200)),
        st.integers(0, 1 << 12),
    ),
    max_size=60,
)


@pytest.mark.parametrize("pv", PA_PLATFORMS, ids=["-".join(x) for x in PA_PLATFORMS])
def test_fast_page_alloc_matches_the_mirror_step_by_step(pv):
    """alloc, free, find, scavenge, allocToCache and flush, growth, and corrupted bitmaps and
    summaries: results, throws and whole state agree after every step."""
    from palloc.spec import platform

    p = platform(*pv)

    # A second growth past a gap: near (same summary pages), or far (64-bit: unmapped summary
    # pages in between, which a corrupted summary can lead find into).
    far = 0x100000 if p.is_64bit_page_alloc and p.heap_addr_bits > 40 else 64

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 3), st.sampled_from([0, 2, far]), _OPS)
    def check(nchunks, gap, ops):
        pas = []
        for cls in (FastPageAlloc, PageAlloc):
            pa = cls.make(p)
            pa.grow(chunk_base(p, p.base_chunk_idx), nchunks * p.palloc_chunk_bytes)
            if gap:
                pa.grow(chunk_base(p, p.base_chunk_idx + nchunks + gap), p.palloc_chunk_bytes)
            pas.append(pa)
        lives = ([], [])
        for op in ops:
            r = [_step(pa, op, live) for pa, live in zip(pas, lives)]
            assert r[0] == r[1], op
            assert _snapshot(pas[0]) == _snapshot(pas[1]), op

    check()


_KINDS = ["alloc"] * 6 + ["free"] * 5 + ["corrupt", "scavenge", "next_gen", "alloc_range", "free_range", "find",
                                      "corrupt_summary", "corrupt_path", "cache", "grow"]


def _long_run(classes, p, seed, steps):
    """Runs the same seeded random sequence of `steps` operations on one allocator per class, from
    one to three grown chunks; returns the first step whose result or state differs, or None."""
    import random

    rng = random.Random(seed)
    pas = []
    nchunks = 1 + seed % 3
    for cls in classes:
        pa = cls.make(p)
        pa.grow(chunk_base(p, p.base_chunk_idx), nchunks * p.palloc_chunk_bytes)
        pas.append(pa)
    lives = tuple([] for _ in classes)
    for k in range(steps):
        kind = rng.choice(_KINDS)
        if kind in ("corrupt", "corrupt_summary", "corrupt_path") and k < steps * 2 // 3:
            kind = "alloc"  # corruption only in the last third: the rest is the allocator's own work
        op = (kind, rng.randint(1, 20) if rng.random() < 0.7 else rng.randint(1, 1200), rng.randint(0, 1 << 12))
        r = [_step(pa, op, live) for pa, live in zip(pas, lives)]
        if r[0] != r[1] or _snapshot(pas[0]) != _snapshot(pas[1]):
            return k, op, r
    return None


@pytest.mark.parametrize("pv", PA_PLATFORMS, ids=["-".join(x) for x in PA_PLATFORMS])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_page_alloc_matches_the_mirror_on_long_random_runs(pv, seed):
    """The same comparison after every step of long runs (1,500 operations), where the heap fills,
    empties and fragments as hypothesis' short examples rarely make it."""
    from palloc.spec import platform

    assert _long_run((FastPageAlloc, PageAlloc), platform(*pv), seed, 1500) is None


def test_long_run_comparison_catches_a_fast_free_that_forgets_search_addr():
    """A seeded broken variant: a fast free that never lowers searchAddr is caught by the long run."""
    from palloc.spec import platform

    class Broken(FastPageAlloc):
        def free(self, base, npages):
            keep = self.search_addr
            super().free(base, npages)
            self.search_addr = keep

    assert _long_run((Broken, PageAlloc), platform("linux/amd64"), 1, 1500) is not None


def test_lockstep_comparison_catches_a_broken_fast_update():
    """A seeded broken variant: an update that skips the walk above the leaf disagrees with the readable one."""
    from palloc.spec import platform

    p = platform("linux/amd64")

    class Broken(FastPageAlloc):
        def update(self, base, npages, contig, alloc):
            if not alloc:
                return super().update(base, npages, contig, alloc)
            leaf = self.summary[-1]
            ci = ((base - self._abo) & self._mask) >> self._log_chunk_bytes
            leaf[ci] = self.chunk_of(ci).summarize()

    pas = []
    for cls in (Broken, PageAlloc):
        pa = cls.make(p)
        pa.grow(chunk_base(p, p.base_chunk_idx), p.palloc_chunk_bytes)
        pas.append(pa)
    lives = ([], [])
    for pa, live in zip(pas, lives):
        _step(pa, ("alloc", p.palloc_chunk_pages, 0), live)
    assert _snapshot(pas[0]) != _snapshot(pas[1])


def test_lockstep_comparison_catches_a_fused_span_alloc_a_page_short():
    """A seeded broken variant: alloc of a run over two chunks whose fused step leaves the run's last
    page free disagrees with the readable allocRange."""
    from palloc.spec import platform

    p = platform("linux/amd64")
    cp = p.palloc_chunk_pages

    class Broken(FastPageAlloc):
        def _alloc_span_fused(self, base, npages):
            return super()._alloc_span_fused(base, npages - 1)

    pas = []
    for cls in (Broken, PageAlloc):
        pa = cls.make(p)
        pa.grow(chunk_base(p, p.base_chunk_idx), 2 * p.palloc_chunk_bytes)
        pas.append(pa)
    lives = ([], [])
    for pa, live in zip(pas, lives):
        _step(pa, ("alloc", 3, 0), live)
        _step(pa, ("alloc", cp, 0), live)  # pages [3, cp+3): over the chunk boundary
    assert _snapshot(pas[0]) != _snapshot(pas[1])
    assert [pa.chunk_of(p.base_chunk_idx + 1).v for pa in pas] == [0b11, 0b111]  # the broken variant's is a page short


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_merge_summaries_fast_equals_go_loop_on_any_summaries(p):
    """merge_summaries_fast equals merge_summaries, the transcription of Go's loop, on consistent
    and garbage summaries alike; an unwritten entry (None) reads as 0."""
    from palloc.model.mpagealloc import merge_summaries, pack_palloc_sum
    from palloc.model.mpagealloc_fast import merge_summaries_fast

    levels = range(1, len(p.level_log_pages))
    lg = p.log_max_packed_value

    @st.composite
    def summary(draw, log):
        full = 1 << log
        kind = draw(st.sampled_from(["zero", "unwritten", "free", "all-free-bit", "fields", "garbage"]))
        if kind == "zero":
            return 0
        if kind == "unwritten":
            return None
        if kind == "free":
            return pack_palloc_sum(p, full, full, full)
        if kind == "all-free-bit":
            return 1 << 63
        if kind == "fields":
            f = st.one_of(st.sampled_from([0, 1, full - 1, full]), st.integers(0, full))
            return pack_palloc_sum(p, draw(f), draw(f), draw(f))
        return draw(st.integers(0, (1 << 64) - 1))

    @SETTINGS
    @given(st.data())
    def check(data):
        l = data.draw(st.sampled_from(list(levels)))
        log = p.level_log_pages[l]
        sums = data.draw(st.lists(summary(log), min_size=1, max_size=1 << p.level_bits[l]))
        assert merge_summaries_fast(p, sums, log) == merge_summaries(p, [x or 0 for x in sums], log)

    check()
    assert lg > 0


def test_merge_summaries_broken_start_rule_is_caught_by_go_loop():
    """A seeded broken variant: a merge that adds the next start unconditionally disagrees with Go's loop."""
    from palloc.model.mpagealloc import merge_summaries, pack_palloc_sum, palloc_sum_unpack

    p = PLATFORMS[0]
    log = p.level_log_pages[-1]
    sums = [pack_palloc_sum(p, 3, 5, 0), pack_palloc_sum(p, 7, 7, 1)]

    def broken(sums):
        s0, m0, e0 = palloc_sum_unpack(p, sums[0])
        s1, m1, e1 = palloc_sum_unpack(p, sums[1])
        return pack_palloc_sum(p, s0 + s1, max(m0, e0 + s1, m1), e1)

    assert broken(sums) != merge_summaries(p, sums, log)


@pytest.mark.parametrize("pv", PA_PLATFORMS[:2], ids=["-".join(x) for x in PA_PLATFORMS[:2]])
def test_page_guards_refuse_exactly_the_mixed_ranges(pv):
    """free's and markRandomPaddingPages' guard passes iff every page of the range is allocated (free)."""
    from palloc.spec import platform

    p = platform(*pv)
    n = p.palloc_chunk_pages
    pa = FastPageAlloc.make(p)
    pa.grow(chunk_base(p, p.base_chunk_idx), 2 * p.palloc_chunk_bytes)

    @SETTINGS
    @given(bitmaps(n), bitmaps(n), st.integers(0, 2 * n - 1), st.integers(1, 2 * n), st.booleans())
    def check(v0, v1, first, k, allocated):
        k = min(k, 2 * n - first)
        pa.chunk_of(p.base_chunk_idx).v, pa.chunk_of(p.base_chunk_idx + 1).v = v0, v1
        bits = v0 | (v1 << n)
        ones = sum((bits >> j) & 1 for j in range(first, first + k))
        holds = ones == k if allocated else ones == 0
        base = chunk_base(p, p.base_chunk_idx) + first * 8192
        try:
            pa._require_pages(base, k, allocated)
            assert holds
        except UndefinedBehaviour:
            assert not holds

    check()


def _scan_outcome(gen, stop_after):
    # What a consumer that stops after `stop_after` entries sees: the entries, then the fault if any.
    out = []
    try:
        for kv in gen:
            out.append(kv)
            if len(out) == stop_after:
                break
    except GoFault as e:
        out.append(("fault", str(e)))
    return out


_LEVEL = st.tuples(
    st.dictionaries(st.integers(0, 4095), st.sampled_from([0, 1, 5, 1 << 63]), max_size=12),  # written entries
    st.sets(st.integers(0, 7)),  # mapped pages of 512 entries
    st.integers(0, 4096),
    st.integers(0, 4096),
    st.integers(1, 20),
)


def _level(written, mapped, cls=None):
    from palloc.model.mpagealloc_fast import FastSummaryLevel

    lv = (cls or FastSummaryLevel)(0, 4096, 4096)
    lv.mapped = set(mapped) | {k >> lv.log_sums_per_page for k in written}  # written entries are mapped
    lv.len = 4096
    lv.vals.update(written)
    return lv


@settings(max_examples=300, deadline=None)
@given(_LEVEL)
def test_sparse_summary_scan_reads_and_faults_like_the_per_entry_loop(args):
    """scan (sparse over the root's 2^14 entries) yields and faults exactly where the per-entry loop does."""
    written, mapped, lo, hi, stop = args
    lo, hi = min(lo, hi), max(lo, hi)
    lv = _level(written, mapped)
    assert _scan_outcome(lv.scan_sparse(lo, hi), stop) == _scan_outcome(lv.scan_slow(lo, hi), stop)
    assert _scan_outcome(lv.scan(lo, hi), stop) == _scan_outcome(lv.scan_slow(lo, hi), stop)


def test_sparse_scan_that_skips_the_gap_reads_is_caught():
    """A seeded broken variant: a sparse scan that never reads the zeros between entries misses the fault."""
    from palloc.model.mpagealloc_fast import FastSummaryLevel

    class NoGapReads(FastSummaryLevel):
        def _check_gap(self, a, b):
            pass

    lv = _level({2000: 5}, {3}, NoGapReads)
    assert _scan_outcome(lv.scan_sparse(0, 4096), 10) != _scan_outcome(lv.scan_slow(0, 4096), 10)


# --- fused one-chunk steps: alloc's and free's bitmap, scavenge index and summary in one go ------


@pytest.mark.parametrize("p", PLATFORMS, ids=PLATFORM_IDS)
def test_fused_chunk_steps_equal_the_calls_they_replace(p):
    """alloc_range_summarize and free_summarize leave the bitmaps and return what popcnt_range,
    alloc_range / free and summarize do, from a fresh, stale or missing memo and on runs that
    are not all free (all allocated), and raise the same errors."""
    n = p.palloc_chunk_pages

    @SETTINGS
    @given(bitmaps(n), bitmaps(n), st.lists(st.tuples(st.integers(-2, n), st.integers(-1, n), st.booleans(),
                                                        st.sampled_from(["fresh", "stale", "none"])), max_size=10))
    def check(v, scav, ops):
        fast, slow = FastPallocData(p, v, scav), PallocData(p, v, scav)
        for i, k, alloc, memo in ops:
            if memo == "fresh":
                fast.summarize()
            elif memo == "stale":
                fast.summarize()
                fast.v ^= 1 << (k % n)
                slow.v = fast.v
            else:
                fast._memo = None

            def slow_step():
                if alloc:
                    pages = slow.scavenged.popcnt_range(i, k)
                    slow.alloc_range(i, k)
                    return pages, slow.summarize()
                slow.free(i, k)
                return slow.summarize()

            got = want = None
            try:
                want = slow_step()
            except (GoFault, UndefinedBehaviour) as e:
                want = type(e), str(e)
            try:
                got = fast.alloc_range_summarize(i, k) if alloc else fast.free_summarize(i, k)
            except (GoFault, UndefinedBehaviour) as e:
                got = type(e), str(e)
            assert got == want
            assert (fast.v, fast.scavenged.v) == (slow.v, slow.scavenged.v)
            assert fast.summarize() == summarize_slow(fast)

    check()


def test_fused_alloc_that_keeps_max_after_cutting_the_longest_run_is_caught():
    """A seeded broken variant: alloc_range_summarize never recomputing max disagrees with the mirror in lockstep."""
    from palloc.spec import platform

    p = platform("linux/amd64")

    class KeepsMax(FastPallocData):
        __slots__ = ()

        def alloc_range_summarize(self, i, n):
            old_max = self.summarize_unpacked()[1]
            pages, _ = super().alloc_range_summarize(i, n)
            start, _, end = self.summarize_full()
            lg = p.log_max_packed_value
            return pages, start | (old_max << lg) | (end << 2 * lg)

    pas = []
    for cls in (FastPageAlloc, PageAlloc):
        pa = cls.make(p)
        pa.grow(chunk_base(p, p.base_chunk_idx), p.palloc_chunk_bytes)
        pas.append(pa)
    pas[0].chunk_of(p.base_chunk_idx).__class__ = KeepsMax
    lives = ([], [])
    for op in (("alloc", 100, 0), ("alloc", 10, 0)):
        r = [_step(pa, op, live) for pa, live in zip(pas, lives)]
        assert r[0] == r[1]
    assert _snapshot(pas[0]) != _snapshot(pas[1])


def test_fused_alloc_that_takes_the_longer_piece_as_max_is_caught():
    """A seeded broken variant: cutting a chunk's longest run, alloc_range_summarize taking the
    longer piece as the new max without asking whether a longer run lies elsewhere is caught
    by the comparison with summarize_slow; the real one answers it."""
    from palloc.model.mpagealloc import palloc_sum_unpack
    from palloc.spec import platform

    p = platform("linux/amd64")
    n, lg = p.palloc_chunk_pages, p.log_max_packed_value

    class PieceIsMax(FastPallocData):
        __slots__ = ()

        def alloc_range_summarize(self, i, k):
            free = ~self.v & self.g.full
            a, b = i, i + k
            while a > 0 and free >> (a - 1) & 1:
                a -= 1
            while b < n and free >> b & 1:
                b += 1
            pages, s = super().alloc_range_summarize(i, k)
            piece = max(i - a, b - (i + k))
            return pages, (s & ~(((1 << lg) - 1) << lg)) | (piece << lg)

    # Free runs [0, 30) (the longest) and [100, 125); allocating [0, 10) leaves pieces of 20.
    v = ((1 << n) - 1) & ~((1 << 30) - 1) & ~(((1 << 25) - 1) << 100)
    for cls, agrees in ((FastPallocData, True), (PieceIsMax, False)):
        d = cls(p, v)
        d.summarize()  # a fresh memo: the fused path's cut rule runs
        _, got = d.alloc_range_summarize(0, 10)
        assert (got == summarize_slow(d)) is agrees
        assert palloc_sum_unpack(p, summarize_slow(d))[1] == 25


def _index_outcome(idx, f):
    try:
        r = f()
    except (GoFault, GoThrow) as e:
        r = type(e).__name__, str(e)
    return r, {k: v.pack(idx.p) for k, v in idx.chunks.items()}, getattr(idx, "_keys", sorted(idx.chunks)), \
        idx.search_addr_force.load(), idx.free_hwm.a


_INDEX_OPS = st.lists(
    st.tuples(st.sampled_from(["alloc", "free", "next_gen", "set_empty", "find"]), st.integers(-2, 70),
              st.integers(0, 600), st.integers(0, 600)),
    max_size=25,
)


@pytest.mark.parametrize("pv", PA_PLATFORMS, ids=["-".join(x) for x in PA_PLATFORMS])
def test_fast_scavenge_index_alloc_free_and_find_equal_the_mirror(pv):
    """FastScavengeIndex.alloc/free/find (load and scavChunkData inlined, find over the chunks it
    holds) equal ScavengeIndex's: state,
    cursors, throws ("too many pages", "below zero") and window faults, step by step."""
    from palloc.spec import platform

    p = platform(*pv)
    cb = p.palloc_chunk_bytes

    @SETTINGS
    @given(st.integers(0, 40), st.integers(1, 20), _INDEX_OPS)
    def check(lo, nchunks, ops):
        idx = []
        for cls in (FastScavengeIndex, ScavengeIndex):
            s = cls(p)
            s.init(True)
            base = chunk_base(p, p.base_chunk_idx + lo)
            s.grow(base, base + nchunks * cb)
            idx.append(s)
        fast, slow = idx
        for kind, c, page, k in ops:
            ci = p.base_chunk_idx + lo + c
            if kind == "alloc":
                assert _index_outcome(fast, lambda: fast.alloc(ci, k)) == _index_outcome(slow, lambda: slow.alloc(ci, k))
            elif kind == "free":
                assert _index_outcome(fast, lambda: fast.free(ci, page, k)) == \
                    _index_outcome(slow, lambda: slow.free(ci, page, k))
            elif kind == "next_gen":
                fast.next_gen(), slow.next_gen()
            elif kind == "find":
                force = bool(page & 1)
                assert _index_outcome(fast, lambda: fast.find(force)) == _index_outcome(slow, lambda: slow.find(force))
            else:
                assert _index_outcome(fast, lambda: fast.set_empty(ci)) == _index_outcome(slow, lambda: slow.set_empty(ci))

    check()


def test_scavenge_index_free_that_forgets_has_free_is_caught():
    """A seeded broken variant: an index free that leaves the HasFree flag clear disagrees with the mirror's."""
    from palloc.spec import platform

    p = platform("linux/amd64")

    class Broken(FastScavengeIndex):
        __slots__ = ()

        def free(self, ci, page, npages):
            super().free(ci, page, npages)
            self.load(ci).flags &= ~1

    fast, slow = Broken(p), ScavengeIndex(p)
    for s in (fast, slow):
        s.init(True)
        base = chunk_base(p, p.base_chunk_idx)
        s.grow(base, base + p.palloc_chunk_bytes)
    ci = p.base_chunk_idx
    fast.alloc(ci, p.palloc_chunk_pages), slow.alloc(ci, p.palloc_chunk_pages)
    assert _index_outcome(fast, lambda: fast.free(ci, 0, 1)) != _index_outcome(slow, lambda: slow.free(ci, 0, 1))


def _find_into_unmapped_leaves(cls, p):
    """Returns a one-chunk heap, full, whose summaries above the next level-1 entry's first chunk
    claim a free page: find descends there and reads a leaf on a never-mapped page."""
    pa = cls.make(p)
    pa.grow(chunk_base(p, p.base_chunk_idx), p.palloc_chunk_bytes)
    _step(pa, ("alloc", p.palloc_chunk_pages, 0), [])
    _step(pa, ("corrupt_path", 0, 0), [])
    return pa


def test_lockstep_comparison_catches_a_find_that_skips_unmapped_summary_reads():
    """A seeded broken variant: a find that reads unwritten leaf entries as 0 without the mapping
    check throws "bad summary data" where Go faults; the comparison with the mirror's find sees it."""
    from palloc.model.mpagealloc_fast import FastSummaryLevel
    from palloc.spec import platform

    p = platform("linux/amd64")

    class Unchecked(FastSummaryLevel):
        __slots__ = ()

        def at(self, i):
            return self.vals.get(i, 0)

    fast, slow = _find_into_unmapped_leaves(FastPageAlloc, p), _find_into_unmapped_leaves(PageAlloc, p)
    want = _step(slow, ("find", 1, 0), [])
    assert want[0] == "GoFault"
    assert _step(fast, ("find", 1, 0), []) == want
    fast.summary[-1].__class__ = Unchecked
    assert _step(fast, ("find", 1, 0), []) != want


# --- update's walk: a child whose start and end held moves only the parent's max ----------------


def _max_only_scenario(cls, p, corrupt=False):
    """Three chunks whose first and last pages are allocated (chunk 1 wholly), so allocs and
    frees inside them move only a leaf's max: first of the chunk holding the parent's max (a
    merge), then back above it (the parent takes the new max), then of another chunk below it
    (the walk stops). With corrupt, the chunks' parent entry is overwritten first, a write
    update did not make."""
    pa = cls.make(p)
    pa.grow(chunk_base(p, p.base_chunk_idx), 3 * p.palloc_chunk_bytes)
    n = p.palloc_chunk_pages
    for op in (("alloc_range", 0, 1), ("alloc_range", n - 1, 1), ("alloc_range", n, n), ("alloc_range", 2 * n, 1),
               ("alloc_range", 3 * n - 1, 1), ("alloc_range", 2 * n + n // 4 + 1, n // 2)):
        _step(pa, op, [])
    if corrupt:  # a parent claiming a whole chunk free
        from palloc.model.mpagealloc import pack_palloc_sum

        l = len(pa.summary) - 2
        pa.summary[l][p.base_chunk_idx >> p.level_bits[-1]] = pack_palloc_sum(p, 0, n, 0)
    live = []
    out = [_step(pa, ("alloc", n // 2, 0), live), _step(pa, ("free", 0, n // 2 - 1), live),
           _step(pa, ("alloc_range", 2 * n + 1, 2), live), _step(pa, ("alloc", 3, 0), live)]
    return pa, out


@pytest.mark.parametrize("pv", PA_PLATFORMS, ids=["-".join(x) for x in PA_PLATFORMS])
@pytest.mark.parametrize("corrupt", [False, True], ids=["consistent", "corrupted-parent"])
def test_max_only_summary_changes_update_the_path_as_merging_does(pv, corrupt):
    """Allocs and frees that move only a chunk's max leave the same summaries as Go's merging
    walk, also after a summary was overwritten behind update's back (which ends the shortcut)."""
    from palloc.spec import platform

    p = platform(*pv)
    fast, r1 = _max_only_scenario(FastPageAlloc, p, corrupt)
    slow, r2 = _max_only_scenario(PageAlloc, p, corrupt)
    assert r1 == r2
    assert _snapshot(fast) == _snapshot(slow)
    assert (fast._tally[0] == fast._trusted) is not corrupt


def test_walk_that_stops_whenever_only_max_moved_is_caught():
    """A seeded broken variant: stopping the walk whenever the child's start and end held (even when
    the child held the parent's max and lost it) leaves a stale parent."""
    from palloc.spec import platform

    p = platform("linux/amd64")

    class StopsOnMaxOnly(FastPageAlloc):
        def _update_up(self, bot, x, y, *walk):
            if not (x ^ y) & self._start_end_fields:
                return
            return super()._update_up(bot, x, y, *walk)

    assert _snapshot(_max_only_scenario(StopsOnMaxOnly, p)[0]) != _snapshot(_max_only_scenario(PageAlloc, p)[0])


def test_walk_that_keeps_trusting_a_corrupted_parent_is_caught():
    """A seeded broken variant: a walk that ignores writes made behind update's back takes the
    shortcut from a parent that is not the merge of its children, and keeps it stale."""
    from palloc.spec import platform

    p = platform("linux/amd64")

    class AlwaysTrusts(FastPageAlloc):
        def _update_up(self, bot, x, y, *walk):
            self._trusted = self._tally[0]
            return super()._update_up(bot, x, y, *walk)

    got = _snapshot(_max_only_scenario(AlwaysTrusts, p, corrupt=True)[0])
    assert got != _snapshot(_max_only_scenario(PageAlloc, p, corrupt=True)[0])
