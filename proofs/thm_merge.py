"""Theorem 2 (summary merge): merged summaries are the summaries of the concatenated pages.

Let a summary of a run of n pages be (start, max, end, n): free pages at the bottom, longest
free run, free pages at the top. summarize_slow(x) is the left fold of `snoc` (append one
page) from (0,0,0,0); `concat` is the pairwise merge (smt_encode.summary_concat).

Unbounded part (integers, every length, platform-independent):
  (wf)    WF(0,0,0,0), and WF(S) => WF(snoc(S, b)): every summary of a page run is WF.
  (id)    WF(S) => concat(S, (0,0,0,0)) = S = concat((0,0,0,0), S)   (identities)
  (step)  WF(A), WF(B) => snoc(concat(A, B), b) = concat(A, snoc(B, b))
  (assoc) WF(A), WF(B), WF(C) => concat(concat(A,B),C) = concat(A,concat(B,C))
  (close) WF(A), WF(B) => WF(concat(A, B))
  (go)    for 8 WF children of the same width w > 0 (w symbolic, unbounded), the Go loop
          mergeSummaries(children, log w) = concat(...concat(c0, c1)..., c7).
  The lift: summarize_slow(x ++ y) = concat(summarize_slow(x), summarize_slow(y)) for all
  page runs x, y, by induction on |y|: |y| = 0 is (id); y ++ [b] is (step) applied to the
  induction hypothesis. With (go) and (assoc), every interior summary the runtime computes
  is summarize_slow of the pages below it, by induction on the level (leaves: the word-level
  part below).

Full-width part (bit-vectors, per platform):
  (level l)  for each level l > 0 and 2^levelBits[l] (8) WF children of 2^levelLogPages[l] pages, the merged
             parent is a WF summary of 2^levelLogPages[l-1] pages that is valid for packing
             (Theorem 1's valid()), its max reaching maxPackedValue only at the root
             (levelLogPages[0] = logMaxPackedValue on every platform). With Theorem 1 (a) on
             the children and no uint overflow (all values <= maxPackedValue < 2^63), Go's
             packed mergeSummaries is therefore pack(concat-fold(unpacked children)); the tie
             tests check the bit-vector encoding of the packed loop against the model.
  (word)     summarize_slow of any 64-bit word x != 0 is (tz(x), max(tz, lz, interior(x)),
             lz(x)), interior being the longest zero run strictly inside the word: start and
             end at full width by bit-blasting; max (and the bound tz+lz+interior <= 62 that
             the early exit relies on) by induction over the bits, stepping summarize_slow's
             fold and the interior fold together under a lockstep invariant.
  (chunk)    Go's first pass plus early exit over the pallocChunkPages/64 words equals the
             concat-fold of the word summaries (integers over abstract words).
  (shrink)   the "shrink runs" loop turns most into max(most, interior(x)) and terminates
             within its unrolling bound. BOUNDED: proved at word width 8 (and 16 with
             `palloc prove --slow`, about 14 CPU s); the Go loop is width-generic (shifts
             masked by width-1, constants 64 and 62 as width and width-2). At 64 bits the
             solver does not finish in 2 minutes, so the full-width word loop is covered by
             the tie tests and the model's summarize/summarize_slow property tests, not by
             this proof. (findBitRange64, which uses the same run-shrinking trick, is proved
             at full width in Theorem 3.)
  Together: summarize(chunk) = summarize_slow(chunk) for 512-page (64 on wasm) chunks.

Broken variants: a merge that always takes the child's end (forgets the fully-free extension),
and a summarize that never looks inside words, must both come out counterexample.
"""

from __future__ import annotations

from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs.smt import Goal, Obligation

THEOREM = "merge"


def _sum(tag):
    return tuple(smt.Int(f"{tag}{f}") for f in ("start", "max", "end", "n"))


def _watch(**sums):
    return {f"{t}.{f}": x for t, s in sums.items() for f, x in zip(("start", "max", "end", "n"), s)}


def _fmt(v, t):
    return f"{t}=(start={v[t + '.start']}, max={v[t + '.max']}, end={v[t + '.end']}) over {v[t + '.n']} pages"


def _show(*tags):
    return lambda v: "; ".join(_fmt(v, t) for t in tags)


WF = E.summary_well_formed
ZERO = (smt.IntVal(0),) * 4


