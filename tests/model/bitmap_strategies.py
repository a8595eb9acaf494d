"""Hypothesis strategies for chunk bitmaps: random words and structured ones (runs, empty, full, word edges).

Shared by the bit-level model tests (test_mpallocbits.py, test_mgcscavenge.py).
"""

from __future__ import annotations

from hypothesis import strategies as st

from palloc.spec import platform

# A 64-bit, a 32-bit and a wasm platform with 64-page chunks (Go >= 1.26).
PLATFORMS = [platform("linux/amd64"), platform("linux/386"), platform("js/wasm", "1.26")]
PLATFORM_IDS = ["linux-amd64", "linux-386", "wasm-1.26"]


def _runs(n: int):
    # Interesting places: word edges and the chunk edges.
    edge = st.sampled_from(sorted({0, 1, 62, 63, 64, 65, 127, 128, n - 65, n - 64, n - 1} & set(range(n))))
    start = st.one_of(edge, st.integers(0, n - 1))
    length = st.one_of(st.sampled_from([1, 2, 63, 64, 65, 128, n]), st.integers(1, n))
    return st.lists(st.tuples(start, length, st.booleans()), max_size=8)


@st.composite
def bitmaps(draw, n: int) -> int:
    """Draws an n-bit bitmap as an int: random, structured from runs, empty or full."""
    kind = draw(st.sampled_from(["random", "sparse", "dense", "runs", "runs", "empty", "full"]))
    full = (1 << n) - 1
    if kind == "empty":
        return 0
    if kind == "full":
        return full
    if kind == "random":
        return draw(st.integers(0, full))
    if kind == "sparse":
        return draw(st.integers(0, full)) & draw(st.integers(0, full)) & draw(st.integers(0, full))
    if kind == "dense":
        return draw(st.integers(0, full)) | draw(st.integers(0, full)) | draw(st.integers(0, full))
    v = draw(st.sampled_from([0, full]))
    for s, length, setbit in draw(_runs(n)):
        m = ((1 << min(length, n - s)) - 1) << s
        v = v | m if setbit else v & ~m
    return v
