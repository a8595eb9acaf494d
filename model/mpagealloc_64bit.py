"""sysInit and sysGrow of the page allocator on 64-bit page-allocator platforms.

Mirrors src/runtime/mpagealloc_64bit.go of Go 1.27.3 (amd64, arm64, loong64, mips64(le),
ppc64(le), riscv64, s390x: summaryLevels = 5, pallocChunksL1Bits = 13). levelBits, levelShift
and levelLogPages are derived in palloc.spec.constants. scavengeIndex.sysInit/sysGrow, which
the runtime also keeps in this file, are modelled with ScavengeIndex in model/mgcscavenge.py.

Summary memory is reserved per level (alignUp(entries*8, physPageSize) bytes) and mapped only
where grown memory needs it; the model records the mapped physical pages of each level in
SummaryLevel.mapped, using byte offsets into the level's reservation as the addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from palloc.spec.errors import GoFault, GoThrow
from palloc.model.mranges import AddrRange
from palloc.model.gomath import align_down, align_up
from palloc.spec.constants import PALLOC_SUM_BYTES

if TYPE_CHECKING:
    from palloc.model.mpagealloc import PageAlloc


def sys_init(pa: "PageAlloc", test: bool) -> None:
    """Reserves (does not map) each summary level; every level starts with len 0, cap = entries."""
    from palloc.model.mpagealloc import SummaryLevel

    p = pa.p
    pa.summary = []
    for l, shift in enumerate(p.level_shift):
        entries = 1 << (p.heap_addr_bits - shift)
        pa.summary.append(SummaryLevel(l, entries, pa.phys_page_size))


def sys_grow(pa: "PageAlloc", base: int, limit: int) -> None:
    """Extends each level's len and maps the summary pages [base, limit) needs.

    Maps, per level, the page-aligned bytes of the block-aligned summary range, minus what the
    neighbouring inUse ranges already mapped; adds the bytes to summary_mapped_ready.

    Requires: base and limit chunk-aligned (throws otherwise); [base, limit) not yet in inUse.
    """
    from palloc.model.mpagealloc import addrs_to_summary_range, block_align_summary_range

    p = pa.p
    cb = p.palloc_chunk_bytes
    if base % cb != 0 or limit % cb != 0:
        raise GoThrow("sysGrow bounds not aligned to pallocChunkBytes")
    pps = pa.phys_page_size

    def addr_range_to_summary_range(level: int, r_base: int, r_limit: int) -> tuple[int, int]:
        lo, hi = addrs_to_summary_range(p, level, r_base, r_limit)
        return block_align_summary_range(p, level, lo, hi)

    def summary_range_to_sum_addr_range(level: int, idx_base: int, idx_limit: int) -> AddrRange:
        # The level's reservation as byte offsets: &p.summary[level][0] is 0 here.
        return AddrRange(p, align_down(idx_base * PALLOC_SUM_BYTES, pps), align_up(idx_limit * PALLOC_SUM_BYTES, pps))

    def addr_range_to_sum_addr_range(level: int, r: AddrRange) -> AddrRange:
        lo, hi = addr_range_to_summary_range(level, r.base.addr(), r.limit.addr())
        return summary_range_to_sum_addr_range(level, lo, hi)

    in_use_index = pa.in_use.find_succ(base)
    ranges = pa.in_use.ranges
    for l, level in enumerate(pa.summary):
        need_idx_base, need_idx_limit = addr_range_to_summary_range(l, base, limit)
        if need_idx_limit > level.len:
            if need_idx_limit > level.cap:
                raise GoFault(f"slice bounds out of range [:{need_idx_limit:#x}] with capacity {level.cap:#x}")
            level.len = need_idx_limit
        need = summary_range_to_sum_addr_range(l, need_idx_base, need_idx_limit)
        # Prune need down to what needs to be newly mapped. Some parts of it may
        # already be mapped by what inUse describes due to page alignment requirements
        # for mapping.
        if in_use_index > 0:
            need = need.subtract(addr_range_to_sum_addr_range(l, ranges[in_use_index - 1]))
        if in_use_index < len(ranges):
            need = need.subtract(addr_range_to_sum_addr_range(l, ranges[in_use_index]))
        # It's possible that after our pruning above, there's nothing new to map.
        if need.size() == 0:
            continue
        # Map and commit need.
        level.map_bytes(need.base.addr(), need.limit.addr())
        pa.summary_mapped_ready += need.size()