def _eq(a, b):
    return smt.And(*[x == y for x, y in zip(a, b)])


def _wf_inductive(p):
    S, b = _sum("S"), smt.Bool("allocated")
    return Goal([WF(S)], smt.And(WF(ZERO), WF(E.summary_snoc(S, b))), _watch(S=S) | {"allocated": b}, _show("S"))


def _identity(p):
    S = _sum("S")
    return Goal([WF(S)], _eq(E.summary_concat(S, ZERO), S), _watch(S=S), _show("S"))


def _left_identity(p):
    S = _sum("S")
    return Goal([WF(S)], _eq(E.summary_concat(ZERO, S), S), _watch(S=S), _show("S"))


def _step(p, concat=E.summary_concat):
    A, B, b = _sum("A"), _sum("B"), smt.Bool("allocated")
    return Goal(
        [WF(A), WF(B)],
        _eq(E.summary_snoc(concat(A, B), b), concat(A, E.summary_snoc(B, b))),
        _watch(A=A, B=B) | {"allocated": b},
        lambda v: _show("A", "B")(v) + f"; appended page {'allocated' if v['allocated'] else 'free'}",
    )


def _assoc(p):
    A, B, C = _sum("A"), _sum("B"), _sum("C")
    c = E.summary_concat
    return Goal([WF(A), WF(B), WF(C)], _eq(c(c(A, B), C), c(A, c(B, C))), _watch(A=A, B=B, C=C), _show("A", "B", "C"))


def _closed(p):
    A, B = _sum("A"), _sum("B")
    return Goal([WF(A), WF(B)], WF(E.summary_concat(A, B)), _watch(A=A, B=B), _show("A", "B"))


def _children(n, width):
    kids = [_sum(f"c{i}") for i in range(n)]
    hyps = [smt.And(WF(k), k[3] == width) for k in kids]
    return kids, hyps


def _go_loop(p, merge=E.merge_summaries_int):
    w = smt.Int("width")
    kids, hyps = _children(8, w)
    fold = kids[0]
    for k in kids[1:]:
        fold = E.summary_concat(fold, k)
    got = merge(kids, w)
    return Goal(
        [w > 0] + hyps,
        smt.And(got[0] == fold[0], got[1] == fold[1], got[2] == fold[2]),
        _watch(**{f"c{i}": k for i, k in enumerate(kids)}),
        _show(*[f"c{i}" for i in range(8)]),
    )


def _wrong_merge_int(sums, width):
    # Broken variant: takes the last child's end even when that child is fully free.
    start, most, end = sums[0][:3]
    for i in range(1, len(sums)):
        si, mi, ei = sums[i][:3]
        start = smt.If(start == i * width, start + si, start)
        most = E.imax(most, end + si, mi)
        end = ei
    return start, most, end


def _level(l):
    """A level-(l-1) entry merged from 8 WF level-l children is a valid packed summary."""

    def build(p):
        child_log = p.level_log_pages[l]
        width = smt.IntVal(1 << child_log)
        nkids = 1 << p.level_bits[l]
        kids = [_sum(f"c{i}") for i in range(nkids)]
        hyps = [smt.And(WF(k), k[3] == width) for k in kids]
        got = E.merge_summaries_int(kids, width)
        M = smt.IntVal(p.max_packed_value)
        s, m, e = got
        parent_pages = smt.IntVal(1 << p.level_log_pages[l - 1])
        concl = smt.And(
            WF((s, m, e, parent_pages)),
            m <= M, smt.Implies(m == M, smt.And(s == M, e == M)),
            m < M if l - 1 > 0 else smt.BoolVal(True),
        )
        watch = _watch(**{f"c{i}": k for i, k in enumerate(kids)}) | {"got.start": s, "got.max": m, "got.end": e}
        return Goal(
            hyps,
            concl,
            watch,
            lambda v: f"level {l - 1} entry from {nkids} children of {1 << child_log} pages: "
            + ", ".join(f"({v[f'c{i}.start']},{v[f'c{i}.max']},{v[f'c{i}.end']})" for i in range(nkids))
            + f" merges to ({v['got.start']},{v['got.max']},{v['got.end']}), maxPackedValue={p.max_packed_value}",
        )

    return build


