"""The per-chunk page bitmaps: pageBits, pallocBits, pallocData and findBitRange64.

Mirrors src/runtime/mpallocbits.go of Go 1.27.3 (unchanged in substance since 1.21), name by
name. A bitmap is one Python int: bit i is page i of the chunk (1 = allocated, or scavenged for
the scavenged bitmap), so Go's word w is `(v >> 64*w) & MASK64` (see `words()`).

The clever functions (summarize, find and its helpers) work on the whole chunk with big-int bit
tricks instead of Go's per-word loops; each has a slow twin at the end of the module that
transcribes the Go loops word by word (find_slow) or states the definition bit by bit
(summarize_slow, popcnt_range_slow, find_bit_range64_slow), and the property tests compare them.

Go's index panics become GoFault; the zero-length ranges Go leaves undefined (n == 0) raise
UndefinedBehaviour; Go's failure index ^uint(0) is `p.uintptr_mask`.

`PallocData.find_scavenge_candidate` lives in mgcscavenge.py, as in Go (mgcscavenge.go), and is
attached to PallocData when that module is imported (this module imports it at its end).
"""

from __future__ import annotations

import functools

from palloc.spec.errors import GoFault, UndefinedBehaviour
from palloc.model.gomath import MASK64, leading_zeros64, trailing_zeros64

__all__ = [
    "ChunkGeometry",
    "PageBits",
    "PallocBits",
    "PallocData",
    "find_bit_range64",
    "find_bit_range64_slow",
    "find_slow",
    "geometry",
    "popcnt_range_slow",
    "summarize_slow",
    "summarize_slow_unpacked",
]


class ChunkGeometry:
    """The platform-derived constants every bitmap of one platform shares (one object per platform).

    n: pallocChunkPages; nwords: n/64; full: all n bits set; fail: ^uint(0) on the platform.
    """

    __slots__ = ("p", "n", "nwords", "full", "fail", "max_packed_value", "log_max_packed_value", "low")

    def __init__(self, p):
        self.p = p
        self.n = p.palloc_chunk_pages
        self.nwords = self.n // 64
        self.full = (1 << self.n) - 1
        self.fail = p.uintptr_mask
        self.max_packed_value = p.max_packed_value
        self.log_max_packed_value = p.log_max_packed_value
        self.low = tuple((1 << k) - 1 for k in range(self.n + 1))  # low[k]: bits [0, k) set

    def __copy__(self):
        return self  # shared and immutable

    def __deepcopy__(self, memo):
        return self


_GEOMS: dict[int, tuple[object, ChunkGeometry]] = {}


def geometry(p) -> ChunkGeometry:
    """Returns the shared ChunkGeometry of platform p (p may already be a ChunkGeometry)."""
    if type(p) is ChunkGeometry:
        return p
    hit = _GEOMS.get(id(p))
    if hit is None or hit[0] is not p:
        hit = (p, ChunkGeometry(p))  # keeps p alive, so its id stays unique
        _GEOMS[id(p)] = hit
    return hit[1]


def _check_bit(g: ChunkGeometry, i: int) -> None:
    if not 0 <= i < g.n:
        raise GoFault(f"index out of range: bit {i} of a {g.n}-page bitmap")


def _check_range(g: ChunkGeometry, i: int, n: int) -> None:
    if n == 0:
        raise UndefinedBehaviour(f"zero-length bit range at {i} (j = i+n-1 underflows in Go)")
    if i < 0 or n < 0 or i + n > g.n:
        raise GoFault(f"index out of range: bits [{i}, {i + n}) of a {g.n}-page bitmap")


def _pack(g: ChunkGeometry, start: int, most: int, end: int) -> int:
    # packPallocSum lives in mpagealloc.py (H2); imported lazily to avoid an import cycle.
    from palloc.model.mpagealloc import pack_palloc_sum

    global _pack_palloc_sum
    _pack_palloc_sum = pack_palloc_sum
    return pack_palloc_sum(g.p, start, most, end)


