"""Theorem 4 (address arithmetic): offset addresses linearise the heap on every platform.

Over uintptr of the platform's width w (64 or 32 bits), arithmetic mod 2^w as Go does, with
H = heapAddrBits, A = arenaBaseOffset, C = pallocChunkBytes, off(a) = (a - A) mod 2^w, and
"a is a valid heap address" meaning off(a) < 2^H:

  (round trip)  valid a       =>  chunkBase(chunkIndex(a)) = a - (off(a) mod C), and
                ci < 2^H / C  =>  chunkIndex(chunkBase(ci)) = ci
  (order)       valid a, b    =>  a.lessThan(b) <=> off(a) < off(b), and if off(a) <= off(b)
                then a.add(b.diff(a)) = b, and a.add(n) is valid with off(a.add(n)) = off(a)+n
                for every n with off(a) + n < 2^H: no wraparound inside the address space;
                minOffAddr and maxOffAddr are the least and greatest valid addresses.
  (levels)      valid a, every level l  =>  offAddrToLevelIndex(l, a) < 2^(H - levelShift[l]),
                the size of summary[l]; levelIndexToOffAddr(l, i) is valid and
                offAddrToLevelIndex(l, levelIndexToOffAddr(l, i)) = i for every index i.
  (chunk map)   ci < 2^H / C  =>  l1(ci) < 2^L1Bits, l2(ci) < 2^L2Bits and
                l1(ci) * 2^L2Bits + l2(ci) = ci: the two-level map covers exactly the indices.
  (grow maps)   for chunk-aligned valid base < limit (limit may be the top of the address
                space, wrapping to 0 as a uintptr), every valid a in [base, limit) has, at every
                level, its index and its whole block of 2^levelBits[l] siblings inside the
                block-aligned addrsToSummaryRange(l, base, limit), which lies inside summary[l]:
                every entry that a later find or update reads for such an address was mapped.
  (update range) for page-aligned base and npages >= 1, with update's inclusive
                limit = base + npages*pageSize - 1, addrsToSummaryRange(l, base, limit) =
                addrsToSummaryRange(l, base, limit+1) at every level: limit - A is never a
                multiple of a level's span, so passing the inclusive limit is harmless (the
                mutant n-update-exclusive-limit is equivalent).
  (find windows) the windows find hands to foundFree nest or are disjoint: for levels
                l1 <= l2 and in-range indices i1, i2, the level-l2 window of entry i2 (from
                levelIndexToOffAddr, 2^levelLogPages[l2] pages long) lies inside the level-l1
                window of entry i1 or misses it, in foundFree's own offAddr comparisons; so
                does find's last window, [searchAddr, chunkBase(ci+1)) for a page of chunk ci.
                firstFree is only ever narrowed to such windows, so foundFree's "range
                partially overlaps" throw cannot fire (FINDINGS F20), and after a level's first
                nonzero entry the later calls at that level change nothing.

Why it holds: off is a bijection of the w-bit uintptrs, chunk-aligned because A is; the
heap is the image of [0, 2^H) under its inverse, and 2^H <= 2^w, so on that interval
uintptr subtraction, shifts and division are the integer ones. No induction: each claim is
one bit-vector formula over all addresses, per platform (checked by bit-blasting).

Broken variants: the wrong sign of arenaBaseOffset in chunkIndex (counterexample on amd64 and
aix, where A != 0; elsewhere the mistake is invisible and the variant is proved, as the
manifest records); offAddr.lessThan on raw addresses (counterexample only on amd64, the one
platform whose heap wraps through zero as raw uintptrs); and an addrsToSummaryRange that
shifts the exclusive limit directly (counterexample everywhere); windows one page longer
than their level's span (counterexample everywhere: they straddle their neighbours); and the
update-range claim for byte-granular bases (counterexample everywhere: alignment is what makes it hold). Note that a wrong sign in
offAddr.lessThan itself, (a + A) < (b + A), is invisible on every platform: 2A mod 2^w
shifts the heap without wrapping it.
"""

from __future__ import annotations

from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs.smt import Goal, Obligation
from palloc.spec.constants import PAGE_SIZE

THEOREM = "addresses"


def _key(p):
    return (p.ptr_bits, p.heap_addr_bits, p.arena_base_offset, p.log_palloc_chunk_bytes, tuple(p.level_shift),
            tuple(p.level_bits), p.palloc_chunks_l1_bits)


def _u(p, v):
    return E.uintptr(p, v)


