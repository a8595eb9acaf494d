"""Seeded broken twins of the model, for checking that the differential fuzzer can fail.

A check that cannot fail is a defect (STYLE.md habit 10): `palloc fuzz --model-variant NAME` runs
the fuzzer against one of these instead of the faithful model, and tests/goref/test_fuzz.py
asserts each is caught (and shrunk) within the fuzzer's default budget.

Each variant is a PageAlloc subclass (Go 1.27 src/runtime/mpagealloc.go semantics with one
seeded mistake); `expected` says how the fuzzer should see it. Some reuse the broken allocators of
model/broken.py (the invariant twins), so the same mistake is caught by both layers.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from palloc.model.mpagealloc import PageAlloc


class FindOffByOne(PageAlloc):
    """find compares free runs with `> npages` instead of `>= npages`: an exact fit is missed.

    Net effect: the radix-tree search behaves as if one more page were asked for, so a run of
    exactly npages free pages found only by find (the slow path) is skipped.
    """

    def find(self, npages: int):
        return super().find(npages + 1)


class SearchAddrUpdateSkipped(PageAlloc):
    """alloc never raises searchAddr to the search's candidate (the final update is skipped).

    Returned addresses stay right (searchAddr is only a hint), but the state differs at once.
    """

    def alloc(self, npages: int):
        keep = self.search_addr
        addr, scav = super().alloc(npages)
        if addr != 0:
            self.search_addr = keep
        return addr, scav


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named broken model: its PageAlloc class and the kind of divergence expected."""

    name: str
    cls: type
    expected: str  # "result", "state" or "crash" (the first divergence's kind, typically)
    doc: str

    def factory(self) -> Callable:
        cls = self.cls

        def make(p, **host):
            return cls.make(p, test=True, **host)

        return make


def _variants() -> dict[str, Variant]:
    out = {
        "find-off-by-one": Variant("find-off-by-one", FindOffByOne, "result", FindOffByOne.__doc__.splitlines()[0]),
        "search-addr-update-skipped": Variant(
            "search-addr-update-skipped", SearchAddrUpdateSkipped, "state", SearchAddrUpdateSkipped.__doc__.splitlines()[0]
        ),
    }
    try:  # the invariant layer's broken allocators, where present (model/broken.py, H3)
        from palloc.model import broken as B

        for name, cls_name, kind in (
            ("b1-find-addr-plus-one", "FindReturnsAddrPlusOne", "state"),
            ("b2-alloc-to-cache-past-block", "AllocToCachePastBlock", "state"),
            ("free-skips-search-addr", "FreeSkipsSearchAddr", "state"),
            ("leaf-summary-off-by-one", "LeafSummaryOffByOne", "state"),
        ):
            cls = getattr(B, cls_name, None)
            if cls is not None:
                out[name] = Variant(name, cls, kind, (cls.__doc__ or name).strip().splitlines()[0])
    except ImportError:
        pass
    return out


VARIANTS = _variants()


def variant(name: str) -> Variant:
    """Returns the named broken model; raises KeyError listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(VARIANTS)}") from None
