"""The per-P page cache and pageAlloc.allocToCache.

Mirrors src/runtime/mpagecache.go of Go 1.27.3 (unchanged since 1.21.13). A page cache owns
one pageCachePages-aligned block of 64 pages; `cache` has a 1 for every page it may hand out,
`scav` a 1 for every page that is scavenged. On wasm with Go >= 1.26 a block is a whole chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from palloc.spec.errors import GoThrow, UndefinedBehaviour
from palloc.model.gomath import MASK64, align_down, ones_count64, trailing_zeros64
from palloc.spec.constants import PAGE_CACHE_PAGES, PAGE_SIZE


def _find_bit_range64(c: int, n: int) -> int:
    from palloc.model.mpallocbits import find_bit_range64

    return find_bit_range64(c, n)


@dataclass
class PageCache:
    """A cache of up to 64 free pages in [base, base + 64*pageSize); the zero value is empty."""

    base: int = 0  # base address of the block
    cache: int = 0  # 64-bit bitmap of free pages (1 means free)
    scav: int = 0  # 64-bit bitmap of scavenged pages (1 means scavenged)

    def __repr__(self) -> str:
        return f"PageCache(base={self.base:#x}, cache={self.cache:#018x}, scav={self.scav:#018x})"

    def empty(self) -> bool:
        """Reports whether the cache has no free pages."""
        return self.cache == 0

    def alloc(self, npages: int) -> tuple[int, int]:
        """Allocates npages from the cache; returns (base address, scavenged bytes).

        Returns (0, 0) on failure, in which case the scavenged bytes must be ignored.

        Requires: npages > 0 (UndefinedBehaviour otherwise).
        """
        if npages <= 0:
            raise UndefinedBehaviour(f"pageCache.alloc({npages}): npages must be positive")
        if self.cache == 0:
            return 0, 0
        if npages == 1:
            i = trailing_zeros64(self.cache)
            scav = (self.scav >> i) & 1
            self.cache &= ~(1 << i) & MASK64  # set bit to mark in-use
            self.scav &= ~(1 << i) & MASK64  # clear bit to mark unscavenged
            return self.base + i * PAGE_SIZE, scav * PAGE_SIZE
        return self.alloc_n(npages)

    def alloc_n(self, npages: int) -> tuple[int, int]:
        """Allocates the lowest run of npages free pages in the cache; (0, 0) if there is none."""
        i = _find_bit_range64(self.cache, npages)
        if i >= 64:
            return 0, 0
        mask = (((1 << npages) - 1 if npages < 64 else MASK64) << i) & MASK64
        scav = ones_count64(self.scav & mask)
        self.cache &= ~mask & MASK64
        self.scav &= ~mask & MASK64
        return self.base + i * PAGE_SIZE, scav * PAGE_SIZE

    def flush(self, p_alloc) -> None:
        """Returns the cache's free pages (and their scavenged bits) to p_alloc, then empties it."""
        from palloc.model.mpagealloc import _off, chunk_index, chunk_page_index

        if self.empty():
            return
        pl = p_alloc.p
        ci = chunk_index(pl, self.base)
        pi = chunk_page_index(pl, self.base)
        for i in range(64):
            if self.cache & (1 << i):
                p_alloc.chunk_of(ci).free1(pi + i)
                p_alloc.scav.index.free(ci, pi + i, 1)
            if self.scav & (1 << i):
                p_alloc.chunk_of(ci).scavenged.set_range(pi + i, 1)
        b = _off(pl, self.base)
        if b.less_than(p_alloc.search_addr):
            p_alloc.search_addr = b
        p_alloc.update(self.base, PAGE_CACHE_PAGES, False, False)
        self.base = self.cache = self.scav = 0


class PageAllocCache:
    """The part of pageAlloc defined in mpagecache.go (mixed into PageAlloc)."""

    def alloc_to_cache(self) -> PageCache:
        """Takes the 64-page-aligned block holding the first free page at or after searchAddr.

        Every free page of the block is marked allocated and handed to the returned cache (with
        the block's unmasked scavenged word); searchAddr becomes the block's last page. Returns
        an empty PageCache when the heap has no free page.
        """
        from palloc.model.mpagealloc import chunk_base, chunk_index, chunk_page_index, max_search_addr, _off

        p = self.p
        if chunk_index(p, self.search_addr.addr()) >= self.end:
            return PageCache()
        ci = chunk_index(p, self.search_addr.addr())
        if self.summary[len(self.summary) - 1][ci] != 0:
            # Fast path: there are free pages at or near searchAddr.
            chunk = self.chunk_of(ci)
            j, _ = chunk.find(1, chunk_page_index(p, self.search_addr.addr()))
            if j == p.uintptr_mask:
                raise GoThrow("bad summary data")
            c = PageCache(
                base=chunk_base(p, ci) + align_down(j, 64) * PAGE_SIZE,
                cache=~chunk.pages64(j) & MASK64,
                scav=chunk.scavenged.block64(j),
            )
        else:
            # Slow path: nothing at searchAddr, so find the first free page the slow way.
            addr, _ = self.find(1)
            if addr == 0:
                self.search_addr = max_search_addr(p)
                return PageCache()
            ci = chunk_index(p, addr)
            chunk = self.chunk_of(ci)
            c = PageCache(
                base=align_down(addr, 64 * PAGE_SIZE),
                cache=~chunk.pages64(chunk_page_index(p, addr)) & MASK64,
                scav=chunk.scavenged.block64(chunk_page_index(p, addr)),
            )

        cpi = chunk_page_index(p, c.base)
        chunk.alloc_pages64(cpi, c.cache)
        chunk.scavenged.clear_block64(cpi, c.cache & c.scav)  # free and scavenged
        self.update(c.base, PAGE_CACHE_PAGES, False, True)
        self.scav.index.alloc(ci, ones_count64(c.cache))
        # The last page of the block, not the one after it: searchAddr must stay in inUse
        # (golang/go#38605).
        self.search_addr = _off(p, c.base + PAGE_SIZE * (PAGE_CACHE_PAGES - 1))
        return c
