"""Theorem 3 (no double allocation): the allocator's invariants are inductive, and alloc hands out only free pages.

State (symbolic, every value at once): K chunks of C pages, each grown or not; the
allocation bitmap B and scavenged bitmap S over all K*C pages (an ungrown chunk is modelled
as all allocated and unscavenged, so its summary is 0 as in the runtime); a two-level radix
tree of summaries (a leaf summary per chunk, and a root level whose entries each cover
FANOUT chunks); and searchAddr as a page index, K*C standing for maxSearchAddr. Invariants
(the named predicates of spec/invariants.py, restricted to this abstraction):

  summaries_consistent         every leaf and root entry = summarize_slow of its pages
  search_addr_in_use           searchAddr is in a grown chunk, or is maxSearchAddr
  below_search_addr_allocated  every page below searchAddr is allocated
  scavenged_implies_free       S & B = 0
  ungrown chunks               all allocated, none scavenged

Theorems, each one obligation over all states satisfying the invariants (Inv):
  find         Inv(s), searchAddr != maxSearchAddr  =>  find never throws ("bad summary
               data", "range partially overlaps").
  first fit    Inv(s) => alloc(n) returns the lowest-addressed run of n free pages of the
               whole heap, and fails only when no such run exists (so searchAddr, the
               summaries and the level loop lose no free memory).
  alloc        Inv(s) and alloc(n) returns addr != 0  =>  pages [addr, addr+n) were all free
               in s and lie in grown chunks, and B' = B | [addr, addr+n)   (no double alloc);
               Inv(s) => Inv(alloc(s)) on success and failure; free(addr, n) after it restores B.
  free         Inv(s), [base, base+n) allocated in grown chunks  =>  B' = B \\ range, Inv(s').
  grow         Inv(s), chunk g ungrown  =>  Inv(grow(s, g)).
  allocToCache Inv(s)  =>  Inv(s'), and the cache is exactly the free pages of its block:
               free pages before = free pages after + |cache| (conservation).
  flush        Inv(s), a cache whose pages are allocated  =>  Inv(s'), and conservation.
  scavenge     Inv(s), marking any set of free pages scavenged  =>  Inv(s').
By induction over the sequence of operations (grow, alloc, free, allocToCache, flush,
scavenge) from the empty heap (all invariants hold trivially: nothing grown, searchAddr =
maxSearchAddr... or any in-use value), the invariants hold in every reachable state, and so
no page is ever handed out twice.

Encodings follow mpagealloc.go's alloc (fast path in searchAddr's chunk, then find), find
(the level loop at the root and then in one block of leaves, with base/size, j0 from
searchAddr, the foundFree window and its partial-overlap throw, findMappedAddr), update
(re-summarize leaves, merge into the root), free, grow, and mpagecache.go's allocToCache
and flush.

BOUNDED, honestly: K = 4 chunks of C = 8 pages with page-cache blocks of 4 pages (an
abstraction of 512-page chunks and 64-page blocks), and two summary levels with fan-out 2
(the runtime has 4 or 5 levels with fan-out 8 and a root of 2^summaryL0Bits entries; every
level runs the same loop on merged summaries, which Theorem 2 proves equal to the summary of
the pages below, so the extra levels repeat the step checked here). pallocBits.find inside a
chunk is its specification (lowest fit, first free page), which the model's readable-twin tests
tie to the Go algorithm; its core, findBitRange64 (used by findSmallN), is proved at full
width here (find_bit_range64_is_lowest_run_n*). Discontiguous heaps are covered: any subset of chunks may be grown.
The lift to full size is an argument, not a proof: no step depends on K, C or the block size
beyond alignment (C a multiple of the block, block a power of two).

Broken variants (each must give a counterexample): free without lowering searchAddr;
allocToCache setting searchAddr one past the cache (golang/go#38605); grow without lowering
searchAddr; alloc that does not clear the scavenged bits of the pages it hands out; an
update that skips the root level; a level loop that ignores runs straddling two entries
(alloc is then not first fit); find on stale root summaries (it throws); scavenging
allocated pages; findBitRange64 without its final clamped shift.
"""

from __future__ import annotations

from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs.smt import Goal, Obligation

THEOREM = "no_double_alloc"

