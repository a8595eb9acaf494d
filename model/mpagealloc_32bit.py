"""sysInit and sysGrow of the page allocator on 32-bit page-allocator platforms.

Mirrors src/runtime/mpagealloc_32bit.go of Go 1.27.3 (386, arm, mips, mipsle and wasm:
summaryLevels = 4, pallocChunksL1Bits = 0). All summary levels are reserved and mapped at
init as one block of at most a few pages, so no summary read can fault below cap; growth only
extends the lens. scavengeIndex.sysInit/sysGrow are modelled in model/mgcscavenge.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from palloc.spec.errors import GoFault, GoThrow
from palloc.model.gomath import align_up
from palloc.spec.constants import PALLOC_SUM_BYTES

if TYPE_CHECKING:
    from palloc.model.mpagealloc import PageAlloc


def sys_init(pa: "PageAlloc", test: bool) -> None:
    """Reserves and maps every summary level in one block; adds its size to summary_mapped_ready."""
    from palloc.model.mpagealloc import SummaryLevel

    p = pa.p
    total_size = 0
    for l in range(p.summary_levels):
        total_size += (1 << (p.heap_addr_bits - p.level_shift[l])) * PALLOC_SUM_BYTES
    total_size = align_up(total_size, pa.phys_page_size)
    pa.summary_mapped_ready += total_size
    pa.summary = []
    for l, shift in enumerate(p.level_shift):
        entries = 1 << (p.heap_addr_bits - shift)
        pa.summary.append(SummaryLevel(l, entries, pa.phys_page_size, all_mapped=True))


def sys_grow(pa: "PageAlloc", base: int, limit: int) -> None:
    """Extends each level's len to the block-aligned end of [base, limit).

    Requires: base and limit chunk-aligned (throws otherwise).
    """
    from palloc.model.mpagealloc import addrs_to_summary_range, block_align_summary_range

    p = pa.p
    cb = p.palloc_chunk_bytes
    if base % cb != 0 or limit % cb != 0:
        raise GoThrow("sysGrow bounds not aligned to pallocChunkBytes")
    for l in range(len(pa.summary) - 1, -1, -1):
        lo, hi = addrs_to_summary_range(p, l, base, limit)
        _, hi = block_align_summary_range(p, l, lo, hi)
        level = pa.summary[l]
        if hi > level.len:
            if hi > level.cap:
                raise GoFault(f"slice bounds out of range [:{hi:#x}] with capacity {level.cap:#x}")
            level.len = hi
