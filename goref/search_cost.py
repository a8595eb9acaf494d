"""The page allocator's search cost: loop iterations of find, counted in the runtime and the model.

Mirrors the search half of `src/runtime/mpagealloc.go` `(*pageAlloc).alloc` and `find`, and
`mpallocbits.go` `(*pallocBits).find1`, `findSmallN`, `findLargeN` (Go 1.27), counting instead of
allocating. Two counters:

- find: iterations of the loops of `(*pageAlloc).find` (each summary level visited and each
  summary entry examined), the radix tree's share of a search;
- words: iterations of the loops of find1, findSmallN and findLargeN (each 64-bit bitmap word
  examined), in alloc's fast path at searchAddr's chunk and at the end of find.

On the runtime side `instrument` puts a `pallocCostTick(k)` call at the top of every loop body of
those functions in a copy of the (possibly patched) source, on the loop's own line, so line
numbers are kept (goref/overlay/palloc_cost_test.go counts them). On the model's side
`alloc_cost` walks the model's state as Go's code walks the runtime's, counting the same loop
iterations: an unpatched runtime and the model agree on every alloc's counts, and a patch that
searches differently shows up as a changed count.
"""

from __future__ import annotations

import re

COUNTERS = ("find", "words")  # palloc_cost_test.go's pallocCostFind, pallocCostWords

# The functions counted: GOROOT-relative file, the line opening the function, counter index.
COUNTED = (
    ("src/runtime/mpagealloc.go", "func (p *pageAlloc) find(npages uintptr) (uintptr, offAddr) {", 0),
    ("src/runtime/mpallocbits.go", "func (b *pallocBits) find1(searchIdx uint) uint {", 1),
    ("src/runtime/mpallocbits.go", "func (b *pallocBits) findSmallN(npages uintptr, searchIdx uint) (uint, uint) {", 1),
    ("src/runtime/mpallocbits.go", "func (b *pallocBits) findLargeN(npages uintptr, searchIdx uint) (uint, uint) {", 1),
)
_FOR = re.compile(r"^\t+for\b.*\{$")


def instrument(rel: str, text: str) -> tuple[str, dict[str, int]]:
    """Returns the Go source `text` of file `rel` with every loop of the COUNTED functions it holds
    counted, and per function the number of loops counted (0: the function is not there, or a
    patch rewrote it without a loop, and its cost is then not measured).

    The call goes at the end of the loop's own line (`for ... { pallocCostTick(k)`), which Go
    accepts, so every line number of the file stays the same.
    """
    lines = text.split("\n")
    found: dict[str, int] = {}
    for file, head, k in COUNTED:
        if file != rel:
            continue
        name = head.split(")", 1)[1].split("(", 1)[0].strip()
        found[name] = 0
        try:
            at = lines.index(head)
        except ValueError:
            continue
        for i in range(at + 1, len(lines)):
            if lines[i] == "}":
                break
            if _FOR.match(lines[i]):
                lines[i] += f" pallocCostTick({k})"
                found[name] += 1
    return "\n".join(lines), found


# --- the model's side ---------------------------------------------------------------------