K, C, BLOCK = 4, 8, 4
FANOUT = 2  # leaf entries per root entry (levelBits[1] = 1)
ROOTS = K // FANOUT
N = K * C
W = 64  # every quantity as a 64-bit vector; page bitmaps use the low N bits
NONE = (1 << 64) - 1


def bv(v):
    return E.bv(v, W)


def _mask(lo, n):
    """Bits [lo, lo+n) of a 64-bit vector (lo, n symbolic, lo + n <= 64)."""
    ones = smt.If(n == 64, bv(NONE), (bv(1) << n) - 1)
    return ones << lo


HEAP = bv((1 << N) - 1)


def _chunk_bits(B, i):
    """Chunk i's C bits of B, as a 64-bit vector (i symbolic)."""
    return smt.LShR(B, i * C) & bv((1 << C) - 1)


def _summarize_bits(bits, width):
    """summarize_slow of the low `width` bits: (start, max, end) as 64-bit vectors."""
    st, mx, en, n = bv(0), bv(0), bv(0), bv(0)
    for k in range(width):
        b = smt.Extract(k, k, bits) == 1
        st = smt.If(b, st, smt.If(st == n, st + 1, st))
        mx = smt.If(b, mx, E.umax(mx, en + 1))
        en = smt.If(b, bv(0), en + 1)
        n = n + 1
    return st, mx, en


def _chunk_sum(cb):
    """summarize_slow of C bits: (start, max, end) as 64-bit vectors."""
    return _summarize_bits(cb, C)


def _merge(children):
    """mergeSummaries over leaf children of C pages each (64-bit vectors)."""
    start, most, end = children[0]
    for i in range(1, len(children)):
        si, mi, ei = children[i]
        start = smt.If(start == i * C, start + si, start)
        most = E.umax(most, end + si, mi)
        end = smt.If(ei == C, end + C, ei)
    return start, most, end


def _first_fit(cb, n):
    """pallocBits.find's result (spec): lowest p with [p, p+n) free in the chunk, or NONE."""
    r = bv(NONE)
    for p in reversed(range(C)):
        fits = smt.And(smt.ULE(n + p, C), (smt.LShR(cb, p) & _mask(bv(0), n)) == 0)
        r = smt.If(fits, bv(p), r)
    return r


def _first_free(cb):
    """pallocBits.find's new searchIdx (spec): the first free page of the chunk (C if none)."""
    r = bv(C)
    for p in reversed(range(C)):
        r = smt.If(smt.Extract(p, p, cb) == 0, bv(p), r)
    return r


def _grown(G, i):
    return smt.Extract(0, 0, smt.LShR(G, i)) == 1


class State:
    def __init__(self, tag, B=None, S=None, G=None, sa=None, sums=None, roots=None):
        self.B = B if B is not None else smt.BitVec(f"{tag}B", W)
        self.S = S if S is not None else smt.BitVec(f"{tag}S", W)
        self.G = G if G is not None else smt.BitVec(f"{tag}G", W)
        self.sa = sa if sa is not None else smt.BitVec(f"{tag}searchAddr", W)
        self.sums = sums if sums is not None else [
            tuple(smt.BitVec(f"{tag}sum{i}.{f}", W) for f in ("start", "max", "end")) for i in range(K)
        ]
        self.roots = roots if roots is not None else [
            tuple(smt.BitVec(f"{tag}root{r}.{f}", W) for f in ("start", "max", "end")) for r in range(ROOTS)
        ]

    def with_(self, **kw):
        d = dict(B=self.B, S=self.S, G=self.G, sa=self.sa, sums=self.sums, roots=self.roots)
        d.update(kw)
        return State("", **d)

    def resummarize(self, upper=True):
        """(*pageAlloc).update: re-summarize the leaves, then merge them into the root level."""
        sums = [_chunk_sum(_chunk_bits(self.B, bv(i))) for i in range(K)]
        roots = [_merge(sums[r * FANOUT:(r + 1) * FANOUT]) for r in range(ROOTS)] if upper else self.roots
        return self.with_(sums=sums, roots=roots)


# --- the named invariants --------------------------------------------------------------------


def _root_sum(B, r):
    """summarize_slow of root entry r's FANOUT*C pages, directly over the bits."""
    return _summarize_bits(smt.LShR(B, r * FANOUT * C), FANOUT * C)


