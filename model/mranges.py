"""Address ranges in the offset address space: offAddr, addrRange, addrRanges, atomicOffAddr.

Mirrors src/runtime/mranges.go of Go 1.27.3 function by function, in Go's order. Every value carries its Platform `p`
for arenaBaseOffset and the pointer width: uintptr arithmetic wraps modulo 2^(8*ptrSize) exactly as
in Go, and offAddr comparisons are in offset order, (a - arenaBaseOffset) mod 2^W.

The persistentalloc'd backing arrays of addrRanges (capacity 16, doubling) are not observable
through the allocator and are not modelled; `ranges` is a Python list.
"""

from __future__ import annotations

from palloc.spec.errors import GoFault, GoThrow
from palloc.model.gomath import align_down, align_up

__all__ = [
    "AddrRange",
    "AddrRanges",
    "AtomicOffAddr",
    "OffAddr",
    "find_succ_slow",
    "make_addr_range",
    "max_off_addr",
    "min_off_addr",
]


def make_addr_range(p, base: int, limit: int) -> AddrRange:
    """Returns the range [base, limit).

    Throws if base and limit lie in different segments of the address space (on either side of
    arenaBaseOffset), where offset order and address order would disagree.
    """
    m = p.uintptr_mask
    abo = p.arena_base_offset
    base &= m
    limit &= m
    r = AddrRange(p, base, limit)
    if (((base - abo) & m) >= base) != (((limit - abo) & m) >= limit):
        raise GoThrow("addr range base and limit are not in the same memory segment")
    return r


class AddrRange:
    """addrRange: the address range [base, limit) of OffAddrs. The zero value is AddrRange(p)."""

    __slots__ = ("p", "base", "limit")

    def __init__(self, p, base: OffAddr | int = 0, limit: OffAddr | int = 0):
        self.p = p
        self.base = base if isinstance(base, OffAddr) else OffAddr(p, base)
        self.limit = limit if isinstance(limit, OffAddr) else OffAddr(p, limit)

    def size(self) -> int:
        """Returns the size of the range in bytes; 0 unless base < limit in offset order."""
        if not self.base.less_than(self.limit):
            return 0
        # Subtraction is safe because limit and base must be in the same segment.
        return self.limit.diff(self.base)

    def contains(self, addr: int) -> bool:
        """Returns whether the range contains addr."""
        p = self.p
        o = (addr - p.arena_base_offset) & p.uintptr_mask  # offAddr{addr}
        return self.base._o <= o < self.limit._o

    def subtract(self, b: "AddrRange") -> "AddrRange":
        """Returns a with b removed; the zero range if b covers a.

        Throws "bad prune" if b lies strictly inside a (the result would be two ranges).
        """
        a = self.copy()
        if b.base.less_equal(a.base) and a.limit.less_equal(b.limit):
            return AddrRange(self.p)
        elif a.base.less_than(b.base) and b.limit.less_than(a.limit):
            raise GoThrow("bad prune")
        elif b.limit.less_than(a.limit) and a.base.less_than(b.limit):
            a.base = b.limit
        elif a.base.less_than(b.base) and b.base.less_than(a.limit):
            a.limit = b.base
        return a

    def take_from_front(self, length: int, align: int) -> tuple[int, bool]:
        """Takes length bytes, aligned up to align, from the front of the range.

        Returns (base, True) and shrinks the range, or (0, False) if the range is too small.
        """
        m = self.p.uintptr_mask
        base = (align_up(self.base.addr(), align & 0xFF) + length) & m
        if base > self.limit.addr():
            return 0, False
        self.base = OffAddr(self.p, base)
        return (base - length) & m, True

    def take_from_back(self, length: int, align: int) -> tuple[int, bool]:
        """Takes length bytes, aligned down to align, from the back of the range.

        Returns (base, True) and shrinks the range, or (0, False) if the range is too small.
        """
        m = self.p.uintptr_mask
        limit = align_down((self.limit.addr() - length) & m, align & 0xFF)
        if self.base.addr() > limit:
            return 0, False
        self.limit = OffAddr(self.p, limit)
        return limit, True

    def remove_greater_equal(self, addr: int) -> "AddrRange":
        """Returns the part of the range below addr (the zero range if addr <= base)."""
        o = OffAddr(self.p, addr)
        if o.less_equal(self.base):
            return AddrRange(self.p)
        if self.limit.less_equal(o):
            return self.copy()
        return make_addr_range(self.p, self.base.addr(), addr)

    def copy(self) -> "AddrRange":
        return AddrRange(self.p, self.base, self.limit)

    def __eq__(self, other):
        if not isinstance(other, AddrRange):
            return NotImplemented
        return self.base.a == other.base.a and self.limit.a == other.limit.a

    __hash__ = None

    def __repr__(self):
        return f"AddrRange(p, {self.base.a:#x}, {self.limit.a:#x})"