_pack_palloc_sum = None


class PageBits:
    """pageBits: a bitmap with one bit per page of a palloc chunk ([pallocChunkPages/64]uint64).

    `v` is the whole bitmap as one int; `g` the shared ChunkGeometry of the platform.
    """

    __slots__ = ("v", "g")

    def __init__(self, p, v: int = 0):
        self.g = geometry(p)
        self.v = v

    # --- representation helpers (not in Go) -----------------------------------------------

    @property
    def p(self):
        return self.g.p

    def words(self) -> list[int]:
        """Returns Go's []uint64 view: word w holds bits [64w, 64w+64)."""
        v = self.v
        return [(v >> (64 * w)) & MASK64 for w in range(self.g.nwords)]

    @classmethod
    def from_words(cls, p, words) -> "PageBits":
        """Returns a bitmap whose Go words are `words`."""
        v = 0
        for w, x in enumerate(words):
            v |= (x & MASK64) << (64 * w)
        return cls(p, v)

    def copy(self):
        """Returns an independent copy of this bitmap."""
        c = object.__new__(type(self))
        c.g = self.g
        c.v = self.v
        return c

    def __eq__(self, other):
        if not isinstance(other, PageBits):
            return NotImplemented
        return self.v == other.v and self.g.n == other.g.n

    __hash__ = None

    def __repr__(self):
        return f"{type(self).__name__}(platform({self.g.p.name!r}, {self.g.p.go_version!r}), {self.v:#x})"

    # --- mpallocbits.go --------------------------------------------------------------------

    def get(self, i: int) -> int:
        """Returns the value of the i'th bit in the bitmap."""
        _check_bit(self.g, i)
        return (self.v >> i) & 1

    def block64(self, i: int) -> int:
        """Returns the 64-bit aligned block of bits containing the i'th bit."""
        _check_bit(self.g, i)
        return (self.v >> (i & ~63)) & MASK64

    def set(self, i: int) -> None:
        """Sets bit i."""
        _check_bit(self.g, i)
        self.v |= 1 << i

    def set_range(self, i: int, n: int) -> None:
        """Sets bits in the range [i, i+n).

        Requires: n > 0 (UndefinedBehaviour otherwise); i+n <= pallocChunkPages (GoFault otherwise).
        """
        _check_range(self.g, i, n)
        self.v |= ((1 << n) - 1) << i

    def set_all(self) -> None:
        """Sets all the bits."""
        self.v = self.g.full

    def set_block64(self, i: int, v: int) -> None:
        """Sets the bits of the 64-bit aligned block containing the i'th bit that are set in v."""
        _check_bit(self.g, i)
        self.v |= (v & MASK64) << (i & ~63)

    def clear(self, i: int) -> None:
        """Clears bit i."""
        _check_bit(self.g, i)
        self.v &= ~(1 << i)

    def clear_range(self, i: int, n: int) -> None:
        """Clears bits in the range [i, i+n).

        Requires: n > 0 (UndefinedBehaviour otherwise); i+n <= pallocChunkPages (GoFault otherwise).
        """
        _check_range(self.g, i, n)
        self.v &= ~(((1 << n) - 1) << i)

    def clear_all(self) -> None:
        """Clears all the bits."""
        self.v = 0

    def clear_block64(self, i: int, v: int) -> None:
        """Clears the bits of the 64-bit aligned block containing the i'th bit that are set in v."""
        _check_bit(self.g, i)
        self.v &= ~((v & MASK64) << (i & ~63))

    def popcnt_range(self, i: int, n: int) -> int:
        """Returns the number of set bits in the range [i, i+n).

        Requires: n > 0 (Go's result for n == 0 depends on i; UndefinedBehaviour here);
        i+n <= pallocChunkPages (GoFault otherwise).
        """
        if n <= 0 or i < 0 or i + n > self.g.n:
            _check_range(self.g, i, n)
        return ((self.v >> i) & ((1 << n) - 1)).bit_count()


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