def summaries_consistent(s):
    leaves = [smt.And(*[a == b for a, b in zip(s.sums[i], _chunk_sum(_chunk_bits(s.B, bv(i))))]) for i in range(K)]
    roots = [smt.And(*[a == b for a, b in zip(s.roots[r], _root_sum(s.B, r))]) for r in range(ROOTS)]
    return smt.And(*leaves, *roots)


def search_addr_in_use(s):
    return smt.Or(s.sa == N, smt.And(smt.ULT(s.sa, N), _grown(s.G, smt.UDiv(s.sa, C))))


def below_search_addr_allocated(s):
    m = _mask(bv(0), smt.If(smt.ULE(s.sa, N), s.sa, bv(N)))
    return s.B & m == m


def scavenged_implies_free(s):
    return s.S & s.B == 0


def ungrown_chunks_unavailable(s):
    parts = [s.G & ~bv((1 << K) - 1) == 0, s.B & ~HEAP == 0, s.S & ~HEAP == 0]
    for i in range(K):
        cm = bv(((1 << C) - 1) << (i * C))
        parts.append(smt.Implies(smt.Not(_grown(s.G, bv(i))), smt.And(s.B & cm == cm, s.S & cm == 0)))
    return smt.And(*parts)


INVARIANTS = {
    "summaries_consistent": summaries_consistent,
    "search_addr_in_use": search_addr_in_use,
    "below_search_addr_allocated": below_search_addr_allocated,
    "scavenged_implies_free": scavenged_implies_free,
    "ungrown_chunks_unavailable": ungrown_chunks_unavailable,
}


def inv(s):
    return smt.And(*[f(s) for f in INVARIANTS.values()])


def _broken(s):
    """Names of the invariants s breaks (for the counterexample printer)."""
    return {name: smt.Not(f(s)) for name, f in INVARIANTS.items()}


# --- operations ------------------------------------------------------------------------------


def _sum_field(s, i, k):
    r = s.sums[K - 1][k]
    for j in reversed(range(K - 1)):
        r = smt.If(i == j, s.sums[j][k], r)
    return r


def _level_scan(entries, j0, n, full, log_pages, ff, straddle=True):
    """One level of (*pageAlloc).find's loop over a block of entries (Go's `for j := j0; ...`).

    entries are (start, max, end) summaries of `full` pages each; j0 symbolic. ff is the
    foundFree window (base, bound, throw). Returns (base, size, dive_j or NONE, ff, entry_pages).
    """
    base, size = bv(0), bv(0)
    stop = smt.BoolVal(False)
    dive_j = bv(NONE)
    for j, (st, mx, en) in enumerate(entries):
        active = smt.And(smt.Not(stop), smt.ULE(j0, j))
        zero = smt.And(st == 0, mx == 0, en == 0)
        nz = smt.And(active, smt.Not(zero))
        ff = (nz, j, ff)  # recorded lazily by the caller (needs the absolute entry address)
        fit = smt.UGE(size + st, n) if straddle else smt.And(size == 0, smt.UGE(st, n))
        take = smt.And(nz, fit)
        dive = smt.And(nz, smt.Not(fit), smt.UGE(mx, n))
        small = smt.Or(size == 0, smt.ULT(st, full))
        restart = smt.And(nz, smt.Not(fit), smt.Not(smt.UGE(mx, n)), small)
        extend = smt.And(nz, smt.Not(fit), smt.Not(smt.UGE(mx, n)), smt.Not(small))
        base = smt.If(smt.And(take, size == 0), bv(j << log_pages), smt.If(restart, bv((j + 1) << log_pages) - en, base))
        size = smt.If(smt.And(active, zero), bv(0),
                      smt.If(take, size + st, smt.If(restart, en, smt.If(extend, size + full, size))))
        dive_j = smt.If(dive, bv(j), dive_j)
        stop = smt.Or(stop, take, dive)
    return base, size, dive_j, ff


def _found_free(win, addr, size):
    """foundFree(addr, size): narrow the window if inside it; flag a partial overlap (a throw)."""
    wb, we, throw = win
    last = addr + size - 1
    inside = smt.And(smt.ULE(wb, addr), smt.ULE(last, we))
    disjoint = smt.Or(smt.ULT(last, wb), smt.ULT(we, addr))
    return smt.If(inside, addr, wb), smt.If(inside, last, we), smt.Or(throw, smt.And(smt.Not(inside), smt.Not(disjoint)))


