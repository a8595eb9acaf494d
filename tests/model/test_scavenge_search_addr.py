"""FINDINGS F32: scavengeOne's lowering of searchAddr (mgcscavenge.go, `if b.lessThan(p.searchAddr)`
after relocking) never runs in a sequential allocator: the run it scavenged was free, so it lay at
or above searchAddr (every page below searchAddr is allocated), and only another allocation while
the heap lock is released can move searchAddr past it. The runtime-coverage campaign never reached
the line; here the model, which mirrors it, is driven through allocations, frees and scavenges,
and searchAddr never goes down across a scavenge."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.model.mpagealloc import PageAlloc, chunk_base
from palloc.model.mranges import OffAddr
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

AMD64 = platform("linux/amd64")
STEPS = st.lists(st.tuples(st.sampled_from(["alloc", "alloc", "free", "scavenge"]), st.integers(1, 700)), max_size=60)


def _lowered(cls, steps) -> int:
    """Runs steps on a fresh cls allocator; returns how many scavenges lowered searchAddr."""
    p = AMD64
    pa = cls.make(p, test=True)
    pa.grow(chunk_base(p, p.base_chunk_idx), 3 * p.palloc_chunk_bytes)
    held: list[tuple[int, int]] = []
    lowered = 0
    for kind, n in steps:
        if kind == "alloc":
            addr, _ = pa.alloc(n)
            if addr:
                held.append((addr, n))
        elif kind == "free" and held:
            pa.free(*held.pop(n % len(held)))
        elif kind == "scavenge":
            before = pa.search_addr
            pa.scavenge(n * PAGE_SIZE, None, n % 3 != 0)
            lowered += pa.search_addr.less_than(before)
    return lowered


class _LowersToChunkBase(PageAlloc):
    """Broken variant: scavengeOne lowers searchAddr to the heap's first page whatever it scavenged."""

    def scavenge_one(self, ci, search_idx, max):
        r = super().scavenge_one(ci, search_idx, max)
        if r:
            self.search_addr = OffAddr(self.p, chunk_base(self.p, self.p.base_chunk_idx))
        return r


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_a_sequential_scavenge_never_lowers_search_addr(steps):
    assert _lowered(PageAlloc, steps) == 0


def test_a_scavenger_that_lowers_search_addr_is_caught():
    # chunk 0 full, 300 pages of chunk 1 freed (so no longer scavenged): searchAddr is past chunk 0
    steps = [("alloc", 512), ("alloc", 300), ("free", 1), ("scavenge", 1000)]
    assert _lowered(_LowersToChunkBase, steps) == 1