def _root_reaches_max_packed(p):
    # The root level's page count is exactly maxPackedValue (and lower levels are below it).
    lp = [smt.IntVal(x) for x in p.level_log_pages]
    L = smt.IntVal(p.log_max_packed_value)
    return Goal(
        [],
        smt.And(lp[0] == L, *[x < L for x in lp[1:]]),
        {},
        lambda v: f"levelLogPages={list(p.level_log_pages)} vs logMaxPackedValue={p.log_max_packed_value}",
    )


def _word_start(p):
    x = smt.BitVec("word", 64)
    st, _, en = E.summarize_slow_word(x)
    return Goal([x != 0], st == E.trailing_zeros64(x), {"word": x}, lambda v: f"word {v['word']:#018x}")


def _word_end(p):
    x = smt.BitVec("word", 64)
    st, _, en = E.summarize_slow_word(x)
    return Goal([x != 0], en == E.leading_zeros64(x), {"word": x}, lambda v: f"word {v['word']:#018x}")


def _word_lockstep_inv(S, seen, cur, best):
    st, mx, en, n = S
    return smt.And(
        WF(S), cur >= 0, best >= 0,
        smt.If(
            seen,
            smt.And(cur == en, mx == E.imax(st, best, en), st < n,
                    smt.Or(smt.And(best == 0, st + en + 1 <= n), smt.And(best > 0, st + en + best + 2 <= n))),
            smt.And(st == n, en == n, mx == n, cur == n, best == 0),
        ),
    )


def _word_max_induction(p):
    # summarize_slow's fold and interior_max_slow's fold, stepped together over one more bit.
    S, b = _sum("S"), smt.Bool("allocated")
    seen, cur, best = smt.Bool("seen"), smt.Int("cur"), smt.Int("best")
    S2 = E.summary_snoc(S, b)
    best2 = smt.If(smt.And(b, seen), E.imax(best, cur), best)
    cur2 = smt.If(b, smt.IntVal(0), cur + 1)
    seen2 = smt.Or(seen, b)
    init = _word_lockstep_inv(ZERO, smt.BoolVal(False), smt.IntVal(0), smt.IntVal(0))
    step = _word_lockstep_inv(S2, seen2, cur2, best2)
    st, mx, en, n = S
    fin = smt.Implies(seen, smt.And(mx == E.imax(st, en, best), st + en <= n - 1,
                                    smt.Or(st + en + best <= n - 2, smt.And(st + en == n - 1, best == 0))))
    return Goal([_word_lockstep_inv(S, seen, cur, best)], smt.And(init, step, fin),
                _watch(S=S) | {"seen": seen, "cur": cur, "best": best, "allocated": b},
                lambda v: _fmt(v, "S") + f"; interior fold seen={v['seen']} cur={v['cur']} best={v['best']}")


def _abstract_words(nw):
    ws, hyps = [], []
    for i in range(nw):
        z, t, l, it = smt.Bool(f"w{i}.zero"), smt.Int(f"w{i}.tz"), smt.Int(f"w{i}.lz"), smt.Int(f"w{i}.interior")
        hyps.append(smt.Or(z, smt.And(t >= 0, l >= 0, t + l <= 63, it >= 0,
                                      smt.Or(it + t + l <= 62, smt.And(t + l == 63, it == 0)))))
        ws.append((z, t, l, it))
    return ws, hyps


def _chunk(p, summarize=E.summarize_words):
    nw = p.palloc_chunk_pages // 64
    ws, hyps = _abstract_words(nw)
    full = smt.IntVal(64)
    sums = [
        (smt.If(z, full, t), smt.If(z, full, E.imax(t, l, it)), smt.If(z, full, l), full) for z, t, l, it in ws
    ]
    fold = sums[0]
    for s in sums[1:]:
        fold = E.summary_concat(fold, s)
    got = summarize(ws)
    watch = {f"w{i}.{f}": x for i, w in enumerate(ws) for f, x in zip(("zero", "tz", "lz", "interior"), w)}
    watch |= {"got.start": got[0], "got.max": got[1], "got.end": got[2]}

    def show(v):
        words = ", ".join(
            "zero" if v[f"w{i}.zero"] else f"(tz={v[f'w{i}.tz']},lz={v[f'w{i}.lz']},interior={v[f'w{i}.interior']})"
            for i in range(nw)
        )
        return f"chunk words {words}: summarize gives ({v['got.start']},{v['got.max']},{v['got.end']})"

    return Goal(hyps, smt.And(got[0] == fold[0], got[1] == fold[1], got[2] == fold[2]), watch, show)