def _unroll_found_free(win, rec, block_base, entry_pages):
    # rec is the nested (nz, j, rec) chain built by _level_scan, oldest innermost.
    chain = []
    while isinstance(rec, tuple):
        nz, j, rec = rec
        chain.append((nz, j))
    for nz, j in reversed(chain):
        nb, ne, nt = _found_free(win, block_base + j * entry_pages, bv(entry_pages))
        win = (smt.If(nz, nb, win[0]), smt.If(nz, ne, win[1]), smt.If(nz, nt, win[2]))
    return win


def find(s, n, straddle=True):
    """(*pageAlloc).find: the root level, one leaf block, then pallocBits.find in the chunk.

    Returns (addr page index or NONE, new searchAddr candidate, throws): throws is true when
    the runtime would throw ("bad summary data" or "range partially overlaps").
    """
    win = (bv(0), bv(N - 1), smt.BoolVal(False))
    root_pages = FANOUT * C
    # Level 0: the whole root (searchAddr's root entry is in block 0, so j0 is its index).
    j0 = smt.UDiv(s.sa, root_pages)
    base0, size0, dive0, rec0 = _level_scan(s.roots, j0, n, bv(root_pages), (FANOUT * C).bit_length() - 1, None,
                                            straddle)
    win = _unroll_found_free(win, rec0, bv(0), root_pages)
    found0 = smt.UGE(size0, n)
    fail0 = smt.And(smt.Not(found0), dive0 == NONE)
    # Level 1: the FANOUT leaf entries under root entry dive0.
    i1 = dive0 * FANOUT
    leaf_idx = smt.UDiv(s.sa, C)
    j01 = smt.If(leaf_idx & ~bv(FANOUT - 1) == i1, leaf_idx & bv(FANOUT - 1), bv(0))
    block = []
    for j in range(FANOUT):
        block.append(tuple(_select([s.sums[i][k] for i in range(K)], i1 + j) for k in range(3)))
    base1, size1, dive1, rec1 = _level_scan(block, j01, n, bv(C), C.bit_length() - 1, None, straddle)
    win = _unroll_found_free(win, rec1, i1 * C, C)
    found1 = smt.UGE(size1, n)
    bad1 = smt.And(smt.Not(found0), smt.Not(fail0), smt.Not(found1), dive1 == NONE)
    # The chunk: pallocBits.find(npages, 0).
    ci = i1 + dive1
    cb = _chunk_bits(s.B, ci)
    jfit = _first_fit(cb, n)
    bad_chunk = smt.And(smt.Not(found0), smt.Not(fail0), smt.Not(found1), dive1 != NONE, jfit == NONE)
    leaf_first = ci * C + _first_free(cb)
    win_c = _found_free(win, leaf_first, C * (ci + 1) - leaf_first)
    addr = smt.If(found0, base0,
                  smt.If(fail0, bv(NONE), smt.If(found1, i1 * C + base1, ci * C + jfit)))
    used_chunk = smt.And(smt.Not(found0), smt.Not(fail0), smt.Not(found1))
    cand = smt.If(used_chunk, win_c[0], win[0])
    throws = smt.Or(bad1, bad_chunk, win[2], smt.And(used_chunk, win_c[2]))
    # findMappedAddr: the candidate lies in a grown chunk (nonzero summary), so it is kept.
    return smt.If(throws, bv(NONE), addr), smt.If(fail0, bv(N), cand), throws


def _select(xs, i):
    r = xs[-1]
    for j in reversed(range(len(xs) - 1)):
        r = smt.If(i == j, xs[j], r)
    return r


