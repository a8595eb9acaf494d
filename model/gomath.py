"""Go integer semantics the model needs: math/bits and the runtime's alignment helpers.

Mirrors math/bits (TrailingZeros64, LeadingZeros64, OnesCount64) and runtime/stubs.go
(alignUp, alignDown) as of Go 1.27. Go's uintN arithmetic wraps modulo 2^N and a shift by
N or more gives 0; Python ints do neither, so callers mask with these helpers.
"""

MASK64 = (1 << 64) - 1


def trailing_zeros64(x: int) -> int:
    """Returns the number of trailing zero bits in x; 64 for x == 0."""
    x &= MASK64
    return 64 if x == 0 else (x & -x).bit_length() - 1


def leading_zeros64(x: int) -> int:
    """Returns the number of leading zero bits in x; 64 for x == 0."""
    return 64 - (x & MASK64).bit_length()


def ones_count64(x: int) -> int:
    """Returns the number of one bits in x."""
    return (x & MASK64).bit_count()


def align_up(n: int, a: int) -> int:
    """Rounds n up to a multiple of a. Requires: a is a power of two."""
    return (n + a - 1) & ~(a - 1)


def align_down(n: int, a: int) -> int:
    """Rounds n down to a multiple of a. Requires: a is a power of two."""
    return n & ~(a - 1)
