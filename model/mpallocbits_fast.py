"""The fast layer of model/mpallocbits.py: a chunk's bitmap searched and summarized as one big int.

Not a mirror of any Go file. FastPallocData computes exactly what PallocData (the transcription
of src/runtime/mpallocbits.go, Go 1.27.3) computes, faster: summarize and find shrink every run
of free bits over the whole chunk at once instead of walking Go's 64-bit words, summarize
remembers the last bitmap it summarized (`_memo`) and, after an alloc or free of one run, looks
only at the run around the change (summarize_incremental), and the page allocator's one-chunk
fast paths (model/mpagealloc_fast.py) allocate or free a run and summarize in one step
(alloc_range_summarize, free_summarize). tests/model/test_fast_paths.py holds each to the
mirror; the fuzzer and `palloc bench` run this layer, a reader never has to.
"""

from __future__ import annotations

import functools

from palloc.model.mpallocbits import ChunkGeometry, PallocData, _check_bit, _check_range
from palloc.spec.errors import UndefinedBehaviour

__all__ = ["FastPallocData", "summarize_incremental"]


@functools.cache  # npages <= pallocChunkPages: a few hundred entries at most
def _shrink_shifts(npages: int) -> tuple[int, ...]:
    """Returns the shifts findBitRange64's loop makes for npages: 1, 2, 4, ... then the rest, summing to npages-1."""
    out = []
    p, k = npages - 1, 1
    while p > 0:
        s = p if p <= k else k
        out.append(s)
        p -= s
        k <<= 1
    return tuple(out)