def alloc(s, n, clear_scavenged=True, update_upper=True, straddle=True):
    """(*pageAlloc).alloc(npages): returns (addr page index or NONE, new state)."""
    exhausted = smt.UGE(smt.UDiv(s.sa, C), K)
    ci = smt.UDiv(s.sa, C)
    pi = smt.URem(s.sa, C)
    cb = _chunk_bits(s.B, ci)
    fast = smt.And(smt.Not(exhausted), smt.UGE(C - pi, n), smt.UGE(_sum_field(s, ci, 1), n))
    f_addr = ci * C + _first_fit(cb, n)
    f_cand = ci * C + _first_free(cb)
    s_addr, s_cand, s_throw = find(s, n, straddle)
    addr = smt.If(exhausted, bv(NONE), smt.If(fast, f_addr, s_addr))
    throws = smt.And(smt.Not(exhausted), smt.Not(fast), s_throw)
    cand = smt.If(fast, f_cand, s_cand)
    ok = addr != NONE
    R = _mask(smt.If(ok, addr, bv(0)), smt.If(ok, n, bv(0)))
    B2 = s.B | R
    S2 = s.S & ~R if clear_scavenged else s.S
    sa_fail = smt.If(smt.And(smt.Not(exhausted), n == 1), bv(N), s.sa)
    sa2 = smt.If(ok, smt.If(smt.ULT(s.sa, cand), cand, s.sa), sa_fail)
    return addr, R, s.with_(B=B2, S=S2, sa=sa2).resummarize(upper=update_upper), throws


def free(s, base, n, lower_search_addr=True):
    R = _mask(base, n)
    sa2 = smt.If(smt.ULT(base, s.sa), base, s.sa) if lower_search_addr else s.sa
    return s.with_(B=s.B & ~R, sa=sa2).resummarize()


def grow(s, g, lower_search_addr=True):
    cm = bv((1 << C) - 1) << (g * C)
    gb = g * C
    sa2 = smt.If(smt.ULT(gb, s.sa), gb, s.sa) if lower_search_addr else s.sa
    return s.with_(B=s.B & ~cm, S=s.S | cm, G=s.G | (bv(1) << g), sa=sa2).resummarize()


def alloc_to_cache(s, one_past=False):
    """(*pageAlloc).allocToCache: returns (ok, block base, cache bits, scav bits, new state)."""
    exhausted = smt.UGE(smt.UDiv(s.sa, C), K)
    ci = smt.UDiv(s.sa, C)
    nz = smt.Or(*[x != 0 for x in [_sum_field(s, ci, k) for k in range(3)]])
    j = _first_free(_chunk_bits(s.B, ci))
    fast_base = ci * C + (j & ~bv(BLOCK - 1))
    addr, _, _ = find(s, bv(1))
    slow_ok = addr != NONE
    base = smt.If(nz, fast_base, addr & ~bv(BLOCK - 1))
    ok = smt.And(smt.Not(exhausted), smt.Or(nz, slow_ok))
    blk = _mask(base, bv(BLOCK))
    cache = smt.If(ok, blk & ~s.B, bv(0))
    scav = smt.If(ok, blk & s.S, bv(0))
    B2 = smt.If(ok, s.B | blk, s.B)
    S2 = smt.If(ok, s.S & ~(cache & scav), s.S)
    sa_ok = base + (BLOCK if one_past else BLOCK - 1)
    sa2 = smt.If(ok, sa_ok, smt.If(smt.And(smt.Not(exhausted), smt.Not(nz)), bv(N), s.sa))
    return ok, base, cache, scav, s.with_(B=B2, S=S2, sa=sa2).resummarize()


def flush(s, base, cache, scav):
    B2 = s.B & ~cache
    S2 = s.S | scav
    sa2 = smt.If(smt.ULT(base, s.sa), base, s.sa)
    return s.with_(B=B2, S=S2, sa=sa2).resummarize()


def scavenge(s, X, only_free=True):
    return s.with_(S=s.S | (X & ~s.B & HEAP if only_free else X & HEAP & ~_ungrown_mask(s))).resummarize()


def _ungrown_mask(s):
    m = bv(0)
    for i in range(K):
        m = m | smt.If(_grown(s.G, bv(i)), bv(0), bv(((1 << C) - 1) << (i * C)))
    return m


# --- printing ----------------------------------------------------------------------------------


def _watch_state(s, tag):
    w = {f"{tag}.B": s.B, f"{tag}.S": s.S, f"{tag}.G": s.G, f"{tag}.searchAddr": s.sa}
    for i in range(K):
        for f, x in zip(("start", "max", "end"), s.sums[i]):
            w[f"{tag}.sum{i}.{f}"] = x
    for r in range(ROOTS):
        for f, x in zip(("start", "max", "end"), s.roots[r]):
            w[f"{tag}.root{r}.{f}"] = x
    return w


def _runs(bits, lo, hi):
    out, i = [], lo
    while i < hi:
        if bits >> i & 1:
            j = i
            while j < hi and bits >> j & 1:
                j += 1
            out.append(f"[{i - lo}, {j - lo})")
            i = j
        else:
            i += 1
    return " ".join(out) or "none"


