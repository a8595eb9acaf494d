"""The per-chunk page bitmaps: pageBits, pallocBits, pallocData and findBitRange64.

Mirrors src/runtime/mpallocbits.go of Go 1.27.3 (unchanged in substance since 1.21), function by
function in Go's order. A bitmap is one Python int: bit i is page i of the chunk (1 = allocated,
or scavenged for the scavenged bitmap), so Go's word w is `(v >> 64*w) & MASK64` (`words()`).
pageBits' one-word and range operations are written on that int; pallocBits.summarize and
find, find1, findSmallN and findLargeN walk the words as Go's loops do.

The fast layer (whole-chunk big-int tricks and a memoised summary) is model/mpallocbits_fast.py,
checked against these functions by tests/model/test_fast_paths.py. The definitions at the end
(`*_slow`, find_first_fit) state what a function computes from first principles, bit by bit, as
export_test.go's SummarizeSlow does.

Go's index panics become GoFault; the zero-length ranges Go leaves undefined (n == 0) raise
UndefinedBehaviour; Go's failure index ^uint(0) is `p.uintptr_mask`.

`PallocData.find_scavenge_candidate` lives in mgcscavenge.py, as in Go (mgcscavenge.go), and is
attached to PallocData when that module is imported (this module imports it at its end).
"""

from __future__ import annotations

from palloc.spec.errors import GoFault, UndefinedBehaviour
from palloc.model.gomath import MASK64, leading_zeros64, trailing_zeros64