class FastPallocData(PallocData):
    """PallocData with whole-chunk search and summary, and a memo of the last summary.

    `_memo` is (bitmap, (start, max, end)) of the last bitmap summarized; it is keyed by the
    bitmap itself, so it can never be stale, whatever wrote `v`.
    """

    __slots__ = ("_memo",)

    def __init__(self, p, v: int = 0, scavenged: int = 0):
        super().__init__(p, v, scavenged)
        self._memo = None

    def copy(self):
        c = super().copy()
        c._memo = None
        return c

    # --- summarize -------------------------------------------------------------------------------

    def summarize_unpacked(self) -> tuple[int, int, int]:
        """Returns (start, max, end): free pages at the bottom, longest free run, free pages at the top."""
        v = self.v
        memo = self._memo
        if memo is not None:
            if memo[0] == v:
                return memo[1]
            r = summarize_incremental(self.g, memo[0], memo[1], v)
        else:
            r = None
        if r is None:
            r = self.summarize_full()
        if 0 <= v <= self.g.full:
            self._memo = (v, r)
        return r

    def summarize_full(self) -> tuple[int, int, int]:
        """Returns summarize_unpacked() computed from the whole bitmap, ignoring the memo."""
        g = self.g
        v = self.v
        if v == 0:
            n = g.n
            return n, n, n
        if v == g.full:
            return 0, 0, 0
        start = (v & -v).bit_length() - 1
        end = g.n - v.bit_length()
        # Longest run of ones in free: R_m (bit j set iff free[j:j+m] all ones) by doubling,
        # R_{a+b} = R_a & (R_b >> a), then add the halves back greedily.
        c = g.full ^ v
        rs = []
        m = 1
        while True:
            nxt = c & (c >> m)
            if not nxt:
                break
            rs.append(c)
            c = nxt
            m <<= 1
        # c = R_m is nonzero and R_2m is zero; rs[k] = R_{2^k} for 2^k < m.
        for k in range(len(rs) - 1, -1, -1):
            t = c & (rs[k] >> m)
            if t:
                c = t
                m += 1 << k
        return start, m, end

    def summarize(self) -> int:
        """Returns PallocData.summarize(): packPallocSum(start, max, end), from the memo when it can."""
        v = self.v
        g = self.g
        memo = self._memo
        if memo is not None and memo[0] == v:
            start, most, end = memo[1]
        else:  # summarize_unpacked(), inlined
            r = None if memo is None else summarize_incremental(g, memo[0], memo[1], v)
            if r is None:
                r = self.summarize_full()
            if 0 <= v <= g.full:
                self._memo = (v, r)
            start, most, end = r
        # packPallocSum, inlined (see palloc.model.mpagealloc.pack_palloc_sum): a call per
        # summary is a tenth of this function's time.
        if most == g.max_packed_value:
            return 1 << 63
        m, lg = g.max_packed_value - 1, g.log_max_packed_value
        return (start & m) | ((most & m) << lg) | ((end & m) << (lg + lg))

    # --- find ------------------------------------------------------------------------------------

    def find(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Returns PallocData.find(npages, search_idx): find1, or one run search for findSmallN and findLargeN."""
        if npages == 1:
            addr = self.find1(search_idx)
            return addr, addr
        return self.find_run(npages, search_idx)

    def find1(self, search_idx: int) -> int:
        """Returns PallocData.find1(search_idx): the first free page from search_idx's word, or ^uint(0)."""
        w = search_idx & ~63
        free = (self.g.full ^ self.v) >> w << w
        if not free:
            return self.g.fail
        return (free & -free).bit_length() - 1

    def find_run(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Returns what findSmallN (npages <= 64) and findLargeN return: every run of free bits
        shrunk by npages-1 from the top at once (findBitRange64 on the whole chunk)."""
        if npages <= 0:
            raise UndefinedBehaviour(f"find of {npages} pages")
        g = self.g
        w = search_idx & ~63
        c = g.full ^ self.v  # the free pages from search_idx's word on
        if w:
            c = c >> w << w
        if not c:
            return g.fail, g.fail
        first = (c & -c).bit_length() - 1
        if npages > g.n:
            return g.fail, first
        for s in _shrink_shifts(npages):
            c &= c >> s
        if not c:
            return g.fail, first
        return (c & -c).bit_length() - 1, first

    # --- alloc and free on the int ---------------------------------------------------------------

    def alloc_range(self, i: int, n: int) -> None:
        """PallocData.alloc_range on the int: sets bits [i, i+n) and clears the same scavenged bits."""
        if n <= 0 or i < 0 or i + n > self.g.n:
            _check_range(self.g, i, n)
        m = ((1 << n) - 1) << i
        self.v |= m
        self.scavenged.v &= ~m

    def free1(self, i: int) -> None:
        """PallocBits.free1 on the int."""
        if not 0 <= i < self.g.n:
            _check_bit(self.g, i)
        self.v &= ~(1 << i)

    def free(self, i: int, n: int) -> None:
        """PallocBits.free on the int."""
        if n <= 0 or i < 0 or i + n > self.g.n:
            _check_range(self.g, i, n)
        self.v &= ~(((1 << n) - 1) << i)

    # --- fused steps for the page allocator's one-chunk fast paths --------------------------------

    def alloc_range_summarize(self, i: int, n: int) -> tuple[int, int]:
        """Allocates [i, i+n) as alloc_range does; returns (scavenged pages in it before, summarize()).

        scavenged.popcnt_range, alloc_range and summarize in one step. The summary comes from
        the memo and the one run that changed (as summarize_incremental would find it, without
        diffing the bitmaps); anything unusual (a stale memo, pages already allocated) takes
        summarize() itself.

        Requires: n > 0 (UndefinedBehaviour otherwise); i+n <= pallocChunkPages (GoFault otherwise).
        """
        g = self.g
        N = g.n
        hi = i + n
        if n <= 0 or i < 0 or hi > N:
            _check_range(g, i, n)
        low = g.low
        m = low[n] << i
        old = self.v
        scav = self.scavenged
        sv = scav.v
        pages = (sv & m).bit_count()
        scav.v = sv & ~m
        v = self.v = old | m
        memo = self._memo
        if memo is None or memo[0] != old or old & m:
            return pages, self.summarize()
        start, most, end = memo[1]
        # The free run [a, b) of old around [i, hi): cut it; max holds if a longer run is elsewhere.
        a = (old & low[i]).bit_length()
        u = old >> hi
        b = hi + (u & -u).bit_length() - 1 if u else N
        if b - a >= most:
            # The max run is cut into [a, i) and [hi, b): max is the longer piece, unless a
            # run longer than it lies elsewhere (is any run of len+1 left outside [a, b)?).
            piece = i - a if i - a > b - hi else b - hi
            c = (g.full ^ old) & ~(low[b - a] << a)
            if piece:
                for s in _shrink_shifts(piece + 1):
                    if not c:
                        break
                    c &= c >> s
            if c:
                start, most, end = r = self.summarize_full()
            else:
                most = piece
                if i < start:
                    start = i
                if N - hi < end:
                    end = N - hi
                r = (start, most, end)
        else:
            if i < start:
                start = i
            if N - hi < end:
                end = N - hi
            r = (start, most, end)
        self._memo = (v, r)  # old was in [0, full] (it is memo[0]), so v is too
        # packPallocSum, inlined (max < maxPackedValue: pages [i, hi) are allocated).
        lg = g.log_max_packed_value
        return pages, start | (most << lg) | (end << (lg + lg))

    def free_summarize(self, i: int, n: int) -> int:
        """Frees [i, i+n) as free does; returns summarize() of the result.

        free and summarize in one step, the summary from the memo and the one run that
        changed; anything unusual (a stale memo, pages already free) takes summarize().

        Requires: n > 0 (UndefinedBehaviour otherwise); i+n <= pallocChunkPages (GoFault otherwise).
        """
        # alloc_range_summarize's prologue, repeated on purpose: each is one call on the hot path.
        g = self.g
        N = g.n
        hi = i + n
        if n <= 0 or i < 0 or hi > N:
            _check_range(g, i, n)
        low = g.low
        m = low[n] << i
        old = self.v
        v = self.v = old & ~m
        memo = self._memo
        if memo is None or memo[0] != old or old & m != m:
            return self.summarize()
        start, most, end = memo[1]
        # The free run [a, b) of v around [i, hi) is one run now.
        a = (v & low[i]).bit_length()
        u = v >> hi
        b = hi + (u & -u).bit_length() - 1 if u else N
        if b - a > most:
            most = b - a
        if a == 0:
            start = b
        if b == N:
            end = N - a
        self._memo = (v, (start, most, end))
        # packPallocSum, inlined: start and end are at most max, so below maxPackedValue
        # they need no masking.
        if most == g.max_packed_value:
            return 1 << 63
        lg = g.log_max_packed_value
        return start | (most << lg) | (end << (lg + lg))


def summarize_incremental(g: ChunkGeometry, old: int, old_sum: tuple[int, int, int], v: int):
    """Returns summarize_unpacked() of bitmap v from that of bitmap old, or None if it cannot.

    Works when v differs from old in one run of bits [lo, hi), all set (an alloc) or all
    cleared (a free). Let [a, b) be the free run of v (free) or of old (alloc) around [lo, hi):
    a free merges [a, b) into one run, so max grows to at least b-a; an alloc cuts [a, b), so
    max is unchanged if b-a < old max (a longer run lies elsewhere, untouched), and unknown
    (None) otherwise. start and end move only if the change touches the bottom or top run.

    Requires: 0 <= old <= g.full and old_sum == summarize of old.
    """
    d = v ^ old
    if d <= 0:
        return None  # v == old is the caller's job; v < 0 is not a bitmap
    lo = (d & -d).bit_length() - 1
    hi = d.bit_length()
    n = g.n
    t = d >> lo
    if hi > n or t & (t + 1):
        return None  # beyond the chunk, or not one run of bits
    start, most, end = old_sum
    below = v & ((1 << lo) - 1)
    a = below.bit_length()  # first page of the free run reaching down from lo
    u = v >> hi
    b = hi + (u & -u).bit_length() - 1 if u else n  # one past the free run reaching up from hi
    if not v & d:  # freed [lo, hi): the run [a, b) is free now
        if b - a > most:
            most = b - a
        if a == 0:
            start = b
        if b == n:
            end = n - a
        return start, most, end
    if v & d != d:
        return None
    # allocated [lo, hi) out of the free run [a, b) of old
    if b - a >= most:
        return None  # may have cut the only longest run
    if lo < start:
        start = lo
    if n - hi < end:
        end = n - hi
    return start, most, end