def _fmt_state(v, tag):
    lines = []
    sa = v[f"{tag}.searchAddr"]
    lines.append(f"  {tag}: searchAddr = " + ("maxSearchAddr" if sa == N else f"chunk {sa // C} page {sa % C}"))
    roots = [tuple(v[f"{tag}.root{r}.{f}"] for f in ("start", "max", "end")) for r in range(ROOTS)]
    lines.append(f"    root summaries {roots}")
    for i in range(K):
        grown = v[f"{tag}.G"] >> i & 1
        if not grown:
            lines.append(f"    chunk {i}: not grown")
            continue
        b, sc = v[f"{tag}.B"], v[f"{tag}.S"]
        sm = tuple(v[f"{tag}.sum{i}.{f}"] for f in ("start", "max", "end"))
        lines.append(f"    chunk {i}: allocated pages {_runs(b, i * C, (i + 1) * C)}; scavenged "
                     f"{_runs(sc, i * C, (i + 1) * C)}; summary {sm}")
    return "\n".join(lines)


def _show(before, after, extra=()):
    def show(v):
        out = []
        broken = [k[7:] for k, x in v.items() if k.startswith("broken.") and x]
        for k in extra:
            out.append(f"{k} = {v[k]}")
        out.append(_fmt_state(v, before))
        if after:
            out.append(_fmt_state(v, after))
        if broken:
            out.append("  breaks: " + ", ".join(broken))
        return "\n".join(out)

    return show


def _goal(s, s2, concl, extra_watch, hyps=()):
    watch = _watch_state(s, "before") | _watch_state(s2, "after") | dict(extra_watch)
    watch |= {f"broken.{k}": x for k, x in _broken(s2).items()}
    return Goal([inv(s), *hyps], concl, watch, _show("before", "after", tuple(extra_watch)))


# --- obligations ------------------------------------------------------------------------------


def _alloc_safe(p, part="both", **kw):
    s, n = State("s."), smt.BitVec("npages", W)
    addr, R, s2, throws = alloc(s, n, **kw)
    ok = addr != NONE
    s3 = free(s2, addr, n)
    safe = smt.Implies(ok, smt.And(smt.ULE(addr + n, N), s.B & R == 0, s2.B == s.B | R, s3.B == s.B))
    if part in INVARIANTS:
        concl = INVARIANTS[part](s2)
    else:
        concl = {"safety": smt.And(smt.Not(throws), safe), "invariants": inv(s2),
                 "both": smt.And(smt.Not(throws), safe, inv(s2))}[part]
    return _goal(s, s2, concl, {"npages": n, "addr": addr, "throws": throws},
                 hyps=[smt.UGE(n, 1), smt.ULE(n, N)])


def _free(p, **kw):
    s, base, n = State("s."), smt.BitVec("base", W), smt.BitVec("npages", W)
    R = _mask(base, n)
    s2 = free(s, base, n, **kw)
    hyps = [smt.UGE(n, 1), smt.ULE(n, N), smt.ULE(base + n, N), s.B & R == R, _ungrown_mask(s) & R == 0]
    return _goal(s, s2, smt.And(s2.B == s.B & ~R, inv(s2)), {"base": base, "npages": n}, hyps)


def _grow(p, **kw):
    s, g = State("s."), smt.BitVec("chunk", W)
    s2 = grow(s, g, **kw)
    return _goal(s, s2, inv(s2), {"chunk": g}, [smt.ULT(g, K), smt.Not(_grown(s.G, g))])


def _alloc_to_cache(p, **kw):
    s = State("s.")
    ok, base, cache, scav, s2 = alloc_to_cache(s, **kw)
    # Free pages before = free pages after, disjointly united with the cache (so counts add up).
    conserve = smt.And((~s.B & HEAP) == (~s2.B & HEAP) | cache, ~s2.B & cache == 0)
    exact = smt.Implies(ok, smt.And(s2.B == s.B | cache, s.B & cache == 0))
    return _goal(s, s2, smt.And(inv(s2), conserve, exact), {"ok": ok, "base": base, "cache": cache})