def _summarize_never_looks_inside(ws):
    got = E.summarize_words([(z, t, l, smt.IntVal(0)) for z, t, l, _ in ws])
    return got


SHRINK_WIDTH, SHRINK_STEPS = 8, 10


def _shrink(p, width=SHRINK_WIDTH, steps=SHRINK_STEPS):
    x, m = smt.BitVec("word", width), smt.BitVec("most", width)
    most, done = E.summarize_shrink_runs(x, m, steps)
    inner = E.interior_max_slow(x)
    return Goal(
        [x != 0, smt.ULE(m, width - 2)],
        smt.And(done, most == E.umax(m, inner)),
        {"word": x, "most": m, "got": most, "done": done},
        lambda v: f"{width}-bit word {v['word']:#x} with most={v['most']}: shrink loop gives {v['got']} "
        f"(finished within {steps} steps: {v['done']})",
    )


def _chunk_key(p):
    return (p.palloc_chunk_pages,)


def _level_key(l):
    return lambda p: (p.log_max_packed_value, p.level_log_pages[l], p.level_bits[l])


def _level_obligation(l):
    return Obligation(THEOREM, f"merge_summaries_level_{l}_fits_packed",
                      f"merging the level-{l} children of an entry gives a WF summary valid for packing",
                      _level(l), _level_key(l), applies=lambda p: l < p.summary_levels)


OBLIGATIONS = [
    Obligation(THEOREM, "well_formed_inductive", "WF(0,0,0,0) and WF is preserved by appending a page", _wf_inductive),
    Obligation(THEOREM, "concat_right_identity", "concat(S, empty) = S", _identity),
    Obligation(THEOREM, "concat_left_identity", "concat(empty, S) = S", _left_identity),
    Obligation(THEOREM, "concat_snoc_step", "snoc(concat(A,B),b) = concat(A, snoc(B,b)): the induction step", _step),
    Obligation(THEOREM, "concat_associative", "concat is associative on WF summaries", _assoc),
    Obligation(THEOREM, "concat_preserves_well_formed", "WF(A), WF(B) => WF(concat(A,B))", _closed),
    Obligation(THEOREM, "merge_summaries_is_concat_fold",
               "Go's mergeSummaries loop over 8 children of any width w = left fold of concat", _go_loop),
    *[_level_obligation(l) for l in range(1, 5)],
    Obligation(THEOREM, "root_level_reaches_max_packed_value",
               "levelLogPages[0] = logMaxPackedValue and every lower level is below it", _root_reaches_max_packed,
               lambda p: (tuple(p.level_log_pages), p.log_max_packed_value)),
    Obligation(THEOREM, "summarize_word_start_is_trailing_zeros", "summarize_slow(word).start = tz(word), 64 bits",
               _word_start),
    Obligation(THEOREM, "summarize_word_end_is_leading_zeros", "summarize_slow(word).end = lz(word), 64 bits",
               _word_end),
    Obligation(THEOREM, "summarize_word_max_by_induction",
               "summarize_slow(word).max = max(tz, lz, interior), and tz+lz+interior fits: induction over bits",
               _word_max_induction),
    Obligation(THEOREM, "summarize_chunk_is_word_concat",
               "summarize's word pass = concat-fold of the word summaries over the chunk", _chunk, _chunk_key),
    Obligation(THEOREM, "summarize_shrink_runs_w8",
               "shrink-runs loop yields max(most, interior) (word width 8, bounded)", _shrink),
    Obligation(THEOREM, "summarize_shrink_runs_w16",
               "shrink-runs loop yields max(most, interior) (word width 16, bounded; about 14 CPU s)",
               lambda p: _shrink(p, 16, 16), slow=True),
    Obligation(THEOREM, "broken_merge_forgets_free_child", "broken variant: merge that always takes the child's end",
               lambda p: _go_loop(p, _wrong_merge_int), variant_of="merge_summaries_is_concat_fold"),
    Obligation(THEOREM, "broken_summarize_never_looks_inside_words",
               "broken variant: summarize without the shrink-runs pass",
               lambda p: _chunk(p, _summarize_never_looks_inside), _chunk_key, variant_of="summarize_chunk_is_word_concat"),
]
