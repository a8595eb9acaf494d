"""The scavenger's part of the page allocator: fillAligned, findScavengeCandidate, the scavenge index.

Mirrors src/runtime/mgcscavenge.go of Go 1.27.3 function by function, in Go's order (pacing, the
background scavenger goroutine and the sys* calls are outside the allocator and not modelled),
plus the scavenge index's sysInit/sysGrow from mpagealloc_64bit.go and mpagealloc_32bit.go. The
fast layer of the scavenge index is model/mgcscavenge_fast.py. Go 1.21's NoHugePage flag
(bit 1 of the packed per-chunk word, removed in 1.22) is modelled when
`p.scav_index_has_no_huge_page_flag`.

`(*pallocData).findScavengeCandidate` is defined here, as in Go, and attached to PallocData as a
method when this module is imported (mpallocbits.py imports it at its end).

The host's physical page size and huge page size decide scavenging results; they are parameters
(defaulting to the platform's usual values), so the model can match any host.
"""

from __future__ import annotations

from palloc.spec.errors import GoFault, GoThrow
from palloc.model.gomath import MASK64, align_down, align_up, leading_zeros64
from palloc.model.mpallocbits import PallocData
from palloc.model.mranges import AtomicOffAddr, OffAddr, make_addr_range, min_off_addr
from palloc.spec.constants import MAX_PAGES_PER_PHYS_PAGE, PAGE_SIZE

__all__ = [
    "PageAllocScavenge",
    "ScavChunkData",
    "ScavengeIndex",
    "fill_aligned",
    "fill_aligned_slow",
    "find_scavenge_candidate",
    "find_scavenge_candidate_slow",
    "unpack_scav_chunk_data",
]

# scavChunkFlags
SCAV_CHUNK_HAS_FREE = 1 << 0
SCAV_CHUNK_NO_HUGE_PAGE = 1 << 1  # Go 1.21 only
SCAV_CHUNK_MAX_FLAGS = 6
SCAV_CHUNK_FLAGS_MASK = (1 << SCAV_CHUNK_MAX_FLAGS) - 1
SCAV_CHUNK_DATA_SIZE = 8  # unsafe.Sizeof(atomicScavChunkData{})


# chunkIndex / chunkBase / chunkPageIndex are mpagealloc.go's; repeated here (private) so this
# module does not depend on mpagealloc.py.
def _chunk_index(p, addr: int) -> int:
    return ((addr - p.arena_base_offset) & p.uintptr_mask) // p.palloc_chunk_bytes