class OffAddr:
    """offAddr: an address in the offset address space, where arenaBaseOffset maps to 0.

    Immutable: the public fields a (the address) and p (the platform) are read-only, and _o caches
    the offset (a - arenaBaseOffset) mod 2^W. Compare with less_than / less_equal / equal (offset
    order), as Go does; == and hash use the address only.
    """

    __slots__ = ("_a", "_o", "_p")

    def __init__(self, p, a: int):
        mask = p.uintptr_mask  # a cached property of Platform
        a &= mask
        self._a = a
        self._o = (a - p.arena_base_offset) & mask
        self._p = p

    @property
    def a(self) -> int:
        """The address (Go's offAddr.a)."""
        return self._a

    @property
    def p(self):
        """The platform."""
        return self._p

    def add(self, nbytes: int) -> "OffAddr":
        """Returns the address nbytes above l (uintptr arithmetic, wrapping)."""
        return OffAddr(self._p, self._a + nbytes)

    def sub(self, nbytes: int) -> "OffAddr":
        """Returns the address nbytes below l (uintptr arithmetic, wrapping)."""
        return OffAddr(self._p, self._a - nbytes)

    def diff(self, l2: "OffAddr") -> int:
        """Returns the number of bytes between l1 and l2, l1.a - l2.a as a uintptr."""
        return (self._a - l2._a) & self._p.uintptr_mask

    def less_than(self, l2: "OffAddr") -> bool:
        """Returns true if l1 is less than l2 in the offset address space."""
        return self._o < l2._o

    def less_equal(self, l2: "OffAddr") -> bool:
        """Returns true if l1 is less than or equal to l2 in the offset address space."""
        return self._o <= l2._o

    def equal(self, l2: "OffAddr") -> bool:
        """Returns true if the two offAddr values are equal."""
        return self._a == l2._a

    def addr(self) -> int:
        """Returns the virtual address for this offset address."""
        return self._a

    def __eq__(self, other):
        if not isinstance(other, OffAddr):
            return NotImplemented
        return self._a == other._a

    def __hash__(self):
        return hash(self._a)

    def __repr__(self):
        return f"OffAddr(p, {self._a:#x})"

    def __copy__(self):
        return self  # immutable

    def __deepcopy__(self, memo):
        return self  # immutable; shares the platform


def min_off_addr(p) -> OffAddr:
    """Returns minOffAddr, the minimum address in the offset space: offAddr{arenaBaseOffset}."""
    return OffAddr(p, p.min_off_addr)


def max_off_addr(p) -> OffAddr:
    """Returns maxOffAddr, the maximum address in the offset space."""
    return OffAddr(p, p.max_off_addr)


class AtomicOffAddr:
    """atomicOffAddr: an offAddr stored as int64(addr - arenaBaseOffset); negative means marked.

    Single-threaded model of the atomic: each CAS loop succeeds on its first try.
    """

    __slots__ = ("p", "a")

    def __init__(self, p):
        self.p = p
        self.a = 0  # atomic.Int64 zero value

    def _int64(self, addr: int) -> int:
        # int64(addr - arenaBaseOffset): the uintptr difference, reinterpreted (zero-extended on 32-bit).
        x = (addr - self.p.arena_base_offset) & self.p.uintptr_mask
        if x >= 1 << 63:
            x -= 1 << 64
        return x

    @staticmethod
    def _neg(x: int) -> int:
        # Go's int64 negation wraps at MinInt64.
        return -x if x != -(1 << 63) else x

    def clear(self) -> None:
        """Attempts to store minOffAddr; leaves a marked value alone."""
        if self.a < 0:
            return
        self.a = self._int64(self.p.min_off_addr)

    def store_min(self, addr: int) -> None:
        """Stores addr if it is less than the current value (a marked value is always less)."""
        new = self._int64(addr)
        if self.a < new:
            return
        self.a = new

    def store_unmark(self, marked_addr: int, new_addr: int) -> None:
        """Stores new_addr if the current value is marked_addr, marked."""
        if self.a == self._neg(self._int64(marked_addr)):
            self.a = self._int64(new_addr)

    def store_marked(self, addr: int) -> None:
        """Stores addr, marked (negated)."""
        self.a = self._neg(self._int64(addr))

    def load(self) -> tuple[int, bool]:
        """Returns (address, whether it was marked)."""
        v = self.a
        marked = False
        if v < 0:
            marked = True
            v = self._neg(v)
        return (v + self.p.arena_base_offset) & self.p.uintptr_mask, marked

    def copy(self) -> "AtomicOffAddr":
        c = AtomicOffAddr(self.p)
        c.a = self.a
        return c

    def __repr__(self):
        addr, marked = self.load()
        return f"AtomicOffAddr(p, {addr:#x}{', marked' if marked else ''})"