def _valid(p, a):
    return smt.ULT(E.off(p, a), _u(p, 1 << p.heap_addr_bits)) if p.heap_addr_bits < p.ptr_bits else smt.BoolVal(True)


def _hex(v):
    return f"{v:#x}"


def _addr(p, name):
    return smt.BitVec(name, p.ptr_bits)


def _round_trip(p, chunk_index=None, impl=E):
    # impl: the model's encodings (E) or the runtime's translated code (thm_runtime).
    chunk_index = chunk_index or impl.chunk_index
    a, ci = _addr(p, "addr"), _addr(p, "ci")
    nchunks = 1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes)
    C = _u(p, p.palloc_chunk_bytes)
    concl = smt.And(
        impl.chunk_base(p, chunk_index(p, a)) == a - smt.URem(E.off(p, a), C),
        smt.Implies(smt.ULT(ci, _u(p, nchunks)), chunk_index(p, impl.chunk_base(p, ci)) == ci),
        smt.Implies(smt.ULT(ci, _u(p, nchunks)), _valid(p, impl.chunk_base(p, ci))),
    )
    return Goal([_valid(p, a)], concl, {"addr": a, "ci": ci, "chunkIndex": chunk_index(p, a)},
                lambda v: f"address {_hex(v['addr'])} (chunkIndex {_hex(v['chunkIndex'])}), chunk index {_hex(v['ci'])}")


def _order(p, less_than=None, impl=E):
    less_than = less_than or impl.off_addr_less_than
    a, b, n = _addr(p, "a"), _addr(p, "b"), _addr(p, "nbytes")
    top = 1 << p.heap_addr_bits
    oa, ob = E.off(p, a), E.off(p, b)
    if p.heap_addr_bits < p.ptr_bits:
        fits = smt.ULT(oa + n, _u(p, top))
        no_wrap = smt.ULE(oa, oa + n)
    else:
        fits = smt.ULE(oa, oa + n)
        no_wrap = smt.BoolVal(True)
    s = impl.off_addr_add(p, a, n)
    mn, mx = _u(p, p.min_off_addr), _u(p, p.max_off_addr)
    concl = smt.And(
        less_than(p, a, b) == smt.ULT(oa, ob),
        smt.Implies(smt.ULE(oa, ob), impl.off_addr_add(p, a, impl.off_addr_diff(p, b, a)) == b),
        smt.Implies(smt.And(fits, no_wrap), smt.And(_valid(p, s), E.off(p, s) == oa + n, smt.ULE(oa, E.off(p, s)))),
        impl.off_addr_less_equal(p, mn, a), impl.off_addr_less_equal(p, a, mx), _valid(p, mn), _valid(p, mx),
    )
    return Goal([_valid(p, a), _valid(p, b)], concl, {"a": a, "b": b, "n": n},
                lambda v: f"addresses a={_hex(v['a'])} b={_hex(v['b'])}, n={_hex(v['n'])} bytes "
                f"[arenaBaseOffset={p.arena_base_offset:#x}]")


def _wrong_sign_chunk_index(p, a):
    # Broken variant: (p + arenaBaseOffset) / pallocChunkBytes.
    return smt.UDiv(a + _u(p, p.arena_base_offset), _u(p, p.palloc_chunk_bytes))


def _raw_less_than(p, a, b):
    # Broken variant: compare raw addresses, forgetting the offset (golang/go#38966's family).
    return smt.ULT(a, b)


def _levels(p):
    a, i = _addr(p, "addr"), _addr(p, "idx")
    parts = []
    for l in range(p.summary_levels):
        entries = _u(p, p.level_entries[l]) if p.heap_addr_bits - p.level_shift[l] < p.ptr_bits else None
        idx = E.off_addr_to_level_index(p, l, a)
        parts.append(smt.ULT(idx, entries))
        back = E.level_index_to_off_addr(p, l, i)
        parts.append(smt.Implies(smt.ULT(i, entries),
                                 smt.And(_valid(p, back), E.off_addr_to_level_index(p, l, back) == i)))
    return Goal([_valid(p, a)], smt.And(*parts), {"addr": a, "idx": i},
                lambda v: f"address {_hex(v['addr'])}, index {_hex(v['idx'])}, levelShift={list(p.level_shift)}")


