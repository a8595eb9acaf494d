"""The fast layer of model/mgcscavenge.py: the scavenge index's alloc, free and find for the page
allocator's hot path.

Not a mirror of any Go file. FastScavengeIndex computes exactly what ScavengeIndex (the
transcription of src/runtime/mgcscavenge.go, Go 1.27.3) computes: alloc and free inline load
and scavChunkData's alloc/free, and find visits only the chunks the sparse index holds (a
sorted list of their indices, `_keys`) instead of every index down to minHeapIdx.
tests/model/test_fast_paths.py holds each to the mirror step by step.
"""

from __future__ import annotations

from bisect import bisect_right, insort

from palloc.model.mgcscavenge import (
    _MIN_INT64,
    SCAV_CHUNK_HAS_FREE,
    ScavChunkData,
    ScavengeIndex,
    _chunk_base,
    _chunk_index,
    _chunk_page_index,
)
from palloc.model.mranges import OffAddr
from palloc.spec.constants import PAGE_SIZE
from palloc.spec.errors import GoFault, GoThrow

__all__ = ["FastScavengeIndex"]


class FastScavengeIndex(ScavengeIndex):
    """ScavengeIndex with a sorted list of the chunks it holds and the hot path inlined."""

    __slots__ = ("_keys", "_hot")

    def __init__(self, p, phys_page_size: int | None = None):
        super().__init__(p, phys_page_size)
        self._keys: list[int] = []  # sorted keys of chunks, for find's downward scan
        # Platform constants of alloc's and free's hot path.
        self._hot = (p.is_64bit_page_alloc, p.palloc_chunk_pages, p.scav_index_has_no_huge_page_flag,
                     p.log_palloc_chunk_bytes, p.uintptr_mask, p.arena_base_offset)

    def load(self, ci: int) -> ScavChunkData:
        """Returns chunks[ci] (mutable; the model's store is in place). Faults outside the window."""
        lo = self.min if self.p.is_64bit_page_alloc else 0  # self._lo(), inlined
        if not lo <= ci < self.max:
            raise GoFault(f"scavenge index chunk {ci:#x} outside the mapped window [{self._lo():#x}, {self.max:#x})")
        sc = self.chunks.get(ci)
        if sc is None:
            sc = ScavChunkData()
            self.chunks[ci] = sc
            insort(self._keys, ci)
        return sc

    def find(self, force: bool) -> tuple[int, int]:
        """Returns ScavengeIndex.find(force), visiting only the chunks the index holds."""
        p = self.p
        cursor = self.search_addr_force if force else self.search_addr_bg
        search_addr, marked = cursor.load()
        if search_addr == p.min_off_addr:
            return 0, 0
        gen = self.gen
        lo = self.min_heap_idx
        start = _chunk_index(p, search_addr)
        if start >= lo:
            wlo = self._lo()
            if not start < self.max or start < wlo:
                raise GoFault(f"scavenge index chunk {start:#x} outside the mapped window")
            keys = self._keys
            chunks = self.chunks
            k = bisect_right(keys, start) - 1
            stop = max(lo, wlo)
            while k >= 0:
                i = keys[k]
                if i < stop:
                    break
                k -= 1
                if not chunks[i].should_scavenge(p, gen, force):
                    continue
                # From here ScavengeIndex.find's loop body, repeated on purpose: only the
                # chunks the scan visits differ.
                if i == start:
                    return i, _chunk_page_index(p, search_addr)
                new_search_addr = (_chunk_base(p, i) + p.palloc_chunk_bytes - PAGE_SIZE) & p.uintptr_mask
                if marked:
                    cursor.store_unmark(search_addr, new_search_addr)
                else:
                    cursor.store_min(new_search_addr)
                return i, p.palloc_chunk_pages - 1
            if lo < wlo or lo == 0:
                # The scan reads below the mapped window, or chunkIdx wraps below 0.
                raise GoFault("scavenge index scan ran below the mapped window")
        cursor.clear()
        return 0, 0

    def alloc(self, ci: int, npages: int) -> None:
        """Records an allocation of npages in chunk ci.

        ScavengeIndex.alloc with load(ci) and ScavChunkData.alloc inlined.
        """
        is64, cp, no_huge_flag, _, _, _ = self._hot
        sc = self.chunks.get(ci)
        lo = self.min if is64 else 0  # load(ci)'s window check, inlined
        if sc is None or not lo <= ci < self.max:
            sc = self.load(ci)  # faults outside the window; makes the entry
        # sc.alloc(p, npages, self.gen), inlined.
        in_use = sc.in_use + npages
        if in_use > cp:
            raise GoThrow("too many pages allocated in chunk?")
        gen = self.gen
        if sc.gen != gen:
            sc.last_in_use = sc.in_use
            sc.gen = gen
        sc.in_use = in_use = in_use & 0xFFFF
        if in_use == cp:
            sc.flags &= ~SCAV_CHUNK_HAS_FREE & 0xFF  # set_empty()
        if no_huge_flag:
            # Go 1.21: a dense chunk is assumed to be backed by huge pages again.
            if not sc.is_huge_page() and sc.in_use > self.p.scav_chunk_hi_occ_pages:
                sc.set_huge_page()

    def free(self, ci: int, page: int, npages: int) -> None:
        """Records a free of npages starting at page of chunk ci, raising free_hwm and the force cursor.

        ScavengeIndex.free with load(ci) and ScavChunkData.free inlined.
        """
        is64, _, _, lcb, mask, abo = self._hot
        # load(ci) inlined as in alloc, on purpose: a call fewer per operation on the hot path.
        sc = self.chunks.get(ci)
        lo = self.min if is64 else 0  # load(ci)'s window check, inlined
        if sc is None or not lo <= ci < self.max:
            sc = self.load(ci)  # faults outside the window; makes the entry
        # sc.free(p, npages, self.gen), inlined.
        in_use = sc.in_use
        if in_use < npages:
            raise GoThrow("allocated pages below zero?")
        gen = self.gen
        if sc.gen != gen:
            sc.last_in_use = in_use
            sc.gen = gen
        sc.in_use = (in_use - npages) & 0xFFFF
        sc.flags |= SCAV_CHUNK_HAS_FREE  # set_non_empty()
        # offAddr{addr} in offset order: chunkBase(ci) - arenaBaseOffset is ci * pallocChunkBytes.
        off = ((ci << lcb) + (page + npages - 1) * PAGE_SIZE) & mask
        if self.free_hwm._o < off:
            self.free_hwm = OffAddr(self.p, off + abo)
        # searchAddrForce.Load() as an offset: the int64 with its mark (sign) removed, as load() does.
        v = self.search_addr_force.a
        if v < 0 and v != _MIN_INT64:
            v = -v
        if v & mask < off:
            self.search_addr_force.store_marked((off + abo) & mask)

    def copy(self) -> "FastScavengeIndex":
        c = super().copy()
        c._keys = list(self._keys)
        return c