# find1, findSmallN and findLargeN transcribed one after the other, each with its own exits:
# their loops are alike in shape as Go's are, and one counted loop would no longer read as Go's.
def _words_cost(words: list[int], npages: int, search_idx: int) -> tuple[int, int]:
    """Returns (iterations, index found or -1) of pallocBits.find's loop over words from search_idx:
    find1, findSmallN or findLargeN by npages, transcribed with their exits."""
    n = 0
    if npages == 1:
        for i in range(search_idx // 64, len(words)):
            n += 1
            if words[i] != (1 << 64) - 1:
                x = ~words[i] & ((1 << 64) - 1)
                return n, i * 64 + (x & -x).bit_length() - 1
        return n, -1
    if npages <= 64:
        end = 0
        for i in range(search_idx // 64, len(words)):
            n += 1
            bi = words[i]
            if bi == (1 << 64) - 1:
                end = 0
                continue
            start = (bi & -bi).bit_length() - 1 if bi else 64  # TrailingZeros64
            if end + start >= npages:
                return n, i * 64 - end
            free = ~bi & ((1 << 64) - 1)
            for j in range(0, 65 - npages):  # findBitRange64(^bi, npages)
                if (free >> j) & ((1 << npages) - 1) == (1 << npages) - 1:
                    return n, i * 64 + j
            end = 64 - bi.bit_length()  # LeadingZeros64
        return n, -1
    start, size = -1, 0
    for i in range(search_idx // 64, len(words)):
        n += 1
        x = words[i]
        if x == (1 << 64) - 1:
            size = 0
            continue
        if size == 0:
            size = 64 - x.bit_length()
            start = i * 64 + 64 - size
            continue
        s = (x & -x).bit_length() - 1 if x else 64
        if s + size >= npages:
            return n, start
        if s < 64:
            size = 64 - x.bit_length()
            start = i * 64 + 64 - size
            continue
        size += 64
    return n, (start if size >= npages else -1)


def _chunk_words(pa, ci: int) -> list[int]:
    return pa.chunk_of(ci).words()


def _find_cost(pa, npages: int) -> tuple[int, int]:
    """Returns (iterations of find's loops, bitmap words examined) of (*pageAlloc).find(npages)."""
    from palloc.model.mpagealloc import off_addr_to_level_index
    from palloc.model.mpagealloc import palloc_sum_end, palloc_sum_max, palloc_sum_start

    p = pa.p
    steps, i = 0, 0
    for l in range(len(pa.summary)):
        steps += 1
        entries_per_block = 1 << p.level_bits[l]
        log_max_pages = p.level_log_pages[l]
        i <<= p.level_bits[l]
        entries = pa.summary[l]
        j0 = 0
        search_idx = off_addr_to_level_index(p, l, pa.search_addr)
        if search_idx & ~(entries_per_block - 1) == i:
            j0 = search_idx & (entries_per_block - 1)
        size = 0
        descend = False
        for j in range(j0, entries_per_block):
            steps += 1
            s = entries.at(i + j)
            if s == 0:
                size = 0
                continue
            start = palloc_sum_start(p, s)
            if size + start >= npages:
                size += start
                break
            if palloc_sum_max(p, s) >= npages:
                i += j
                descend = True
                break
            if size == 0 or start < 1 << log_max_pages:
                size = palloc_sum_end(p, s)
                continue
            size += 1 << log_max_pages
        if descend:
            continue
        return steps, 0  # found straddling a boundary, or (at level 0) nothing found
    words, _ = _words_cost(_chunk_words(pa, i), npages, 0)
    return steps, words


def alloc_cost(pa, npages: int) -> tuple[int, int]:
    """Returns the (find, words) counts the runtime's alloc(npages) makes on the model allocator
    pa's current state: the fast path at searchAddr's chunk when its leaf summary promises a run,
    else find. Call it before pa.alloc(npages); it changes nothing."""
    from palloc.model.mpagealloc import chunk_index, chunk_page_index, palloc_sum_max

    p = pa.p
    sa = pa.search_addr.addr()
    ci = chunk_index(p, sa)
    if ci >= pa.end:
        return 0, 0
    cpi = chunk_page_index(p, sa)
    if p.palloc_chunk_pages - cpi >= npages and palloc_sum_max(p, pa.summary[-1].at(ci)) >= npages:
        return 0, _words_cost(_chunk_words(pa, ci), npages, cpi)[0]
    return _find_cost(pa, npages)


def alloc_to_cache_cost(pa) -> tuple[int, int]:
    """Returns the (find, words) counts of the runtime's allocToCache (mpagecache.go) on the model
    allocator pa's current state: find1 at searchAddr's chunk when its leaf summary is not zero,
    else find(1). Call it before pa.alloc_to_cache(); it changes nothing."""
    from palloc.model.mpagealloc import chunk_index, chunk_page_index

    sa = pa.search_addr.addr()
    ci = chunk_index(pa.p, sa)
    if ci >= pa.end:
        return 0, 0
    if pa.summary[-1].at(ci) != 0:
        return 0, _words_cost(_chunk_words(pa, ci), 1, chunk_page_index(pa.p, sa))[0]
    return _find_cost(pa, 1)


def alloc_cost_broken(pa, npages: int) -> tuple[int, int]:
    """Seeded broken twin of alloc_cost: forgets the fast path's words (as a counter placed only in
    find would); the model-vs-runtime cost check must catch it."""
    f, w = alloc_cost(pa, npages)
    from palloc.model.mpagealloc import chunk_index

    return (f, 0) if f == 0 and chunk_index(pa.p, pa.search_addr.addr()) < pa.end else (f, w)


__all__ = ["COUNTERS", "COUNTED", "instrument", "alloc_cost", "alloc_to_cache_cost", "alloc_cost_broken"]