def _chunk_map(p):
    ci = _addr(p, "ci")
    nchunks = _u(p, 1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes))
    l1, l2 = E.chunk_idx_l1(p, ci), E.chunk_idx_l2(p, ci)
    concl = smt.And(
        smt.ULT(l1, _u(p, 1 << p.palloc_chunks_l1_bits)),
        smt.ULT(l2, _u(p, 1 << p.palloc_chunks_l2_bits)),
        l1 * _u(p, 1 << p.palloc_chunks_l2_bits) + l2 == ci,
    )
    return Goal([smt.ULT(ci, nchunks)], concl, {"ci": ci, "l1": l1, "l2": l2},
                lambda v: f"chunk index {_hex(v['ci'])} splits to l1={_hex(v['l1'])} l2={_hex(v['l2'])}")


def _grow_maps(p, summary_range=E.addrs_to_summary_range):
    base, limit, a = _addr(p, "base"), _addr(p, "limit"), _addr(p, "addr")
    C = _u(p, p.palloc_chunk_bytes)
    ob, ol, oa = E.off(p, base), E.off(p, limit), E.off(p, a)
    top = 1 << p.heap_addr_bits
    # limit is valid or exactly one past the top of the heap (off(limit) = 2^H, 0 mod 2^w if H = w).
    if p.heap_addr_bits < p.ptr_bits:
        lim_ok = smt.ULE(ol, _u(p, top))
        in_range = smt.And(smt.ULE(ob, oa), smt.ULT(oa, ol))
        nonempty = smt.ULT(ob, ol)
    else:
        lim_ok = smt.BoolVal(True)
        in_range = smt.And(smt.ULE(ob, oa), smt.Or(ol == 0, smt.ULT(oa, ol)))
        nonempty = smt.Or(ol == 0, smt.ULT(ob, ol))
    hyps = [
        _valid(p, base), _valid(p, a), lim_ok, nonempty, in_range,
        smt.URem(ob, C) == 0, smt.URem(ol, C) == 0,
    ]
    parts = []
    for l in range(p.summary_levels):
        lo, hi = summary_range(p, l, base, limit)
        lo, hi = E.block_align_summary_range(p, l, lo, hi)
        idx = E.off_addr_to_level_index(p, l, a)
        e = 1 << p.level_bits[l]
        blk = idx & ~_u(p, e - 1)
        entries = p.level_entries[l]
        cap = smt.ULE(hi, _u(p, entries)) if entries <= p.uintptr_mask else smt.BoolVal(True)
        parts.append(smt.And(smt.ULE(lo, blk), smt.ULE(blk + e, hi), smt.ULT(idx, hi), cap))
    return Goal(hyps, smt.And(*parts), {"base": base, "limit": limit, "addr": a},
                lambda v: f"grow [{_hex(v['base'])}, {_hex(v['limit'])}) then read address {_hex(v['addr'])}")


def _exclusive_limit_summary_range(p, level, base, limit):
    # Broken variant: shift the exclusive limit directly (no -1 ... +1), as a naive port would.
    abo = E.uintptr(p, p.arena_base_offset)
    lo = smt.LShR(base - abo, p.level_shift[level])
    hi = smt.LShR(limit - abo, p.level_shift[level])
    return lo, hi


def _update_range(p, page_aligned=True):
    base, npages = _addr(p, "base"), _addr(p, "npages")
    P = _u(p, PAGE_SIZE)
    limit = base + npages * P - 1  # update's inclusive limit
    hyps = [npages != 0] + ([smt.URem(base, P) == 0] if page_aligned else [])
    parts = []
    for l in range(p.summary_levels):
        lo, hi = E.addrs_to_summary_range(p, l, base, limit + 1)
        lo2, hi2 = E.addrs_to_summary_range(p, l, base, limit)
        parts.append(smt.And(lo == lo2, hi == hi2))
    return Goal(hyps, smt.And(*parts), {"base": base, "npages": npages},
                lambda v: f"update(base={_hex(v['base'])}, npages={_hex(v['npages'])}): "
                f"addrsToSummaryRange(l, base, limit) != addrsToSummaryRange(l, base, limit+1)")