__all__ = [
    "ChunkGeometry",
    "PageBits",
    "PallocBits",
    "PallocData",
    "find_bit_range64",
    "find_bit_range64_slow",
    "find_first_fit",
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
    # packPallocSum is mpagealloc.go's, and mpagealloc.py imports this module: import it late.
    from palloc.model.mpagealloc import pack_palloc_sum

    return pack_palloc_sum(g.p, start, most, end)


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


class PallocBits(PageBits):
    """pallocBits: the allocation bitmap of one palloc chunk; 0 = free page, 1 = allocated page."""

    __slots__ = ()

    def summarize(self) -> int:
        """Returns a packed summary of the bitmap in pallocBits."""
        b = self.words()
        start = most = cur = 0
        not_set_yet = self.g.fail  # sentinel for start value
        start = not_set_yet
        for i in range(len(b)):
            x = b[i]
            if x == 0:
                cur += 64
                continue
            t = trailing_zeros64(x)
            l = leading_zeros64(x)

            # Finish any region spanning the uint64s
            cur += t
            if start == not_set_yet:
                start = cur
            most = max(most, cur)
            # Final region that might span to next uint64
            cur = l
        if start == not_set_yet:
            # Made it all the way through without finding a single 1 bit.
            n = 64 * len(b)
            return _pack(self.g, n, n, n)
        most = max(most, cur)

        if most >= 64 - 2:
            # There is no way an internal run of zeros could beat max.
            return _pack(self.g, start, most, cur)
        # Now look inside each uint64 for runs of zeros.
        # All uint64s must be nonzero, or we would have aborted above.
        for i in range(len(b)):  # outer:
            x = b[i]

            # Look inside this uint64. We have a pattern like
            # 000000 1xxxxx1 000000
            # We need to look inside the 1xxxxx1 for any contiguous
            # region of zeros.

            # We already know the trailing zeros are no larger than max. Remove them.
            x >>= trailing_zeros64(x) & 63
            if x & (x + 1) == 0:  # no more zeros (except at the top).
                continue

            # Strategy: shrink all runs of zeros by max. If any runs of zero
            # remain, then we've identified a larger maximum zero run.
            p = most  # number of zeros we still need to shrink by.
            k = 1  # current minimum length of runs of ones in x.
            while True:
                # Shrink all runs of zeros by p places (except the top zeros).
                done = False  # Go's `continue outer`
                while p > 0:
                    if p <= k:
                        # Shift p ones down into the top of each run of zeros.
                        x |= x >> (p & 63)
                        if x & (x + 1) == 0:  # no more zeros (except at the top).
                            done = True
                        break
                    # Shift k ones down into the top of each run of zeros.
                    x |= x >> (k & 63)
                    if x & (x + 1) == 0:  # no more zeros (except at the top).
                        done = True
                        break
                    p -= k
                    # We've just doubled the minimum length of 1-runs.
                    # This allows us to shift farther in the next iteration.
                    k *= 2
                if done:
                    break

                # The length of the lowest-order zero run is an increment to our maximum.
                j = trailing_zeros64(~x & MASK64)  # count contiguous trailing ones
                x >>= j & 63  # remove trailing ones
                j = trailing_zeros64(x)  # count contiguous trailing zeros
                x >>= j & 63  # remove zeros
                most += j  # we have a new maximum!
                if x & (x + 1) == 0:  # no more zeros (except at the top).
                    break
                p = j  # remove j more zeros from each zero run.
        return _pack(self.g, start, most, cur)

    def find(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Searches for npages contiguous free pages in pallocBits and returns the index where that
        run starts, and the index of the first free page it found in the search (the new
        searchIdx). search_idx is the first page to search from, although the whole 64-bit word
        containing it is examined.

        If find fails to find any free space, it returns an index of ^uint(0) and the new
        search_idx should be ignored. If npages == 1 the two values are identical.

        Requires: npages > 0 (UndefinedBehaviour otherwise).
        """
        if npages <= 0:
            raise UndefinedBehaviour(f"find of {npages} pages")
        if npages == 1:
            addr = self.find1(search_idx)
            return addr, addr
        elif npages <= 64:
            return self.find_small_n(npages, search_idx)
        return self.find_large_n(npages, search_idx)

    def find1(self, search_idx: int) -> int:
        """Is a helper for find which searches for a single free page in the pallocBits and
        returns the index; ^uint(0) if there is none."""
        b = self.words()
        for i in range(search_idx // 64, len(b)):
            x = b[i]
            if ~x & MASK64 == 0:
                continue
            return i * 64 + trailing_zeros64(~x & MASK64)
        return self.g.fail

    def find_small_n(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Is a helper for find which searches for npages contiguous free pages in this
        pallocBits and returns the index where that run of contiguous pages starts, and the
        first free page met; ^uint(0) if there is no such run.

        Requires: 0 < npages <= 64.
        """
        fail = self.g.fail
        b = self.words()
        end, new_search_idx = 0, fail
        for i in range(search_idx // 64, len(b)):
            bi = b[i]
            if ~bi & MASK64 == 0:
                end = 0
                continue
            # First see if we can pack our allocation in the trailing
            # zeros plus the end of the last 64 bits.
            if new_search_idx == fail:
                # The new searchIdx is going to be at these 64 bits after any
                # 1s we file, so count trailing 1s.
                new_search_idx = i * 64 + trailing_zeros64(~bi & MASK64)
            start = trailing_zeros64(bi)
            if end + start >= npages:
                return i * 64 - end, new_search_idx
            # Next, check the interior of the 64-bit chunk.
            j = find_bit_range64(~bi & MASK64, npages)
            if j < 64:
                return i * 64 + j, new_search_idx
            end = leading_zeros64(bi)
        return fail, new_search_idx

    def find_large_n(self, npages: int, search_idx: int) -> tuple[int, int]:
        """Is a helper for find which searches for npages contiguous free pages in this
        pallocBits and returns the index where that run starts, and the first free page met;
        ^uint(0) if there is no such run.

        Requires: npages > 64.
        """
        fail = self.g.fail
        b = self.words()
        start, size, new_search_idx = fail, 0, fail
        for i in range(search_idx // 64, len(b)):
            x = b[i]
            if x == MASK64:
                size = 0
                continue
            if new_search_idx == fail:
                # The new searchIdx is going to be at these 64 bits after any
                # 1s we file, so count trailing 1s.
                new_search_idx = i * 64 + trailing_zeros64(~x & MASK64)
            if size == 0:
                size = leading_zeros64(x)
                start = i * 64 + 64 - size
                continue
            s = trailing_zeros64(x)
            if s + size >= npages:
                return start, new_search_idx
            if s < 64:
                size = leading_zeros64(x)
                start = i * 64 + 64 - size
                continue
            size += 64
        if size < npages:
            return fail, new_search_idx
        return start, new_search_idx

    def alloc_range(self, i: int, n: int) -> None:
        """Allocates the range [i, i+n). Requires: n > 0; i+n <= pallocChunkPages."""
        self.set_range(i, n)

    def alloc_all(self) -> None:
        """Allocates all the bits."""
        self.set_all()

    def free1(self, i: int) -> None:
        """Frees the single page at i."""
        self.clear(i)

    def free(self, i: int, n: int) -> None:
        """Frees the range [i, i+n). Requires: n > 0; i+n <= pallocChunkPages."""
        self.clear_range(i, n)

    def free_all(self) -> None:
        """Frees all the bits."""
        self.clear_all()

    def pages64(self, i: int) -> int:
        """Returns the 64-page aligned block containing page i; each bit says whether it is in use."""
        return self.block64(i)

    def alloc_pages64(self, i: int, alloc: int) -> None:
        """Allocates the pages set in alloc within the 64-page aligned block containing page i."""
        self.set_block64(i, alloc)


def find_bit_range64(c: int, n: int) -> int:
    """Returns the bit index of the first set of n consecutive 1 bits in c; an integer >= 64 if
    there is none. Transcribes Go's loop exactly (shift counts masked with &63, as Go's
    `c >> (p & 63)`).

    Requires: n > 0 (UndefinedBehaviour otherwise).
    """
    if n <= 0:
        raise UndefinedBehaviour("findBitRange64 with n == 0")
    c &= MASK64
    p = n - 1
    k = 1
    while p > 0:
        if p <= k:
            # Shift p 0s down into the top of each run of 1s.
            c &= c >> (p & 63)
            break
        # Shift k 0s down into the top of each run of 1s.
        c &= c >> (k & 63)
        if c == 0:
            return 64
        p -= k
        # We've just doubled the minimum length of 1-runs.
        # This allows us to shift farther in the next iteration.
        k = (k * 2) & MASK64
    # Find first remaining 1.
    return trailing_zeros64(c)


class PallocData(PallocBits):
    """pallocData: a chunk's pallocBits plus its `scavenged` pageBits (1 = scavenged page)."""

    __slots__ = ("scavenged",)

    def __init__(self, p, v: int = 0, scavenged: int = 0):
        self.g = g = geometry(p)
        self.v = v
        self.scavenged = PageBits(g, scavenged)

    def copy(self):
        c = object.__new__(type(self))
        c.g = self.g
        c.v = self.v
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
        """Sets bits [i, i+n) in the bitmap and clears them in the scavenged bits."""
        PallocBits.alloc_range(self, i, n)
        self.scavenged.clear_range(i, n)

    def alloc_all(self) -> None:
        """Sets every bit in the bitmap and clears every bit in the scavenged bits."""
        PallocBits.alloc_all(self)
        self.scavenged.clear_all()


# --- definitions, bit by bit: what the functions above compute ------------------------------------


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
