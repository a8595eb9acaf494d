"""The standard seeded benchmark workload of the page allocator, as a replayable trace.

Not a mirror of a runtime file: this is the load `palloc bench` puts on the model, written so
that the very same trace can be replayed against the real runtime by the Go helper.

The heap is 64 contiguous chunks starting at the platform's BaseChunkIdx (export_test.go),
grown at once. A trace is a list of operations:

- ("alloc", npages): call alloc(npages) and append the returned address, 0 on failure, to the
  list of live handles;
- ("free", k): remove handle k of the live list by swapping the last handle into slot k and
  popping (O(1), and easy to write the same way in Go); if the handle is 0 (the alloc had
  failed) nothing is freed, otherwise free(addr, npages of that alloc).

Because failed allocs keep their (zero) handle, the length of the live list, and so the whole
trace, depends only on the seed, never on the allocator's answers: the trace is generated ahead
of time. Each step is an alloc or a free by a fair coin (alloc when nothing is live, free when
MAX_LIVE handles are live); alloc sizes are uniform in 1..16 pages, and with probability 1/20
uniform in 1..1024; a free picks a live handle uniformly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Iterator

from palloc.spec.constants import Platform

HEAP_CHUNKS = 64
DEFAULT_OPS = 200_000
MAX_LIVE = 2_000
SMALL_MAX_PAGES = 16
LARGE_MAX_PAGES = 1024
LARGE_ONE_IN = 20

Op = tuple[str, int]


def heap_range(p: Platform) -> tuple[int, int]:
    """Returns (base, size) of the workload's heap: HEAP_CHUNKS chunks from PageBase(BaseChunkIdx, 0)."""
    from palloc.model.mpagealloc import chunk_base

    return chunk_base(p, p.base_chunk_idx), HEAP_CHUNKS * p.palloc_chunk_bytes


def trace(seed: int, ops: int = DEFAULT_OPS) -> Iterator[Op]:
    """Yields the workload's `ops` operations for `seed`, deterministically (random.Random(seed))."""
    rng = random.Random(seed)
    live = 0
    for _ in range(ops):
        coin = rng.getrandbits(1)
        if live == 0 or (coin and live < MAX_LIVE):
            if rng.randrange(LARGE_ONE_IN) == 0:
                npages = rng.randint(1, LARGE_MAX_PAGES)
            else:
                npages = rng.randint(1, SMALL_MAX_PAGES)
            live += 1
            yield ("alloc", npages)
        else:
            k = rng.randrange(live)
            live -= 1
            yield ("free", k)


def trace_list(seed: int, ops: int = DEFAULT_OPS) -> list[Op]:
    """Returns trace(seed, ops) as a list."""
    return list(trace(seed, ops))


@dataclass
class ReplayStats:
    """What a replay did: operation counts and the failed allocations."""

    allocs: int = 0
    frees: int = 0
    failed_allocs: int = 0
    skipped_frees: int = 0  # frees of a failed alloc's zero handle
    scav_bytes: int = 0
    peak_live: int = 0
    results: list[int] = field(default_factory=list)  # alloc addresses, in order (if recorded)


def replay(
    ops: list[Op] | Iterator[Op],
    alloc: Callable[[int], tuple[int, int]],
    free: Callable[[int, int], None],
    record: bool = False,
) -> ReplayStats:
    """Replays a trace against an allocator given by its alloc(npages) and free(base, npages).

    Returns the counts; with record=True also every alloc's returned address, in order, so two
    replays (model and runtime) can be compared operation by operation.
    """
    st = ReplayStats()
    live_addr: list[int] = []
    live_npages: list[int] = []
    results = st.results
    # Counted in locals and stored at the end: the loop is overhead on what `palloc bench` times.
    allocs = frees = failed = skipped = scav_bytes = peak = 0
    for kind, arg in ops:
        if kind == "alloc":
            addr, scav = alloc(arg)
            allocs += 1
            if addr == 0:
                failed += 1
            else:
                scav_bytes += scav
            if record:
                results.append(addr)
            live_addr.append(addr)
            live_npages.append(arg)
            if len(live_addr) > peak:
                peak = len(live_addr)
        elif kind == "free":
            addr, npages = live_addr[arg], live_npages[arg]
            live_addr[arg], live_npages[arg] = live_addr[-1], live_npages[-1]
            live_addr.pop()
            live_npages.pop()
            frees += 1
            if addr == 0:
                skipped += 1
            else:
                free(addr, npages)
        else:
            raise ValueError(f"unknown workload operation {kind!r}")
    st.allocs, st.frees, st.failed_allocs, st.skipped_frees = allocs, frees, failed, skipped
    st.scav_bytes, st.peak_live = scav_bytes, peak
    return st


def standard_page_alloc(p: Platform):
    """Returns a test-mode FastPageAlloc (the fast layer) holding the workload's freshly grown heap."""
    from palloc.model.mpagealloc_fast import FastPageAlloc

    pa = FastPageAlloc.make(p, test=True)
    base, size = heap_range(p)
    pa.grow(base, size)
    return pa


# --- the sparse heap ----------------------------------------------------------------------

SPARSE_CHUNKS = 262_144  # 1 TiB of 4 MiB chunks


def sparse_chunk_indices(p: Platform, nchunks: int = SPARSE_CHUNKS) -> range:
    """Returns nchunks chunk indices spread evenly over the whole heap address space.

    One chunk every stride = 2^heapAddrBits / pallocChunkBytes / nchunks chunks (every 256th on
    48-bit platforms), the first at stride/2, so neither chunk 0 nor the top of the address space
    is used (on amd64 the chunk holding address 0 falls between two of them).

    Requires: nchunks at most a quarter of the chunks of the address space (ValueError).
    """
    total = (1 << p.heap_addr_bits) // p.palloc_chunk_bytes
    stride = total // nchunks
    if stride < 4:
        raise ValueError(f"{nchunks} chunks do not fit sparsely in {total} chunks")
    return range(stride // 2, stride * nchunks, stride)