def _chunk_base(p, ci: int) -> int:
    return (ci * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask


def _chunk_page_index(p, addr: int) -> int:
    return (addr % p.palloc_chunk_bytes) // PAGE_SIZE


# --- (*pageAlloc).scavenge and scavengeOne -------------------------------------------------------


def _palloc_sum_max(p, s: int) -> int:
    from palloc.model.mpagealloc import palloc_sum_max

    return palloc_sum_max(p, s)


class PageAllocScavenge:
    """Mixin holding (*pageAlloc).scavenge and scavengeOne; PageAlloc (mpagealloc.py) inherits it.

    Uses the PageAlloc members p, summary, chunk_of, update, search_addr, scav.index, test,
    phys_page_size and phys_huge_page_size.
    """

    __slots__ = ()

    def scavenge(self, nbytes: int, should_stop=None, force: bool = False) -> int:
        """Scavenges nbytes of free pages, highest address first; returns the bytes scavenged.

        Stops early only when the heap has nothing left to scavenge or should_stop() says so; the
        result may exceed nbytes (huge page preservation, physical page rounding).
        """
        mask = self.p.uintptr_mask
        released = 0
        while released < nbytes:
            ci, page_idx = self.scav.index.find(force)
            if ci == 0:
                break
            released = (released + self.scavenge_one(ci, page_idx, (nbytes - released) & mask)) & mask
            if should_stop is not None and should_stop():
                break
        return released

    def scavenge_one(self, ci: int, search_idx: int, max: int) -> int:
        """Scavenges at most max bytes (more to keep huge pages whole) of chunk ci; returns bytes.

        Looks for a candidate only when the chunk's leaf summary has a free run of at least one
        physical page; otherwise (or if there is no candidate) marks the chunk empty in the index
        and returns 0. A candidate is allocated and freed around the (unmodelled) sysUnused, which
        may lower search_addr, and its pages are then marked scavenged.
        """
        p = self.p
        max_pages = max // PAGE_SIZE
        if max % PAGE_SIZE != 0:
            max_pages += 1
        min_pages = self.phys_page_size // PAGE_SIZE
        if min_pages < 1:
            min_pages = 1
        if _palloc_sum_max(p, self.summary[-1][ci]) >= min_pages:
            base, npages = find_scavenge_candidate(
                self.chunk_of(ci), search_idx, min_pages, max_pages, self.phys_huge_page_size, self.phys_page_size
            )
            if npages != 0:
                addr = (_chunk_base(p, ci) + base * PAGE_SIZE) & p.uintptr_mask
                self.chunk_of(ci).alloc_range(base, npages)
                self.update(addr, npages, True, True)
                if p.scav_index_has_no_huge_page_flag:
                    self.scav.index.set_no_huge_page(ci)
                # (unlock; sysUnused and the memory statistics outside test mode; relock)
                b = OffAddr(p, addr)
                if b.less_than(self.search_addr):
                    self.search_addr = b
                self.chunk_of(ci).free(base, npages)
                self.update(addr, npages, True, False)
                self.chunk_of(ci).scavenged.set_range(base, npages)
                return npages * PAGE_SIZE
        self.scav.index.set_empty(ci)
        return 0


# --- fillAligned and findScavengeCandidate ------------------------------------------------------

_FILL_CONSTS = {
    2: 0x5555555555555555,
    4: 0x7777777777777777,
    8: 0x7F7F7F7F7F7F7F7F,
    16: 0x7FFF7FFF7FFF7FFF,
    32: 0x7FFFFFFF7FFFFFFF,
    64: 0x7FFFFFFFFFFFFFFF,
}


def fill_aligned(x: int, m: int) -> int:
    """Returns x with every m-aligned group of m bits that has any bit set filled with ones.

    For example fill_aligned(0x0100a3, 8) == 0xff00ff. m == 1 is a no-op.
    Throws "bad m value" unless m is a power of two <= maxPagesPerPhysPage (64).
    """
    x &= MASK64
    if m == 1:
        return x
    c = _FILL_CONSTS.get(m)
    if c is None:
        raise GoThrow("bad m value")
    # Zero-in-word trick: the top bit of each group is set iff the group was all zero.
    x = ~((((x & c) + c) | x) | c) & MASK64
    return ~(((x - (x >> (m - 1))) & MASK64) | x) & MASK64


def fill_aligned_slow(x: int, m: int) -> int:
    """Returns fill_aligned(x, m), computed group by group. Requires: m in {1,2,4,...,64}."""
    out = 0
    g = (1 << m) - 1
    for s in range(0, 64, m):
        if (x >> s) & g:
            out |= g << s
    return out


def _check_min(minimum: int) -> None:
    if minimum & (minimum - 1) != 0 or minimum == 0:
        raise GoThrow("min must be a non-zero power of 2")
    if minimum > MAX_PAGES_PER_PHYS_PAGE:
        raise GoThrow("min too large")


def _huge_page_params(p, phys_huge_page_size, phys_page_size):
    if phys_huge_page_size is None:
        phys_huge_page_size = p.effective_phys_huge_page_size
    if phys_page_size is None:
        phys_page_size = p.phys_page_size
    return phys_huge_page_size, phys_page_size


def find_scavenge_candidate(
    m: PallocData,
    search_idx: int,
    minimum: int,
    max: int,
    phys_huge_page_size: int | None = None,
    phys_page_size: int | None = None,
) -> tuple[int, int]:
    """Returns (start, size) of the highest free and unscavenged run at or below search_idx's word.

    Searches backwards from the 64-page word containing search_idx (the whole word is examined).
    The run is made of minimum-aligned groups of minimum pages; it is cut to max pages (max
    aligned up to minimum; max == 0 means minimum), then, when huge pages exist
    (phys_huge_page_size > pageSize and > phys_page_size), grown down to a huge page boundary if
    that keeps it inside the free run. Returns (0, 0) if there is no candidate.

    Go defines this as (*pallocData).findScavengeCandidate in mgcscavenge.go, so it lives here
    and is attached to PallocData. The huge and physical page sizes are the host's (runtime
    physHugePageSize, physPageSize); they default to the platform's usual values.

    Requires: minimum is a power of two in [1, 64] (throws otherwise); search_idx < pallocChunkPages
    (GoFault otherwise).
    """
    g = m.g
    p = g.p
    huge, phys = _huge_page_params(p, phys_huge_page_size, phys_page_size)
    _check_min(minimum)
    mask = p.uintptr_mask
    max &= mask  # a uintptr
    if max == 0:
        max = minimum
    else:
        max = align_up(max, minimum) & mask

    i = search_idx // 64
    if i >= g.nwords:
        raise GoFault(f"index out of range: findScavengeCandidate searchIdx {search_idx}")
    alloc, scav = m.v, m.scavenged.v

    def word(j):
        return fill_aligned(((alloc | scav) >> (64 * j)) & MASK64, minimum)

    while i >= 0:
        if word(i) != MASK64:
            break
        i -= 1
    if i < 0:
        return 0, 0
    x = word(i)
    z1 = leading_zeros64(~x & MASK64)
    end = i * 64 + (64 - z1)
    if (x << z1) & MASK64 != 0:
        run = leading_zeros64(x << z1)
    else:
        run = 64 - z1
        for j in range(i - 1, -1, -1):
            xj = word(j)
            run += leading_zeros64(xj)
            if xj != 0:
                break
    size = min(run, max)
    start = end - size

    if huge > PAGE_SIZE and huge > phys:
        pages_per_huge_page = huge // PAGE_SIZE
        huge_page_above = align_up(start, pages_per_huge_page)
        if huge_page_above <= end:
            huge_page_below = align_down(start, pages_per_huge_page)
            if huge_page_below >= end - run:
                size = size + (start - huge_page_below)
                start = huge_page_below
    return start, size


def find_scavenge_candidate_slow(
    m: PallocData,
    search_idx: int,
    minimum: int,
    max: int,
    phys_huge_page_size: int | None = None,
    phys_page_size: int | None = None,
) -> tuple[int, int]:
    """Returns find_scavenge_candidate's answer from its definition, page by page.

    A page is available when every page of its minimum-aligned group is free and unscavenged.
    The run is the highest maximal run of available pages below the end of search_idx's word.
    """
    g = m.g
    huge, phys = _huge_page_params(g.p, phys_huge_page_size, phys_page_size)
    _check_min(minimum)
    max &= g.p.uintptr_mask
    max = minimum if max == 0 else align_up(max, minimum) % (g.p.uintptr_mask + 1)
    if search_idx // 64 >= g.nwords:
        raise GoFault("index out of range")
    busy = m.v | m.scavenged.v

    def avail(page):
        grp = page - page % minimum
        return all(not (busy >> q) & 1 for q in range(grp, grp + minimum))

    top = (search_idx // 64 + 1) * 64
    end = top
    while end > 0 and not avail(end - 1):
        end -= 1
    if end == 0:
        return 0, 0
    low = end
    while low > 0 and avail(low - 1):
        low -= 1
    run = end - low
    size = min(run, max)
    start = end - size
    if huge > PAGE_SIZE and huge > phys:
        pph = huge // PAGE_SIZE
        below = start - start % pph
        # The huge page holding start lies inside the run and start is not on its boundary:
        # grow the candidate down to the boundary (align_up(start) <= end holds then too).
        if -(-start // pph) * pph <= end and below >= low:
            size += start - below
            start = below
    return start, size


PallocData.find_scavenge_candidate = find_scavenge_candidate


# --- scavengeIndex ------------------------------------------------------------------------------


class ScavengeIndex:
    """scavengeIndex: which chunks have memory to scavenge, with two search cursors.

    chunks is sparse (ci -> ScavChunkData; absent = the zero value). Reading a chunk outside the
    accessible window raises GoFault: on 64-bit the window [min, max) that sysGrow mapped, on
    32-bit the whole static array. min_heap_idx is the lowest chunk grown; search_addr_bg and
    search_addr_force are the cursors (AtomicOffAddr); free_hwm is the highest page freed this
    generation; gen the generation (uint32).
    """

    __slots__ = (
        "p",
        "chunks",
        "min",
        "max",
        "min_heap_idx",
        "search_addr_bg",
        "search_addr_force",
        "free_hwm",
        "gen",
        "test",
        "phys_page_size",
    )

    def __init__(self, p, phys_page_size: int | None = None):
        self.p = p
        self.chunks: dict[int, ScavChunkData] = {}
        self.min = 0
        self.max = 0
        self.min_heap_idx = 0
        self.search_addr_bg = AtomicOffAddr(p)
        self.search_addr_force = AtomicOffAddr(p)
        self.free_hwm = OffAddr(p, 0)
        self.gen = 0
        self.test = False
        self.phys_page_size = p.phys_page_size if phys_page_size is None else phys_page_size

    # --- access, as a load/store of chunks[ci] ---------------------------------------------

    def _lo(self) -> int:
        """Returns the lowest readable index: memory below min is unmapped on 64-bit."""
        return self.min if self.p.is_64bit_page_alloc else 0

    def load(self, ci: int) -> ScavChunkData:
        """Returns chunks[ci] (mutable; the model's store is in place). Faults outside the window."""
        if not self._lo() <= ci < self.max:
            raise GoFault(f"scavenge index chunk {ci:#x} outside the mapped window [{self._lo():#x}, {self.max:#x})")
        sc = self.chunks.get(ci)
        if sc is None:
            sc = ScavChunkData()
            self.chunks[ci] = sc
        return sc

    def peek(self, ci: int) -> ScavChunkData:
        """Returns a copy of chunks[ci] without touching the index (for tests and reports)."""
        sc = self.chunks.get(ci)
        return sc.copy() if sc is not None else ScavChunkData()

    # --- mgcscavenge.go and mpagealloc_*bit.go ------------------------------------------------

    def init(self, test: bool) -> int:
        """Initializes the index; returns the bytes mapped ready (sysInit)."""
        self.search_addr_bg.clear()
        self.search_addr_force.clear()
        self.free_hwm = min_off_addr(self.p)
        self.test = test
        return self.sys_init(test)

    def sys_init(self, test: bool) -> int:
        p = self.p
        if p.is_64bit_page_alloc:
            # sysReserve of the whole index: nothing mapped yet.
            return 0
        n = (1 << p.heap_addr_bits) // p.palloc_chunk_bytes
        self.min = 1  # The 0th chunk is never going to be mapped for the heap.
        self.max = n
        return n * SCAV_CHUNK_DATA_SIZE if test else 0

    def grow(self, base: int, limit: int) -> int:
        """Records heap growth [base, limit): lowers min_heap_idx and maps the index (sysGrow).

        Returns the bytes of index memory newly mapped.
        """
        base_idx = _chunk_index(self.p, base)
        if self.min_heap_idx == 0 or base_idx < self.min_heap_idx:
            self.min_heap_idx = base_idx
        return self.sys_grow(base, limit)

    def sys_grow(self, base: int, limit: int) -> int:
        """Maps the index for chunks [chunkIndex(base), chunkIndex(limit)), rounded to physical pages.

        64-bit: keeps the mapped window [min, max) contiguous and returns the newly mapped bytes.
        32-bit: the index is a static array; returns 0.
        """
        p = self.p
        if not p.is_64bit_page_alloc:
            return 0
        cb = p.palloc_chunk_bytes
        if base % cb != 0 or limit % cb != 0:
            raise GoThrow("sysGrow bounds not aligned to pallocChunkBytes")
        per_page = self.phys_page_size // SCAV_CHUNK_DATA_SIZE
        have_min, have_max = self.min, self.max
        need_min = align_down(_chunk_index(p, base), per_page)
        need_max = align_up(_chunk_index(p, limit), per_page)
        if need_max < have_min:
            need_max = have_min
        first_growth = have_min == 0 if p.scav_index_has_no_huge_page_flag else have_max == 0
        if have_max != 0 and need_min > have_max:
            need_min = have_max
        # The index's memory as byte offsets: chunksBase, the array's address, is 0 here.
        have = make_addr_range(p, have_min * SCAV_CHUNK_DATA_SIZE, have_max * SCAV_CHUNK_DATA_SIZE)
        need = make_addr_range(p, need_min * SCAV_CHUNK_DATA_SIZE, need_max * SCAV_CHUNK_DATA_SIZE)
        need = need.subtract(have)
        size = need.size()
        if size != 0:
            if first_growth or need_min < have_min:
                self.min = need_min
            if need_max > have_max:
                self.max = need_max
        return size

    def find(self, force: bool) -> tuple[int, int]:
        """Returns (ci, page) of the highest chunk that may have pages to scavenge, or (0, 0).

        Scans down from the cursor's chunk to min_heap_idx, moving the cursor to the top of the
        chunk found (StoreUnmark if it was marked, StoreMin otherwise). Clears the cursor (unless
        marked) when nothing is found.
        """
        p = self.p
        cursor = self.search_addr_force if force else self.search_addr_bg
        search_addr, marked = cursor.load()
        if search_addr == p.min_off_addr:
            return 0, 0
        lo = self.min_heap_idx
        start = _chunk_index(p, search_addr)
        i = start
        while i >= lo:
            if not self._lo() <= i < self.max:
                raise GoFault(f"scavenge index chunk {i:#x} outside the mapped window")
            sc = self.chunks.get(i, ScavChunkData())  # chunks[i].load(), which stores nothing
            if sc.should_scavenge(p, self.gen, force):
                if i == start:
                    return i, _chunk_page_index(p, search_addr)
                new_search_addr = (_chunk_base(p, i) + p.palloc_chunk_bytes - PAGE_SIZE) & p.uintptr_mask
                if marked:
                    cursor.store_unmark(search_addr, new_search_addr)
                else:
                    cursor.store_min(new_search_addr)
                return i, p.palloc_chunk_pages - 1
            if i == 0:
                raise GoFault("chunkIdx wrapped below 0 in the scavenge index scan")
            i -= 1
        cursor.clear()
        return 0, 0

    def alloc(self, ci: int, npages: int) -> None:
        """Records an allocation of npages in chunk ci."""
        sc = self.load(ci)
        sc.alloc(self.p, npages, self.gen)
        if self.p.scav_index_has_no_huge_page_flag:
            # Go 1.21: a dense chunk is assumed to be backed by huge pages again.
            if not sc.is_huge_page() and sc.in_use > self.p.scav_chunk_hi_occ_pages:
                sc.set_huge_page()

    def free(self, ci: int, page: int, npages: int) -> None:
        """Records a free of npages starting at page of chunk ci, raising free_hwm and the force cursor."""
        p = self.p
        sc = self.load(ci)
        sc.free(p, npages, self.gen)
        addr = (_chunk_base(p, ci) + (page + npages - 1) * PAGE_SIZE) & p.uintptr_mask
        if self.free_hwm.less_than(OffAddr(p, addr)):
            self.free_hwm = OffAddr(p, addr)
        force, _ = self.search_addr_force.load()
        if OffAddr(p, force).less_than(OffAddr(p, addr)):
            self.search_addr_force.store_marked(addr)

    def next_gen(self) -> None:
        """Moves to the next generation; raises the background cursor to free_hwm (marked)."""
        self.gen = (self.gen + 1) & 0xFFFFFFFF
        search_addr, _ = self.search_addr_bg.load()
        if OffAddr(self.p, search_addr).less_than(self.free_hwm):
            self.search_addr_bg.store_marked(self.free_hwm.addr())
        self.free_hwm = min_off_addr(self.p)

    def set_empty(self, ci: int) -> None:
        """Marks chunk ci as having nothing to scavenge for now."""
        self.load(ci).set_empty()

    def set_no_huge_page(self, ci: int) -> None:
        """Go 1.21 only: marks chunk ci as not backed by huge pages."""
        self.load(ci).set_no_huge_page()

    def copy(self) -> "ScavengeIndex":
        c = type(self)(self.p, self.phys_page_size)
        c.chunks = {k: v.copy() for k, v in self.chunks.items()}
        c.min, c.max, c.min_heap_idx = self.min, self.max, self.min_heap_idx
        c.search_addr_bg = self.search_addr_bg.copy()
        c.search_addr_force = self.search_addr_force.copy()
        c.free_hwm, c.gen, c.test = self.free_hwm, self.gen, self.test
        return c


# --- scavChunkData ------------------------------------------------------------------------------


_MIN_INT64 = -(1 << 63)


def unpack_scav_chunk_data(p, sc: int) -> ScavChunkData:
    """Returns the scavChunkData packed in the uint64 sc (platform field widths)."""
    lg = p.log_scav_chunk_in_use_max
    return ScavChunkData(
        in_use=sc & 0xFFFF,
        last_in_use=((sc >> 16) & 0xFFFF) & ((1 << lg) - 1),
        gen=(sc >> 32) & 0xFFFFFFFF,
        flags=((sc >> (16 + lg)) & 0xFF) & SCAV_CHUNK_FLAGS_MASK,
    )


class ScavChunkData:
    """scavChunkData: per-chunk scavenger bookkeeping that packs into 64 bits.

    in_use: pages allocated now (uint16); last_in_use: pages allocated at the last generation
    change; gen: generation of the last update (uint32); flags: scavChunkFlags (uint8; bit 0
    HasFree, bit 1 NoHugePage in Go 1.21). The zero value is a valid newly grown chunk.
    """

    __slots__ = ("in_use", "last_in_use", "gen", "flags")

    def __init__(self, in_use: int = 0, last_in_use: int = 0, gen: int = 0, flags: int = 0):
        self.in_use = in_use
        self.last_in_use = last_in_use
        self.gen = gen
        self.flags = flags

    def pack(self, p) -> int:
        """Returns sc packed into a uint64 with the platform's field widths."""
        return (
            (self.in_use & 0xFFFF)
            | ((self.last_in_use & 0xFFFF) << 16)
            | ((self.flags & 0xFF) << (16 + p.log_scav_chunk_in_use_max))
            | ((self.gen & 0xFFFFFFFF) << 32)
        ) & MASK64

    # The flag accessors, one per flag and verb as mgcscavenge.go writes them.
    def is_empty(self) -> bool:
        """Returns true if the HasFree flag is unset."""
        return self.flags & SCAV_CHUNK_HAS_FREE == 0

    def set_empty(self) -> None:
        """Clears the HasFree flag."""
        self.flags &= ~SCAV_CHUNK_HAS_FREE & 0xFF

    def set_non_empty(self) -> None:
        """Sets the HasFree flag."""
        self.flags |= SCAV_CHUNK_HAS_FREE

    # Go 1.21 only.
    def is_huge_page(self) -> bool:
        """Returns true if the NoHugePage flag (Go 1.21) is unset."""
        return self.flags & SCAV_CHUNK_NO_HUGE_PAGE == 0

    def set_huge_page(self) -> None:
        """Clears the NoHugePage flag (Go 1.21)."""
        self.flags &= ~SCAV_CHUNK_NO_HUGE_PAGE & 0xFF

    def set_no_huge_page(self) -> None:
        """Sets the NoHugePage flag (Go 1.21)."""
        self.flags |= SCAV_CHUNK_NO_HUGE_PAGE

    def should_scavenge(self, p, curr_gen: int, force: bool) -> bool:
        """Returns true if the scavenger should look at this chunk in generation curr_gen."""
        if self.is_empty():
            return False
        if force:
            return True
        hi = p.scav_chunk_hi_occ_pages
        if self.gen == curr_gen:
            return self.in_use < hi and self.last_in_use < hi
        return self.in_use < hi

    def alloc(self, p, npages: int, new_gen: int) -> None:
        """Records that npages were allocated in the chunk.

        Throws "too many pages allocated in chunk?" if in_use would exceed pallocChunkPages.
        """
        if self.in_use + npages > p.palloc_chunk_pages:
            raise GoThrow("too many pages allocated in chunk?")
        if self.gen != new_gen:
            self.last_in_use = self.in_use
            self.gen = new_gen
        self.in_use = (self.in_use + npages) & 0xFFFF
        if self.in_use == p.palloc_chunk_pages:
            self.set_empty()

    def free(self, p, npages: int, new_gen: int) -> None:
        """Records that npages were freed in the chunk. Throws "allocated pages below zero?"."""
        if self.in_use < npages:
            raise GoThrow("allocated pages below zero?")
        if self.gen != new_gen:
            self.last_in_use = self.in_use
            self.gen = new_gen
        self.in_use = (self.in_use - npages) & 0xFFFF
        self.set_non_empty()

    def copy(self) -> "ScavChunkData":
        return ScavChunkData(self.in_use, self.last_in_use, self.gen, self.flags)

    def __eq__(self, other):
        if not isinstance(other, ScavChunkData):
            return NotImplemented
        return (self.in_use, self.last_in_use, self.gen, self.flags) == (
            other.in_use,
            other.last_in_use,
            other.gen,
            other.flags,
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"ScavChunkData(in_use={self.in_use}, last_in_use={self.last_in_use}, "
            f"gen={self.gen}, flags={self.flags:#x})"
        )