def _flush(p):
    s, base, cache, scav = State("s."), smt.BitVec("base", W), smt.BitVec("cache", W), smt.BitVec("scav", W)
    blk = _mask(base, bv(BLOCK))
    hyps = [
        smt.ULT(base, N), smt.URem(base, BLOCK) == 0, _grown(s.G, smt.UDiv(base, C)),
        cache & ~blk == 0, s.B & cache == cache, scav & ~cache == 0,
    ]
    s2 = flush(s, base, cache, scav)
    conserve = smt.And((~s2.B & HEAP) == (~s.B & HEAP) | cache, ~s.B & cache == 0)
    return _goal(s, s2, smt.And(inv(s2), conserve), {"base": base, "cache": cache, "scav": scav}, hyps)


def _scavenge(p, **kw):
    s, X = State("s."), smt.BitVec("release", W)
    s2 = scavenge(s, X, **kw)
    return _goal(s, s2, inv(s2), {"release": X})


def _clear_scav(p):
    return _alloc_safe(p, clear_scavenged=False)


def _find_with_stale_roots(p):
    # Broken variant: root summaries unconstrained (stale); find must then be able to throw.
    s, n = State("s."), smt.BitVec("npages", W)
    _, _, throws = find(s, n)
    hyps = [f(s) for k, f in INVARIANTS.items() if k != "summaries_consistent"]
    hyps += [smt.And(*[a == b for a, b in zip(s.sums[i], _chunk_sum(_chunk_bits(s.B, bv(i))))]) for i in range(K)]
    hyps += [smt.UGE(n, 1), smt.ULE(n, N), s.sa != N]
    return Goal(hyps, smt.Not(throws), _watch_state(s, "before") | {"npages": n}, _show("before", None, ("npages",)))


def _fit_starts(B, n):
    """Bit p set iff pages [p, p+n) are all free and inside the heap (the abstract spec's fits)."""
    free = ~B & HEAP
    runs = free
    for t in range(1, N):
        runs = runs & smt.If(smt.ULT(bv(t), n), smt.LShR(free, t), bv(NONE))
    return runs


def _alloc_first_fit(p, **kw):
    s, n = State("s."), smt.BitVec("npages", W)
    addr, R, s2, throws = alloc(s, n, **kw)
    fits = _fit_starts(s.B, n)
    ok = addr != NONE
    lowest = E.trailing_zeros64(fits)
    concl = smt.If(ok, addr == lowest, fits == 0)
    return Goal([inv(s), smt.UGE(n, 1), smt.ULE(n, N)], concl,
                _watch_state(s, "before") | {"npages": n, "addr": addr, "lowest_fit": lowest},
                _show("before", None, ("npages", "addr", "lowest_fit")))


def _find_never_throws(p):
    s, n = State("s."), smt.BitVec("npages", W)
    _, _, throws = find(s, n)
    return Goal([inv(s), smt.UGE(n, 1), smt.ULE(n, N), s.sa != N], smt.Not(throws),
                _watch_state(s, "before") | {"npages": n}, _show("before", None, ("npages",)))


def _no_upper_update(p):
    return _alloc_safe(p, update_upper=False)


def _find_bit_range64(p, impl=E.find_bit_range64, lo=1, hi=64):
    # Full width: the run-shrinking loop finds the lowest run of n ones, for every c and n.
    c, n = smt.BitVec("c", 64), smt.BitVec("n", 64)
    got, done = impl(c, n)
    spec = E.find_bit_range64_slow(c, n)
    return Goal(
        [smt.UGE(n, lo), smt.ULE(n, hi)],
        smt.And(done, smt.Or(got == spec, smt.And(smt.UGE(got, 64), spec == 64))),
        {"c": c, "n": n, "got": got, "want": spec},
        lambda v: f"findBitRange64({v['c']:#018x}, {v['n']}) = {v['got']}, lowest run of {v['n']} ones is at {v['want']}",
    )


def _find_bit_range64_no_clamp(c, n):
    # Broken variant: always shift by k, never clamp the last shift to p.
    p, k = n - 1, E.bv(1)
    for _ in range(8):
        active = smt.UGT(p, 0)
        c = smt.If(active, c & smt.LShR(c, k & 63), c)
        p = smt.If(active, smt.If(smt.ULE(p, k), E.bv(0), p - k), p)
        k = smt.If(active, k * 2, k)
    return E.trailing_zeros64(c), smt.BoolVal(True)