class PallocBits(PageBits):
    """pallocBits: the allocation bitmap of one palloc chunk; 0 = free page, 1 = allocated page.

    Not in Go: `_memo` remembers the last bitmap summarized and its (start, max, end), so that
    summarize() after an alloc or free of one run of pages (the usual case) only looks at the
    run around the change (summarize_incremental). The memo is keyed by the bitmap itself, so it
    can never be stale, whatever wrote `v`.
    """

    __slots__ = ("_memo",)

    def summarize_unpacked(self) -> tuple[int, int, int]:
        """Returns (start, max, end): free pages at the bottom, longest free run, free pages at the top.

        Not in Go: summarize() without the packing, for callers that want the numbers.
        """
        v = self.v
        try:
            memo = self._memo
        except AttributeError:  # a fresh copy (copy() does not carry the memo)
            memo = None
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

    def copy(self):
        c = object.__new__(type(self))
        c.g = self.g
        c.v = self.v
        c._memo = None
        return c

    def summarize(self) -> int:
        """Returns a packed summary (pallocSum) of the bitmap: packPallocSum(start, max, end)."""
        v = self.v
        g = self.g
        try:
            memo = self._memo
        except AttributeError:
            memo = None
        if memo is not None and memo[0] == v:
            start, most, end = memo[1]
        else:  # summarize_unpacked(), inlined
            r = None if memo is None else summarize_incremental(g, memo[0], memo[1], v)
            if r is None:
                r = self.summarize_full()
            if 0 <= v <= g.full:
                self._memo = (v, r)
            start, most, end = r
        # packPallocSum, inlined.
        if most == g.max_packed_value:
            return 1 << 63
        m, lg = g.max_packed_value - 1, g.log_max_packed_value
        return (start & m) | ((most & m) << lg) | ((end & m) << (lg + lg))

    def find(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Searches for npages contiguous free pages; returns (index, new search_idx).

        The search starts at the 64-bit word containing search_idx (the whole word is examined)
        and returns the lowest-indexed run. The second value is the first free page met. If no run
        is found the index is ^uint(0) (p.uintptr_mask) and the new search_idx must be ignored.
        If npages == 1 the two values are identical.

        Requires: npages > 0 (UndefinedBehaviour otherwise).
        """
        if npages == 1:
            addr = self.find1(search_idx)
            return addr, addr
        # findSmallN (npages <= 64) and findLargeN are the same run search here.
        return self._find_run(npages, search_idx)

    def _free_from(self, search_idx: int) -> int:
        # Free bits at or above the word containing search_idx.
        return (self.g.full ^ self.v) >> (search_idx & ~63) << (search_idx & ~63)

    def find1(self, search_idx: int) -> int:
        """Returns the index of the first free page from the word containing search_idx, or ^uint(0)."""
        free = self._free_from(search_idx)
        if not free:
            return self.g.fail
        return (free & -free).bit_length() - 1

    def _find_run(self, npages: int, search_idx: int) -> tuple[int, int]:
        if npages <= 0:
            raise UndefinedBehaviour(f"find of {npages} pages")
        g = self.g
        w = search_idx & ~63
        c = g.full ^ self.v  # _free_from(search_idx)
        if w:
            c = c >> w << w
        if not c:
            return g.fail, g.fail
        first = (c & -c).bit_length() - 1
        if npages > g.n:
            return g.fail, first
        # Shrink every run of free bits by npages-1 from the top (findBitRange64 on the whole chunk).
        for s in _shrink_shifts(npages):
            c &= c >> s
        if not c:
            return g.fail, first
        return (c & -c).bit_length() - 1, first

    def find_small_n(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Helper for find when npages <= 64; same results as find. Returns ^uint(0) on failure."""
        return self._find_run(npages, search_idx)

    def find_large_n(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Helper for find when npages > 64; same results as find. Returns ^uint(0) on failure."""
        return self._find_run(npages, search_idx)

    def alloc_range(self, i: int, n: int) -> None:
        """Allocates the range [i, i+n). Requires: n > 0; i+n <= pallocChunkPages."""
        _check_range(self.g, i, n)
        self.v |= ((1 << n) - 1) << i

    def alloc_all(self) -> None:
        """Allocates all the bits."""
        self.v = self.g.full

    def free1(self, i: int) -> None:
        """Frees the single page at i."""
        _check_bit(self.g, i)
        self.v &= ~(1 << i)

    def free(self, i: int, n: int) -> None:
        """Frees the range [i, i+n). Requires: n > 0; i+n <= pallocChunkPages."""
        if n <= 0 or i < 0 or i + n > self.g.n:
            _check_range(self.g, i, n)
        self.v &= ~(((1 << n) - 1) << i)

    def free_all(self) -> None:
        """Frees all the bits."""
        self.v = 0

    def pages64(self, i: int) -> int:
        """Returns the 64-page aligned block containing page i; each bit says whether it is in use."""
        return self.block64(i)

    def alloc_pages64(self, i: int, alloc: int) -> None:
        """Allocates the pages set in alloc within the 64-page aligned block containing page i."""
        self.set_block64(i, alloc)


class PallocData(PallocBits):
    """pallocData: a chunk's pallocBits plus its `scavenged` pageBits (1 = scavenged page)."""

    __slots__ = ("scavenged",)

    def __init__(self, p, v: int = 0, scavenged: int = 0):
        self.g = g = geometry(p)
        self.v = v
        self._memo = None
        self.scavenged = PageBits(g, scavenged)

    def copy(self):
        c = object.__new__(PallocData)
        c.g = self.g
        c.v = self.v
        c._memo = None
        c.scavenged = self.scavenged.copy()
        return c

    def __eq__(self, other):
        if not isinstance(other, PallocData):
            return NotImplemented
        return self.v == other.v and self.scavenged.v == other.scavenged.v and self.g.n == other.g.n

    __hash__ = None

    def __repr__(self):
        p = self.g.p
        return f"PallocData(platform({p.name!r}, {p.go_version!r}), {self.v:#x}, scavenged={self.scavenged.v:#x})"

    def alloc_range(self, i: int, n: int) -> None:
        """Sets bits [i, i+n) of the bitmap and clears the same scavenged bits."""
        if n <= 0 or i < 0 or i + n > self.g.n:
            _check_range(self.g, i, n)
        m = ((1 << n) - 1) << i
        self.v |= m
        self.scavenged.v &= ~m

    def alloc_all(self) -> None:
        """Sets every bit of the bitmap and clears every scavenged bit."""
        self.v = self.g.full
        self.scavenged.v = 0

    # --- fused steps for the page allocator's one-chunk fast paths (not in Go) ---------------

    def alloc_range_summarize(self, i: int, n: int) -> tuple[int, int]:
        """Allocates [i, i+n) as alloc_range does; returns (scavenged pages in it before, summarize()).

        Not in Go: popcnt_range on scavenged, alloc_range and summarize in one step. The summary
        comes from the memo and the one run that changed (as summarize_incremental would find
        it, without diffing the bitmaps); anything unusual (a stale memo, pages already
        allocated) takes summarize() itself. tests/model/test_fast_paths.py holds it to the
        three calls it replaces.

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

        Not in Go: free and summarize in one step, the summary from the memo and the one run
        that changed; anything unusual (a stale memo, pages already free) takes summarize().

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


def find_bit_range64(c: int, n: int) -> int:
    """Returns the bit index of the first run of n consecutive 1 bits in c, or an integer >= 64.

    Transcribes Go's loop exactly (shift counts masked with &63, as Go's `c >> (p & 63)`).
    Requires: n > 0 (UndefinedBehaviour otherwise).
    """
    if n <= 0:
        raise UndefinedBehaviour("findBitRange64 with n == 0")
    c &= MASK64
    p = n - 1
    k = 1
    while p > 0:
        if p <= k:
            c &= c >> (p & 63)
            break
        c &= c >> (k & 63)
        if c == 0:
            return 64
        p -= k
        k = (k * 2) & MASK64
    return trailing_zeros64(c)


# --- slow twins --------------------------------------------------------------------------------


def summarize_slow_unpacked(b: PageBits) -> tuple[int, int, int]:
    """Returns (start, max, end) of b bit by bit, as export_test.go SummarizeSlow counts them."""
    n = b.g.n
    bits = [(b.v >> i) & 1 for i in range(n)]
    start = 0
    while start < n and bits[start] == 0:
        start += 1
    end = 0
    while end < n and bits[n - end - 1] == 0:
        end += 1
    most = run = 0
    for x in bits:
        run = run + 1 if x == 0 else 0
        most = max(most, run)
    return start, most, end


def summarize_slow(b: PageBits) -> int:
    """Returns export_test.go SummarizeSlow(b): the packed summary computed bit by bit."""
    return _pack(b.g, *summarize_slow_unpacked(b))


def popcnt_range_slow(b: PageBits, i: int, n: int) -> int:
    """Returns the number of set bits in [i, i+n), counted one bit at a time."""
    _check_range(b.g, i, n)
    return sum((b.v >> j) & 1 for j in range(i, i + n))


def find_bit_range64_slow(c: int, n: int) -> int:
    """Returns the lowest j with bits [j, j+n) of c all set, or 64. Requires: 0 < n <= 64."""
    for j in range(0, 65 - n):
        if all((c >> (j + t)) & 1 for t in range(n)):
            return j
    return 64


def find_slow(b: PageBits, npages: int, search_idx: int) -> tuple[int, int]:
    """Transcribes Go's find/find1/findSmallN/findLargeN word by word over b.words()."""
    if npages <= 0:
        raise UndefinedBehaviour(f"find of {npages} pages")
    words = b.words()
    fail = b.g.fail
    nw = len(words)
    if npages == 1:
        for i in range(search_idx // 64, nw):
            x = words[i]
            if x == MASK64:
                continue
            r = i * 64 + trailing_zeros64(~x)
            return r, r
        return fail, fail
    if npages <= 64:
        end, new = 0, fail
        for i in range(search_idx // 64, nw):
            bi = words[i]
            if bi == MASK64:
                end = 0
                continue
            if new == fail:
                new = i * 64 + trailing_zeros64(~bi)
            start = trailing_zeros64(bi)
            if end + start >= npages:
                return i * 64 - end, new
            j = find_bit_range64(~bi & MASK64, npages)
            if j < 64:
                return i * 64 + j, new
            end = leading_zeros64(bi)
        return fail, new
    start, size, new = fail, 0, fail
    for i in range(search_idx // 64, nw):
        x = words[i]
        if x == MASK64:
            size = 0
            continue
        if new == fail:
            new = i * 64 + trailing_zeros64(~x)
        if size == 0:
            size = leading_zeros64(x)
            start = i * 64 + 64 - size
            continue
        s = trailing_zeros64(x)
        if s + size >= npages:
            return start, new
        if s < 64:
            size = leading_zeros64(x)
            start = i * 64 + 64 - size
            continue
        size += 64
    if size < npages:
        return fail, new
    return start, new


def find_first_fit(b: PageBits, npages: int, search_idx: int) -> int:
    """Returns the lowest j >= 64*(search_idx//64) with pages [j, j+npages) free, or ^uint(0).

    The abstract definition find must meet; checked bit by bit.
    """
    n = b.g.n
    run = 0
    for j in range(search_idx & ~63, n):
        run = run + 1 if not (b.v >> j) & 1 else 0
        if run == npages:
            return j - npages + 1
    return b.g.fail


# Attach PallocData.find_scavenge_candidate (defined in mgcscavenge.py, as in Go).
from palloc.model import mgcscavenge as _mgcscavenge  # noqa: E402,F401