def _find_windows(p, extra_pages=0):
    """foundFree's windows nest or are disjoint (see the module doc); extra_pages lengthens
    every level window (the broken variant)."""
    i1, i2, ci, j = _addr(p, "i1"), _addr(p, "i2"), _addr(p, "ci"), _addr(p, "page")
    P = _u(p, PAGE_SIZE)

    def entries(l):
        return _u(p, p.level_entries[l]) if p.heap_addr_bits - p.level_shift[l] < p.ptr_bits else None

    def in_range(i, l):
        e = entries(l)
        return smt.BoolVal(True) if e is None else smt.ULT(i, e)

    def window(l, i):
        return E.level_index_to_off_addr(p, l, i), _u(p, ((1 << p.level_log_pages[l]) + extra_pages) * PAGE_SIZE)

    def nest_or_miss(base, bound, addr, size):
        last = E.off_addr_add(p, addr, size - 1)
        fits = smt.And(E.off_addr_less_equal(p, base, addr), E.off_addr_less_equal(p, last, bound))
        misses = smt.Or(E.off_addr_less_than(p, last, base), E.off_addr_less_than(p, bound, addr))
        return smt.Or(fits, misses)

    nchunks = _u(p, 1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes))
    search = E.chunk_base(p, ci) + j * P  # a page of chunk ci
    last_size = E.chunk_base(p, ci + 1) - search
    parts, watch = [], {"i1": i1, "i2": i2, "ci": ci, "page": j}
    for l1 in range(p.summary_levels):
        b1, s1 = window(l1, i1)
        bound1 = E.off_addr_add(p, b1, s1 - 1)
        for l2 in range(l1, p.summary_levels):
            b2, s2 = window(l2, i2)
            ok = smt.Implies(smt.And(in_range(i1, l1), in_range(i2, l2)), nest_or_miss(b1, bound1, b2, s2))
            parts.append(ok)
            watch[f"levels {l1},{l2}"] = ok
        ok = smt.Implies(smt.And(in_range(i1, l1), smt.ULT(ci, nchunks), smt.ULT(j, _u(p, p.palloc_chunk_pages))),
                         nest_or_miss(b1, bound1, search, last_size))
        parts.append(ok)
        watch[f"level {l1},last"] = ok

    def show(v):
        bad = [k for k, x in v.items() if k.startswith("level") and not x]
        last = any(k.endswith("last") for k in bad)
        return (f"windows {', '.join(bad)} partially overlap: entries i1={_hex(v['i1'])} i2={_hex(v['i2'])}"
                + (f", searchAddr at chunk {_hex(v['ci'])} page {v['page']}" if last else ""))

    return Goal([], smt.And(*parts), watch, show)


OBLIGATIONS = [
    Obligation(THEOREM, "chunk_index_chunk_base_round_trip",
               "chunkBase(chunkIndex(a)) aligns a down; chunkIndex(chunkBase(ci)) = ci", _round_trip, _key),
    Obligation(THEOREM, "off_addr_linear_order",
               "lessThan/diff/add are the linear order of offsets, no wraparound inside the heap", _order, _key),
    Obligation(THEOREM, "level_indices_in_bounds_and_inverse",
               "every level index is inside summary[l]; levelIndexToOffAddr inverts offAddrToLevelIndex",
               _levels, _key),
    Obligation(THEOREM, "chunk_map_l1_l2_covers_indices",
               "the L1/L2 split of a chunk index is in range and recombines to it", _chunk_map, _key),
    Obligation(THEOREM, "grow_maps_cover_reads",
               "the block-aligned summary ranges grow maps contain every entry later reads touch",
               _grow_maps, _key),
    Obligation(THEOREM, "broken_chunk_index_wrong_sign",
               "broken variant: chunkIndex adds arenaBaseOffset instead of subtracting it",
               lambda p: _round_trip(p, _wrong_sign_chunk_index), _key, variant_of="chunk_index_chunk_base_round_trip"),
    Obligation(THEOREM, "broken_off_addr_raw_compare",
               "broken variant: offAddr.lessThan compares raw addresses",
               lambda p: _order(p, _raw_less_than), _key, variant_of="off_addr_linear_order"),
    Obligation(THEOREM, "broken_summary_range_exclusive_limit",
               "broken variant: addrsToSummaryRange shifts the exclusive limit directly",
               lambda p: _grow_maps(p, _exclusive_limit_summary_range), _key, variant_of="grow_maps_cover_reads"),
    Obligation(THEOREM, "find_windows_nest_or_disjoint",
               "the windows find hands to foundFree nest or are disjoint: its partial-overlap throw cannot fire",
               _find_windows, _key),
    Obligation(THEOREM, "broken_find_windows_one_page_long",
               "broken variant: level windows one page longer than their span",
               lambda p: _find_windows(p, extra_pages=1), _key, variant_of="find_windows_nest_or_disjoint"),
    Obligation(THEOREM, "update_range_inclusive_limit_harmless",
               "update's summary range is the same for its inclusive limit and limit+1", _update_range, _key),
    Obligation(THEOREM, "broken_update_range_unaligned_base",
               "broken variant: the same claim for a base that is not page-aligned",
               lambda p: _update_range(p, page_aligned=False), _key, variant_of="update_range_inclusive_limit_harmless"),
]
