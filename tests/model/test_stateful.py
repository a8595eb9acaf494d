"""A Hypothesis state machine whose rules are the page allocator's verbs, with every named invariant
(spec/invariants.py:check_all) and the refinement of the abstract allocator checked after every
step, on linux/amd64, linux/386 and js/wasm 1.26; and its broken variants: a broken PageAlloc makes
the machine fail."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from palloc.goref.broken import AllocKeepsScavenged, FreeSkipsSearchAddr, GrowKeepsFirstStart
from palloc.spec.invariants import InvariantViolation, check_all
from palloc.model.mpagealloc import PageAlloc, chunk_base
from palloc.spec.refinement import Refinement, RefinementError
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

MAX_CHUNKS = 6  # grown chunks per run: keeps every step's full check cheap

DEFAULT = settings(max_examples=50, stateful_step_count=30, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class PageAllocMachine(RuleBasedStateMachine):
    """Drives a PageAlloc (PA_CLS) and the abstract allocator in lockstep on platform PV."""

    PV = ("linux/amd64", "1.27")
    PA_CLS = PageAlloc

    def __init__(self):
        super().__init__()
        self.p = platform(*self.PV)
        self.r = Refinement(self.p, pa=self.PA_CLS.make(self.p))
        self.grown: set[int] = set()  # chunk offsets from BaseChunkIdx
        self.live: list[tuple[int, int]] = []  # (addr, npages) allocations the program holds

    # --- helpers --------------------------------------------------------------------------------

    @property
    def far(self) -> int:
        """Chunks between discontiguous growths: 4 TiB on 48-bit heaps, less on small ones."""
        p = self.p
        if p.is_64bit_page_alloc and p.heap_addr_bits > 40:
            return 0x100000
        return 0x1000 if p.palloc_chunk_pages == 64 else 0x200

    def _grow(self, k: int, n: int) -> None:
        self.r.grow(chunk_base(self.p, self.p.base_chunk_idx + k), n * self.p.palloc_chunk_bytes)
        self.grown.update(range(k, k + n))

    # --- rules: the allocator's verbs ------------------------------------------------------------

    @initialize(n=st.integers(1, 2))
    def first_grow(self, n):
        self._grow(0, n)

    @precondition(lambda self: len(self.grown) < MAX_CHUNKS)
    @rule(where=st.sampled_from(["after", "before", "far"]), n=st.integers(1, 2))
    def grow(self, where, n):
        if where == "after":
            k = max(self.grown) + 1
        elif where == "before":
            k = min(self.grown) - n
            if self.p.base_chunk_idx + k <= 0:
                return
        else:
            k = max(self.grown) + self.far
        limit = 1 << (self.p.heap_addr_bits - self.p.log_palloc_chunk_bytes)  # chunks in the address space
        if self.p.base_chunk_idx + k + n > limit:
            return
        self._grow(k, n)

    @rule(npages=st.sampled_from(["1", "1", "2", "3", "5", "16", "64", "65", "chunk-3", "chunk", "chunk+1"]))
    def alloc(self, npages):
        c = self.p.palloc_chunk_pages
        n = {"chunk-3": c - 3, "chunk": c, "chunk+1": c + 1}.get(npages) or int(npages)
        addr, _ = self.r.alloc(n)
        if addr:
            self.live.append((addr, n))

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 1 << 16))
    def free(self, i):
        addr, n = self.live.pop(i % len(self.live))
        self.r.free(addr, n)

    @rule()
    def alloc_to_cache(self):
        self.r.alloc_to_cache()

    @precondition(lambda self: self.r.caches)
    @rule(i=st.integers(0, 1 << 16), npages=st.integers(1, 15))
    def cache_alloc(self, i, npages):
        addr, _ = self.r.cache_alloc(i % len(self.r.caches), npages)
        if addr:
            self.live.append((addr, npages))

    @precondition(lambda self: self.r.caches)
    @rule(i=st.integers(0, 1 << 16))
    def flush(self, i):
        self.r.flush(i % len(self.r.caches))

    @rule(nbytes=st.sampled_from([PAGE_SIZE, 64 * PAGE_SIZE, 1 << 40]), force=st.booleans())
    def scavenge(self, nbytes, force):
        self.r.scavenge(nbytes, force)

    @rule()
    def next_gen(self):
        self.r.next_gen()

    # --- the check after every step --------------------------------------------------------------

    @invariant()
    def invariants_hold(self):
        vs = check_all(self.r.pa, caches=[c for c, _ in self.r.caches])
        if vs:
            raise InvariantViolation(vs, "; ".join(self.r.log[-8:]))


class Amd64Machine(PageAllocMachine):
    PV = ("linux/amd64", "1.27")


class I386Machine(PageAllocMachine):
    PV = ("linux/386", "1.27")


class Wasm126Machine(PageAllocMachine):
    PV = ("js/wasm", "1.26")


TestAmd64 = Amd64Machine.TestCase
TestAmd64.settings = DEFAULT
TestI386 = I386Machine.TestCase
TestI386.settings = DEFAULT
TestWasm126 = Wasm126Machine.TestCase
TestWasm126.settings = DEFAULT


# --- broken variants: the machine must fail on a broken allocator ------------------------------------


@pytest.mark.parametrize(
    "cls, caught_by",
    [
        (FreeSkipsSearchAddr, (InvariantViolation, RefinementError)),
        (AllocKeepsScavenged, (InvariantViolation, RefinementError)),
        (GrowKeepsFirstStart, (InvariantViolation,)),
    ],
    ids=lambda x: x.__name__ if isinstance(x, type) else "",
)
def test_state_machine_catches_a_broken_page_alloc(cls, caught_by):
    machine = type(f"Broken{cls.__name__}Machine", (PageAllocMachine,), {"PA_CLS": cls})
    with pytest.raises(caught_by):
        run_state_machine_as_test(
            # No shrinking: the test needs the failure, not the smallest one.
            machine, settings=settings(DEFAULT, max_examples=200, database=None, print_blob=False,
                                       phases=[Phase.explicit, Phase.generate]),
        )


# --- the bigger campaign ----------------------------------------------------------------------------

CAMPAIGN = [("linux/amd64", "1.27"), ("linux/386", "1.27"), ("js/wasm", "1.26"), ("js/wasm", "1.25"),
            ("linux/arm64", "1.27"), ("ios/arm64", "1.27"), ("linux/mips", "1.27"), ("aix/ppc64", "1.27"),
            ("linux/amd64", "1.21")]


@pytest.mark.slow
@pytest.mark.parametrize("pv", CAMPAIGN, ids=lambda pv: "-".join(pv))
def test_state_machine_campaign(pv):
    machine = type(f"Machine_{pv[0].replace('/', '_')}_{pv[1]}", (PageAllocMachine,), {"PV": pv})
    run_state_machine_as_test(
        machine, settings=settings(DEFAULT, max_examples=400, stateful_step_count=80, database=None)
    )
