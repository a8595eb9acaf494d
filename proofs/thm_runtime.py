"""Theorem 5 (runtime): the proof suite's theorems discharged on the runtime's own Go code, and
the model proved equal to it.

The Go functions are those of the toolchain under test (Go 1.21.13-1.27.3; src/runtime/
mpagealloc.go, mpallocbits.go, mgcscavenge.go, mranges.go), translated by goref/goast and
proofs/smt_go.py (GoImpl gives them the call shapes of proofs/smt_encode.py). Two families:

* runtime.<theorem>: a theorem of thm_packing / thm_merge / thm_no_double_alloc /
  thm_addresses stated once (the same goal builder) with the runtime's functions in place of
  the model's encodings; plus fillAligned against its specification (each m-aligned group of x
  comes out all ones exactly when it had a set bit), mergeSummaries against the concatenation
  fold on packed codes, and summarize against the run-length definition (summarizeSlow).
* runtime.model_equals.<function>: the model's SMT encoding equals the Go function for every
  input meeting the function's precondition (tv_functions.toml). MODEL_FUNCTIONS says which
  model functions are so proved; the rest are only tested (tie tests, lockstep fuzzing).

Why they hold: as the model's theorems, since the Go code computes the same functions; the
model_equals obligations are bit-blasted over all inputs at once (no induction).

These obligations need a Go toolchain (goast), so they are not in `palloc prove`'s default set:
`palloc prove --runtime` runs them per platform (runner.RUNTIME_MODULES).
"""

from __future__ import annotations

import functools

from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs import thm_addresses, thm_no_double_alloc, thm_packing
from palloc.proofs.smt import Goal, Obligation

THEOREM = "runtime"


@functools.cache
def _prog(name: str, go_version: str):
    from palloc.goref.toolchain import find_toolchain
    from palloc.proofs import tv

    name = name.split("+")[0]  # a platform at another Go version is labelled linux/amd64+go_version=...
    tc = find_toolchain()
    [prog] = tv.programs(tc, [name])
    return prog, tv.specs_for(prog)


def go(p):
    """A fresh GoImpl of platform p's runtime (the installed toolchain's)."""
    from palloc.proofs.smt_go import GoImpl

    prog, specs = _prog(p.name, p.go_version)
    return GoImpl(prog, specs)


def _with_ok(build):
    """Wraps a goal builder over an implementation so the translation must also finish every loop
    and reach no error outcome."""

    def b(p):
        g = go(p)
        goal = build(p, g)
        goal.concl = smt.And(goal.concl, g.ok())
        return goal

    return b


# --- fillAligned -------------------------------------------------------------------------------