class AddrRanges:
    """addrRanges: a sorted, coalesced set of non-overlapping address ranges, with total_bytes."""

    __slots__ = ("p", "ranges", "total_bytes")

    def __init__(self, p):
        self.p = p
        self.ranges: list[AddrRange] = []
        self.total_bytes = 0

    def init(self) -> None:
        """Makes the set empty (the persistentalloc'd capacity of 16 is not modelled)."""
        self.ranges = []
        self.total_bytes = 0

    def find_succ(self, addr: int) -> int:
        """Returns the index of the first range whose base is greater than addr; len(ranges) if none.

        Binary-searches while more than 8 candidates remain, then scans linearly, as Go does.
        Comparisons are on offsets (offAddr order), computed once for addr.
        """
        p = self.p
        o = (addr - p.arena_base_offset) & p.uintptr_mask  # offAddr{addr}
        ranges = self.ranges
        iter_max = 8
        bot, top = 0, len(ranges)
        while top - bot > iter_max:
            i = (bot + top) >> 1
            r = ranges[i]
            if r.base._o <= o < r.limit._o:  # a.ranges[i].contains(base.addr())
                # a.ranges[i] contains base, so its successor is the next index.
                return i + 1
            if o < r.base._o:  # base.lessThan(a.ranges[i].base)
                top = i
            else:
                bot = i + 1
        for i in range(bot, top):
            if o < ranges[i].base._o:
                return i
        return top

    def find_addr_greater_equal(self, addr: int) -> tuple[int, bool]:
        """Returns (the smallest address >= addr in the set, True), or (0, False) if there is none.

        Faults (index out of range) on an empty set when addr is below everything, as Go does.
        """
        i = self.find_succ(addr)
        if i == 0:
            if not self.ranges:
                raise GoFault("index out of range: findAddrGreaterEqual on an empty addrRanges")
            return self.ranges[0].base.addr(), True
        if self.ranges[i - 1].contains(addr):
            return addr, True
        if i < len(self.ranges):
            return self.ranges[i].base.addr(), True
        return 0, False

    def contains(self, addr: int) -> bool:
        """Returns true if a covers the address addr."""
        i = self.find_succ(addr)
        if i == 0:
            return False
        return self.ranges[i - 1].contains(addr)

    def add(self, r: AddrRange) -> None:
        """Inserts r, coalescing with its neighbours, and adds r.size() to total_bytes.

        Throws "attempted to add zero-sized address range" on an empty r.
        Requires: r does not overlap any range in the set (not checked, as in Go).
        """
        if r.size() == 0:
            raise GoThrow("attempted to add zero-sized address range")
        ranges = self.ranges
        i = self.find_succ(r.base.addr())
        coalesces_down = i > 0 and ranges[i - 1].limit.equal(r.base)
        coalesces_up = i < len(ranges) and r.limit.equal(ranges[i].base)
        if coalesces_up and coalesces_down:
            ranges[i - 1].limit = ranges[i].limit
            del ranges[i]
        elif coalesces_down:
            ranges[i - 1].limit = r.limit
        elif coalesces_up:
            ranges[i].base = r.base
        else:
            ranges.insert(i, r.copy())
        self.total_bytes = (self.total_bytes + r.size()) & self.p.uintptr_mask

    def remove_last(self, nbytes: int) -> AddrRange:
        """Removes and returns the last range, or only its top nbytes if it is larger."""
        if not self.ranges:
            return AddrRange(self.p)
        r = self.ranges[-1]
        size = r.size()
        if size > nbytes:
            new_end = r.limit.sub(nbytes)
            old_limit = r.limit
            r.limit = new_end
            self.total_bytes = (self.total_bytes - nbytes) & self.p.uintptr_mask
            return AddrRange(self.p, new_end, old_limit)
        self.ranges.pop()
        self.total_bytes = (self.total_bytes - size) & self.p.uintptr_mask
        return r

    def remove_greater_equal(self, addr: int) -> None:
        """Removes every address >= addr from the set, splitting the range containing addr."""
        pivot = self.find_succ(addr)
        if pivot == 0:
            self.total_bytes = 0
            self.ranges = []
            return
        removed = 0
        for r in self.ranges[pivot:]:
            removed += r.size()
        r = self.ranges[pivot - 1]
        if r.contains(addr):
            removed += r.size()
            r = r.remove_greater_equal(addr)
            if r.size() == 0:
                pivot -= 1
            else:
                removed -= r.size()
                self.ranges[pivot - 1] = r
        del self.ranges[pivot:]
        self.total_bytes = (self.total_bytes - removed) & self.p.uintptr_mask

    def clone_into(self, b: "AddrRanges") -> None:
        """Deep-copies a's ranges and total_bytes into b."""
        b.ranges = [r.copy() for r in self.ranges]
        b.total_bytes = self.total_bytes

    def __repr__(self):
        return f"AddrRanges(p, {self.ranges!r}, total_bytes={self.total_bytes:#x})"


def find_succ_slow(a: AddrRanges, addr: int) -> int:
    """Returns the first index whose base is greater than addr, by a plain linear scan."""
    o = OffAddr(a.p, addr)
    for i, r in enumerate(a.ranges):
        if o.less_than(r.base):
            return i
    return len(a.ranges)