OBLIGATIONS = [
    Obligation(THEOREM, "alloc_returns_only_free_pages",
               "alloc hands out only free pages in grown chunks, marks exactly them, never throws; free undoes it",
               lambda p: _alloc_safe(p, "safety")),
    # alloc is the costliest step, so each invariant is its own obligation (the pool shares them).
    *[Obligation(THEOREM, f"alloc_preserves_{name}", f"alloc (success or failure) keeps {name}",
                 lambda p, name=name: _alloc_safe(p, name)) for name in INVARIANTS],
    Obligation(THEOREM, "find_never_throws",
               "under Inv, find never reaches \"bad summary data\" or \"range partially overlaps\"",
               _find_never_throws),
    Obligation(THEOREM, "alloc_is_address_ordered_first_fit",
               "alloc returns the lowest-addressed run of n free pages, and fails only when there is none",
               _alloc_first_fit),
    Obligation(THEOREM, "free_restores_and_preserves_invariants",
               "free of an allocated range clears exactly it and keeps Inv", _free),
    Obligation(THEOREM, "grow_preserves_invariants", "growing an ungrown chunk keeps Inv", _grow),
    Obligation(THEOREM, "alloc_to_cache_conserves_and_preserves_invariants",
               "allocToCache takes exactly the free pages of one block into the cache and keeps Inv",
               _alloc_to_cache),
    Obligation(THEOREM, "flush_conserves_and_preserves_invariants",
               "flushing a cache returns exactly its pages and keeps Inv", _flush),
    Obligation(THEOREM, "scavenge_preserves_invariants", "marking free pages scavenged keeps Inv", _scavenge),
    # Split by n so the pool's workers share the work (one obligation for n in [1, 64] takes 30 s).
    *[Obligation(THEOREM, f"find_bit_range64_is_lowest_run_n{lo}_{hi}",
                 f"findBitRange64(c, n) is the lowest run of n ones in c (64 bits, every c, n in [{lo}, {hi}])",
                 lambda p, lo=lo, hi=hi: _find_bit_range64(p, lo=lo, hi=hi))
      for lo, hi in [(1, 8), (9, 16), (17, 32), (33, 64)]],
    Obligation(THEOREM, "broken_find_bit_range64_unclamped_shift",
               "broken variant: findBitRange64 always shifts by k (overshoots the run length)",
               lambda p: _find_bit_range64(p, _find_bit_range64_no_clamp), variant_of="find_bit_range64_is_lowest_run_n1_8"),
    Obligation(THEOREM, "broken_free_without_search_addr_update", "broken variant: free does not lower searchAddr",
               lambda p: _free(p, lower_search_addr=False), variant_of="free_restores_and_preserves_invariants"),
    Obligation(THEOREM, "broken_alloc_to_cache_one_past", "broken variant: allocToCache sets searchAddr one past the "
               "cache (golang/go#38605)", lambda p: _alloc_to_cache(p, one_past=True),
               variant_of="alloc_to_cache_conserves_and_preserves_invariants"),
    Obligation(THEOREM, "broken_grow_without_search_addr_update", "broken variant: grow does not lower searchAddr",
               lambda p: _grow(p, lower_search_addr=False), variant_of="grow_preserves_invariants"),
    Obligation(THEOREM, "broken_alloc_keeps_scavenged_bits", "broken variant: alloc does not clear scavenged bits",
               _clear_scav, variant_of="alloc_preserves_scavenged_implies_free"),
    Obligation(THEOREM, "broken_find_ignores_runs_straddling_entries",
               "broken variant: find's level loop never joins one entry's end to the next entry's start",
               lambda p: _alloc_first_fit(p, straddle=False), variant_of="alloc_is_address_ordered_first_fit"),
    Obligation(THEOREM, "broken_find_trusts_stale_root_summaries",
               "broken variant: with stale root summaries find throws \"bad summary data\"",
               _find_with_stale_roots, variant_of="find_never_throws"),
    Obligation(THEOREM, "broken_alloc_update_skips_root_level",
               "broken variant: alloc's update re-summarizes the leaves but not the root level",
               _no_upper_update, variant_of="alloc_preserves_summaries_consistent"),
    Obligation(THEOREM, "broken_scavenge_allocated_pages", "broken variant: scavenging ignores the allocation bitmap",
               lambda p: _scavenge(p, only_free=False), variant_of="scavenge_preserves_invariants"),
]