def _fill_aligned(p, impl):
    x = smt.BitVec("x", 64)
    hyps, concl = [], []
    for lg in range(7):
        m = 1 << lg
        got = impl.fill_aligned(x, smt.BitVecVal(m, 64))
        for gi in range(64 // m):
            grp = smt.Extract(gi * m + m - 1, gi * m, x)
            out = smt.Extract(gi * m + m - 1, gi * m, got)
            concl.append(smt.If(grp != 0, out == smt.BitVecVal((1 << m) - 1, m), out == 0))
    return Goal(hyps, smt.And(*concl), {"x": x},
                lambda v: f"fillAligned({v['x']:#018x}, m) is not the group-wise fill for some m in 1..64")


# --- mergeSummaries on packed codes --------------------------------------------------------------


def _merge_level(l):
    def build(p, impl):
        lg = p.level_log_pages[l]
        n = 1 << lg
        kids, hyps, trip = [], [], []
        for i in range(8):
            s, m, e = smt.BitVec(f"c{i}start", 64), smt.BitVec(f"c{i}max", 64), smt.BitVec(f"c{i}end", 64)
            trip.append((s, m, e, E.bv(n)))
            hyps.append(E.summary_well_formed((s, m, e, E.bv(n))))
            kids.append(E.pack_palloc_sum(p, s, m, e))
        fold = trip[0]
        for k in trip[1:]:
            fold = E.summary_concat(fold, k)
        got = impl.palloc_sum_unpack(p, impl.merge_summaries(p, kids, lg))
        return Goal(hyps, smt.And(got[0] == fold[0], got[1] == fold[1], got[2] == fold[2]),
                    {f"c{i}": kids[i] for i in range(8)},
                    lambda v: "children " + ", ".join(f"{v[f'c{i}']:#x}" for i in range(8)) +
                    f" (level {l}): mergeSummaries is not their concatenation")

    return build


# --- summarize against the run-length definition -------------------------------------------------


def _summarize_run_length(p, impl):
    nw = p.palloc_chunk_pages // 64
    words = [smt.BitVec(f"b{i}", 64) for i in range(nw)]
    bits = []
    for w in words:
        bits += E.word_bits(w)
    st, mx, en, _ = E.summarize_slow_bits(bits)
    s, m, e, ok = impl.summarize(words)
    concl = smt.And(ok, smt.BV2Int(s) == st, smt.BV2Int(m) == mx, smt.BV2Int(e) == en)
    return Goal([], concl, {f"b{i}": w for i, w in enumerate(words)},
                lambda v: "bitmap " + ", ".join(f"{v[f'b{i}']:#x}" for i in range(nw)) +
                ": summarize differs from summarizeSlow")


# --- the model equals the runtime ------------------------------------------------------------------

# Go function -> (the model's encoding, how to call it). Only these are proved equal; the other
# translated functions are tied to the runtime by tests only (test_tv_ties.py), and the model's
# Python functions to these encodings by tests/proofs/test_ties.py.
MODEL_FUNCTIONS = {
    "packPallocSum": "pack_palloc_sum",
    "pallocSum.start": "palloc_sum_start",
    "pallocSum.max": "palloc_sum_max",
    "pallocSum.end": "palloc_sum_end",
    "pallocSum.unpack": "palloc_sum_unpack",
    "mergeSummaries": "merge_summaries",
    "findBitRange64": "find_bit_range64",
    "chunkIndex": "chunk_index",
    "chunkBase": "chunk_base",
    "chunkPageIndex": "chunk_page_index",
    "chunkIdx.l1": "chunk_idx_l1",
    "chunkIdx.l2": "chunk_idx_l2",
    "offAddrToLevelIndex": "off_addr_to_level_index",
    "levelIndexToOffAddr": "level_index_to_off_addr",
    "addrsToSummaryRange": "addrs_to_summary_range",
    "blockAlignSummaryRange": "block_align_summary_range",
    "offAddr.add": "off_addr_add",
    "offAddr.diff": "off_addr_diff",
    "offAddr.lessThan": "off_addr_less_than",
    "offAddr.lessEqual": "off_addr_less_equal",
}


def _bv(x, w):
    if x.size() == w:
        return x
    return smt.ZeroExt(w - x.size(), x) if x.size() < w else smt.Extract(w - 1, 0, x)


def _eq(a, b):
    if isinstance(a, tuple):
        return smt.And(*[_eq(x, y) for x, y in zip(a, b)])
    if not hasattr(a, "size"):  # a Bool
        return a == b
    w = max(a.size(), b.size())
    return _bv(a, w) == _bv(b, w)


def _model_equals(fname):
    def build(p):
        from palloc.proofs import smt_go as G

        prog, specs = _prog(p.name, p.go_version)
        sp = specs[fname]
        args, gins = G.symbolic_inputs(prog, fname, sp)
        hyps = [G.precondition(prog, sp, args, gins)]
        impl = G.GoImpl(prog, specs)
        W, A = 64, p.ptr_bits
        a = {k: (v["a"] if isinstance(v, dict) and "a" in v else v) for k, v in args.items()}
        model = MODEL_FUNCTIONS[fname]
        concl = []
        levels = range(p.summary_levels)
        if fname == "mergeSummaries":
            # One claim per level the runtime merges at (logMaxPagesPerSum = levelLogPages[l]).
            for l in range(1, p.summary_levels):
                lg = p.level_log_pages[l]
                sums = [_bv(x, W) for x in a["sums"]]
                wf = G.Pre({"sums": a["sums"]}, prog.consts).eval(
                    " and ".join(f"wf_sum(sums[{i}], {1 << lg})" for i in range(8)))
                concl.append(smt.Implies(wf, impl.merge_summaries(p, sums, lg) == E.merge_summaries(p, sums, lg)))
            hyps = [smt.BoolVal(True)]
        elif fname in ("offAddrToLevelIndex", "levelIndexToOffAddr", "addrsToSummaryRange", "blockAlignSummaryRange"):
            rest = [v for k, v in a.items() if k != "level"]
            for l in levels:
                got = getattr(impl, model)(p, l, *rest)
                want = getattr(E, model)(p, l, *[_bv(x, A) for x in rest])
                concl.append(_eq(got, want))
            hyps = [smt.BoolVal(True)]
        elif fname == "findBitRange64":
            got, ok = impl.find_bit_range64(a["c"], a["n"])
            want, done = E.find_bit_range64(_bv(a["c"], W), _bv(a["n"], W))
            concl.append(smt.And(ok, done, _eq(got, want)))
        else:
            vals = list(a.values())
            got = getattr(impl, model)(p, *vals)
            width = A if fname.startswith(("chunk", "offAddr")) else W
            want = getattr(E, model)(p, *[_bv(x, width) for x in vals])
            concl.append(_eq(got, want))
        concl.append(impl.ok())
        watch = {k: v for k, v in a.items() if not isinstance(v, (list, tuple, dict))}
        return Goal(hyps, smt.And(*concl), watch,
                    lambda v: f"{fname}({', '.join(f'{k}={x:#x}' if isinstance(x, int) else f'{k}={x}' for k, x in v.items())}):"
                    f" the model's {model} and the runtime differ")

    return build


def _tree_hash(p, funcs) -> str:
    """A digest of the translated trees of funcs and their callees on p (positions and type ids
    left out), so platforms whose runtime code folds to the same trees share one solver run."""
    import hashlib
    import json

    from palloc.proofs import tv

    prog, _ = _prog(p.name, p.go_version)
    res = {"types": prog.raw_types, "globals": prog.globals, "funcs": prog.funcs}
    todo, seen = list(funcs), set()
    h = hashlib.sha256()
    while todo:
        f = todo.pop()
        if f in seen or f not in prog.funcs:
            continue
        seen.add(f)
        h.update(f.encode() + json.dumps(tv.canonical(res, prog.funcs[f]["body"]), sort_keys=True).encode())
        todo += sorted(tv._callees(prog.funcs[f]["body"]))
    return h.hexdigest()[:16]


def _consts(p):
    return (p.ptr_bits, p.log_max_packed_value, p.palloc_chunk_pages, p.arena_base_offset, p.heap_addr_bits,
            p.summary_levels, tuple(p.level_log_pages), tuple(p.level_shift), tuple(p.level_bits))


# What each group of statements reads of the platform besides the translated trees.
_WIDTH = {"findBitRange64", "fillAligned"}
_PACKING = {"packPallocSum", "pallocSum.unpack", "pallocSum.start", "pallocSum.max", "pallocSum.end"}


def _key_for(*funcs):
    if set(funcs) <= _WIDTH:
        return lambda p: (_tree_hash(p, funcs), p.ptr_bits)
    if set(funcs) <= _PACKING:
        return lambda p: (_tree_hash(p, funcs), p.ptr_bits, p.log_max_packed_value, p.palloc_chunk_pages)
    if set(funcs) <= _PACKING | {"mergeSummaries"}:
        return lambda p: (_tree_hash(p, funcs), p.ptr_bits, p.log_max_packed_value, tuple(p.level_log_pages))
    return lambda p: (_tree_hash(p, funcs), _consts(p))


def _key(p):
    return (p.name,)


OBLIGATIONS = [
    Obligation(THEOREM, "packing.pack_unpack_round_trip", "the runtime's unpack(pack(s,m,e)) = (s,m,e)",
               _with_ok(lambda p, g: thm_packing._round_trip(p, impl=g)), _key_for("packPallocSum", "pallocSum.unpack")),
    Obligation(THEOREM, "packing.pack_injective", "the runtime's packPallocSum is injective on valid summaries",
               _with_ok(lambda p, g: thm_packing._injective(p, impl=g)), _key_for("packPallocSum")),
    Obligation(THEOREM, "packing.all_free_code_iff_max_is_max_packed",
               "the runtime sets bit 63 exactly when max = maxPackedValue",
               _with_ok(lambda p, g: thm_packing._special_code(p, impl=g)), _key_for("packPallocSum")),
    Obligation(THEOREM, "packing.accessors_agree_with_unpack", "the runtime's start/max/end agree with its unpack",
               _with_ok(lambda p, g: thm_packing._accessors(p, impl=g)), _key_for("packPallocSum", "pallocSum.unpack", "pallocSum.start", "pallocSum.max", "pallocSum.end")),
    Obligation(THEOREM, "packing.free_chunk_sum_is_packed_full_chunk",
               "the runtime's pack(C,C,C) = freeChunkSum, not the all-free code",
               _with_ok(lambda p, g: thm_packing._free_chunk_sum(p, impl=g)), _key_for("packPallocSum")),
    *[Obligation(THEOREM, f"merge.merge_summaries_level_{l}_is_concat_fold",
                 f"the runtime's mergeSummaries of 8 WF level-{l} children = the fold of concat",
                 _with_ok(_merge_level(l)), _key_for("mergeSummaries", "pallocSum.unpack"), applies=lambda p, l=l: l < p.summary_levels)
      for l in range(1, 5)],
    *[Obligation(THEOREM, f"no_double_alloc.find_bit_range64_is_lowest_run_n{lo}_{hi}",
                 f"the runtime's findBitRange64(c, n) is the lowest run of n ones (n in [{lo}, {hi}])",
                 _with_ok(lambda p, g, lo=lo, hi=hi: thm_no_double_alloc._find_bit_range64(
                     p, impl=g.find_bit_range64, lo=lo, hi=hi)), _key_for("findBitRange64"))
      for lo, hi in ((1, 8), (9, 16), (17, 32), (33, 64))],
    Obligation(THEOREM, "addresses.chunk_index_chunk_base_round_trip",
               "the runtime's chunkBase(chunkIndex(a)) aligns a down; chunkIndex(chunkBase(ci)) = ci",
               _with_ok(lambda p, g: thm_addresses._round_trip(p, impl=g)), _key_for("chunkIndex", "chunkBase")),
    Obligation(THEOREM, "addresses.off_addr_linear_order",
               "the runtime's lessThan/diff/add are the linear order of offsets (arenaBaseOffset)",
               _with_ok(lambda p, g: thm_addresses._order(p, impl=g)), _key_for("offAddr.lessThan", "offAddr.lessEqual", "offAddr.add", "offAddr.diff")),
    Obligation(THEOREM, "fill_aligned_is_groupwise_fill",
               "fillAligned(x, m): each m-aligned group is all ones iff it had a set bit (m = 1..64)",
               _with_ok(_fill_aligned), _key_for("fillAligned")),
    Obligation(THEOREM, "summarize_is_run_length", "the runtime's summarize = summarizeSlow on every bitmap",
               _with_ok(_summarize_run_length), _key_for("pallocBits.summarize"), slow=True),
    *[Obligation(THEOREM, f"model_equals.{f}", f"the model's {m} = the runtime's {f}", _model_equals(f), _key_for(f))
      for f, m in MODEL_FUNCTIONS.items()],
]
